/*
 * The io_uring data path (and the same programs on epoll, where they must
 * behave alike):
 *   - send_zc: a 1 MiB send whose buffer is scribbled over the moment each
 *     op's final completion hands it back; the peer must still get the
 *     original bytes. The first send is short by construction (small socket
 *     buffers, nobody reading yet) and the rest is resubmitted. An AF_UNIX
 *     socket refuses zero-copy: the send falls back and the data arrives.
 *   - recv_bundle: many small messages already queued, read through a pool
 *     of a few small loop buffers (so it runs dry: -ENOBUFS inside the
 *     backend), each byte once, in order, then EOF.
 *   - fixed_files: the file table lets go of a socket closed by RL_OP_CLOSE
 *     or rl_loop_fd_closed (the peer sees EOF), a new socket on the same fd
 *     number gets the new socket's data, and a forked child's loop works on
 *     an inherited socket while the parent's still does.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "helpers.h"

/* ---- send_zc --------------------------------------------------------------
 */

enum { ZC_LEN = 1024 * 1024, ZC_SEED = 7 };

struct zc_reader {
    pthread_t thr;
    int fd;
    atomic_int go; /* start reading */
    uint8_t *got;
    size_t n;
    int err;
};

/* Blocking reads of everything until EOF, once told to go. */
static void *zc_reader_main(void *arg)
{
    struct zc_reader *r = arg;
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    ssize_t k;

    while (!atomic_load(&r->go))
        usleep(1000);
    for (;;) {
        k = recv(r->fd, r->got + r->n, ZC_LEN + 1 - r->n, 0);
        if (k > 0) {
            r->n += (size_t)k;
            continue;
        }
        if (k == 0)
            break;
        if (errno == EAGAIN || errno == EINTR) {
            poll(&p, 1, 1000);
            continue;
        }
        r->err = errno;
        break;
    }
    return NULL;
}

struct zc_send {
    rl_op op;
    int fd;
    uint8_t *buf;
    size_t off;
    unsigned calls, shorts;
    bool done;
    struct zc_reader *reader;
};

static void zc_send_cb(rl_loop *loop, rl_op *op);

static void zc_submit(rl_loop *loop, struct zc_send *s)
{
    int r;

    rl_prep_send(&s->op, s->fd, s->buf + s->off, ZC_LEN - s->off, 0, zc_send_cb,
                 s);
    r = rl_submit(loop, &s->op);
    if (r < 0) {
        rlt_fail("submit send: %s", rlt_res_str(r));
        s->done = true;
    }
}

static void zc_send_cb(rl_loop *loop, rl_op *op)
{
    struct zc_send *s = op->data;

    s->calls++;
    /* From now on the peer may read: the first send could not take it all
     * (nobody read), so it was short. */
    atomic_store(&s->reader->go, 1);
    if (op->cflags & RL_CQE_MORE) {
        rlt_fail("send completed with RL_CQE_MORE");
        return;
    }
    if (op->res <= 0 || (size_t)op->res > ZC_LEN - s->off) {
        rlt_fail("send of %zu bytes: %s", ZC_LEN - s->off,
                 rlt_res_str(op->res));
        s->done = true;
        return;
    }
    /* The final completion hands the bytes back: overwrite them at once.
     * Had the kernel still been reading them, the peer would see this. */
    memset(s->buf + s->off, 0xa5, (size_t)op->res);
    if ((size_t)op->res < ZC_LEN - s->off)
        s->shorts++;
    s->off += (size_t)op->res;
    if (s->off == ZC_LEN)
        s->done = true;
    else
        zc_submit(loop, s);
}

static bool zc_done(void *arg)
{
    return ((struct zc_send *)arg)->done;
}

static void run_zc(int wfd, int rfd, bool tcp)
{
    struct rl_loop_stats st;
    struct zc_reader rd = {.fd = rfd};
    struct zc_send s = {.fd = wfd, .reader = &rd};
    rl_loop *loop;
    int small = 16 * 1024;
    size_t bad;

    /* send_zc is opt-in; every send zero-copy, however short (a testers'
     * knob). RINGLOOP_DISABLE=send_zc still wins. */
    setenv("RINGLOOP_ENABLE", "send_zc", 1);
    setenv("RINGLOOP_ZC_MIN", "1", 1);
    loop = rlt_loop_new(NULL);
    unsetenv("RINGLOOP_ZC_MIN");
    unsetenv("RINGLOOP_ENABLE");
    /* Far less than 1 MiB fits in the two sockets' buffers. */
    setsockopt(wfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    s.buf = malloc(ZC_LEN);
    rd.got = malloc(ZC_LEN + 1);
    assert_non_null(s.buf);
    assert_non_null(rd.got);
    rlt_pattern_fill(s.buf, ZC_LEN, ZC_SEED, 0);
    assert_int_equal(pthread_create(&rd.thr, NULL, zc_reader_main, &rd), 0);
    rl_loop_stats_reset(loop);
    zc_submit(loop, &s);
    if (!rlt_run_until(loop, zc_done, &s, RLT_GUARD_MS))
        rlt_fail("1 MiB send not done: %zu bytes sent", s.off);
    atomic_store(&rd.go, 1);
    rl_loop_stats(loop, &st);
    shutdown(wfd, SHUT_WR);
    pthread_join(rd.thr, NULL);
    RLT_ASSERT_OK();
    assert_int_equal(rd.err, 0);
    assert_int_equal(rd.n, ZC_LEN);
    bad = rlt_pattern_check(rd.got, ZC_LEN, ZC_SEED, 0);
    if (bad != SIZE_MAX)
        fail_msg("byte %zu differs: the send buffer was read after its "
                 "final completion, or bytes were lost",
                 bad);
    assert_true(s.shorts >= 1); /* the short-send path ran */
    /* Zero-copy on TCP: a result and a notification per send. */
    if (tcp && (rl_loop_features(loop) & RL_FEAT_SEND_ZC) &&
        st.cqes_reaped < 2 * (uint64_t)s.calls)
        fail_msg("send_zc on, but %llu CQEs for %u sends",
                 (unsigned long long)st.cqes_reaped, s.calls);
    rl_loop_free(loop);
    free(s.buf);
    free(rd.got);
}

static void test_zc_send_1mib_tcp(void **state)
{
    int c, sfd;

    (void)state;
    rlt_tcp_pair(&c, &sfd);
    run_zc(c, sfd, true);
    close(c);
    close(sfd);
}

/* AF_UNIX has no zero-copy: the backend falls back to a plain send. */
static void test_zc_send_1mib_unix(void **state)
{
    int sv[2];

    (void)state;
    rlt_socketpair(sv);
    run_zc(sv[0], sv[1], false);
    close(sv[0]);
    close(sv[1]);
}

/* ---- recv_bundle ----------------------------------------------------------
 */

enum { BN_LEN = 64 * 1024, BN_MSG = 100, BN_SEED = 11 };

struct bn_recv {
    rl_op op;
    size_t got;
    unsigned pieces;
    bool eof;
};

static void bn_cb(rl_loop *loop, rl_op *op)
{
    struct bn_recv *b = op->data;
    size_t bad;

    (void)loop;
    if (op->res > 0) {
        if (!(op->cflags & RL_CQE_BUFFER) ||
            b->got + (size_t)op->res > BN_LEN) {
            rlt_fail("recv piece of %d bytes after %zu", op->res, b->got);
            return;
        }
        bad = rlt_pattern_check(op->buf, (size_t)op->res, BN_SEED, b->got);
        if (bad != SIZE_MAX) {
            rlt_fail("byte %zu lost, duplicated or out of order", b->got + bad);
            return;
        }
        memset(op->buf, 0xee, (size_t)op->res);
        b->got += (size_t)op->res;
        b->pieces++;
        if (!(op->cflags & RL_CQE_MORE) && rl_submit(loop, op) < 0)
            rlt_fail("re-arming the multishot recv");
        return;
    }
    if (op->cflags & RL_CQE_MORE)
        return; /* an EOF the final completion repeats */
    if (op->res < 0)
        rlt_fail("recv: %s after %zu bytes", rlt_res_str(op->res), b->got);
    b->eof = true;
}

static bool bn_eof(void *arg)
{
    return ((struct bn_recv *)arg)->eof || rlt_failed();
}

/* Many 100-byte messages queued before the recv is armed, read through
 * bufring_entries x bufring_size bytes of loop buffers. */
static void run_bundle(unsigned entries, unsigned size)
{
    struct rl_loop_config cfg;
    struct rl_loop_stats st;
    struct bn_recv b = {0};
    uint8_t *data = malloc(BN_LEN);
    rl_loop *loop;
    int c, sfd, big = 1024 * 1024;
    size_t off;
    ssize_t k;

    assert_non_null(data);
    rl_loop_config_init(&cfg);
    cfg.bufring_entries = entries;
    cfg.bufring_size = size;
    loop = rlt_loop_new(&cfg);
    rlt_tcp_pair(&c, &sfd);
    setsockopt(sfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    rlt_pattern_fill(data, BN_LEN, BN_SEED, 0);
    for (off = 0; off < BN_LEN; off += (size_t)k) {
        struct pollfd p = {.fd = c, .events = POLLOUT};
        size_t n = BN_LEN - off < BN_MSG ? BN_LEN - off : BN_MSG;

        k = send(c, data + off, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            poll(&p, 1, 1000);
            k = 0;
        } else if (k < 0) {
            fail_msg("send: %s", strerror(errno));
        }
    }
    shutdown(c, SHUT_WR);
    rl_loop_stats_reset(loop);
    rl_prep_recv_multishot(&b.op, sfd, bn_cb, &b);
    assert_int_equal(rl_submit(loop, &b.op), 0);
    rlt_run_until(loop, bn_eof, &b, RLT_GUARD_MS);
    RLT_ASSERT_OK();
    assert_true(b.eof);
    assert_int_equal(b.got, BN_LEN);
    rl_loop_stats(loop, &st);
    /* Several buffers per completion: fewer CQEs than pieces. */
    if ((rl_loop_features(loop) & RL_FEAT_RECV_BUNDLE) &&
        st.cqes_reaped >= b.pieces)
        fail_msg("recv_bundle on, but %llu CQEs for %u pieces",
                 (unsigned long long)st.cqes_reaped, b.pieces);
    rlt_close(loop, sfd);
    close(c);
    rl_loop_free(loop);
    free(data);
}

/* 16 x 1 KiB: the pool runs dry again and again. */
static void test_bundle_small_pool(void **state)
{
    (void)state;
    run_bundle(16, 1024);
}

/* 64 x 4 KiB: all the data fits. */
static void test_bundle_pool_fits(void **state)
{
    (void)state;
    run_bundle(64, 4096);
}

/* ---- fixed_files ----------------------------------------------------------
 */

/* A loop with fixed_files switched on (it is opt-in), unless disabled. */
static rl_loop *fixed_loop_new(void)
{
    rl_loop *loop;

    setenv("RINGLOOP_ENABLE", "fixed_files", 1);
    loop = rlt_loop_new(NULL);
    unsetenv("RINGLOOP_ENABLE");
    return loop;
}

struct xfer {
    rl_op op;
    char buf[64];
    int calls, res;
};

static void xfer_cb(rl_loop *loop, rl_op *op)
{
    struct xfer *x = op->data;

    (void)loop;
    x->calls++;
    x->res = op->res;
}

/* One loop send on fd, then one loop recv of what the peer echoes back. */
static void round_trip(rl_loop *loop, int fd, int peer, const char *msg)
{
    struct xfer tx = {0}, rx = {0};
    char got[64];
    size_t n = strlen(msg);
    struct pollfd p = {.fd = peer, .events = POLLIN};
    ssize_t k;

    rl_prep_send(&tx.op, fd, msg, n, 0, xfer_cb, &tx);
    assert_int_equal(rl_submit(loop, &tx.op), 0);
    assert_true(rlt_run_until_count(loop, &tx.calls, 1, RLT_GUARD_MS));
    assert_int_equal(tx.res, (int)n);
    assert_int_equal(poll(&p, 1, 10000), 1);
    k = recv(peer, got, sizeof(got), 0);
    assert_int_equal(k, (ssize_t)n);
    assert_memory_equal(got, msg, n);
    assert_int_equal(send(peer, got, n, 0), (ssize_t)n);
    rl_prep_recv(&rx.op, fd, rx.buf, sizeof(rx.buf), 0, xfer_cb, &rx);
    assert_int_equal(rl_submit(loop, &rx.op), 0);
    assert_true(rlt_run_until_count(loop, &rx.calls, 1, RLT_GUARD_MS));
    assert_int_equal(rx.res, (int)n);
    assert_memory_equal(rx.buf, msg, n);
}

/* The peer sees EOF: nothing (such as a file table) keeps the socket. */
static void assert_peer_eof(int peer)
{
    struct pollfd p = {.fd = peer, .events = POLLIN};
    char c;

    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_int_equal(recv(peer, &c, 1, 0), 0);
}

/* Put a new connection's local end on fd number want. */
static int tcp_pair_at(int want, int *peer)
{
    int c;
    int s;

    rlt_tcp_pair(&c, &s);
    if (c != want) {
        assert_int_equal(dup3(c, want, O_CLOEXEC), want);
        close(c);
    }
    *peer = s;
    return want;
}

static void close_cb(rl_loop *loop, rl_op *op)
{
    (void)loop;
    xfer_cb(loop, op);
}

static void test_fixed_close_reopen(void **state)
{
    rl_loop *loop = fixed_loop_new();
    struct xfer cl = {0};
    int fd, peer, fd2, peer2, fd3, peer3;

    (void)state;
    rlt_tcp_pair(&fd, &peer);
    round_trip(loop, fd, peer, "first socket");
    /* RL_OP_CLOSE */
    rl_prep_close(&cl.op, fd, close_cb, &cl);
    assert_int_equal(rl_submit(loop, &cl.op), 0);
    assert_true(rlt_run_until_count(loop, &cl.calls, 1, RLT_GUARD_MS));
    assert_int_equal(cl.res, 0);
    assert_peer_eof(peer);
    /* The same number, another socket: its own data, not the old one's. */
    fd2 = tcp_pair_at(fd, &peer2);
    round_trip(loop, fd2, peer2, "second socket, same fd number");
    /* rl_loop_fd_closed + close(2) */
    rlt_close(loop, fd2);
    assert_peer_eof(peer2);
    fd3 = tcp_pair_at(fd, &peer3);
    round_trip(loop, fd3, peer3, "third socket");
    rlt_close(loop, fd3);
    assert_peer_eof(peer3);
    close(peer);
    close(peer2);
    close(peer3);
    rl_loop_free(loop);
}

static void test_fixed_fork(void **state)
{
    rl_loop *loop = fixed_loop_new();
    int fd, peer, status;
    pid_t pid;

    (void)state;
    rlt_tcp_pair(&fd, &peer);
    round_trip(loop, fd, peer, "before fork");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        if (rl_loop_fork(loop) != 0)
            _exit(2);
        /* cmocka asserts longjmp to the parent's runner: keep them out */
        struct xfer tx = {0};
        rl_prep_send(&tx.op, fd, "child", 5, 0, xfer_cb, &tx);
        if (rl_submit(loop, &tx.op) != 0 ||
            !rlt_run_until_count(loop, &tx.calls, 1, RLT_GUARD_MS) ||
            tx.res != 5)
            _exit(3);
        rl_loop_free(loop);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    {
        char got[8];
        struct pollfd p = {.fd = peer, .events = POLLIN};

        assert_int_equal(poll(&p, 1, 10000), 1);
        assert_int_equal(recv(peer, got, sizeof(got), 0), 5);
        assert_memory_equal(got, "child", 5);
    }
    round_trip(loop, fd, peer, "parent after fork");
    rlt_close(loop, fd);
    assert_peer_eof(peer);
    close(peer);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_zc_send_1mib_tcp),   RLT_TEST(test_zc_send_1mib_unix),
        RLT_TEST(test_bundle_small_pool),  RLT_TEST(test_bundle_pool_fits),
        RLT_TEST(test_fixed_close_reopen), RLT_TEST(test_fixed_fork),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
