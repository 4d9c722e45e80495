/*
 * loop/loop.c, the thread-safe queue: rl_call_threadsafe() from 4 threads
 * (every callback exactly once, FIFO per thread), waking a sleeping loop,
 * and reusing a node once its function has started.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"

enum { THREADS = 4, PER_THREAD = 25000 };

struct ts_ctx;

struct ts_item {
    rl_callback cb;
    struct ts_ctx *ctx;
    int thread;
    int seq;
};

struct ts_ctx {
    rl_loop *loop;
    struct ts_item *items[THREADS];
    int next_seq[THREADS]; /* loop thread only */
    int total;             /* loop thread only */
    pthread_barrier_t start;
    atomic_int submit_errors;
};

static void ts_cb(rl_loop *loop, rl_callback *cb)
{
    struct ts_item *it = cb->data;
    struct ts_ctx *ctx = it->ctx;

    (void)loop;
    if (it->seq != ctx->next_seq[it->thread])
        rlt_fail("thread %d: callback #%d ran when #%d was due (lost, "
                 "duplicated or out of order)",
                 it->thread, it->seq, ctx->next_seq[it->thread]);
    ctx->next_seq[it->thread] = it->seq + 1;
    ctx->total++;
}

static void short_pause(unsigned ns)
{
    struct timespec ts = {0, (long)ns};

    nanosleep(&ts, NULL);
}

struct thread_arg {
    struct ts_ctx *ctx;
    int thread;
};

static void *producer(void *p)
{
    struct thread_arg *a = p;
    struct ts_ctx *ctx = a->ctx;
    struct ts_item *items = ctx->items[a->thread];

    pthread_barrier_wait(&ctx->start);
    for (int i = 0; i < PER_THREAD; i++) {
        if (rl_call_threadsafe(ctx->loop, &items[i].cb) != 0)
            atomic_fetch_add(&ctx->submit_errors, 1);
        /* Pause now and then so the loop also goes to sleep in between. */
        if (i % 5000 == 4999)
            short_pause(200000);
    }
    return NULL;
}

static void test_four_threads(void **state)
{
    struct ts_ctx ctx;
    struct thread_arg args[THREADS];
    pthread_t th[THREADS];

    (void)state;
    memset(&ctx, 0, sizeof(ctx));
    ctx.loop = rlt_loop_new(NULL);
    for (int t = 0; t < THREADS; t++) {
        ctx.items[t] = calloc(PER_THREAD, sizeof(struct ts_item));
        assert_non_null(ctx.items[t]);
        for (int i = 0; i < PER_THREAD; i++) {
            struct ts_item *it = &ctx.items[t][i];

            it->ctx = &ctx;
            it->thread = t;
            it->seq = i;
            rl_callback_init(&it->cb, ts_cb, it);
        }
    }
    assert_int_equal(pthread_barrier_init(&ctx.start, NULL, THREADS), 0);
    for (int t = 0; t < THREADS; t++) {
        args[t].ctx = &ctx;
        args[t].thread = t;
        assert_int_equal(pthread_create(&th[t], NULL, producer, &args[t]), 0);
    }
    if (!rlt_run_until_count(ctx.loop, &ctx.total, THREADS * PER_THREAD,
                             RLT_GUARD_MS))
        fprintf(stderr, "only %d of %d callbacks ran\n", ctx.total,
                THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    RLT_ASSERT_OK();
    assert_int_equal(atomic_load(&ctx.submit_errors), 0);
    assert_int_equal(ctx.total, THREADS * PER_THREAD);

    /* Nothing runs twice later on. */
    rlt_run_for(ctx.loop, 5);
    assert_int_equal(ctx.total, THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(ctx.next_seq[t], PER_THREAD);
    RLT_ASSERT_OK();
    pthread_barrier_destroy(&ctx.start);
    for (int t = 0; t < THREADS; t++)
        free(ctx.items[t]);
    rl_loop_free(ctx.loop);
}

/* One node bounced between a thread and the loop: each round the loop
 * is (most likely) asleep when the call arrives. */
struct pingpong {
    rl_loop *loop;
    rl_callback cb;
    atomic_int started; /* rounds whose fn has started */
    int runs;           /* loop thread */
    atomic_int stop;
    atomic_int submit_errors;
};

enum { ROUNDS = 300 };

static void pingpong_cb(rl_loop *loop, rl_callback *cb)
{
    struct pingpong *pp = cb->data;

    (void)loop;
    pp->runs++;
    atomic_fetch_add(&pp->started, 1);
}

static void *pingpong_thread(void *p)
{
    struct pingpong *pp = p;
    uint64_t seed = 88172645463325252ull;

    for (int i = 0; i < ROUNDS && !atomic_load(&pp->stop); i++) {
        /* Reuse the node only after fn has started (the header's rule). */
        while (atomic_load(&pp->started) < i && !atomic_load(&pp->stop))
            short_pause(20000);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        short_pause((unsigned)(seed % 300000));
        if (rl_call_threadsafe(pp->loop, &pp->cb) != 0)
            atomic_fetch_add(&pp->submit_errors, 1);
    }
    return NULL;
}

static void test_wakes_sleeping_loop(void **state)
{
    struct pingpong pp;
    pthread_t th;

    (void)state;
    memset(&pp, 0, sizeof(pp));
    pp.loop = rlt_loop_new(NULL);
    rl_callback_init(&pp.cb, pingpong_cb, &pp);
    assert_int_equal(pthread_create(&th, NULL, pingpong_thread, &pp), 0);
    for (int i = 0; i < ROUNDS; i++) {
        /* The loop has nothing but the guard timer: it sleeps in wait. */
        if (!rlt_run_until_count(pp.loop, &pp.runs, i + 1, 10000)) {
            atomic_store(&pp.stop, 1);
            pthread_join(th, NULL);
            fail_msg("round %d: the sleeping loop was not woken by "
                     "rl_call_threadsafe (guard timer fired first)",
                     i);
        }
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&pp.submit_errors), 0);
    assert_int_equal(pp.runs, ROUNDS);
    RLT_ASSERT_OK();
    rl_loop_free(pp.loop);
}

struct self_ts {
    rl_callback first, second;
    int order[2];
    int n;
};

static void self_second(rl_loop *loop, rl_callback *cb)
{
    struct self_ts *s = cb->data;

    (void)loop;
    s->order[s->n++ & 1] = 2;
}

static void self_first(rl_loop *loop, rl_callback *cb)
{
    struct self_ts *s = cb->data;
    int r;

    s->order[s->n++ & 1] = 1;
    r = rl_call_threadsafe(loop, &s->second);
    if (r != 0)
        rlt_fail("rl_call_threadsafe from the loop thread: %s", rlt_res_str(r));
}

static void test_from_loop_thread(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct self_ts s = {0};

    (void)state;
    rl_callback_init(&s.first, self_first, &s);
    rl_callback_init(&s.second, self_second, &s);
    assert_int_equal(rl_call_threadsafe(loop, &s.first), 0);
    assert_int_equal(s.n, 0);
    if (!rlt_run_until_count(loop, &s.n, 2, RLT_GUARD_MS))
        fail_msg("%d of 2 thread-safe callbacks ran", s.n);
    assert_int_equal(s.order[0], 1);
    assert_int_equal(s.order[1], 2);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

/* A long wait ended by a wake from another thread, then a short wait: the
 * short one must end by its own timer. (RINGLOOP_DISABLE=ext_arg once hung
 * here: a timeout left over from the long wait swallowed the short one's.) */
struct late_caller {
    rl_loop *loop;
    rl_callback cb;
    int runs;
};

static void late_cb(rl_loop *loop, rl_callback *cb)
{
    (void)loop;
    ((struct late_caller *)cb->data)->runs++;
}

static void tick_cb(rl_loop *loop, rl_timer *t)
{
    (void)loop;
    (*(int *)t->data)++;
}

static void *late_thread(void *p)
{
    struct late_caller *lc = p;

    short_pause(1000000);
    if (rl_call_threadsafe(lc->loop, &lc->cb) != 0)
        abort();
    return NULL;
}

static void test_wake_then_short_wait(void **state)
{
    struct late_caller lc = {0};
    pthread_t th;
    int ticks = 0;

    (void)state;
    lc.loop = rlt_loop_new(NULL);
    rl_callback_init(&lc.cb, late_cb, &lc);
    for (int i = 0; i < 20; i++) {
        rl_timer t;

        assert_int_equal(pthread_create(&th, NULL, late_thread, &lc), 0);
        if (!rlt_run_until_count(lc.loop, &lc.runs, i + 1, 10000))
            fail_msg("round %d: the wake did not end a 10 s wait", i);
        pthread_join(th, NULL);
        /* Only a 2 ms timer is left: the wait must end with it. */
        rl_timer_init(&t, tick_cb, &ticks);
        assert_int_equal(rl_timer_start(lc.loop, &t, 2 * RLT_MS), 0);
        while (ticks == i)
            assert_true(rl_loop_run(lc.loop, RL_RUN_ONCE) >= 0);
    }
    RLT_ASSERT_OK();
    rl_loop_free(lc.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_four_threads),
        RLT_TEST(test_wakes_sleeping_loop),
        RLT_TEST(test_from_loop_thread),
        RLT_TEST(test_wake_then_short_wait),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
