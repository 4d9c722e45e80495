/*
 * RL_OP_POLL: one-shot readiness on a pipe and a socket (POLLIN, POLLOUT,
 * hang-up), and the repeating form (RL_F_MULTISHOT): at least one
 * completion per new readiness, RL_CQE_MORE while armed, a final -ECANCELED
 * on cancel.
 */
#include "helpers.h"

struct poll_op {
    rl_op op;
    int calls;
    int finals;
    int res;
    unsigned cflags;
    unsigned all_revents;
};

static void poll_cb(rl_loop *loop, rl_op *op)
{
    struct poll_op *p = op->data;

    (void)loop;
    p->calls++;
    p->res = op->res;
    p->cflags = op->cflags;
    if (op->res > 0)
        p->all_revents |= (unsigned)op->res;
    if (!(op->cflags & RL_CQE_MORE))
        p->finals++;
}

static void arm_poll(rl_loop *loop, struct poll_op *p, int fd, unsigned ev,
                     bool repeat)
{
    memset(p, 0, sizeof(*p));
    rl_prep_poll(&p->op, fd, ev, repeat, poll_cb, p);
    assert_int_equal(rl_submit(loop, &p->op), 0);
}

static void test_oneshot_pipe(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct poll_op p;
    int fds[2];
    char c;

    (void)state;
    rlt_pipe(fds);

    /* POLLIN waits for data. */
    arm_poll(loop, &p, fds[0], POLLIN, false);
    rlt_run_for(loop, 2);
    if (p.calls)
        fail_msg("POLLIN on an empty pipe completed: %s", rlt_res_str(p.res));
    assert_int_equal(write(fds[1], "x", 1), 1);
    if (!rlt_run_until_count(loop, &p.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLIN did not fire after a write");
    if (p.res < 0 || !(p.res & POLLIN) || (p.cflags & RL_CQE_MORE))
        fail_msg("one-shot POLLIN: res %s, cflags 0x%x", rlt_res_str(p.res),
                 p.cflags);
    assert_false(rl_op_in_flight(&p.op));
    /* One-shot: still readable, but no second completion. */
    rlt_run_for(loop, 2);
    assert_int_equal(p.calls, 1);
    assert_int_equal(read(fds[0], &c, 1), 1);

    /* POLLOUT on an empty pipe is ready at once. */
    arm_poll(loop, &p, fds[1], POLLOUT, false);
    if (!rlt_run_until_count(loop, &p.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLOUT on an empty pipe did not fire");
    if (p.res < 0 || !(p.res & POLLOUT))
        fail_msg("POLLOUT: res %s", rlt_res_str(p.res));

    /* The writer goes away: POLLIN reports the hang-up. */
    arm_poll(loop, &p, fds[0], POLLIN, false);
    rlt_run_for(loop, 2);
    assert_int_equal(p.calls, 0);
    rlt_close(loop, fds[1]);
    if (!rlt_run_until_count(loop, &p.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLIN did not fire when the writer closed");
    if (p.res < 0 || !(p.res & (POLLIN | POLLHUP)))
        fail_msg("POLLIN after writer close: res %s", rlt_res_str(p.res));
    RLT_ASSERT_OK();
    rlt_close(loop, fds[0]);
    rl_loop_free(loop);
}

static void test_oneshot_socket(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct poll_op pin, pout;
    char buf[8];
    int a, b;

    (void)state;
    rlt_tcp_pair(&a, &b);
    /* POLLIN and POLLOUT on the same fd at once. */
    arm_poll(loop, &pin, b, POLLIN, false);
    arm_poll(loop, &pout, b, POLLOUT, false);
    if (!rlt_run_until_count(loop, &pout.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLOUT on a connected socket did not fire");
    if (pout.res < 0 || !(pout.res & POLLOUT))
        fail_msg("POLLOUT: res %s", rlt_res_str(pout.res));
    assert_int_equal(pin.calls, 0);
    assert_int_equal(send(a, "hi", 2, 0), 2);
    if (!rlt_run_until_count(loop, &pin.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLIN did not fire after the peer sent");
    if (pin.res < 0 || !(pin.res & POLLIN))
        fail_msg("POLLIN: res %s", rlt_res_str(pin.res));
    assert_int_equal(recv(b, buf, sizeof(buf), 0), 2);

    /* The peer closes: POLLIN fires (EOF is readable). */
    arm_poll(loop, &pin, b, POLLIN | POLLRDHUP, false);
    rlt_run_for(loop, 2);
    assert_int_equal(pin.calls, 0);
    close(a);
    if (!rlt_run_until_count(loop, &pin.finals, 1, RLT_GUARD_MS))
        fail_msg("POLLIN did not fire when the peer closed");
    if (pin.res < 0 || !(pin.res & (POLLIN | POLLRDHUP | POLLHUP)))
        fail_msg("POLLIN after peer close: res %s", rlt_res_str(pin.res));
    RLT_ASSERT_OK();
    rlt_close(loop, b);
    rl_loop_free(loop);
}

static void test_repeating(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct poll_op p;
    int fds[2], r;
    char c;

    (void)state;
    rlt_pipe(fds);
    arm_poll(loop, &p, fds[0], POLLIN, true);
    rlt_run_for(loop, 2);
    assert_int_equal(p.calls, 0);

    for (int round = 1; round <= 5; round++) {
        int before = p.calls;

        assert_int_equal(write(fds[1], "x", 1), 1);
        if (!rlt_run_until_count(loop, &p.calls, before + 1, RLT_GUARD_MS))
            fail_msg("round %d: the repeating poll did not fire on new data",
                     round);
        if (p.res < 0 || !(p.res & POLLIN))
            fail_msg("round %d: res %s", round, rlt_res_str(p.res));
        if (!(p.cflags & RL_CQE_MORE))
            fail_msg("round %d: repeating poll completion lacks RL_CQE_MORE "
                     "(res %s)",
                     round, rlt_res_str(p.res));
        assert_true(rl_op_in_flight(&p.op));
        assert_int_equal(read(fds[0], &c, 1), 1);
        /* Drained: no readiness is new, so nothing more fires. */
        rlt_run_for(loop, 2);
        before = p.calls;
        rlt_run_for(loop, 2);
        if (p.calls != before)
            fail_msg("round %d: the poll fired with nothing new to read",
                     round);
    }
    assert_int_equal(p.finals, 0);

    r = rl_op_cancel(loop, &p.op);
    if (r != 0)
        fail_msg("cancel of the repeating poll: %s", rlt_res_str(r));
    if (!rlt_run_until_count(loop, &p.finals, 1, RLT_GUARD_MS))
        fail_msg("cancelled repeating poll: no final completion");
    if (p.res != -ECANCELED || (p.cflags & RL_CQE_MORE))
        fail_msg("cancelled repeating poll: final res %s, cflags 0x%x",
                 rlt_res_str(p.res), p.cflags);
    assert_false(rl_op_in_flight(&p.op));
    rlt_run_for(loop, 2);
    assert_int_equal(p.finals, 1);
    RLT_ASSERT_OK();
    rlt_close(loop, fds[0]);
    rlt_close(loop, fds[1]);
    rl_loop_free(loop);
}

/* A repeating poll on a socket, next to a recv on the same fd. */
static void test_repeating_socket_with_recv(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct poll_op p, rx;
    char buf[16];
    int sv[2];

    (void)state;
    rlt_socketpair(sv);
    arm_poll(loop, &p, sv[0], POLLOUT, true);
    if (!rlt_run_until_count(loop, &p.calls, 1, RLT_GUARD_MS))
        fail_msg("repeating POLLOUT on a socket did not fire");
    if (!(p.cflags & RL_CQE_MORE) || !(p.res & POLLOUT))
        fail_msg("repeating POLLOUT: res %s, cflags 0x%x", rlt_res_str(p.res),
                 p.cflags);

    memset(&rx, 0, sizeof(rx));
    rl_prep_recv(&rx.op, sv[0], buf, sizeof(buf), 0, poll_cb, &rx);
    assert_int_equal(rl_submit(loop, &rx.op), 0);
    assert_int_equal(send(sv[1], "abc", 3, 0), 3);
    if (!rlt_run_until_count(loop, &rx.finals, 1, RLT_GUARD_MS))
        fail_msg("recv next to a repeating poll did not complete");
    assert_int_equal(rx.res, 3);
    assert_int_equal(rl_op_cancel(loop, &p.op), 0);
    if (!rlt_run_until_count(loop, &p.finals, 1, RLT_GUARD_MS))
        fail_msg("cancelled repeating poll: no final completion");
    assert_int_equal(p.res, -ECANCELED);
    RLT_ASSERT_OK();
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

/* Fill fd's send buffer to the last byte it takes. */
static void fill(int fd)
{
    static char junk[65536];

    for (size_t len = sizeof(junk); len > 0; len /= 2) {
        while (send(fd, junk, len, MSG_DONTWAIT) > 0)
            ;
        if (errno != EAGAIN)
            fail_msg("filling the send buffer: %s", strerror(errno));
    }
}

/* Read what is there on fd; the bytes read. */
static size_t drain(int fd)
{
    static char buf[65536];
    size_t got = 0;
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

/*
 * Waiting to write, again and again, on an fd that is also read from: the
 * epoll backend asks for writability only while something waits for it,
 * and must ask again each time (a lost edge would hang the writer).
 */
static void test_writers_wait_again(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct poll_op rx, tx, pout;
    char rbuf[16], *big = calloc(1, 256 * 1024);
    int sv[2];

    (void)state;
    assert_non_null(big);
    rlt_socketpair(sv);
    memset(&rx, 0, sizeof(rx));
    rl_prep_recv(&rx.op, sv[0], rbuf, sizeof(rbuf), 0, poll_cb, &rx);
    assert_int_equal(rl_submit(loop, &rx.op), 0);
    rlt_run_for(loop, 2);
    for (int round = 1; round <= 5; round++) {
        /* A send that must wait for room. */
        fill(sv[0]);
        memset(&tx, 0, sizeof(tx));
        rl_prep_send(&tx.op, sv[0], big, 256 * 1024, 0, poll_cb, &tx);
        assert_int_equal(rl_submit(loop, &tx.op), 0);
        rlt_run_for(loop, 2);
        for (int i = 0; tx.finals == 0 && !rlt_failed(); i++) {
            if (i == RLT_GUARD_MS / 5)
                fail_msg("round %d: the waiting send never ran again", round);
            drain(sv[1]);
            rlt_run_until_count(loop, &tx.finals, 1, 5);
        }
        if (tx.res <= 0)
            fail_msg("round %d: send after the buffer filled: %s", round,
                     rlt_res_str(tx.res));
        drain(sv[1]);

        /* A one-shot POLLOUT on the full socket fires once there is room,
         * not before. */
        fill(sv[0]);
        arm_poll(loop, &pout, sv[0], POLLOUT, false);
        rlt_run_for(loop, 2);
        if (pout.calls)
            fail_msg("round %d: POLLOUT fired on a full socket (res %s)", round,
                     rlt_res_str(pout.res));
        for (int i = 0; pout.finals == 0 && !rlt_failed(); i++) {
            if (i == RLT_GUARD_MS / 5)
                fail_msg("round %d: POLLOUT never fired once there was room",
                         round);
            drain(sv[1]);
            rlt_run_until_count(loop, &pout.finals, 1, 5);
        }
        if (pout.res < 0 || !(pout.res & POLLOUT))
            fail_msg("round %d: POLLOUT res %s", round, rlt_res_str(pout.res));
        drain(sv[1]);
        /* Writable again, nothing waits to write: the reader still gets
         * what arrives. */
        assert_int_equal(send(sv[1], "r", 1, 0), 1);
        if (!rlt_run_until_count(loop, &rx.finals, round, RLT_GUARD_MS))
            fail_msg("round %d: the recv next to the writers did not complete",
                     round);
        assert_int_equal(rx.res, 1);
        memset(&rx.op, 0, sizeof(rx.op));
        rl_prep_recv(&rx.op, sv[0], rbuf, sizeof(rbuf), 0, poll_cb, &rx);
        assert_int_equal(rl_submit(loop, &rx.op), 0);
    }
    assert_int_equal(rl_op_cancel(loop, &rx.op), 0);
    rlt_run_until_count(loop, &rx.finals, 6, RLT_GUARD_MS);
    RLT_ASSERT_OK();
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    free(big);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_oneshot_pipe),
        RLT_TEST(test_oneshot_socket),
        RLT_TEST(test_repeating),
        RLT_TEST(test_repeating_socket_with_recv),
        RLT_TEST(test_writers_wait_again),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
