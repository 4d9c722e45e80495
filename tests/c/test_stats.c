/*
 * rl_loop_stats(): every counter against a workload with a known count, on
 * whichever backend RINGLOOP_BACKEND names. N sends and N receives, N
 * timers, thread-safe calls, ops cancelled (gauges back to 0), a CQ
 * overflow provoked with a tiny CQ (io_uring), wait time while sleeping on
 * a timer (measured from the first read on), and a reset that keeps the
 * gauges.
 */
#include "helpers.h"

#define N 10
#define LEN 100

struct counter {
    int n;
    int bad;
};

static void count_cb(rl_loop *loop, rl_op *op)
{
    struct counter *c = op->data;

    (void)loop;
    if (!(op->cflags & RL_CQE_MORE))
        c->n++;
}

static struct rl_loop_stats stats_of(rl_loop *loop)
{
    struct rl_loop_stats s;

    memset(&s, 0xff, sizeof(s));
    assert_int_equal(rl_loop_stats(loop, &s), 0);
    return s;
}

/* The counters that belong to the other backend stay 0. */
static void assert_backend_keys(rl_loop *loop, const struct rl_loop_stats *s)
{
    if (rlt_on_uring(loop)) {
        assert_int_equal(s->epoll_wait, 0);
        assert_int_equal(s->epoll_ctl, 0);
    } else {
        assert_int_equal(s->io_uring_enter, 0);
        assert_int_equal(s->sqes_submitted, 0);
        assert_int_equal(s->cqes_reaped, 0);
        assert_int_equal(s->cq_overflows, 0);
        assert_int_equal(s->cq_dropped, 0);
        assert_int_equal(s->recv_enobufs, 0);
        assert_int_equal(s->multishot_rearms, 0);
    }
}

static void test_fresh_loop(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rl_loop_stats s = stats_of(loop);

    (void)state;
    assert_int_equal(s.iterations, 0);
    assert_int_equal(s.completions, 0);
    assert_int_equal(s.ops_submitted, 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.timers_armed, 0);
    for (int i = 0; i < RL_OP__COUNT; i++)
        assert_int_equal(s.inflight[i], 0);
    assert_int_equal(s.bytes_sent, 0);
    assert_int_equal(s.cq_dropped, 0);
    assert_string_equal(rl_opcode_name(RL_OP_RECV), "recv");
    assert_string_equal(rl_opcode_name(RL_OP_POLL), "poll");
    assert_null(rl_opcode_name(RL_OP__COUNT));
    rl_loop_free(loop);
}

/* N sends of LEN bytes, then N receives of LEN bytes. */
static void test_sends_and_receives(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    static char out[N][LEN], in[N][LEN];
    rl_op sends[N], recvs[N];
    struct counter sent = {0}, got = {0};
    struct rl_loop_stats s;
    int sv[2], i;

    (void)state;
    rlt_socketpair(sv);
    rl_loop_stats_reset(loop);
    for (i = 0; i < N; i++) {
        memset(out[i], 'a' + i, LEN);
        rl_prep_send(&sends[i], sv[0], out[i], LEN, 0, count_cb, &sent);
        assert_int_equal(rl_submit(loop, &sends[i]), 0);
    }
    s = stats_of(loop);
    assert_int_equal(s.ops_submitted, N);
    assert_int_equal(s.inflight[RL_OP_SEND], N);
    assert_int_equal(s.pending, N);
    assert_true(rlt_run_until_count(loop, &sent.n, N, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    s = stats_of(loop);
    assert_int_equal(s.inflight[RL_OP_SEND], 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.completions, N);
    assert_int_equal(s.bytes_sent, N * LEN);
    assert_int_equal(s.bytes_received, 0);
    assert_true(s.iterations >= 1);
    if (rlt_on_uring(loop)) {
        /* one SQE per send at least (the wakeup read may add one) */
        assert_true(s.sqes_submitted >= N);
        assert_true(s.cqes_reaped >= N);
        assert_true(s.io_uring_enter >= 1);
    } else {
        assert_int_equal(s.send_calls, N); /* none would block */
    }
    assert_backend_keys(loop, &s);

    /* exact-size receives: each gets one send's bytes or fewer, so loop
     * until all bytes are in */
    rl_loop_stats_reset(loop);
    for (i = 0; i < N; i++) {
        rl_prep_recv(&recvs[i], sv[1], in[i], LEN, MSG_WAITALL, count_cb, &got);
        assert_int_equal(rl_submit(loop, &recvs[i]), 0);
    }
    assert_int_equal(stats_of(loop).inflight[RL_OP_RECV], N);
    assert_true(rlt_run_until_count(loop, &got.n, N, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    s = stats_of(loop);
    assert_int_equal(s.inflight[RL_OP_RECV], 0);
    assert_int_equal(s.completions, N);
    assert_int_equal(s.bytes_received, N * LEN);
    assert_int_equal(s.bytes_sent, 0);
    for (i = 0; i < N; i++)
        assert_int_equal(recvs[i].res, LEN);
    if (!rlt_on_uring(loop))
        assert_true(s.recv_calls >= N);
    close(sv[0]);
    close(sv[1]);
    rl_loop_free(loop);
}

struct fired {
    rl_timer t;
    int *n;
};

static void timer_cb(rl_loop *loop, rl_timer *t)
{
    (void)loop;
    ++*((struct fired *)t->data)->n;
}

/* N timers: N started (plus rlt_run_until's guard), N fired. */
static void test_timers(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct fired f[N];
    struct rl_loop_stats s;
    int n = 0, i;

    (void)state;
    rl_loop_stats_reset(loop);
    for (i = 0; i < N; i++) {
        f[i].n = &n;
        rl_timer_init(&f[i].t, timer_cb, &f[i]);
        assert_int_equal(rl_timer_start(loop, &f[i].t, (i + 1) * RLT_MS), 0);
    }
    s = stats_of(loop);
    assert_int_equal(s.timers_started, N);
    assert_int_equal(s.timers_armed, N);
    assert_int_equal(s.timers_fired, 0);
    assert_true(rlt_run_until_count(loop, &n, N, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    s = stats_of(loop);
    assert_int_equal(s.timers_started, N + 1); /* the guard */
    assert_int_equal(s.timers_fired, N);
    assert_true(s.callbacks >= N);
    assert_int_equal(s.timers_armed, 0);
    assert_int_equal(s.completions, 0);
    /* the loop slept for most of the 10 ms */
    assert_true(s.wait_ns >= 2 * RLT_MS);
    assert_true(s.iterations >= 2);
    assert_backend_keys(loop, &s);
    rl_loop_free(loop);
}

static void ts_cb(rl_loop *loop, rl_callback *cb)
{
    (void)loop;
    ++*(int *)cb->data;
}

static void test_threadsafe_calls(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    rl_callback cbs[3];
    struct rl_loop_stats s;
    int n = 0, i;

    (void)state;
    rl_loop_stats_reset(loop);
    for (i = 0; i < 3; i++) {
        rl_callback_init(&cbs[i], ts_cb, &n);
        assert_int_equal(rl_call_threadsafe(loop, &cbs[i]), 0);
    }
    /* counted by the loop thread when it takes them, not by the callers */
    assert_int_equal(stats_of(loop).threadsafe_calls, 0);
    assert_true(rlt_run_until_count(loop, &n, 3, RLT_GUARD_MS));
    s = stats_of(loop);
    assert_int_equal(s.threadsafe_calls, 3);
    assert_true(s.callbacks >= 3);
    rl_loop_free(loop);
}

/* Ops cancelled: their final completions are counted, the gauges go back
 * to 0, no bytes moved. Then the loop is freed with ops in flight. */
static void test_cancelled(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    static char in[N][LEN];
    rl_op recvs[N], late;
    struct counter c = {0}, c2 = {0};
    struct rl_loop_stats s;
    int sv[2], i;

    (void)state;
    rlt_socketpair(sv);
    for (i = 0; i < N; i++) {
        rl_prep_recv(&recvs[i], sv[1], in[i], LEN, 0, count_cb, &c);
        assert_int_equal(rl_submit(loop, &recvs[i]), 0);
    }
    rl_loop_run(loop, RL_RUN_NOWAIT);
    rl_loop_stats_reset(loop);
    s = stats_of(loop);
    assert_int_equal(s.inflight[RL_OP_RECV], N); /* a gauge: kept */
    assert_int_equal(s.pending, N);
    for (i = 0; i < N; i++)
        assert_int_equal(rl_op_cancel(loop, &recvs[i]), 0);
    assert_true(rlt_run_until_count(loop, &c.n, N, RLT_GUARD_MS));
    s = stats_of(loop);
    assert_int_equal(s.inflight[RL_OP_RECV], 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.completions, N);
    assert_int_equal(s.bytes_received, 0);
    for (i = 0; i < N; i++)
        assert_int_equal(recvs[i].res, -ECANCELED);

    /* freed mid-flight: the final callback still runs */
    rl_prep_recv(&late, sv[1], in[0], LEN, 0, count_cb, &c2);
    assert_int_equal(rl_submit(loop, &late), 0);
    assert_int_equal(stats_of(loop).inflight[RL_OP_RECV], 1);
    rl_loop_free(loop);
    assert_int_equal(c2.n, 1);
    close(sv[0]);
    close(sv[1]);
}

/* io_uring: a CQ of 8 entries and 32 NOPs submitted before the loop reaps
 * any: the kernel holds the rest back (NODROP) and the loop flushes them. */
static void test_cq_overflow(void **state)
{
    struct rl_loop_config cfg;
    rl_loop *loop;
    rl_op nops[32];
    struct counter c = {0};
    struct rl_loop_stats s;
    int i;

    (void)state;
    rl_loop_config_init(&cfg);
    cfg.sq_entries = 1; /* the CQ is 8x the SQ */
    loop = rlt_loop_new(&cfg);
    rl_loop_stats_reset(loop);
    for (i = 0; i < 32; i++) {
        rl_prep_nop(&nops[i], count_cb, &c);
        assert_int_equal(rl_submit(loop, &nops[i]), 0);
    }
    assert_int_equal(stats_of(loop).inflight[RL_OP_NOP], 32);
    assert_true(rlt_run_until_count(loop, &c.n, 32, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    s = stats_of(loop);
    assert_int_equal(s.completions, 32);
    assert_int_equal(s.inflight[RL_OP_NOP], 0);
    if (rlt_on_uring(loop)) {
        assert_true(s.sqes_submitted >= 32);
        assert_true(s.cqes_reaped >= 32);
        assert_true(s.cq_overflows >= 1);
        assert_int_equal(s.cq_dropped, 0); /* NODROP kept them all */
    }
    assert_backend_keys(loop, &s);
    rl_loop_free(loop);
}

/* Multishot recv: one SQE, many completions; on epoll, direct recvs. */
static void test_multishot_recv(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rl_loop_stats s;
    rl_op op;
    struct counter c = {0};
    int sv[2], i;
    char buf[LEN];

    (void)state;
    rlt_socketpair(sv);
    memset(buf, 'x', sizeof(buf));
    rl_prep_recv_multishot(&op, sv[1], count_cb, &c);
    assert_int_equal(rl_submit(loop, &op), 0);
    rl_loop_run(loop, RL_RUN_NOWAIT);
    rl_loop_stats_reset(loop);
    for (i = 0; i < N; i++) {
        uint64_t before = stats_of(loop).bytes_received;

        assert_int_equal(write(sv[0], buf, LEN), LEN);
        while (stats_of(loop).bytes_received == before && !rlt_failed())
            rl_loop_run(loop, RL_RUN_ONCE);
    }
    s = stats_of(loop);
    assert_int_equal(s.bytes_received, N * LEN);
    assert_int_equal(s.inflight[RL_OP_RECV], 1);
    assert_true(s.completions >= 1);
    rl_op_cancel(loop, &op);
    assert_true(rlt_run_until_count(loop, &c.n, 1, RLT_GUARD_MS));
    assert_int_equal(stats_of(loop).inflight[RL_OP_RECV], 0);
    assert_backend_keys(loop, &s);
    close(sv[0]);
    close(sv[1]);
    rl_loop_free(loop);
}

/* No clock is read for the times until somebody asks: the first
 * rl_loop_stats() starts them. */
static void test_timing_starts_on_first_read(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rl_loop_stats s;

    (void)state;
    rlt_run_for(loop, 5);
    s = stats_of(loop);
    assert_true(s.iterations >= 1);
    assert_int_equal(s.wait_ns, 0);
    assert_int_equal(s.busy_ns, 0);
    rlt_run_for(loop, 5);
    s = stats_of(loop);
    assert_true(s.wait_ns >= RLT_MS);
    assert_true(s.busy_ns > 0);
    rl_loop_free(loop);
}

/* A reset zeroes the counters, keeps the gauges. */
static void test_reset(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    rl_timer t;
    int n = 0;
    struct fired f = {.n = &n};
    struct rl_loop_stats s;

    (void)state;
    rl_timer_init(&t, timer_cb, &f);
    rl_loop_run(loop, RL_RUN_NOWAIT);
    rl_loop_run(loop, RL_RUN_NOWAIT);
    assert_int_equal(rl_timer_start(loop, &t, 60000 * RLT_MS), 0);
    assert_true(stats_of(loop).iterations >= 2);
    rl_loop_stats_reset(loop);
    s = stats_of(loop);
    assert_int_equal(s.iterations, 0);
    assert_int_equal(s.timers_started, 0);
    assert_int_equal(s.wait_ns, 0);
    assert_int_equal(s.busy_ns, 0);
    assert_int_equal(s.io_uring_enter, 0);
    assert_int_equal(s.epoll_wait, 0);
    assert_int_equal(s.timers_armed, 1);
    rl_timer_stop(loop, &t);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_fresh_loop),
        RLT_TEST(test_sends_and_receives),
        RLT_TEST(test_timers),
        RLT_TEST(test_threadsafe_calls),
        RLT_TEST(test_cancelled),
        RLT_TEST(test_cq_overflow),
        RLT_TEST(test_multishot_recv),
        RLT_TEST(test_reset),
        RLT_TEST(test_timing_starts_on_first_read),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
