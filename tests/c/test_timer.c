/*
 * loop/timer.c: deadline order, FIFO for equal deadlines, stop, restart
 * from inside the callback, stop of an expired timer that has not run yet,
 * 100k timers, 1M start/stop churn.
 */
#include "helpers.h"

struct fire_log {
    int *ids;
    int n;
    int cap;
    uint64_t late; /* deadline > now at fire time: count */
};

struct tag_timer {
    rl_timer t;
    int id;
    struct fire_log *log;
    int rearm_left;       /* restart itself this many times */
    uint64_t rearm_ns;    /* with this timeout */
    rl_timer *stop_other; /* rl_timer_stop() this one from fn */
    bool stop_other_result;
    bool active_in_fn; /* rl_timer_active(self) inside fn */
};

static void log_timer_cb(rl_loop *loop, rl_timer *t)
{
    struct tag_timer *tt = t->data;
    struct fire_log *log = tt->log;
    int r;

    if (rl_loop_now(loop) < t->deadline)
        log->late++;
    if (log->n < log->cap)
        log->ids[log->n] = tt->id;
    log->n++;
    tt->active_in_fn = rl_timer_active(t);
    if (tt->stop_other)
        tt->stop_other_result = rl_timer_stop(loop, tt->stop_other);
    if (tt->rearm_left > 0) {
        tt->rearm_left--;
        r = rl_timer_start(loop, t, tt->rearm_ns);
        if (r != 0)
            rlt_fail("restart from own callback: %s", rlt_res_str(r));
        if (!rl_timer_active(t))
            rlt_fail("timer restarted in its callback is not active");
    }
}

static void tag_init(struct tag_timer *tt, int id, struct fire_log *log)
{
    memset(tt, 0, sizeof(*tt));
    tt->id = id;
    tt->log = log;
    rl_timer_init(&tt->t, log_timer_cb, tt);
}

static void log_init(struct fire_log *log, int cap)
{
    log->ids = calloc((size_t)cap, sizeof(int));
    assert_non_null(log->ids);
    log->n = 0;
    log->cap = cap;
    log->late = 0;
}

static void assert_fired(const struct fire_log *log, const int *want, int n)
{
    if (log->late)
        fail_msg("%llu timer(s) ran before their deadline",
                 (unsigned long long)log->late);
    if (log->n != n)
        fail_msg("%d timers fired, expected %d", log->n, n);
    for (int i = 0; i < n; i++)
        if (log->ids[i] != want[i])
            fail_msg("fire #%d was timer %d, expected timer %d", i, log->ids[i],
                     want[i]);
}

static void test_deadline_order(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer tt[5];
    struct fire_log log;
    uint64_t base = rl_loop_update_time(loop);
    static const uint64_t off_ms[5] = {3, 1, 4, 0, 2};
    static const int want[5] = {3, 1, 4, 0, 2};

    (void)state;
    log_init(&log, 8);
    for (int i = 0; i < 5; i++) {
        tag_init(&tt[i], i, &log);
        assert_false(rl_timer_active(&tt[i].t));
        assert_int_equal(
            rl_timer_start_at(loop, &tt[i].t, base + off_ms[i] * RLT_MS), 0);
        assert_true(rl_timer_active(&tt[i].t));
    }
    assert_int_equal(rl_loop_timer_count(loop), 5);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_fired(&log, want, 5);
    assert_int_equal(rl_loop_timer_count(loop), 0);
    for (int i = 0; i < 5; i++)
        assert_false(rl_timer_active(&tt[i].t));

    /* Relative starts: same order, from the cached now. */
    log.n = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rl_timer_start(loop, &tt[i].t, off_ms[i] * RLT_MS), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_fired(&log, want, 5);
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

static void test_equal_deadlines_fifo(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer tt[64];
    struct fire_log log;
    uint64_t deadline = rl_loop_update_time(loop) + 1 * RLT_MS;
    int want[64], n = 0;

    (void)state;
    log_init(&log, 64);
    for (int i = 0; i < 64; i++) {
        tag_init(&tt[i], i, &log);
        assert_int_equal(rl_timer_start_at(loop, &tt[i].t, deadline), 0);
    }
    /* A restart counts as a new start: timer 5 moves behind the others. */
    assert_int_equal(rl_timer_start_at(loop, &tt[5].t, deadline), 0);
    for (int i = 0; i < 64; i++)
        if (i != 5)
            want[n++] = i;
    want[n++] = 5;
    assert_int_equal(rl_loop_timer_count(loop), 64);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_fired(&log, want, 64);

    /* Deadlines already in the past are still FIFO among themselves. */
    log.n = 0;
    for (int i = 0; i < 64; i++)
        assert_int_equal(rl_timer_start_at(loop, &tt[63 - i].t, 1), 0);
    for (int i = 0; i < 64; i++)
        want[i] = 63 - i;
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_fired(&log, want, 64);
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

static void test_stop(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer tt[3];
    struct fire_log log;
    static const int want[2] = {0, 2};

    (void)state;
    log_init(&log, 8);
    for (int i = 0; i < 3; i++) {
        tag_init(&tt[i], i, &log);
        assert_int_equal(rl_timer_start(loop, &tt[i].t, (i + 1) * RLT_MS), 0);
    }
    assert_true(rl_timer_stop(loop, &tt[1].t));
    assert_false(rl_timer_active(&tt[1].t));
    assert_false(rl_timer_stop(loop, &tt[1].t));
    assert_int_equal(rl_loop_timer_count(loop), 2);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_fired(&log, want, 2);

    /* Stopping a timer that was never started, or already fired. */
    struct tag_timer fresh;
    tag_init(&fresh, 9, &log);
    assert_false(rl_timer_stop(loop, &fresh.t));
    assert_false(rl_timer_stop(loop, &tt[0].t));

    /* Stop everything: the loop has nothing left to do. */
    log.n = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rl_timer_start(loop, &tt[i].t, 3600000 * RLT_MS), 0);
    for (int i = 0; i < 3; i++)
        assert_true(rl_timer_stop(loop, &tt[i].t));
    assert_int_equal(rl_loop_timer_count(loop), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(log.n, 0);
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

static void test_restart_in_callback(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer a, b;
    struct fire_log log;
    int runs = 0, prev = 0;

    (void)state;
    log_init(&log, 32);
    tag_init(&a, 1, &log);
    a.rearm_left = 4;
    a.rearm_ns = 1 * RLT_MS;
    assert_int_equal(rl_timer_start(loop, &a.t, 1 * RLT_MS), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(log.n, 5);
    assert_false(a.active_in_fn); /* handed back before fn runs */
    assert_false(rl_timer_active(&a.t));

    /* Re-armed with timeout 0 from its own callback: it fires again, but
     * in a later iteration, never twice in one. */
    log.n = 0;
    tag_init(&b, 2, &log);
    b.rearm_left = 10;
    b.rearm_ns = 0;
    assert_int_equal(rl_timer_start(loop, &b.t, 0), 0);
    while (log.n < 11 && runs < 1000) {
        assert_true(rl_loop_run(loop, RL_RUN_ONCE) >= 0);
        if (log.n - prev > 1)
            fail_msg("a timer re-armed with 0 ran %d times in one iteration",
                     log.n - prev);
        prev = log.n;
        runs++;
    }
    assert_int_equal(log.n, 11);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

/* A timer that expired together with a running sibling waits in the ready
 * queue: the sibling can stop it, or restart it for later. */
struct restart_other {
    struct tag_timer self;
    rl_timer *other;
    uint64_t other_timeout;
    int restart_res;
};

static void restart_other_cb(rl_loop *loop, rl_timer *t)
{
    struct restart_other *ro = t->data;

    log_timer_cb(loop, &ro->self.t);
    ro->restart_res = rl_timer_start(loop, ro->other, ro->other_timeout);
}

static void test_stop_expired_not_run(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer a, b, c;
    struct restart_other ro;
    struct fire_log log;
    static const int want_a[1] = {1};

    (void)state;
    log_init(&log, 8);
    tag_init(&a, 1, &log);
    tag_init(&b, 2, &log);
    tag_init(&c, 3, &log);

    /* a stops b; both expired in the same iteration. */
    a.stop_other = &b.t;
    assert_int_equal(rl_timer_start_at(loop, &a.t, 1), 0);
    assert_int_equal(rl_timer_start_at(loop, &b.t, 1), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_true(a.stop_other_result);
    assert_false(rl_timer_active(&b.t));
    assert_fired(&log, want_a, 1);

    /* a restarts c for an hour later: c does not run now. */
    log.n = 0;
    memset(&ro, 0, sizeof(ro));
    tag_init(&ro.self, 1, &log);
    rl_timer_init(&ro.self.t, restart_other_cb, &ro);
    ro.other = &c.t;
    ro.other_timeout = 3600000 * RLT_MS;
    assert_int_equal(rl_timer_start_at(loop, &ro.self.t, 1), 0);
    assert_int_equal(rl_timer_start_at(loop, &c.t, 1), 0);
    while (log.n == 0)
        assert_true(rl_loop_run(loop, RL_RUN_ONCE) >= 0);
    assert_int_equal(ro.restart_res, 0);
    assert_true(rl_loop_run(loop, RL_RUN_NOWAIT) > 0);
    assert_fired(&log, want_a, 1);
    assert_true(rl_timer_active(&c.t));
    assert_int_equal(rl_loop_timer_count(loop), 1);
    assert_true(rl_timer_stop(loop, &c.t));
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

/* A call_soon callback that logs into a fire_log, and may queue another
 * callback or stop a timer. */
struct tag_cb {
    rl_callback cb;
    int id;
    struct fire_log *log;
    rl_callback *queue;
    rl_timer *stop;
    bool stop_active, stop_result;
};

static void tag_cb_fn(rl_loop *loop, rl_callback *cb)
{
    struct tag_cb *tc = cb->data;

    if (tc->log->n < tc->log->cap)
        tc->log->ids[tc->log->n] = tc->id;
    tc->log->n++;
    if (tc->queue && rl_call_soon(loop, tc->queue) != 0)
        rlt_fail("rl_call_soon from a callback failed");
    if (tc->stop) {
        tc->stop_active = rl_timer_active(tc->stop);
        tc->stop_result = rl_timer_stop(loop, tc->stop);
    }
}

static void tag_cb_init(struct tag_cb *tc, int id, struct fire_log *log)
{
    memset(tc, 0, sizeof(*tc));
    tc->id = id;
    tc->log = log;
    rl_callback_init(&tc->cb, tag_cb_fn, tc);
}

/*
 * The header: an iteration waits, moves expired timers to the tail of the
 * ready queue, then runs it: a timer runs in the iteration that found it
 * expired, after the callbacks queued before it expired, and before those
 * that they queue.
 */
static void test_expired_runs_after_ready_callbacks(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tag_timer t1, t2;
    struct tag_cb x, y;
    struct fire_log log;
    static const int want1[] = {10, 1};
    static const int want2[] = {10, 1, 11};
    static const int want3[] = {10, 2};

    (void)state;
    log_init(&log, 8);
    tag_init(&t1, 1, &log);
    tag_init(&t2, 2, &log);
    tag_cb_init(&x, 10, &log);
    tag_cb_init(&y, 11, &log);

    /* x queued first, t1 due now; x queues y during the ready phase. */
    x.queue = &y.cb;
    assert_int_equal(rl_call_soon(loop, &x.cb), 0);
    assert_int_equal(rl_timer_start(loop, &t1.t, 0), 0);
    assert_true(rl_loop_run(loop, RL_RUN_NOWAIT) > 0);
    assert_fired(&log, want1, 2);
    assert_false(rl_timer_active(&t1.t));
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_fired(&log, want2, 3);

    /* Stop of an expired timer that has not run yet: x runs first in the
     * ready phase that holds t1, and stops it. */
    log.n = 0;
    x.queue = NULL;
    x.stop = &t1.t;
    assert_int_equal(rl_call_soon(loop, &x.cb), 0);
    assert_int_equal(rl_timer_start(loop, &t1.t, 0), 0);
    assert_int_equal(rl_timer_start(loop, &t2.t, 0), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_true(x.stop_active);
    assert_true(x.stop_result);
    assert_false(rl_timer_active(&t1.t));
    assert_fired(&log, want3, 2);
    assert_false(rl_timer_stop(loop, &t1.t));
    RLT_ASSERT_OK();
    free(log.ids);
    rl_loop_free(loop);
}

/* xorshift64*: deterministic, cheap. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

struct order_check {
    uint64_t last_deadline;
    long last_idx;
    long fired;
    long bad;
    uint64_t late;
    rl_timer *base;
};

static void order_cb(rl_loop *loop, rl_timer *t)
{
    struct order_check *oc = t->data;
    long idx = (long)(t - oc->base);

    if (rl_loop_now(loop) < t->deadline)
        oc->late++;
    if (oc->fired > 0 &&
        (t->deadline < oc->last_deadline ||
         (t->deadline == oc->last_deadline && idx < oc->last_idx))) {
        if (oc->bad++ == 0)
            rlt_fail("timer %ld (deadline %llu) fired after timer %ld "
                     "(deadline %llu)",
                     idx, (unsigned long long)t->deadline, oc->last_idx,
                     (unsigned long long)oc->last_deadline);
    }
    oc->last_deadline = t->deadline;
    oc->last_idx = idx;
    oc->fired++;
}

static void test_100k_in_order(void **state)
{
    enum { N = 100000 };
    rl_loop *loop = rlt_loop_new(NULL);
    rl_timer *t = calloc(N, sizeof(*t));
    struct order_check oc = {.base = t};
    uint64_t base = rl_loop_update_time(loop), seed = 0x9e3779b97f4a7c15ull;

    (void)state;
    assert_non_null(t);
    for (long i = 0; i < N; i++) {
        /* 2000 distinct deadlines within 20 ms: many equal ones. */
        uint64_t d = base + (rng_next(&seed) % 2000) * 10000;

        rl_timer_init(&t[i], order_cb, &oc);
        assert_int_equal(rl_timer_start_at(loop, &t[i], d), 0);
    }
    assert_int_equal(rl_loop_timer_count(loop), N);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    if (oc.fired != N)
        fail_msg("%ld of %d timers fired", oc.fired, N);
    if (oc.late)
        fail_msg("%llu timers ran before their deadline",
                 (unsigned long long)oc.late);
    RLT_ASSERT_OK();
    free(t);
    rl_loop_free(loop);
}

static void test_1m_churn(void **state)
{
    enum { POOL = 1024, OPS = 1000000 };
    rl_loop *loop = rlt_loop_new(NULL);
    rl_timer *t = calloc(POOL, sizeof(*t));
    bool *armed = calloc(POOL, sizeof(*armed));
    struct order_check oc = {.base = t};
    uint64_t seed = 0x1234567887654321ull, now;
    size_t count = 0;

    (void)state;
    assert_non_null(t);
    assert_non_null(armed);
    for (int i = 0; i < POOL; i++)
        rl_timer_init(&t[i], order_cb, &oc);
    for (long op = 0; op < OPS; op++) {
        uint64_t r = rng_next(&seed);
        int i = (int)(r % POOL);

        if ((r >> 32) % 5 < 3) {
            /* Far deadlines: nothing may fire during the churn. */
            assert_int_equal(
                rl_timer_start(loop, &t[i],
                               (3600 + (r >> 40) % 3600) * 1000000000ull),
                0);
            count += !armed[i];
            armed[i] = true;
        } else {
            bool was = rl_timer_stop(loop, &t[i]);

            if (was != armed[i])
                fail_msg("op %ld: rl_timer_stop(timer %d) = %d, expected %d",
                         op, i, was, armed[i]);
            count -= armed[i];
            armed[i] = false;
        }
        if ((op & 4095) == 0 && rl_loop_timer_count(loop) != count)
            fail_msg("op %ld: rl_loop_timer_count = %zu, expected %zu", op,
                     rl_loop_timer_count(loop), count);
    }
    assert_int_equal(rl_loop_timer_count(loop), count);
    for (int i = 0; i < POOL; i++)
        if (rl_timer_active(&t[i]) != armed[i])
            fail_msg("timer %d: active=%d, expected %d", i,
                     rl_timer_active(&t[i]), armed[i]);
    assert_true(rl_loop_run(loop, RL_RUN_NOWAIT) > 0);
    assert_int_equal(oc.fired, 0);

    /* Bring the survivors near and let them fire, in order. */
    now = rl_loop_update_time(loop);
    for (int i = 0; i < POOL; i++)
        if (armed[i])
            assert_int_equal(
                rl_timer_start_at(loop, &t[i],
                                  now + (rng_next(&seed) % 50) * 100000),
                0);
    assert_int_equal(rl_loop_timer_count(loop), count);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    if ((size_t)oc.fired != count)
        fail_msg("%ld timers fired, expected %zu", oc.fired, count);
    RLT_ASSERT_OK();
    free(armed);
    free(t);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_deadline_order),
        RLT_TEST(test_equal_deadlines_fifo),
        RLT_TEST(test_stop),
        RLT_TEST(test_restart_in_callback),
        RLT_TEST(test_stop_expired_not_run),
        RLT_TEST(test_expired_runs_after_ready_callbacks),
        RLT_TEST(test_100k_in_order),
        RLT_TEST(test_1m_churn),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
