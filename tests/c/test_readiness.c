/*
 * Large reads by readiness. io_uring: a multishot recv that gets a large
 * piece (RL_URING_LARGE_READ) leaves the buffer ring for POLL_ADD +
 * recv(2), and goes back after a run of short reads; a one-shot recv with
 * RL_F_AT_READY reads into the caller's buffer when the socket is ready.
 * Whatever the mode and however often it changes, every byte arrives once,
 * in order, then EOF; a cancel in the middle of a change ends the op once.
 * The epoll backend reads at readiness anyway: the same tests hold there.
 */
#include "helpers.h"

enum { LARGE = 64 * 1024, SMALL = 100, ROUNDS = 3, SMALLS = 12 };

struct rx {
    rl_op op;
    int fd;
    uint32_t seed;
    size_t got;    /* bytes so far */
    int chunks;    /* callbacks with data */
    int finals;    /* final callbacks */
    int final_res; /* the last one's res */
    bool cancel_at_first;
    uint8_t *buf; /* one-shot reads (RL_F_AT_READY) */
    size_t buf_len;
};

static void rx_cb(rl_loop *loop, rl_op *op);

static int rx_arm(rl_loop *loop, struct rx *x)
{
    if (x->buf) {
        rl_prep_recv(&x->op, x->fd, x->buf, x->buf_len, 0, rx_cb, x);
        x->op.flags |= RL_F_AT_READY;
    } else {
        rl_prep_recv_multishot(&x->op, x->fd, rx_cb, x);
    }
    return rl_submit(loop, &x->op);
}

static void rx_cb(rl_loop *loop, rl_op *op)
{
    struct rx *x = op->data;
    const uint8_t *p = x->buf ? x->buf : op->buf;
    bool more = op->cflags & RL_CQE_MORE;
    size_t bad;
    int r;

    if (x->finals)
        rlt_fail("a callback after the final one (res %s)",
                 rlt_res_str(op->res));
    if (op->res > 0) {
        bad = rlt_pattern_check(p, (size_t)op->res, x->seed, x->got);
        if (bad != SIZE_MAX) {
            rlt_fail("byte %zu lost, duplicated or out of order", x->got + bad);
            return;
        }
        x->got += (size_t)op->res;
        x->chunks++;
        if (x->cancel_at_first && x->chunks == 1) {
            r = rl_op_cancel(loop, op);
            if (r < 0 && more)
                rlt_fail("rl_op_cancel: %s", rlt_res_str(r));
        }
        if (!more && !x->cancel_at_first && (r = rx_arm(loop, x)) < 0)
            rlt_fail("re-arm: %s", rlt_res_str(r));
        if (more || !x->cancel_at_first)
            return;
    }
    if (more) {
        rlt_fail("res %s with RL_CQE_MORE", rlt_res_str(op->res));
        return;
    }
    x->finals++;
    x->final_res = op->res;
}

static void send_all(int fd, const uint8_t *data, size_t len)
{
    size_t off = 0;
    ssize_t n;

    while (off < len) {
        n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, 1000);
        else
            fail_msg("send: %s", strerror(errno));
    }
}

struct got_arg {
    const struct rx *x;
    size_t want;
};

static bool got_enough(void *arg)
{
    const struct got_arg *a = arg;

    return a->x->got >= a->want || a->x->finals > 0;
}

/* Send len more bytes of the pattern and wait until all arrived. */
static void feed(rl_loop *loop, struct rx *x, int cfd, const uint8_t *pattern,
                 size_t *sent, size_t len)
{
    struct got_arg a = {x, *sent + len};

    send_all(cfd, pattern + *sent, len);
    *sent += len;
    if (!rlt_run_until(loop, got_enough, &a, RLT_GUARD_MS)) {
        RLT_ASSERT_OK();
        fail_msg("%zu of %zu bytes arrived", x->got, *sent);
    }
    RLT_ASSERT_OK();
    assert_int_equal(x->got, *sent);
}

static void run_switching(bool at_ready)
{
    size_t total = ROUNDS * (2 * LARGE + SMALLS * SMALL), sent = 0;
    uint8_t *pattern = malloc(total);
    struct rl_loop_stats st;
    struct rx x = {0};
    rl_loop *loop;
    int cfd, sfd;

    assert_non_null(pattern);
    rlt_pattern_fill(pattern, total, 7, 0);
    loop = rlt_loop_new(NULL);
    rlt_tcp_pair(&cfd, &sfd);
    x.fd = sfd;
    x.seed = 7;
    if (at_ready) {
        x.buf_len = 256 * 1024;
        x.buf = malloc(x.buf_len);
        assert_non_null(x.buf);
    }
    assert_int_equal(rx_arm(loop, &x), 0);
    /* Large messages, then small ones one at a time, again and again:
     * the multishot recv changes mode both ways each round. */
    for (int round = 0; round < ROUNDS; round++) {
        feed(loop, &x, cfd, pattern, &sent, 2 * LARGE);
        for (int i = 0; i < SMALLS; i++)
            feed(loop, &x, cfd, pattern, &sent, SMALL);
    }
    assert_int_equal(sent, total);
    shutdown(cfd, SHUT_WR);
    if (!rlt_run_until_count(loop, &x.finals, 1, RLT_GUARD_MS))
        fail_msg("no EOF after %zu bytes", x.got);
    RLT_ASSERT_OK();
    assert_int_equal(x.final_res, 0);
    assert_int_equal(x.got, total);
    assert_int_equal(rl_loop_stats(loop, &st), 0);
    if (rlt_on_uring(loop) && !at_ready &&
        (rl_loop_features(loop) & RL_FEAT_BUFRING)) {
        /* Each round's large data moves it to readiness, the short reads
         * back to the ring. */
        fprintf(stderr, "to readiness %llu, to the ring %llu\n",
                (unsigned long long)st.recv_to_readiness,
                (unsigned long long)st.recv_to_ring);
        assert_true(st.recv_to_readiness >= ROUNDS);
        assert_true(st.recv_to_ring >= ROUNDS);
    } else {
        assert_int_equal(st.recv_to_readiness, 0);
    }
    if (rlt_on_uring(loop) && at_ready) /* read by recv(2), not the ring */
        assert_true(st.recv_calls > 0);
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, sfd);
    close(cfd);
    free(x.buf);
    free(pattern);
    rl_loop_free(loop);
}

static void test_multishot_switches_both_ways(void **state)
{
    (void)state;
    run_switching(false);
}

static void test_at_ready_recv(void **state)
{
    (void)state;
    run_switching(true);
}

/* Cancelled by its caller in the callback of the large read that starts
 * the move to readiness: one final callback, -ECANCELED, nothing after. */
static void test_cancel_while_switching(void **state)
{
    uint8_t *pattern = malloc(LARGE);
    struct rx x = {0};
    rl_loop *loop;
    int cfd, sfd;

    (void)state;
    assert_non_null(pattern);
    rlt_pattern_fill(pattern, LARGE, 9, 0);
    loop = rlt_loop_new(NULL);
    rlt_tcp_pair(&cfd, &sfd);
    x.fd = sfd;
    x.seed = 9;
    x.cancel_at_first = true;
    assert_int_equal(rx_arm(loop, &x), 0);
    send_all(cfd, pattern, LARGE);
    if (!rlt_run_until_count(loop, &x.finals, 1, RLT_GUARD_MS))
        fail_msg("no final callback (%zu bytes arrived)", x.got);
    RLT_ASSERT_OK();
    /* The cancel may come after the last piece (then the op ended with
     * it, as any cancel of an op that is done) or before. */
    assert_true(x.final_res == -ECANCELED || x.final_res > 0);
    rlt_run_for(loop, 20);
    RLT_ASSERT_OK();
    assert_int_equal(x.finals, 1);
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, sfd);
    close(cfd);
    free(pattern);
    rl_loop_free(loop);
}

/* The large piece and EOF come together: the recv ends by itself (EOF)
 * while the cancel that moves it to readiness is still to be submitted.
 * The final callback re-arms the same op on another socket with data
 * waiting; that cancel must not reach it. */
struct reuse {
    struct rx x;
    int next_fd;
    int eofs;
};

static void reuse_cb(rl_loop *loop, rl_op *op)
{
    struct reuse *r = op->data;
    int ret;

    if (op->res > 0) {
        r->x.got += (size_t)op->res;
        if (!(op->cflags & RL_CQE_MORE))
            rlt_fail("the first socket's recv ended with data");
        return;
    }
    if (op->cflags & RL_CQE_MORE)
        return;
    if (op->res != 0) {
        rlt_fail("final res %s", rlt_res_str(op->res));
        return;
    }
    r->eofs++;
    if (r->next_fd < 0)
        return;
    rl_prep_recv_multishot(op, r->next_fd, reuse_cb, r);
    r->next_fd = -1;
    if ((ret = rl_submit(loop, op)) < 0)
        rlt_fail("re-arm on the second socket: %s", rlt_res_str(ret));
}

static void test_reuse_after_switch(void **state)
{
    uint8_t *pattern = malloc(LARGE);
    struct reuse r = {0};
    rl_loop *loop;
    int c1, s1, c2, s2;

    (void)state;
    assert_non_null(pattern);
    rlt_pattern_fill(pattern, LARGE, 3, 0);
    loop = rlt_loop_new(NULL);
    rlt_tcp_pair(&c1, &s1);
    rlt_tcp_pair(&c2, &s2);
    send_all(c1, pattern, LARGE);
    shutdown(c1, SHUT_WR);
    send_all(c2, pattern, LARGE);
    shutdown(c2, SHUT_WR);
    r.next_fd = s2;
    rl_prep_recv_multishot(&r.x.op, s1, reuse_cb, &r);
    assert_int_equal(rl_submit(loop, &r.x.op), 0);
    /* Both sockets: every byte, then EOF (never -ECANCELED). */
    if (!rlt_run_until_count(loop, &r.eofs, 2, RLT_GUARD_MS))
        fail_msg("%d EOFs, %zu bytes", r.eofs, r.x.got);
    RLT_ASSERT_OK();
    assert_int_equal(r.x.got, 2 * LARGE);
    rlt_run_for(loop, 20);
    RLT_ASSERT_OK();
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, s1);
    rlt_close(loop, s2);
    close(c1);
    close(c2);
    free(pattern);
    rl_loop_free(loop);
}

/* RL_F_AT_READY: a cancel before the socket is ready ends the recv with
 * -ECANCELED; the flag is refused on anything but a one-shot recv. */
static void test_at_ready_cancel_and_misuse(void **state)
{
    uint8_t buf[64];
    struct rx x = {0};
    rl_loop *loop;
    rl_op op;
    int cfd, sfd;

    (void)state;
    loop = rlt_loop_new(NULL);
    rlt_tcp_pair(&cfd, &sfd);
    x.fd = sfd;
    x.buf = buf;
    x.buf_len = sizeof(buf);
    x.cancel_at_first = true;
    assert_int_equal(rx_arm(loop, &x), 0);
    rlt_run_for(loop, 0);
    assert_int_equal(rl_op_cancel(loop, &x.op), 0);
    if (!rlt_run_until_count(loop, &x.finals, 1, RLT_GUARD_MS))
        fail_msg("no final callback after the cancel");
    RLT_ASSERT_OK();
    assert_int_equal(x.final_res, -ECANCELED);

    rl_prep_recv_multishot(&op, sfd, rlt_nop_cb, NULL);
    op.flags |= RL_F_AT_READY;
    assert_int_equal(rl_submit(loop, &op), -EINVAL);
    rl_prep_recv(&op, sfd, buf, sizeof(buf), MSG_WAITALL, rlt_nop_cb, NULL);
    op.flags |= RL_F_AT_READY;
    assert_int_equal(rl_submit(loop, &op), -EINVAL);
    rl_prep_send(&op, sfd, buf, sizeof(buf), 0, rlt_nop_cb, NULL);
    op.flags |= RL_F_AT_READY;
    assert_int_equal(rl_submit(loop, &op), -EINVAL);
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, sfd);
    close(cfd);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_multishot_switches_both_ways),
        RLT_TEST(test_at_ready_recv),
        RLT_TEST(test_cancel_while_switching),
        RLT_TEST(test_reuse_after_switch),
        RLT_TEST(test_at_ready_cancel_and_misuse),
    };
    int r = rlt_init();

    if (r)
        return r;
    return cmocka_run_group_tests(tests, rlt_setup, rlt_teardown);
}
