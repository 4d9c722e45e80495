/*
 * Loops waking loops (loop/loop.c rl_call_threadsafe from another loop's
 * thread, the msg_ring wake in uring/uring.c) and handing file descriptors
 * to each other (rl_loop_send_fd).
 *
 * Tokens travel around a ring of loops, each loop on its own thread, each
 * hop an rl_call_threadsafe() made from a callback of the sending loop: so
 * between io_uring loops with msg_ring on the wake is a ring message, else
 * an eventfd write. A lost wake stalls a token; every loop's watchdog timer
 * notices a round of WATCHDOG_MS without progress and fails the test (a
 * bound, never a speed assertion). Mixed rings (epoll and io_uring loops)
 * take the eventfd path between unlike loops.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

#define MAX_LOOPS 8
#define MAX_TOKENS 16
#define WATCHDOG_MS 5000u

struct ring;

struct side {
    struct ring *r;
    int id;
    rl_loop *loop;
    rl_timer watchdog;
    long last_hops;
    rl_callback stop_cb;
    pthread_t th;
};

struct token {
    rl_callback cb;
    struct ring *r;
    int at; /* the loop it is queued to */
};

struct ring {
    int nloops;
    long target_hops;
    struct side sides[MAX_LOOPS];
    struct token tokens[MAX_TOKENS];
    int ntokens;
    atomic_long hops;
    atomic_int done;
    atomic_int failed;
    atomic_int call_errors;
    char why[256];
};

static void ring_fail(struct ring *r, const char *why)
{
    if (!atomic_exchange(&r->failed, 1))
        snprintf(r->why, sizeof(r->why), "%s", why);
}

static void stop_cb(rl_loop *loop, rl_callback *cb)
{
    (void)cb;
    rl_loop_stop(loop);
}

/* Stop every loop (each gets its own node, once). */
static void ring_finish(struct ring *r)
{
    if (atomic_exchange(&r->done, 1))
        return;
    for (int i = 0; i < r->nloops; i++)
        rl_call_threadsafe(r->sides[i].loop, &r->sides[i].stop_cb);
}

static void token_cb(rl_loop *loop, rl_callback *cb)
{
    struct token *t = cb->data;
    struct ring *r = t->r;
    long n;

    (void)loop;
    if (atomic_load(&r->done))
        return;
    n = atomic_fetch_add(&r->hops, 1) + 1;
    if (n >= r->target_hops) {
        ring_finish(r);
        return;
    }
    t->at = (t->at + 1) % r->nloops;
    if (rl_call_threadsafe(r->sides[t->at].loop, &t->cb) != 0)
        atomic_fetch_add(&r->call_errors, 1);
}

static void watchdog_cb(rl_loop *loop, rl_timer *tm)
{
    struct side *s = tm->data;
    struct ring *r = s->r;
    long n = atomic_load(&r->hops);

    if (atomic_load(&r->done)) {
        rl_loop_stop(loop);
        return;
    }
    if (n == s->last_hops) {
        ring_fail(r, "no token moved for a whole watchdog period: a wake "
                     "was lost");
        ring_finish(r);
        rl_loop_stop(loop);
        return;
    }
    s->last_hops = n;
    rl_timer_start(loop, tm, WATCHDOG_MS * RLT_MS);
}

static void *side_thread(void *p)
{
    struct side *s = p;
    int ret;

    rl_timer_start(s->loop, &s->watchdog, WATCHDOG_MS * RLT_MS);
    do
        ret = rl_loop_run(s->loop, RL_RUN_DEFAULT);
    while (ret > 0 && !atomic_load(&s->r->done));
    if (ret < 0)
        ring_fail(s->r, "rl_loop_run failed");
    rl_timer_stop(s->loop, &s->watchdog);
    return NULL;
}

/* The backend of loop i: the environment's, or from epoll_mask when
 * mixing (bit set: epoll, clear: io_uring). */
static rl_loop *ring_loop_new(int i, int mixed, unsigned epoll_mask)
{
    struct rl_loop_config cfg;

    rl_loop_config_init(&cfg);
    if (mixed)
        cfg.backend =
            epoll_mask & (1u << i) ? RL_BACKEND_EPOLL : RL_BACKEND_URING;
    return rlt_loop_new(&cfg);
}

static bool msg_capable(rl_loop *loop)
{
    return rl_loop_backend(loop) == RL_BACKEND_URING &&
           (rl_loop_features(loop) & RL_FEAT_MSG_RING);
}

static void ring_run(int nloops, int ntokens, long hops, int mixed,
                     unsigned epoll_mask)
{
    struct ring *r = calloc(1, sizeof(*r));
    struct rl_loop_stats st;
    bool any_msg_pair = false;

    assert_non_null(r);
    r->nloops = nloops;
    r->ntokens = ntokens;
    r->target_hops = hops;
    for (int i = 0; i < nloops; i++) {
        struct side *s = &r->sides[i];

        s->r = r;
        s->id = i;
        s->loop = ring_loop_new(i, mixed, epoll_mask);
        rl_timer_init(&s->watchdog, watchdog_cb, s);
        rl_callback_init(&s->stop_cb, stop_cb, s);
    }
    for (int i = 0; i < nloops; i++)
        if (msg_capable(r->sides[i].loop) &&
            msg_capable(r->sides[(i + 1) % nloops].loop))
            any_msg_pair = true;
    /* Tokens start spread over the loops, queued before the threads run. */
    for (int k = 0; k < ntokens; k++) {
        struct token *t = &r->tokens[k];

        t->r = r;
        t->at = k % nloops;
        rl_callback_init(&t->cb, token_cb, t);
        assert_int_equal(rl_call_threadsafe(r->sides[t->at].loop, &t->cb), 0);
    }
    for (int i = 0; i < nloops; i++)
        assert_int_equal(
            pthread_create(&r->sides[i].th, NULL, side_thread, &r->sides[i]),
            0);
    for (int i = 0; i < nloops; i++)
        pthread_join(r->sides[i].th, NULL);
    if (atomic_load(&r->failed))
        fail_msg("%s (hops %ld of %ld)", r->why, atomic_load(&r->hops), hops);
    assert_int_equal(atomic_load(&r->call_errors), 0);
    assert_true(atomic_load(&r->hops) >= hops);

    /* Ring messages go only from and to io_uring loops with msg_ring (the
     * stop calls at the end go from the finishing loop to every loop). */
    uint64_t sent = 0;
    int capable = 0;
    for (int i = 0; i < nloops; i++)
        capable += msg_capable(r->sides[i].loop);
    for (int i = 0; i < nloops; i++) {
        rl_loop_stats(r->sides[i].loop, &st);
        if (st.msg_ring_sent && (!msg_capable(r->sides[i].loop) || capable < 2))
            fail_msg("loop %d (%s) sent %llu ring messages with no loop "
                     "able to take them",
                     i, rl_loop_backend_name(r->sides[i].loop),
                     (unsigned long long)st.msg_ring_sent);
        sent += st.msg_ring_sent;
    }
    /* Loops sleep between hops often enough that some wake is needed. */
    if (any_msg_pair && sent == 0)
        fail_msg("io_uring loops with msg_ring on sent no ring message in "
                 "%ld hops",
                 hops);
    fprintf(stderr, "  %d loops, %d tokens, %ld hops: %llu ring messages\n",
            nloops, ntokens, hops, (unsigned long long)sent);
    for (int i = 0; i < nloops; i++)
        rl_loop_free(r->sides[i].loop);
    free(r);
}

/* Two loops bouncing one token: the target sleeps at nearly every hop. */
static void test_pingpong(void **state)
{
    (void)state;
    ring_run(2, 1, 20000, 0, 0);
}

/* Four loops, eight tokens: wakes cross while the targets go to sleep and
 * wake up, several senders at once per target. */
static void test_many_concurrent(void **state)
{
    (void)state;
    ring_run(4, 8, 40000, 0, 0);
}

/* epoll and io_uring loops in one ring: every hop crosses backends. */
static void test_mixed_backends(void **state)
{
    (void)state;
    if (rlt_uring_probe() < 0)
        skip();
    ring_run(4, 4, 20000, 1, 0x5u);
    ring_run(3, 2, 10000, 1, 0x1u); /* uring -> uring, and across */
}

/* ---- rl_loop_send_fd ---------------------------------------------------- */

struct fdh {
    rl_loop *to;
    rl_fd_msg m;
    int fd;        /* what arrived (or -errno) */
    int calls;     /* fn runs */
    pthread_t thr; /* where fn ran */
    int sv[2];
    atomic_int delivered;
};

static void fdh_fn(rl_loop *loop, rl_fd_msg *m, int fd)
{
    struct fdh *h = m->data;

    h->calls++;
    h->fd = fd;
    h->thr = pthread_self();
    if (loop != h->to)
        h->calls += 100; /* wrong loop: fails below */
    if (fd >= 0) {
        /* the fd works on the receiving side */
        if (write(fd, "x", 1) != 1)
            h->calls += 1000;
        close(fd);
    }
    atomic_store(&h->delivered, 1);
    rl_loop_stop(loop);
}

struct fdh_sender {
    rl_loop *from;
    struct fdh *h;
    rl_callback cb;
    int ret;
};

static void sender_cb(rl_loop *loop, rl_callback *cb)
{
    struct fdh_sender *s = cb->data;

    s->ret = rl_loop_send_fd(s->h->to, &s->h->m, s->h->sv[1], fdh_fn, s->h);
    rl_loop_stop(loop);
}

/* The caller armed a guard timer that stops the loop: bounded. */
static void *run_default(void *p)
{
    rl_loop *loop = p;

    rl_loop_run(loop, RL_RUN_DEFAULT);
    return NULL;
}

static void guard_stop(rl_loop *loop, rl_timer *t)
{
    (void)t;
    rl_loop_stop(loop);
}

/* From loop A's callback to loop B running on another thread. */
static void test_send_fd(void **state)
{
    struct fdh h;
    struct fdh_sender s;
    rl_timer guard;
    pthread_t tb;
    char c = 0;

    (void)state;
    memset(&h, 0, sizeof(h));
    memset(&s, 0, sizeof(s));
    h.fd = -1;
    rlt_socketpair(h.sv);
    h.to = rlt_loop_new(NULL);
    s.from = rlt_loop_new(NULL);
    s.h = &h;
    rl_timer_init(&guard, guard_stop, NULL);
    assert_int_equal(rl_timer_start(h.to, &guard, RLT_GUARD_MS * RLT_MS), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_default, h.to), 0);
    /* let B go to sleep; then A's callback hands the fd over */
    rl_callback_init(&s.cb, sender_cb, &s);
    assert_int_equal(rl_call_soon(s.from, &s.cb), 0);
    rl_loop_run(s.from, RL_RUN_DEFAULT);
    assert_int_equal(s.ret, 0);
    pthread_join(tb, NULL);
    if (!atomic_load(&h.delivered))
        fail_msg("the fd was not delivered before the guard timer");
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.fd, h.sv[1]);
    assert_true(pthread_equal(h.thr, tb));
    assert_int_equal(read(h.sv[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    rl_timer_stop(h.to, &guard);
    close(h.sv[0]);
    rl_loop_free(s.from);
    rl_loop_free(h.to);
}

static void breaker(rl_loop *loop, rl_callback *cb)
{
    (void)cb;
    rl_loop_break(loop);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* The target is freed before delivery: the fd is closed and fn is called
 * with -ECANCELED, from the thread-safe queue and from the ready queue. */
static void test_send_fd_target_freed(void **state)
{
    struct fdh h1, h2;
    rl_callback brk;
    rl_loop *to;
    char c;

    (void)state;
    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    rlt_socketpair(h1.sv);
    rlt_socketpair(h2.sv);
    to = rlt_loop_new(NULL);
    h1.to = h2.to = to;

    /* h2: moved to the ready queue, then the iteration breaks before it */
    rl_callback_init(&brk, breaker, NULL);
    assert_int_equal(rl_call_soon(to, &brk), 0);
    assert_int_equal(rl_loop_send_fd(to, &h2.m, h2.sv[1], fdh_fn, &h2), 0);
    rl_loop_run(to, RL_RUN_NOWAIT);
    assert_int_equal(h2.calls, 0);
    /* h1: still in the thread-safe queue */
    assert_int_equal(rl_loop_send_fd(to, &h1.m, h1.sv[1], fdh_fn, &h1), 0);
    assert_true(fd_open(h1.sv[1]) && fd_open(h2.sv[1]));

    rl_loop_free(to);
    assert_int_equal(h1.calls, 1);
    assert_int_equal(h1.fd, -ECANCELED);
    assert_int_equal(h2.calls, 1);
    assert_int_equal(h2.fd, -ECANCELED);
    /* closed by the loop: the peers see EOF */
    assert_false(fd_open(h1.sv[1]));
    assert_false(fd_open(h2.sv[1]));
    assert_int_equal(read(h1.sv[0], &c, 1), 0);
    assert_int_equal(read(h2.sv[0], &c, 1), 0);
    close(h1.sv[0]);
    close(h2.sv[0]);
}

static void test_send_fd_bad(void **state)
{
    rl_fd_msg m;
    rl_loop *to;

    (void)state;
    to = rlt_loop_new(NULL);
    assert_int_equal(rl_loop_send_fd(to, &m, -1, NULL, NULL), -EBADF);
    rl_loop_free(to);
}

/* ---- fork --------------------------------------------------------------- */

struct forker {
    rl_loop *other;
    rl_callback cb, in_child;
    pid_t pid;
    uint64_t child_sent;
};

/* In a forked child, inside the parent loop's callback: the wake must not
 * go out on the parent's ring (nor to the other loop's): the child's copies
 * are stale until rl_loop_fork(), so it takes the eventfd path. */
static void fork_cb(rl_loop *loop, rl_callback *cb)
{
    struct forker *f = cb->data;
    struct rl_loop_stats st;

    f->pid = fork();
    if (f->pid == 0) {
        rl_loop_stats(loop, &st);
        uint64_t before = st.msg_ring_sent;
        rl_call_threadsafe(f->other, &f->in_child);
        rl_loop_stats(loop, &st);
        _exit(st.msg_ring_sent == before ? 0 : 1);
    }
    rl_loop_stop(loop);
}

static void nop_cb(rl_loop *loop, rl_callback *cb)
{
    (void)loop;
    (void)cb;
}

static void test_fork_child_no_message(void **state)
{
    struct forker f;
    rl_callback stop, nop;
    rl_timer guard;
    pthread_t th;
    rl_loop *a;
    int status = -1, runs = 0;

    (void)state;
    memset(&f, 0, sizeof(f));
    a = rlt_loop_new(NULL);
    f.other = rlt_loop_new(NULL);
    /* The other loop sleeps on its own thread: the child's copy of it says
     * so, and a wake is due. */
    rl_timer_init(&guard, guard_stop, NULL);
    assert_int_equal(rl_timer_start(f.other, &guard, RLT_GUARD_MS * RLT_MS), 0);
    assert_int_equal(pthread_create(&th, NULL, run_default, f.other), 0);
    rlt_run_for(a, 50);
    rl_callback_init(&f.cb, fork_cb, &f);
    rl_callback_init(&f.in_child, nop_cb, NULL);
    assert_int_equal(rl_call_soon(a, &f.cb), 0);
    rl_loop_run(a, RL_RUN_DEFAULT);
    assert_true(f.pid > 0);
    assert_int_equal(waitpid(f.pid, &status, 0), f.pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the forked child sent a ring message on a stale ring");
    /* The parent's loops still work: a wake from a's thread reaches the
     * other loop, which stops. */
    rl_callback_init(&stop, stop_cb, NULL);
    rl_callback_init(&nop, nop_cb, &runs);
    assert_int_equal(rl_call_soon(a, &nop), 0);
    rl_loop_run(a, RL_RUN_NOWAIT);
    assert_int_equal(rl_call_threadsafe(f.other, &stop), 0);
    pthread_join(th, NULL);
    rl_timer_stop(f.other, &guard);
    rl_loop_free(a);
    rl_loop_free(f.other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_pingpong),
        RLT_TEST(test_many_concurrent),
        RLT_TEST(test_mixed_backends),
        RLT_TEST(test_send_fd),
        RLT_TEST(test_send_fd_target_freed),
        RLT_TEST(test_send_fd_bad),
        RLT_TEST(test_fork_child_no_message),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
