/*
 * loop/loop.c: create/free, run modes, stop, call_soon ordering and
 * cancellation, the next-iteration rule, the cached clock.
 */
#include <time.h>

#include "helpers.h"

/* A log of callback ids in the order they ran. */
struct order_log {
    int ids[64];
    int n;
};

struct tagged_cb {
    rl_callback cb;
    int id;
    struct order_log *log;
    rl_callback *queue_next; /* queue this one from inside fn */
    rl_callback *cancel;     /* cancel this one from inside fn */
    bool cancel_result;
};

static void log_cb(rl_loop *loop, rl_callback *cb)
{
    struct tagged_cb *t = cb->data;
    int r;

    if (t->log->n < 64)
        t->log->ids[t->log->n++] = t->id;
    if (t->queue_next) {
        r = rl_call_soon(loop, t->queue_next);
        if (r != 0)
            rlt_fail("rl_call_soon from a callback: %s", rlt_res_str(r));
    }
    if (t->cancel)
        t->cancel_result = rl_callback_cancel(loop, t->cancel);
}

static void tagged_init(struct tagged_cb *t, int id, struct order_log *log)
{
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->log = log;
    rl_callback_init(&t->cb, log_cb, t);
}

static void assert_log(const struct order_log *log, const int *want, int n)
{
    if (log->n != n)
        fail_msg("%d callbacks ran, expected %d", log->n, n);
    for (int i = 0; i < n; i++)
        if (log->ids[i] != want[i])
            fail_msg("callback #%d was id %d, expected id %d", i, log->ids[i],
                     want[i]);
}

static void test_create_free(void **state)
{
    struct rl_loop_config cfg;
    rl_loop *loop;

    (void)state;
    memset(&cfg, 0xa5, sizeof(cfg));
    rl_loop_config_init(&cfg);
    assert_int_equal(cfg.backend, RL_BACKEND_AUTO);
    assert_int_equal(cfg.disable, 0);

    loop = rlt_loop_new(NULL);
    assert_int_equal(rl_loop_pending(loop), 0);
    assert_int_equal(rl_loop_timer_count(loop), 0);
    assert_non_null(rl_loop_backend_name(loop));
    if (rlt_on_uring(loop))
        assert_int_equal(rl_loop_backend(loop), RL_BACKEND_URING);
    else
        assert_int_equal(rl_loop_backend(loop), RL_BACKEND_EPOLL);
    rl_loop_free(loop);

    /* Several loops side by side, with an explicit config. */
    rl_loop *loops[4];
    for (int i = 0; i < 4; i++)
        loops[i] = rlt_loop_new(&cfg);
    for (int i = 0; i < 4; i++)
        rl_loop_free(loops[i]);
}

static void test_run_empty(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);

    (void)state;
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    rl_loop_free(loop);
}

static void test_call_soon_fifo(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tagged_cb t[16];
    struct order_log log = {0};
    int want[16];

    (void)state;
    for (int i = 0; i < 16; i++) {
        tagged_init(&t[i], i, &log);
        assert_int_equal(rl_call_soon(loop, &t[i].cb), 0);
        want[i] = i;
    }
    assert_int_equal(rl_call_soon(loop, &t[3].cb), -EBUSY);
    assert_int_equal(log.n, 0); /* never from inside rl_call_soon */
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_log(&log, want, 16);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

static void test_next_iteration(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tagged_cb a, b, c, d;
    struct order_log log = {0};
    static const int want1[] = {1, 2};
    static const int want2[] = {1, 2, 3, 4};

    (void)state;
    tagged_init(&a, 1, &log);
    tagged_init(&b, 2, &log);
    tagged_init(&c, 3, &log);
    tagged_init(&d, 4, &log);
    a.queue_next = &c.cb; /* queued during the ready phase */
    b.queue_next = &d.cb;
    assert_int_equal(rl_call_soon(loop, &a.cb), 0);
    assert_int_equal(rl_call_soon(loop, &b.cb), 0);

    /* First iteration: only what was queued before it began. */
    if (rl_loop_run(loop, RL_RUN_NOWAIT) <= 0)
        fail_msg("rl_loop_run must report remaining work (c, d queued)");
    assert_log(&log, want1, 2);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_log(&log, want2, 4);

    /* A callback may queue its own node again: the node was handed back. */
    log.n = 0;
    a.queue_next = &a.cb;
    assert_int_equal(rl_call_soon(loop, &a.cb), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(log.n, i);
        if (rl_loop_run(loop, RL_RUN_NOWAIT) <= 0)
            fail_msg("self-requeued callback is not reported as work");
    }
    assert_int_equal(log.n, 3); /* once per iteration, never starving */
    assert_true(rl_callback_cancel(loop, &a.cb));
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(log.n, 3);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

static void test_callback_cancel(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct tagged_cb t[5];
    struct order_log log = {0};
    static const int want[] = {0, 2, 4};

    (void)state;
    for (int i = 0; i < 5; i++) {
        tagged_init(&t[i], i, &log);
        assert_int_equal(rl_call_soon(loop, &t[i].cb), 0);
    }
    assert_true(rl_callback_cancel(loop, &t[1].cb));
    assert_false(rl_callback_cancel(loop, &t[1].cb));
    /* t[0] cancels t[3], which is in the batch already being run. */
    t[0].cancel = &t[3].cb;
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_true(t[0].cancel_result);
    assert_log(&log, want, 3);

    /* A cancelled node can be queued again; a never-queued one is not. */
    assert_false(rl_callback_cancel(loop, &t[1].cb));
    assert_int_equal(rl_call_soon(loop, &t[1].cb), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.ids[3], 1);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

struct stopper {
    rl_callback cb;
    int calls;
    int stop_at;
};

static void stopper_cb(rl_loop *loop, rl_callback *cb)
{
    struct stopper *s = cb->data;
    int r;

    s->calls++;
    r = rl_call_soon(loop, cb);
    if (r != 0)
        rlt_fail("requeue: %s", rlt_res_str(r));
    if (s->calls == s->stop_at)
        rl_loop_stop(loop);
}

static void test_stop(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct stopper s = {.stop_at = 5};

    (void)state;
    rl_callback_init(&s.cb, stopper_cb, &s);
    assert_int_equal(rl_call_soon(loop, &s.cb), 0);
    if (rl_loop_run(loop, RL_RUN_DEFAULT) <= 0)
        fail_msg("run stopped with a callback queued must return > 0");
    assert_int_equal(s.calls, 5);
    RLT_ASSERT_OK();

    /* The stop request does not outlive the run that saw it. */
    s.stop_at = 8;
    assert_true(rl_loop_run(loop, RL_RUN_DEFAULT) > 0);
    assert_int_equal(s.calls, 8);

    assert_true(rl_callback_cancel(loop, &s.cb));
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(s.calls, 8);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

struct timer_ctx {
    int fired;
    uint64_t now_seen;
};

static void timer_count_cb(rl_loop *loop, rl_timer *t)
{
    struct timer_ctx *c = t->data;

    c->fired++;
    c->now_seen = rl_loop_now(loop);
}

static void test_run_modes_with_timer(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct timer_ctx c = {0};
    rl_timer t;

    (void)state;
    rl_timer_init(&t, timer_count_cb, &c);

    /* NOWAIT never blocks: a far timer stays armed and is work left. */
    assert_int_equal(rl_timer_start(loop, &t, 3600000 * RLT_MS), 0);
    assert_true(rl_loop_run(loop, RL_RUN_NOWAIT) > 0);
    assert_int_equal(c.fired, 0);
    assert_true(rl_timer_stop(loop, &t));
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);

    /* DEFAULT runs until the last timer has fired, then returns 0. */
    assert_int_equal(rl_timer_start(loop, &t, 2 * RLT_MS), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(c.fired, 1);
    if (c.now_seen < t.deadline)
        fail_msg("timer ran at now=%llu before its deadline %llu",
                 (unsigned long long)c.now_seen,
                 (unsigned long long)t.deadline);

    /* ONCE blocks until something happens, then returns. */
    assert_int_equal(rl_timer_start(loop, &t, 1 * RLT_MS), 0);
    for (int i = 0; i < 1000 && c.fired < 2; i++)
        assert_true(rl_loop_run(loop, RL_RUN_ONCE) >= 0);
    assert_int_equal(c.fired, 2);
    rl_loop_free(loop);
}

static void nop_cb(rl_loop *loop, rl_op *op)
{
    (void)loop;
    (*(int *)op->data)++;
    if (op->res != 0)
        rlt_fail("nop completed with %s", rlt_res_str(op->res));
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("nop completed with RL_CQE_MORE");
}

static void test_pending_nop(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    rl_op ops[3];
    int done = 0;

    (void)state;
    for (int i = 0; i < 3; i++) {
        rl_prep_nop(&ops[i], nop_cb, &done);
        assert_false(rl_op_in_flight(&ops[i]));
        assert_int_equal(rl_submit(loop, &ops[i]), 0);
        assert_true(rl_op_in_flight(&ops[i]));
    }
    assert_int_equal(rl_loop_pending(loop), 3);
    assert_int_equal(done, 0); /* never from inside rl_submit */
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(done, 3);
    assert_int_equal(rl_loop_pending(loop), 0);
    for (int i = 0; i < 3; i++)
        assert_false(rl_op_in_flight(&ops[i]));
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

static uint64_t clock_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct clock_ctx {
    rl_callback cb;
    uint64_t before, after_sleep, updated, after_update;
};

static void clock_cb(rl_loop *loop, rl_callback *cb)
{
    struct clock_ctx *c = cb->data;
    struct timespec ts = {0, 3 * 1000000};

    c->before = rl_loop_now(loop);
    nanosleep(&ts, NULL);
    c->after_sleep = rl_loop_now(loop);
    c->updated = rl_loop_update_time(loop);
    c->after_update = rl_loop_now(loop);
}

static void test_cached_time(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct clock_ctx c;
    uint64_t t0, t1, t2;

    (void)state;
    t0 = clock_mono();
    t1 = rl_loop_update_time(loop);
    t2 = clock_mono();
    if (t1 < t0 || t1 > t2)
        fail_msg("rl_loop_update_time()=%llu is not CLOCK_MONOTONIC "
                 "(read %llu .. %llu around it)",
                 (unsigned long long)t1, (unsigned long long)t0,
                 (unsigned long long)t2);
    assert_true(rl_loop_now(loop) == t1);

    rl_callback_init(&c.cb, clock_cb, &c);
    assert_int_equal(rl_call_soon(loop, &c.cb), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    if (c.after_sleep != c.before)
        fail_msg("rl_loop_now changed inside one callback (%llu -> %llu)",
                 (unsigned long long)c.before,
                 (unsigned long long)c.after_sleep);
    if (c.before < t1)
        fail_msg("cached time went backwards across an iteration");
    if (c.updated < c.before + 3 * RLT_MS)
        fail_msg("update_time after a 3 ms sleep moved only %llu ns",
                 (unsigned long long)(c.updated - c.before));
    assert_true(c.after_update == c.updated);

    /* The next iteration refreshes the cache by itself. */
    t1 = c.updated;
    assert_int_equal(rl_call_soon(loop, &c.cb), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    if (c.before < t1)
        fail_msg("a new iteration did not refresh the cached time");
    rl_loop_free(loop);
}

static void never_cb(rl_loop *loop, rl_callback *cb)
{
    (void)loop;
    (void)cb;
    rlt_fail("a dropped callback ran");
}

static void never_timer(rl_loop *loop, rl_timer *t)
{
    (void)loop;
    (void)t;
    rlt_fail("a dropped timer ran");
}

static void test_free_drops_callbacks_and_timers(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    rl_callback cb, ts;
    rl_timer t;

    (void)state;
    rl_callback_init(&cb, never_cb, NULL);
    rl_callback_init(&ts, never_cb, NULL);
    rl_timer_init(&t, never_timer, NULL);
    assert_int_equal(rl_call_soon(loop, &cb), 0);
    assert_int_equal(rl_call_threadsafe(loop, &ts), 0);
    assert_int_equal(rl_timer_start(loop, &t, 0), 0);
    rl_loop_free(loop);
    RLT_ASSERT_OK();
}

struct breaker {
    struct tagged_cb t;
    bool do_break;
};

static void break_cb(rl_loop *loop, rl_callback *cb)
{
    struct breaker *b = cb->data;

    log_cb(loop, &b->t.cb);
    if (b->do_break)
        rl_loop_break(loop);
}

static void break_nop_cb(rl_loop *loop, rl_op *op)
{
    (void)op;
    rl_loop_break(loop);
}

static void test_break(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct breaker b[4];
    struct tagged_cb late;
    struct order_log log = {0};
    static const int want1[] = {0, 1};
    static const int want2[] = {0, 1, 2, 3, 9};

    (void)state;
    for (int i = 0; i < 4; i++) {
        memset(&b[i], 0, sizeof(b[i]));
        b[i].t.id = i;
        b[i].t.log = &log;
        rl_callback_init(&b[i].t.cb, break_cb, &b[i]);
    }
    tagged_init(&late, 9, &log);
    b[0].t.queue_next = &late.cb; /* queued during the phase: goes last */
    b[1].do_break = true;
    for (int i = 0; i < 4; i++)
        assert_int_equal(rl_call_soon(loop, &b[i].t.cb), 0);

    /* DEFAULT would run everything; break returns after b[1]. */
    if (rl_loop_run(loop, RL_RUN_DEFAULT) <= 0)
        fail_msg("run broken with callbacks left must return > 0");
    assert_log(&log, want1, 2);
    /* b[2], b[3] went back in front of `late`, in order. */
    b[1].do_break = false;
    assert_int_equal(rl_call_soon(loop, &b[2].t.cb), -EBUSY); /* queued */
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_log(&log, want2, 5);

    /* From a completion: the ready phase of that iteration does not start. */
    rl_op op;
    log.n = 0;
    rl_prep_nop(&op, break_nop_cb, NULL);
    assert_int_equal(rl_submit(loop, &op), 0);
    assert_int_equal(rl_call_soon(loop, &late.cb), 0);
    late.queue_next = NULL;
    if (rl_loop_run(loop, RL_RUN_DEFAULT) <= 0)
        fail_msg("run broken from a completion must return > 0");
    assert_false(rl_op_in_flight(&op));
    assert_int_equal(log.n, 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(log.n, 1);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

struct hooks {
    int before, after;
    bool inside;
    int nested;
    rl_loop *loop;
};

static void hook_before(rl_loop *loop, void *arg)
{
    struct hooks *h = arg;

    if (loop != h->loop || h->inside)
        h->nested++;
    h->inside = true;
    h->before++;
}

static void hook_after(rl_loop *loop, void *arg)
{
    struct hooks *h = arg;

    if (loop != h->loop || !h->inside)
        h->nested++;
    h->inside = false;
    h->after++;
}

static void hook_timer_cb(rl_loop *loop, rl_timer *t)
{
    struct hooks *h = t->data;

    (void)loop;
    if (h->inside)
        rlt_fail("a timer ran between the before and after block hooks");
}

static void hook_cb(rl_loop *loop, rl_callback *cb)
{
    struct hooks *h = cb->data;

    (void)loop;
    if (h->inside)
        rlt_fail("a callback ran between the before and after block hooks");
}

static void test_block_hooks_and_data(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct hooks h = {.loop = loop};
    rl_callback cb;
    rl_timer t;
    int x;

    (void)state;
    assert_null(rl_loop_get_data(loop));
    rl_loop_set_data(loop, &x);
    assert_ptr_equal(rl_loop_get_data(loop), &x);

    rl_loop_set_block_hooks(loop, hook_before, hook_after, &h);
    rl_callback_init(&cb, hook_cb, &h);
    rl_timer_init(&t, hook_timer_cb, &h);

    /* Never blocking: no hook. */
    assert_int_equal(rl_call_soon(loop, &cb), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_NOWAIT), 0);
    assert_int_equal(h.before, 0);
    assert_int_equal(h.after, 0);

    /* A wait for a timer may sleep: hooks in pairs around it. */
    assert_int_equal(rl_timer_start(loop, &t, 2 * RLT_MS), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    if (h.before < 1 || h.before != h.after || h.nested || h.inside)
        fail_msg("block hooks: before %d, after %d, unpaired %d", h.before,
                 h.after, h.nested);

    /* Cleared hooks are not called. */
    rl_loop_set_block_hooks(loop, NULL, NULL, NULL);
    h.before = h.after = 0;
    assert_int_equal(rl_timer_start(loop, &t, 1 * RLT_MS), 0);
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    assert_int_equal(h.before + h.after, 0);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_create_free),
        RLT_TEST(test_run_empty),
        RLT_TEST(test_call_soon_fifo),
        RLT_TEST(test_next_iteration),
        RLT_TEST(test_callback_cancel),
        RLT_TEST(test_stop),
        RLT_TEST(test_run_modes_with_timer),
        RLT_TEST(test_pending_nop),
        RLT_TEST(test_cached_time),
        RLT_TEST(test_free_drops_callbacks_and_timers),
        RLT_TEST(test_break),
        RLT_TEST(test_block_hooks_and_data),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
