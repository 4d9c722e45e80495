/*
 * Bad input through rl_submit() and the backends: closed and invalid fds
 * (EBADF), the wrong kind of fd, an op submitted twice (EBUSY), bad
 * opcodes and arguments (EINVAL), zero-length send/recv/read/write.
 * A fault must come back as -errno (from rl_submit or in the one final
 * completion), never as a crash, a hang or a second completion.
 */
#include <sys/stat.h>

#include "helpers.h"

struct err_op {
    rl_op op;
    int calls;
    int res;
    unsigned cflags;
    uint8_t buf[64];
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_in sa;
    socklen_t salen;
    struct statx stx;
};

static void err_cb(rl_loop *loop, rl_op *op)
{
    struct err_op *e = op->data;

    (void)loop;
    e->calls++;
    e->res = op->res;
    e->cflags = op->cflags;
    if (op->opcode == RL_OP_ACCEPT && op->res >= 0)
        close(op->res);
}

static const char *const op_names[RL_OP__COUNT] = {
    "nop",       "accept",  "connect", "recv",   "send",
    "recvmsg",   "sendmsg", "read",    "write",  "close",
    "shutdown",  "poll",    "openat",  "fsync",  "fallocate",
    "ftruncate", "statx",   "rename",  "unlink", "mkdir",
};

static void prep_on_fd(struct err_op *e, int opcode, int fd)
{
    memset(e, 0, sizeof(*e));
    e->iov.iov_base = e->buf;
    e->iov.iov_len = sizeof(e->buf);
    e->msg.msg_iov = &e->iov;
    e->msg.msg_iovlen = 1;
    e->sa.sin_family = AF_INET;
    e->sa.sin_port = htons(9);
    e->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    e->salen = sizeof(e->sa);
    switch (opcode) {
    case RL_OP_ACCEPT:
        rl_prep_accept(&e->op, fd, (struct sockaddr *)&e->sa, &e->salen, 0,
                       err_cb, e);
        break;
    case RL_OP_CONNECT:
        rl_prep_connect(&e->op, fd, (struct sockaddr *)&e->sa, sizeof(e->sa),
                        err_cb, e);
        break;
    case RL_OP_RECV:
        rl_prep_recv(&e->op, fd, e->buf, sizeof(e->buf), 0, err_cb, e);
        break;
    case RL_OP_SEND:
        rl_prep_send(&e->op, fd, e->buf, sizeof(e->buf), MSG_NOSIGNAL, err_cb,
                     e);
        break;
    case RL_OP_RECVMSG:
        rl_prep_recvmsg(&e->op, fd, &e->msg, 0, err_cb, e);
        break;
    case RL_OP_SENDMSG:
        rl_prep_sendmsg(&e->op, fd, &e->msg, MSG_NOSIGNAL, err_cb, e);
        break;
    case RL_OP_READ:
        rl_prep_read(&e->op, fd, e->buf, sizeof(e->buf), 0, err_cb, e);
        break;
    case RL_OP_WRITE:
        rl_prep_write(&e->op, fd, e->buf, sizeof(e->buf), 0, err_cb, e);
        break;
    case RL_OP_CLOSE:
        rl_prep_close(&e->op, fd, err_cb, e);
        break;
    case RL_OP_SHUTDOWN:
        rl_prep_shutdown(&e->op, fd, SHUT_RDWR, err_cb, e);
        break;
    case RL_OP_POLL:
        rl_prep_poll(&e->op, fd, POLLIN, false, err_cb, e);
        break;
    /* File ops: the path-based ones take fd as their directory (with a
     * relative path, a bad one is EBADF too). */
    case RL_OP_OPENAT:
        rl_prep_openat(&e->op, fd, "x", O_RDONLY, 0, err_cb, e);
        break;
    case RL_OP_FSYNC:
        rl_prep_fsync(&e->op, fd, 0, err_cb, e);
        break;
    case RL_OP_FALLOCATE:
        rl_prep_fallocate(&e->op, fd, 0, 0, 4096, err_cb, e);
        break;
    case RL_OP_FTRUNCATE:
        rl_prep_ftruncate(&e->op, fd, 0, err_cb, e);
        break;
    case RL_OP_STATX:
        rl_prep_statx(&e->op, fd, "x", 0, STATX_BASIC_STATS, &e->stx, err_cb,
                      e);
        break;
    case RL_OP_RENAME:
        rl_prep_renameat(&e->op, fd, "x", fd, "y", 0, err_cb, e);
        break;
    case RL_OP_UNLINK:
        rl_prep_unlinkat(&e->op, fd, "x", 0, err_cb, e);
        break;
    case RL_OP_MKDIR:
        rl_prep_mkdirat(&e->op, fd, "x", 0700, err_cb, e);
        break;
    default:
        fail_msg("no prep for opcode %d", opcode);
    }
}

/*
 * Submit e and return the error it ends with: rl_submit's -errno, or the
 * result of its one final completion.
 */
static int submit_result(rl_loop *loop, struct err_op *e, bool *via_submit,
                         const char *what)
{
    int r = rl_submit(loop, &e->op);

    *via_submit = r < 0;
    if (r < 0) {
        rlt_run_for(loop, 1);
        if (e->calls)
            fail_msg("rl_submit failed (%s) yet the callback ran",
                     rlt_res_str(r));
        return r;
    }
    if (!rlt_run_until_count(loop, &e->calls, 1, RLT_GUARD_MS))
        fail_msg("%s (%s): no completion", what, op_names[e->op.opcode]);
    rlt_run_for(loop, 1);
    if (e->calls != 1 || (e->cflags & RL_CQE_MORE))
        fail_msg("%s (%s): %d completion(s), cflags 0x%x; expected one "
                 "final",
                 what, op_names[e->op.opcode], e->calls, e->cflags);
    return e->res;
}

static void test_ebadf(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    int closed_fd = fcntl(2, F_DUPFD_CLOEXEC, 900);
    static const int bad_fds[] = {-1, 0 /* closed_fd */, 1 << 20};

    (void)state;
    /* A number far above anything the loop opens for itself. */
    assert_true(closed_fd >= 900);
    close(closed_fd);
    for (int i = 0; i < 3; i++) {
        int fd = i == 1 ? closed_fd : bad_fds[i];

        for (int opc = RL_OP_ACCEPT; opc < RL_OP__COUNT; opc++) {
            struct err_op e;
            bool via_submit;
            int r;

            prep_on_fd(&e, opc, fd);
            r = submit_result(loop, &e, &via_submit, "bad fd");
            /* -1 may be refused up front as a bad argument (-EINVAL). */
            if (r == -EBADF || (fd < 0 && via_submit && r == -EINVAL))
                continue;
            fail_msg("%s on fd %d: %s%s, expected -EBADF", op_names[opc], fd,
                     rlt_res_str(r), via_submit ? " from rl_submit" : "");
        }
    }
    RLT_ASSERT_OK();
    assert_int_equal(rl_loop_pending(loop), 0);
    rl_loop_free(loop);
}

static void test_wrong_kind_of_fd(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct err_op e;
    bool via;
    int p[2], s, r;

    (void)state;
    rlt_pipe(p);
    /* Socket ops on a pipe. */
    prep_on_fd(&e, RL_OP_RECV, p[0]);
    r = submit_result(loop, &e, &via, "recv on a pipe");
    if (r != -ENOTSOCK)
        fail_msg("recv on a pipe: %s, expected -ENOTSOCK", rlt_res_str(r));
    prep_on_fd(&e, RL_OP_SEND, p[1]);
    r = submit_result(loop, &e, &via, "send on a pipe");
    if (r != -ENOTSOCK)
        fail_msg("send on a pipe: %s, expected -ENOTSOCK", rlt_res_str(r));
    prep_on_fd(&e, RL_OP_ACCEPT, p[0]);
    r = submit_result(loop, &e, &via, "accept on a pipe");
    if (r != -ENOTSOCK)
        fail_msg("accept on a pipe: %s, expected -ENOTSOCK", rlt_res_str(r));

    /* Accept on a socket that does not listen; recv on one never
     * connected. */
    s = rlt_tcp_socket();
    prep_on_fd(&e, RL_OP_ACCEPT, s);
    r = submit_result(loop, &e, &via, "accept on a non-listening socket");
    if (r != -EINVAL)
        fail_msg("accept on a non-listening socket: %s, expected -EINVAL",
                 rlt_res_str(r));
    prep_on_fd(&e, RL_OP_RECV, s);
    r = submit_result(loop, &e, &via, "recv on an unconnected socket");
    if (r != -ENOTCONN)
        fail_msg("recv on an unconnected socket: %s, expected -ENOTCONN",
                 rlt_res_str(r));

    /* Bad arguments: shutdown(how=99), connect with a short address. */
    prep_on_fd(&e, RL_OP_SHUTDOWN, s);
    e.op.u.shutdown.how = 99;
    r = submit_result(loop, &e, &via, "shutdown(how=99)");
    if (r != -EINVAL)
        fail_msg("shutdown(how=99): %s, expected -EINVAL", rlt_res_str(r));
    prep_on_fd(&e, RL_OP_CONNECT, s);
    e.op.u.connect.addrlen = 3;
    r = submit_result(loop, &e, &via, "connect with addrlen 3");
    if (r != -EINVAL)
        fail_msg("connect with addrlen 3: %s, expected -EINVAL",
                 rlt_res_str(r));

    RLT_ASSERT_OK();
    rlt_close(loop, s);
    rlt_close(loop, p[0]);
    rlt_close(loop, p[1]);
    rl_loop_free(loop);
}

static void test_ebusy(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct err_op e;
    int sv[2], r;

    (void)state;
    rlt_socketpair(sv);
    prep_on_fd(&e, RL_OP_RECV, sv[0]);
    assert_int_equal(rl_submit(loop, &e.op), 0);
    r = rl_submit(loop, &e.op);
    if (r != -EBUSY)
        fail_msg("second rl_submit of an op in flight: %s, expected -EBUSY",
                 rlt_res_str(r));
    rlt_run_for(loop, 2);
    r = rl_submit(loop, &e.op);
    if (r != -EBUSY)
        fail_msg("rl_submit of a parked op: %s, expected -EBUSY",
                 rlt_res_str(r));
    assert_int_equal(rl_loop_pending(loop), 1);

    /* The op is unharmed: it completes once, with the data. */
    assert_int_equal(send(sv[1], "ok", 2, 0), 2);
    if (!rlt_run_until_count(loop, &e.calls, 1, RLT_GUARD_MS))
        fail_msg("the recv did not complete");
    rlt_run_for(loop, 2);
    assert_int_equal(e.calls, 1);
    assert_int_equal(e.res, 2);
    assert_memory_equal(e.buf, "ok", 2);
    assert_int_equal(rl_loop_pending(loop), 0);

    /* A multishot recv, armed, is in flight too. */
    struct err_op m;
    memset(&m, 0, sizeof(m));
    rl_prep_recv_multishot(&m.op, sv[0], err_cb, &m);
    assert_int_equal(rl_submit(loop, &m.op), 0);
    r = rl_submit(loop, &m.op);
    if (r != -EBUSY)
        fail_msg("rl_submit of an armed multishot recv: %s, expected -EBUSY",
                 rlt_res_str(r));
    assert_int_equal(rl_op_cancel(loop, &m.op), 0);
    if (!rlt_run_until_count(loop, &m.calls, 1, RLT_GUARD_MS))
        fail_msg("cancelled multishot recv did not complete");
    RLT_ASSERT_OK();
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

static void test_bad_opcode(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    static const uint8_t bad[] = {RL_OP__COUNT, RL_OP__COUNT + 1, 200, 255};
    struct err_op e;
    int r;

    (void)state;
    for (unsigned i = 0; i < sizeof(bad); i++) {
        prep_on_fd(&e, RL_OP_RECV, 0);
        e.op.opcode = bad[i];
        r = rl_submit(loop, &e.op);
        if (r != -EINVAL)
            fail_msg("opcode %u: rl_submit gave %s, expected -EINVAL", bad[i],
                     rlt_res_str(r));
        assert_false(rl_op_in_flight(&e.op));
    }
    assert_int_equal(rl_loop_pending(loop), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(e.calls, 0);
    rl_loop_free(loop);
}

static void test_zero_length(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct err_op e;
    bool via;
    int a, b, r;

    (void)state;
    rlt_tcp_pair(&a, &b);

    prep_on_fd(&e, RL_OP_SEND, a);
    e.op.u.io.len = 0;
    r = submit_result(loop, &e, &via, "zero-length send");
    if (r != 0)
        fail_msg("zero-length send: %s, expected 0", rlt_res_str(r));

    /* recv of 0 bytes behaves as recv(2) does: on an empty socket it waits
     * for readability, then completes with 0 and consumes nothing. */
    prep_on_fd(&e, RL_OP_RECV, b);
    e.op.u.io.len = 0;
    assert_int_equal(rl_submit(loop, &e.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(send(a, "data", 4, 0), 4);
    if (!rlt_run_until_count(loop, &e.calls, 1, RLT_GUARD_MS))
        fail_msg("zero-length recv: no completion once data arrived");
    if (e.res != 0 || e.calls != 1)
        fail_msg("zero-length recv: %d completion(s), res %s; expected one "
                 "with 0",
                 e.calls, rlt_res_str(e.res));
    prep_on_fd(&e, RL_OP_RECV, b);
    e.op.u.io.len = 0;
    r = submit_result(loop, &e, &via, "zero-length recv with data queued");
    if (r != 0)
        fail_msg("zero-length recv with data queued: %s, expected 0",
                 rlt_res_str(r));

    /* The data is still there for a real recv. */
    prep_on_fd(&e, RL_OP_RECV, b);
    r = submit_result(loop, &e, &via, "recv after zero-length recvs");
    if (r != 4)
        fail_msg("recv after zero-length recvs: %s, expected 4",
                 rlt_res_str(r));
    assert_memory_equal(e.buf, "data", 4);

    /* Zero-length write and read on a pipe. */
    int p[2];
    rlt_pipe(p);
    prep_on_fd(&e, RL_OP_WRITE, p[1]);
    e.op.u.rw.len = 0;
    e.op.u.rw.offset = -1;
    r = submit_result(loop, &e, &via, "zero-length pipe write");
    if (r != 0)
        fail_msg("zero-length pipe write: %s, expected 0", rlt_res_str(r));
    RLT_ASSERT_OK();
    rlt_close(loop, p[0]);
    rlt_close(loop, p[1]);
    rlt_close(loop, a);
    rlt_close(loop, b);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_ebadf),       RLT_TEST(test_wrong_kind_of_fd),
        RLT_TEST(test_ebusy),       RLT_TEST(test_bad_opcode),
        RLT_TEST(test_zero_length),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
