/*
 * uring/ provided-buffer ring (and the epoll backend's loop buffers):
 * multishot recv on many connections at once with only 4 loop buffers
 * (rl_loop_config.bufring_entries = 4), so the ring runs dry inside the
 * backend (-ENOBUFS) again and again; every byte must still arrive, in
 * order, on every connection, followed by EOF. With bufring_inc the
 * kernel fills each buffer in pieces, so the connections' data interleave
 * inside one buffer; the backend must hand each piece out where it lies.
 */
#include <limits.h>

#include "helpers.h"

enum { CONNS = 32, PER_CONN = 256 * 1024, PRELOAD = 32 * 1024 };

struct rconn {
    rl_op recv_op;
    int fd;
    uint32_t seed;
    size_t got;
    unsigned completions;
    bool eof;
    int *eofs;
};

static void rconn_arm(rl_loop *loop, struct rconn *c);

static void rconn_cb(rl_loop *loop, rl_op *op)
{
    struct rconn *c = op->data;
    size_t bad;

    c->completions++;
    if (op->res > 0) {
        if (!(op->cflags & RL_CQE_BUFFER) || !op->buf) {
            rlt_fail("conn %u: data without RL_CQE_BUFFER", c->seed);
            return;
        }
        if (c->got + (size_t)op->res > PER_CONN) {
            rlt_fail("conn %u: %zu bytes received of %d sent", c->seed,
                     c->got + (size_t)op->res, PER_CONN);
            return;
        }
        bad = rlt_pattern_check(op->buf, (size_t)op->res, c->seed, c->got);
        if (bad != SIZE_MAX) {
            rlt_fail("conn %u: byte %zu lost, duplicated or out of order",
                     c->seed, c->got + bad);
            return;
        }
        c->got += (size_t)op->res;
        /* Scribble over the loop's buffer: it is recycled after we return,
         * and must not be handed out again while still in use. */
        memset(op->buf, 0xee, (size_t)op->res);
        if (!(op->cflags & RL_CQE_MORE))
            rconn_arm(loop, c);
        return;
    }
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("conn %u: result %s with RL_CQE_MORE", c->seed,
                 rlt_res_str(op->res));
    if (op->res < 0) {
        /* -ENOBUFS is the backend's to handle, never the caller's. */
        rlt_fail("conn %u: recv failed after %zu bytes: %s", c->seed, c->got,
                 rlt_res_str(op->res));
        return;
    }
    if (c->got != PER_CONN)
        rlt_fail("conn %u: EOF after %zu of %d bytes", c->seed, c->got,
                 PER_CONN);
    c->eof = true;
    (*c->eofs)++;
}

static void rconn_arm(rl_loop *loop, struct rconn *c)
{
    int r;

    rl_prep_recv_multishot(&c->recv_op, c->fd, rconn_cb, c);
    r = rl_submit(loop, &c->recv_op);
    if (r < 0)
        rlt_fail("conn %u: submit multishot recv: %s", c->seed, rlt_res_str(r));
}

struct wconn {
    struct rlt_sender snd;
    rl_op shut_op;
    int fd;
    uint8_t *data;
    int shut_res;
    int *shut_done;
};

static void shut_cb(rl_loop *loop, rl_op *op)
{
    struct wconn *w = op->data;

    (void)loop;
    w->shut_res = op->res;
    if (op->res != 0)
        rlt_fail("shutdown(SHUT_WR): %s", rlt_res_str(op->res));
    (*w->shut_done)++;
}

static void wconn_sent(rl_loop *loop, struct rlt_sender *s)
{
    struct wconn *w = s->data;
    int r;

    if (s->err) {
        rlt_fail("send: %s", rlt_res_str(s->err));
        return;
    }
    rl_prep_shutdown(&w->shut_op, w->fd, SHUT_WR, shut_cb, w);
    r = rl_submit(loop, &w->shut_op);
    if (r < 0)
        rlt_fail("submit shutdown: %s", rlt_res_str(r));
}

/* large_read: rl_loop_config's (UINT_MAX keeps every recv on the ring, so
 * that it runs dry again and again; 0 lets large reads move to readiness). */
static void run_exhaustion(unsigned entries, unsigned size, unsigned large_read)
{
    struct rl_loop_config cfg;
    struct rconn *rc = calloc(CONNS, sizeof(*rc));
    struct wconn *wc = calloc(CONNS, sizeof(*wc));
    rl_loop *loop;
    int eofs = 0, shuts = 0;
    unsigned long completions = 0;

    assert_non_null(rc);
    assert_non_null(wc);
    rl_loop_config_init(&cfg);
    cfg.bufring_entries = entries;
    cfg.bufring_size = size;
    cfg.large_read = large_read;
    loop = rlt_loop_new(&cfg);

    for (int i = 0; i < CONNS; i++) {
        int cfd, sfd;
        ssize_t n;

        rlt_tcp_pair(&cfd, &sfd);
        wc[i].fd = cfd;
        wc[i].shut_done = &shuts;
        wc[i].data = malloc(PER_CONN);
        assert_non_null(wc[i].data);
        rlt_pattern_fill(wc[i].data, PER_CONN, (uint32_t)i, 0);
        rc[i].fd = sfd;
        rc[i].seed = (uint32_t)i;
        rc[i].eofs = &eofs;
        /* Data waits on every connection before any recv is armed, so
         * the first completions alone outnumber the buffers. */
        n = send(cfd, wc[i].data, PRELOAD, MSG_NOSIGNAL);
        if (n != PRELOAD)
            fail_msg("preload send: %zd (%s)", n, strerror(errno));
    }
    for (int i = 0; i < CONNS; i++)
        rconn_arm(loop, &rc[i]);
    for (int i = 0; i < CONNS; i++) {
        wc[i].snd.on_done = wconn_sent;
        wc[i].snd.data = &wc[i];
        assert_int_equal(rlt_sender_start(loop, &wc[i].snd, wc[i].fd,
                                          wc[i].data + PRELOAD,
                                          PER_CONN - PRELOAD),
                         0);
    }
    if (!rlt_run_until_count(loop, &eofs, CONNS, 60000)) {
        for (int i = 0; i < CONNS; i++)
            if (!rc[i].eof)
                fprintf(stderr, "conn %d: %zu of %d bytes, no EOF\n", i,
                        rc[i].got, PER_CONN);
        RLT_ASSERT_OK();
        fail_msg("%d of %d connections reached EOF (buffers %u x %u)", eofs,
                 CONNS, entries, size);
    }
    if (!rlt_run_until_count(loop, &shuts, CONNS, RLT_GUARD_MS))
        fail_msg("%d of %d shutdowns completed", shuts, CONNS);
    RLT_ASSERT_OK();
    for (int i = 0; i < CONNS; i++) {
        assert_int_equal(rc[i].got, PER_CONN);
        completions += rc[i].completions;
    }
    fprintf(stderr,
            "%s, %u buffers x %u bytes, large_read %u: %lu recv completions\n",
            rl_loop_backend_name(loop), entries, size, large_read, completions);
    assert_int_equal(rl_loop_pending(loop), 0);
    for (int i = 0; i < CONNS; i++) {
        rlt_close(loop, rc[i].fd);
        rlt_close(loop, wc[i].fd);
        free(wc[i].data);
    }
    free(rc);
    free(wc);
    rl_loop_free(loop);
}

static void test_exhaustion_4_buffers(void **state)
{
    (void)state;
    run_exhaustion(4, 0, UINT_MAX);
}

static void test_exhaustion_small_buffers(void **state)
{
    (void)state;
    run_exhaustion(4, 512, UINT_MAX);
}

/* Large reads move to readiness while the ring runs dry: recvs cancelled
 * on their way out, ended by -ENOBUFS, parked and re-armed all mix. */
static void test_exhaustion_with_readiness(void **state)
{
    (void)state;
    run_exhaustion(4, 0, 0);
}

/* The default buffers: with bufring_inc (Linux 6.12+) a few large ones
 * that every connection's pieces share, one after another. */
static void test_default_buffers(void **state)
{
    (void)state;
    run_exhaustion(0, 0, 0);
}

/* After exhaustion the same loop keeps serving new connections. */
static void test_recovery_then_new_connection(void **state)
{
    struct rl_loop_config cfg;
    struct rconn rc = {0};
    rl_loop *loop;
    uint8_t *data = malloc(PER_CONN);
    int cfd, sfd, eofs = 0;
    size_t off = 0;

    (void)state;
    assert_non_null(data);
    run_exhaustion(4, 1024, UINT_MAX);

    rl_loop_config_init(&cfg);
    cfg.bufring_entries = 4;
    loop = rlt_loop_new(&cfg);
    rlt_tcp_pair(&cfd, &sfd);
    rlt_pattern_fill(data, PER_CONN, 99, 0);
    rc.fd = sfd;
    rc.seed = 99;
    rc.eofs = &eofs;
    rconn_arm(loop, &rc);
    /* A slow writer: one chunk per iteration, without the loop's help. */
    while (off < PER_CONN && !rlt_failed()) {
        ssize_t n = send(cfd, data + off, 8192, MSG_NOSIGNAL);

        if (n > 0)
            off += (size_t)n;
        else if (errno != EAGAIN)
            fail_msg("send: %s", strerror(errno));
        rlt_run_for(loop, 0);
    }
    shutdown(cfd, SHUT_WR);
    if (!rlt_run_until_count(loop, &eofs, 1, RLT_GUARD_MS))
        fail_msg("slow connection: %zu of %d bytes, no EOF", rc.got, PER_CONN);
    RLT_ASSERT_OK();
    rlt_close(loop, sfd);
    close(cfd);
    free(data);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_exhaustion_4_buffers),
        RLT_TEST(test_exhaustion_small_buffers),
        RLT_TEST(test_exhaustion_with_readiness),
        RLT_TEST(test_default_buffers),
        RLT_TEST(test_recovery_then_new_connection),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
