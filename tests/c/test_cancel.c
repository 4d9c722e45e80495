/*
 * Cancellation (loop/op.c and each backend's cancel path): rl_op_cancel of
 * parked ops of every kind, of completed ops, racing a completion;
 * rl_cancel_fd; RL_OP_CLOSE with ops in flight; rl_loop_free with ops in
 * flight. Ops are heap-allocated and freed in their final callback where
 * that matters, so ASan sees any use after the final completion.
 */
#include "helpers.h"

enum kind {
    K_RECV,
    K_RECV_MULTISHOT,
    K_ACCEPT,
    K_ACCEPT_MULTISHOT,
    K_POLL,
    K_POLL_REPEAT,
    K_READ_PIPE,
    K_SEND_FULL,
    K__COUNT
};

static const char *const kind_name[K__COUNT] = {
    "recv", "multishot recv", "accept",    "multishot accept",
    "poll", "repeating poll", "pipe read", "send on a full socket",
};

struct result {
    int calls;
    int finals;
    int after_final; /* completions after the final one: must stay 0 */
    int res;
    unsigned cflags;
    int iter; /* the test's iteration count at the final completion */
    size_t bytes;
};

struct track_log {
    struct result r[16];
    int finals;
    int iter;
};

struct tracked {
    rl_op op;
    struct track_log *log;
    int slot;
    bool free_on_final;
    uint8_t buf[256];
};

static void tracked_cb(rl_loop *loop, rl_op *op)
{
    struct tracked *t = op->data;
    struct result *r = &t->log->r[t->slot];

    (void)loop;
    if (r->finals)
        r->after_final++;
    r->calls++;
    r->res = op->res;
    r->cflags = op->cflags;
    if (op->res > 0 && (op->opcode == RL_OP_RECV || op->opcode == RL_OP_READ))
        r->bytes += (size_t)op->res;
    if (op->opcode == RL_OP_ACCEPT && op->res >= 0)
        close(op->res);
    if (op->cflags & RL_CQE_MORE)
        return;
    r->finals++;
    r->iter = t->log->iter;
    t->log->finals++;
    if (rl_op_in_flight(op))
        rlt_fail("op still in flight inside its final callback");
    if (t->free_on_final)
        free(t);
}

/* Fill fd's send buffer so that the next send has to wait. */
static void fill_socket(int fd)
{
    static uint8_t junk[65536];

    while (send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
        ;
    while (send(fd, junk, 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The fds a kind needs; fd is the one the op runs on. */
struct fds {
    int fd;
    int other; /* peer socket / pipe write end / -1 */
};

static struct fds make_fds(enum kind k)
{
    struct sockaddr_in addr;
    struct fds f;
    int sv[2];

    switch (k) {
    case K_ACCEPT:
    case K_ACCEPT_MULTISHOT:
        f.fd = rlt_listener(&addr, 8);
        f.other = -1;
        break;
    case K_READ_PIPE:
        rlt_pipe(sv);
        f.fd = sv[0];
        f.other = sv[1];
        break;
    default:
        rlt_socketpair(sv);
        f.fd = sv[0];
        f.other = sv[1];
        if (k == K_SEND_FULL)
            fill_socket(f.fd);
        break;
    }
    return f;
}

static void prep_kind(struct tracked *t, enum kind k, int fd)
{
    switch (k) {
    case K_RECV:
        rl_prep_recv(&t->op, fd, t->buf, sizeof(t->buf), 0, tracked_cb, t);
        break;
    case K_RECV_MULTISHOT:
        rl_prep_recv_multishot(&t->op, fd, tracked_cb, t);
        break;
    case K_ACCEPT:
        rl_prep_accept(&t->op, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC,
                       tracked_cb, t);
        break;
    case K_ACCEPT_MULTISHOT:
        rl_prep_accept_multishot(&t->op, fd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                                 tracked_cb, t);
        break;
    case K_POLL:
        rl_prep_poll(&t->op, fd, POLLIN, false, tracked_cb, t);
        break;
    case K_POLL_REPEAT:
        rl_prep_poll(&t->op, fd, POLLIN, true, tracked_cb, t);
        break;
    case K_READ_PIPE:
        rl_prep_read(&t->op, fd, t->buf, sizeof(t->buf), -1, tracked_cb, t);
        break;
    case K_SEND_FULL:
        rl_prep_send(&t->op, fd, t->buf, sizeof(t->buf), MSG_NOSIGNAL,
                     tracked_cb, t);
        break;
    default:
        fail_msg("bad kind %d", k);
    }
}

static struct tracked *arm(rl_loop *loop, struct track_log *log, int slot,
                           enum kind k, int fd, bool free_on_final)
{
    struct tracked *t = calloc(1, sizeof(*t));
    int r;

    assert_non_null(t);
    t->log = log;
    t->slot = slot;
    t->free_on_final = free_on_final;
    prep_kind(t, k, fd);
    r = rl_submit(loop, &t->op);
    if (r != 0)
        fail_msg("submit %s: %s", kind_name[k], rlt_res_str(r));
    return t;
}

static void close_fds(rl_loop *loop, struct fds f)
{
    rlt_close(loop, f.fd);
    if (f.other >= 0)
        rlt_close(loop, f.other);
}

static void test_cancel_parked(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);

    (void)state;
    for (int k = 0; k < K__COUNT; k++) {
        struct track_log log = {0};
        struct fds f = make_fds((enum kind)k);
        struct tracked *t = arm(loop, &log, 0, (enum kind)k, f.fd, false);
        struct result *r = &log.r[0];
        int c;

        rlt_run_for(loop, 2); /* parked: nothing to complete */
        if (r->calls)
            fail_msg("%s completed before cancel: %s", kind_name[k],
                     rlt_res_str(r->res));
        assert_true(rl_op_in_flight(&t->op));
        c = rl_op_cancel(loop, &t->op);
        if (c != 0)
            fail_msg("rl_op_cancel(%s): %s", kind_name[k], rlt_res_str(c));
        assert_int_equal(r->calls, 0); /* never inline */
        if (!rlt_run_until_count(loop, &r->finals, 1, RLT_GUARD_MS))
            fail_msg("cancelled %s: no final completion", kind_name[k]);
        rlt_run_for(loop, 3);
        RLT_ASSERT_OK();
        if (r->calls != 1 || r->res != -ECANCELED || r->after_final)
            fail_msg("cancelled %s: %d completion(s), last %s, %d after the "
                     "final; expected exactly one with -ECANCELED",
                     kind_name[k], r->calls, rlt_res_str(r->res),
                     r->after_final);
        assert_false(rl_op_in_flight(&t->op));
        c = rl_op_cancel(loop, &t->op);
        if (c != -ENOENT)
            fail_msg("second cancel of %s: %s, expected -ENOENT", kind_name[k],
                     rlt_res_str(c));
        free(t);
        close_fds(loop, f);
    }
    assert_int_equal(rl_loop_pending(loop), 0);
    rl_loop_free(loop);
}

static void test_cancel_not_in_flight(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct track_log log = {0};
    struct tracked t = {.log = &log};
    int c;

    (void)state;
    rl_prep_nop(&t.op, tracked_cb, &t);
    c = rl_op_cancel(loop, &t.op);
    if (c != -ENOENT)
        fail_msg("cancel of a prepared, never submitted op: %s, expected "
                 "-ENOENT",
                 rlt_res_str(c));
    assert_int_equal(rl_submit(loop, &t.op), 0);
    if (!rlt_run_until_count(loop, &log.r[0].finals, 1, RLT_GUARD_MS))
        fail_msg("nop did not complete");
    c = rl_op_cancel(loop, &t.op);
    if (c != -ENOENT)
        fail_msg("cancel of a completed op: %s, expected -ENOENT",
                 rlt_res_str(c));
    rlt_run_for(loop, 2);
    assert_int_equal(log.r[0].calls, 1);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

/* Cancel right after submit while data is already there: exactly one final
 * completion, carrying either the data or -ECANCELED. */
static void test_cancel_races_completion(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    int outcome[2] = {0, 0};

    (void)state;
    for (int i = 0; i < 100; i++) {
        bool multishot = i & 1;
        struct track_log log = {0};
        struct result *r = &log.r[0];
        struct tracked *t;
        int sv[2], c;

        rlt_socketpair(sv);
        assert_int_equal(send(sv[1], "hello", 5, 0), 5);
        t = arm(loop, &log, 0, multishot ? K_RECV_MULTISHOT : K_RECV, sv[0],
                false);
        c = rl_op_cancel(loop, &t->op);
        if (c != 0)
            fail_msg("cancel right after submit: %s", rlt_res_str(c));
        if (!rlt_run_until_count(loop, &r->finals, 1, RLT_GUARD_MS))
            fail_msg("round %d: no final completion", i);
        rlt_run_for(loop, 1);
        RLT_ASSERT_OK();
        if (r->after_final)
            fail_msg("round %d: %d completion(s) after the final one", i,
                     r->after_final);
        if (r->res != -ECANCELED && r->res != 5)
            fail_msg("round %d (%s): final result %s, expected 5 or "
                     "-ECANCELED",
                     i, multishot ? "multishot" : "single",
                     rlt_res_str(r->res));
        if (r->bytes != 0 && r->bytes != 5)
            fail_msg("round %d: %zu bytes delivered of 5", i, r->bytes);
        if (!multishot && r->res == 5)
            assert_memory_equal(t->buf, "hello", 5);
        outcome[r->res == -ECANCELED]++;
        free(t);
        rlt_close(loop, sv[0]);
        rlt_close(loop, sv[1]);
    }
    fprintf(stderr, "race outcomes: %d completed, %d cancelled\n", outcome[0],
            outcome[1]);
    rl_loop_free(loop);
}

/* An op cancelled before the loop ran again never starts: a send to a
 * writable socket, cancelled by rl_op_cancel() or rl_cancel_fd() right
 * after rl_submit(), ends with -ECANCELED and the peer gets nothing (on
 * io_uring its SQE had not reached the kernel yet; a cancel request after
 * it could lose the race with the send, which asyncio's abort() never
 * lets happen). */
static void test_cancel_before_start(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char peek[64];

    (void)state;
    for (int by_fd = 0; by_fd < 2; by_fd++) {
        struct track_log log = {0};
        struct tracked t = {.log = &log};
        int sv[2];

        rlt_socketpair(sv);
        memset(t.buf, 'x', sizeof(t.buf));
        rl_prep_send(&t.op, sv[0], t.buf, sizeof(t.buf), 0, tracked_cb, &t);
        assert_int_equal(rl_submit(loop, &t.op), 0);
        if (by_fd)
            assert_int_equal(rl_cancel_fd(loop, sv[0]), 0);
        else
            assert_int_equal(rl_op_cancel(loop, &t.op), 0);
        if (!rlt_run_until_count(loop, &log.r[0].finals, 1, RLT_GUARD_MS))
            fail_msg("no final completion");
        rlt_run_for(loop, 2);
        RLT_ASSERT_OK();
        if (log.r[0].res != -ECANCELED)
            fail_msg("%s right after submit: final result %s, expected "
                     "-ECANCELED",
                     by_fd ? "rl_cancel_fd" : "rl_op_cancel",
                     rlt_res_str(log.r[0].res));
        assert_int_equal(recv(sv[1], peek, sizeof(peek), MSG_DONTWAIT), -1);
        assert_int_equal(errno, EAGAIN);
        rlt_close(loop, sv[0]);
        rlt_close(loop, sv[1]);
    }
    rl_loop_free(loop);
}

static void test_cancel_fd(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct track_log log = {0};
    struct tracked *t[4];
    int sv[2], c;

    (void)state;
    rlt_socketpair(sv);
    t[0] = arm(loop, &log, 0, K_RECV, sv[0], false);
    t[1] = arm(loop, &log, 1, K_POLL, sv[0], false);
    t[2] = arm(loop, &log, 2, K_POLL_REPEAT, sv[0], false);
    t[3] = arm(loop, &log, 3, K_RECV, sv[1], false); /* other fd: stays */
    rlt_run_for(loop, 2);
    assert_int_equal(log.finals, 0);
    c = rl_cancel_fd(loop, sv[0]);
    if (c != 0)
        fail_msg("rl_cancel_fd: %s", rlt_res_str(c));
    if (!rlt_run_until_count(loop, &log.finals, 3, RLT_GUARD_MS))
        fail_msg("rl_cancel_fd: %d of 3 ops got a final completion",
                 log.finals);
    rlt_run_for(loop, 3);
    RLT_ASSERT_OK();
    for (int i = 0; i < 3; i++)
        if (log.r[i].calls != 1 || log.r[i].res != -ECANCELED)
            fail_msg("op %d on the cancelled fd: %d completion(s), last %s", i,
                     log.r[i].calls, rlt_res_str(log.r[i].res));
    if (log.r[3].calls != 0)
        fail_msg("an op on another fd was hit: %s", rlt_res_str(log.r[3].res));
    assert_true(rl_op_in_flight(&t[3]->op));

    /* The untouched op still works, and sv[0] takes new ops. */
    assert_int_equal(send(sv[0], "x", 1, 0), 1);
    if (!rlt_run_until_count(loop, &log.r[3].finals, 1, RLT_GUARD_MS))
        fail_msg("recv on the other fd did not complete");
    assert_int_equal(log.r[3].res, 1);
    free(t[0]);
    t[0] = arm(loop, &log, 4, K_RECV, sv[0], false);
    assert_int_equal(send(sv[1], "yz", 2, 0), 2);
    if (!rlt_run_until_count(loop, &log.r[4].finals, 1, RLT_GUARD_MS))
        fail_msg("recv after rl_cancel_fd did not complete");
    assert_int_equal(log.r[4].res, 2);
    RLT_ASSERT_OK();
    for (int i = 0; i < 4; i++)
        free(t[i]);
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

/* Run ONCE at a time, counting iterations in log->iter. */
static bool run_counting(rl_loop *loop, struct track_log *log, int finals)
{
    rl_timer guard;
    bool fired = false;

    rl_timer_init(&guard, rlt_guard_fired, &fired);
    rl_timer_start(loop, &guard, RLT_GUARD_MS * RLT_MS);
    while (log->finals < finals && !fired && !rlt_failed()) {
        log->iter++;
        if (rl_loop_run(loop, RL_RUN_ONCE) < 0)
            break;
    }
    rl_timer_stop(loop, &guard);
    return log->finals >= finals;
}

static void test_close_with_ops_in_flight(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in addr;
    struct track_log log = {0};
    int lfd, sv[2];

    (void)state;
    /* A listener with a multishot and a single accept; a socket with a
     * parked recv and a parked send. */
    lfd = rlt_listener(&addr, 8);
    rlt_socketpair(sv);
    fill_socket(sv[0]);
    arm(loop, &log, 0, K_ACCEPT_MULTISHOT, lfd, true);
    arm(loop, &log, 1, K_ACCEPT, lfd, true);
    arm(loop, &log, 2, K_RECV, sv[0], true);
    arm(loop, &log, 3, K_SEND_FULL, sv[0], true);
    rlt_run_for(loop, 2);
    assert_int_equal(log.finals, 0);

    struct tracked *cl1 = calloc(1, sizeof(*cl1));
    struct tracked *cl2 = calloc(1, sizeof(*cl2));
    assert_non_null(cl1);
    assert_non_null(cl2);
    *cl1 = (struct tracked){.log = &log, .slot = 4, .free_on_final = true};
    *cl2 = (struct tracked){.log = &log, .slot = 5, .free_on_final = true};
    rl_prep_close(&cl1->op, lfd, tracked_cb, cl1);
    rl_prep_close(&cl2->op, sv[0], tracked_cb, cl2);
    assert_int_equal(rl_submit(loop, &cl1->op), 0);
    assert_int_equal(rl_submit(loop, &cl2->op), 0);
    if (!run_counting(loop, &log, 6))
        fail_msg("close with ops in flight: %d of 6 final completions",
                 log.finals);
    rlt_run_for(loop, 3);
    RLT_ASSERT_OK();
    for (int i = 0; i < 4; i++) {
        const struct result *r = &log.r[i];
        const struct result *cl = &log.r[i < 2 ? 4 : 5];

        if (r->calls != 1 || r->res != -ECANCELED)
            fail_msg("op %d in flight at close: %d completion(s), last %s; "
                     "expected one with -ECANCELED",
                     i, r->calls, rlt_res_str(r->res));
        if (r->iter > cl->iter)
            fail_msg("op %d completed in iteration %d, after its fd's close "
                     "(iteration %d)",
                     i, r->iter, cl->iter);
    }
    if (log.r[4].res != 0 || log.r[5].res != 0)
        fail_msg("close results: listener %s, socket %s; expected 0",
                 rlt_res_str(log.r[4].res), rlt_res_str(log.r[5].res));
    assert_int_equal(rl_loop_pending(loop), 0);
    errno = 0;
    if (fcntl(lfd, F_GETFD) != -1 || errno != EBADF)
        fail_msg("the listener fd is still open after RL_OP_CLOSE");

    /* The numbers are free again; new descriptors on them work. */
    int nsv[2];
    struct tracked *t;
    rlt_socketpair(nsv);
    t = arm(loop, &log, 6, K_RECV, nsv[0], false);
    assert_int_equal(send(nsv[1], "abc", 3, 0), 3);
    if (!rlt_run_until_count(loop, &log.r[6].finals, 1, RLT_GUARD_MS))
        fail_msg("recv on a reused fd number (%d) did not complete", nsv[0]);
    assert_int_equal(log.r[6].res, 3);
    free(t);
    rlt_close(loop, nsv[0]);
    rlt_close(loop, nsv[1]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

static void test_free_with_ops_in_flight(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct track_log log = {0};
    struct fds f[K__COUNT];

    (void)state;
    for (int k = 0; k < K__COUNT; k++) {
        f[k] = make_fds((enum kind)k);
        arm(loop, &log, k, (enum kind)k, f[k].fd, true);
    }
    rlt_run_for(loop, 2);
    assert_int_equal(log.finals, 0);
    assert_int_equal(rl_loop_pending(loop), K__COUNT);
    rl_loop_free(loop);
    for (int k = 0; k < K__COUNT; k++) {
        const struct result *r = &log.r[k];

        if (r->finals != 1 || r->calls != 1 || r->res != -ECANCELED)
            fail_msg("%s in flight at rl_loop_free: %d completion(s), %d "
                     "final, last %s; expected one final with -ECANCELED",
                     kind_name[k], r->calls, r->finals, rlt_res_str(r->res));
    }
    RLT_ASSERT_OK();
    for (int k = 0; k < K__COUNT; k++) {
        close(f[k].fd);
        if (f[k].other >= 0)
            close(f[k].other);
    }
}

/* A final callback run by rl_loop_free() that resubmits gets -ECANCELED,
 * so the free ends instead of waiting for ops that keep coming back. */
struct stubborn {
    rl_op op;
    char buf[16];
    int finals;
    int resubmit_res;
};

static void stubborn_cb(rl_loop *loop, rl_op *op)
{
    struct stubborn *st = op->data;
    int fd = op->fd;

    st->finals++;
    rl_prep_recv(op, fd, st->buf, sizeof(st->buf), 0, stubborn_cb, st);
    st->resubmit_res = rl_submit(loop, op);
}

static void test_free_refuses_resubmit(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct stubborn st = {0};
    int sv[2];

    (void)state;
    rlt_socketpair(sv);
    rl_prep_recv(&st.op, sv[0], st.buf, sizeof(st.buf), 0, stubborn_cb, &st);
    assert_int_equal(rl_submit(loop, &st.op), 0);
    rlt_run_for(loop, 2);
    rl_loop_free(loop);
    if (st.finals != 1 || st.resubmit_res != -ECANCELED)
        fail_msg("final callbacks during rl_loop_free: %d, resubmit %s; "
                 "expected one, and -ECANCELED",
                 st.finals, rlt_res_str(st.resubmit_res));
    assert_false(rl_op_in_flight(&st.op));
    close(sv[0]);
    close(sv[1]);
}

/* rl_loop_flush: a queued RL_OP_CLOSE is carried out at once, also with a
 * recv in flight on the fd; the callbacks wait for the next run. */
static void test_flush_closes(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct track_log log = {0};
    struct tracked *cl[2];
    int sv[2][2], i;

    (void)state;
    rlt_socketpair(sv[0]);
    rlt_socketpair(sv[1]);
    arm(loop, &log, 0, K_RECV, sv[1][0], true);
    rlt_run_for(loop, 2);
    for (i = 0; i < 2; i++) {
        cl[i] = calloc(1, sizeof(*cl[i]));
        assert_non_null(cl[i]);
        *cl[i] =
            (struct tracked){.log = &log, .slot = 1 + i, .free_on_final = true};
        rl_prep_close(&cl[i]->op, sv[i][0], tracked_cb, cl[i]);
        assert_int_equal(rl_submit(loop, &cl[i]->op), 0);
    }
    assert_int_equal(rl_loop_flush(loop), 0);
    for (i = 0; i < 2; i++) {
        errno = 0;
        if (fcntl(sv[i][0], F_GETFD) != -1 || errno != EBADF)
            fail_msg("fd %d (%s) still open after rl_loop_flush", sv[i][0],
                     i ? "a recv in flight" : "idle");
    }
    assert_int_equal(log.finals, 0); /* no callback from rl_loop_flush */
    if (!rlt_run_until_count(loop, &log.finals, 3, RLT_GUARD_MS))
        fail_msg("after rl_loop_flush: %d of 3 final completions", log.finals);
    if (log.r[0].res != -ECANCELED || log.r[1].res != 0 || log.r[2].res != 0)
        fail_msg("results: recv %s, close %s, close %s",
                 rlt_res_str(log.r[0].res), rlt_res_str(log.r[1].res),
                 rlt_res_str(log.r[2].res));
    assert_int_equal(rl_loop_pending(loop), 0);
    RLT_ASSERT_OK();
    close(sv[0][1]);
    close(sv[1][1]);
    rl_loop_free(loop);
}

/* The final callback owns the op again: resubmitting it from there works. */
struct rearm {
    rl_op op;
    char buf[16];
    int cancelled;
    int data;
};

static void rearm_cb(rl_loop *loop, rl_op *op)
{
    struct rearm *ra = op->data;
    int fd = op->fd, r;

    if (op->res == -ECANCELED) {
        ra->cancelled++;
        rl_prep_recv(op, fd, ra->buf, sizeof(ra->buf), 0, rearm_cb, ra);
        r = rl_submit(loop, op);
        if (r != 0)
            rlt_fail("resubmit from the final callback: %s", rlt_res_str(r));
        return;
    }
    if (op->res > 0)
        ra->data = op->res;
    else
        rlt_fail("recv after re-arm: %s", rlt_res_str(op->res));
}

static void test_resubmit_after_cancel(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rearm ra = {0};
    int sv[2];

    (void)state;
    rlt_socketpair(sv);
    rl_prep_recv(&ra.op, sv[0], ra.buf, sizeof(ra.buf), 0, rearm_cb, &ra);
    assert_int_equal(rl_submit(loop, &ra.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(rl_op_cancel(loop, &ra.op), 0);
    if (!rlt_run_until_count(loop, &ra.cancelled, 1, RLT_GUARD_MS))
        fail_msg("no -ECANCELED completion");
    RLT_ASSERT_OK();
    assert_true(rl_op_in_flight(&ra.op));
    assert_int_equal(send(sv[1], "again", 5, 0), 5);
    if (!rlt_run_until_count(loop, &ra.data, 5, RLT_GUARD_MS))
        fail_msg("the re-armed recv got no data");
    assert_memory_equal(ra.buf, "again", 5);
    RLT_ASSERT_OK();
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

/*
 * Many descriptors: ops are armed while the fd numbers grow (the uring
 * backend keeps its in-flight ops per fd and grows that table with ops in
 * flight on the lower fds). Then RL_OP_CLOSE and rl_cancel_fd on some of
 * them end exactly their ops, a close of an fd with nothing in flight just
 * closes it, and the others still complete.
 */
#define MANY 150

struct many_op {
    rl_op op;
    int calls, res;
    uint8_t buf[8];
};

static void many_cb(rl_loop *loop, rl_op *op)
{
    struct many_op *m = op->data;

    (void)loop;
    m->calls++;
    m->res = op->res;
}

/* Every RL_OP_CLOSE of the test (one per third fd) has completed. */
static bool many_closed(void *arg)
{
    const struct many_op *c = arg;

    for (int i = 0; i < MANY; i += 3)
        if (!c[i].calls)
            return false;
    return true;
}

static void test_close_many_fds(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    static struct many_op recv_op[MANY], close_op[MANY];
    int sv[MANY][2], i, done;
    rl_timer guard;
    bool fired = false;

    (void)state;
    memset(recv_op, 0, sizeof(recv_op));
    memset(close_op, 0, sizeof(close_op));
    for (i = 0; i < MANY; i++) {
        rlt_socketpair(sv[i]);
        rl_prep_recv(&recv_op[i].op, sv[i][0], recv_op[i].buf,
                     sizeof(recv_op[i].buf), 0, many_cb, &recv_op[i]);
        assert_int_equal(rl_submit(loop, &recv_op[i].op), 0);
        if (i % 16 == 0)
            rlt_run_for(loop, 0);
    }
    rlt_run_for(loop, 2);
    /* i % 3 == 0: RL_OP_CLOSE on the recv's fd and on its idle peer;
     * i % 3 == 1: rl_cancel_fd; i % 3 == 2: data arrives. */
    for (i = 0; i < MANY; i++) {
        switch (i % 3) {
        case 0:
            rl_prep_close(&close_op[i].op, sv[i][0], many_cb, &close_op[i]);
            assert_int_equal(rl_submit(loop, &close_op[i].op), 0);
            break;
        case 1:
            assert_int_equal(rl_cancel_fd(loop, sv[i][0]), 0);
            break;
        default:
            assert_int_equal(send(sv[i][1], "ok", 2, 0), 2);
            break;
        }
    }
    rl_timer_init(&guard, rlt_guard_fired, &fired);
    rl_timer_start(loop, &guard, RLT_GUARD_MS * RLT_MS);
    for (;;) {
        done = 0;
        for (i = 0; i < MANY; i++)
            done += recv_op[i].calls;
        if (done >= MANY || fired || rlt_failed())
            break;
        rl_loop_run(loop, RL_RUN_ONCE);
    }
    rl_timer_stop(loop, &guard);
    rlt_run_until(loop, many_closed, close_op, RLT_GUARD_MS);
    rlt_run_for(loop, 3);
    RLT_ASSERT_OK();
    for (i = 0; i < MANY; i++) {
        int expect = i % 3 == 2 ? 2 : -ECANCELED;

        if (recv_op[i].calls != 1 || recv_op[i].res != expect)
            fail_msg("recv on fd %d (case %d): %d completion(s), last %s; "
                     "expected one with %s",
                     sv[i][0], i % 3, recv_op[i].calls,
                     rlt_res_str(recv_op[i].res), rlt_res_str(expect));
        if (i % 3 == 0 && (close_op[i].calls != 1 || close_op[i].res != 0))
            fail_msg("RL_OP_CLOSE of fd %d: %d completion(s), last %s",
                     sv[i][0], close_op[i].calls, rlt_res_str(close_op[i].res));
    }
    /* Close the idle peers through the loop: nothing is in flight on them. */
    for (i = 0; i < MANY; i += 3) {
        memset(&close_op[i], 0, sizeof(close_op[i]));
        rl_prep_close(&close_op[i].op, sv[i][1], many_cb, &close_op[i]);
        assert_int_equal(rl_submit(loop, &close_op[i].op), 0);
    }
    rlt_run_until(loop, many_closed, close_op, RLT_GUARD_MS);
    rlt_run_for(loop, 3);
    for (i = 0; i < MANY; i += 3) {
        if (close_op[i].calls != 1 || close_op[i].res != 0)
            fail_msg("RL_OP_CLOSE of idle fd %d: %d completion(s), last %s",
                     sv[i][1], close_op[i].calls, rlt_res_str(close_op[i].res));
        errno = 0;
        if (fcntl(sv[i][1], F_GETFD) != -1 || errno != EBADF)
            fail_msg("fd %d still open after RL_OP_CLOSE", sv[i][1]);
    }
    assert_int_equal(rl_loop_pending(loop), 0);
    for (i = 0; i < MANY; i++) {
        if (i % 3 != 0)
            rlt_close(loop, sv[i][0]);
        if (i % 3 != 0)
            rlt_close(loop, sv[i][1]);
    }
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_cancel_parked),
        RLT_TEST(test_cancel_not_in_flight),
        RLT_TEST(test_cancel_races_completion),
        RLT_TEST(test_cancel_before_start),
        RLT_TEST(test_cancel_fd),
        RLT_TEST(test_close_with_ops_in_flight),
        RLT_TEST(test_free_with_ops_in_flight),
        RLT_TEST(test_free_refuses_resubmit),
        RLT_TEST(test_flush_closes),
        RLT_TEST(test_resubmit_after_cancel),
        RLT_TEST(test_close_many_fds),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
