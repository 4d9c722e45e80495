/*
 * The loop: creation, the run loop phases, call_soon, the thread-safe queue
 * and fork detection.
 *
 * One iteration, in asyncio's order (BaseEventLoop._run_once):
 *   1. update time, compute the wait timeout (0 if callbacks are ready or a
 *      stop was asked for, else until the earliest timer)
 *   2. submit and wait once, dispatching every completion (backend)
 *   3. update time, move thread-safe callbacks to the ready queue
 *   4. move expired timers to the ready queue
 *   5. run the callbacks that were ready when this phase began
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

static atomic_uint fork_generation;
/* The loop whose rl_loop_run() runs on this thread (the innermost one),
 * for the msg_ring wake in rl_call_threadsafe(). */
static _Thread_local rl_loop *current_loop;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

uint64_t rl__clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rl_loop_config_init(struct rl_loop_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

static int config_normalize(struct rl_loop_config *cfg)
{
    if (cfg->backend < RL_BACKEND_AUTO || cfg->backend > RL_BACKEND_EPOLL)
        return -EINVAL;
    if (!cfg->sq_entries)
        cfg->sq_entries = 256;
    /* io_uring wants powers of two; 32768 is the kernel's buffer-ring cap */
    if (cfg->bufring_entries & (cfg->bufring_entries - 1) ||
        cfg->bufring_entries > 32768 || cfg->sq_entries > 32768)
        return -EINVAL;
    return rl__pool_threads_config(&cfg->pool_threads);
}

int rl_loop_new(rl_loop **out, const struct rl_loop_config *cfg)
{
    const char *envenable = getenv("RINGLOOP_ENABLE");
    unsigned enable = 0;
    rl_loop *loop;
    int ret;

    /* As with RINGLOOP_DISABLE, a typo would silently test the wrong thing:
     * refuse it. */
    if (envenable && rl_feature_parse(envenable, &enable) < 0)
        return -EINVAL;

    pthread_once(&atfork_once, install_atfork);
    loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    if (cfg)
        loop->cfg = *cfg;
    loop->cfg.enable |= enable; /* the backend drops what disable names */
    ret = config_normalize(&loop->cfg);
    if (ret < 0)
        goto err_free_loop;
    rl_list_init(&loop->ready);
    atomic_init(&loop->ts_head, NULL);
    atomic_init(&loop->sleeping, 0);
    atomic_init(&loop->wake_pending, 0);
    ret = rl__timers_init(loop);
    if (ret < 0)
        goto err_free_loop;
    loop->fork_gen = atomic_load(&fork_generation);
    loop->now = rl__clock_ns();
    ret = rl__backend_select(loop, &loop->cfg);
    if (ret < 0)
        goto err_free_timers;
    *out = loop;
    return 0;

err_free_timers:
    rl__timers_fini(loop);
err_free_loop:
    free(loop);
    return ret;
}

static void fd_msg_deliver(rl_loop *loop, rl_callback *cb);

/* rl_loop_free(): the fd hand-offs not delivered yet, in the thread-safe
 * queue or already in the ready queue, are closed and called back with
 * -ECANCELED; every other callback is left alone. */
static void cancel_fd_msgs(rl_loop *loop)
{
    rl_callback *cb, *next;
    struct rl_list *n, *nn;
    rl_fd_msg *m;

    cb = atomic_exchange(&loop->ts_head, NULL);
    for (; cb; cb = next) {
        next = cb->next_ts;
        if (cb->fn != fd_msg_deliver || cb->queued)
            continue;
        cb->next_ts = NULL;
        m = cb->data;
        close(m->fd);
        m->fn(loop, m, -ECANCELED);
    }
    for (n = loop->ready.next; n != &loop->ready; n = nn) {
        nn = n->next;
        cb = rl_container_of(n, rl_callback, node);
        if (cb->fn != fd_msg_deliver)
            continue;
        rl_list_del(&cb->node);
        cb->queued = 0;
        m = cb->data;
        close(m->fd);
        m->fn(loop, m, -ECANCELED);
    }
}

void rl_loop_free(rl_loop *loop)
{
    int rounds;

    if (!loop || loop->running)
        return;
    if (loop->fork_gen != atomic_load(&fork_generation))
        rl_loop_fork(loop);
    /* Cancel what is in flight and let the final callbacks run; they
     * cannot submit more (-ECANCELED). Bounded so that a misbehaving
     * kernel cannot hang us. */
    loop->freeing = true;
    /* Before the pool goes: it walks the queues the pool's delivery
     * callback may be on. */
    cancel_fd_msgs(loop);
    rl__pool_free(loop); /* its ops complete first, workers joined */
    if (loop->pending)
        loop->ops->cancel(loop, NULL, -1);
    for (rounds = 0; loop->pending && rounds < 200; rounds++)
        if (loop->ops->wait(loop, 50 * 1000 * 1000) < 0)
            break;
    loop->ops->fini(loop);
    rl__timers_fini(loop);
    free(loop);
}

int rl_loop_flush(rl_loop *loop)
{
    if (loop->fork_gen != atomic_load(&fork_generation))
        return 0; /* the next run re-creates the backend first */
    return loop->ops->flush(loop);
}

uint64_t rl_loop_now(const rl_loop *loop)
{
    return loop->now;
}

uint64_t rl_loop_update_time(rl_loop *loop)
{
    loop->now = rl__clock_ns();
    return loop->now;
}

void rl_loop_stop(rl_loop *loop)
{
    loop->stop = true;
}

void rl_loop_break(rl_loop *loop)
{
    loop->brk = true;
}

void rl_loop_set_block_hooks(rl_loop *loop, rl_block_fn before,
                             rl_block_fn after, void *arg)
{
    loop->block_before = before;
    loop->block_after = after;
    loop->block_arg = arg;
}

void rl_loop_set_data(rl_loop *loop, void *data)
{
    loop->data = data;
}

void *rl_loop_get_data(const rl_loop *loop)
{
    return loop->data;
}

const char *rl_loop_backend_name(const rl_loop *loop)
{
    return loop->ops->name;
}

int rl_loop_backend(const rl_loop *loop)
{
    return loop->ops->kind;
}

int rl_loop_fallback_errno(const rl_loop *loop)
{
    return loop->fallback_errno;
}

const char *rl_loop_fallback_reason(const rl_loop *loop)
{
    return loop->fallback_reason;
}

unsigned rl_loop_features(const rl_loop *loop)
{
    return loop->ops->capabilities(loop);
}

unsigned rl_loop_pending(const rl_loop *loop)
{
    return loop->pending;
}

int rl_loop_fd_closed(rl_loop *loop, int fd)
{
    if (fd < 0)
        return -EBADF;
    rl__pool_cancel_fd(loop, fd); /* none may start on a reused number */
    return loop->ops->fd_closed(loop, fd);
}

int rl_loop_fork(rl_loop *loop)
{
    int ret;

    loop->fork_gen = atomic_load(&fork_generation);
    atomic_store(&loop->sleeping, 0);
    atomic_store(&loop->wake_pending, 0);
    ret = loop->ops->fork(loop);
    rl__pool_fork(loop); /* after: its completions wake the new backend */
    return ret;
}

/* ---- statistics --------------------------------------------------------- */

int rl_loop_stats(const rl_loop *loop, struct rl_loop_stats *out)
{
    rl_loop *l = (rl_loop *)loop; /* backends read, never change, state */

    *out = loop->stats;
    l->timing = true; /* somebody reads: measure time from now on */
    out->timers_started = loop->timer_seq - loop->timer_seq0;
    out->timers_armed = loop->timers.n;
    out->pending = loop->pending;
    if (loop->ops->stats)
        loop->ops->stats(l, out);
    return 0;
}

void rl_loop_stats_count(rl_loop *loop, int call, ssize_t res)
{
    if (!loop)
        return; /* an embedder's loop already freed: nothing to count */
    if (call == RL_STATS_SEND) {
        loop->stats.send_calls++;
        loop->stats.bytes_sent += res > 0 ? (uint64_t)res : 0;
    } else {
        loop->stats.recv_calls++;
        loop->stats.bytes_received += res > 0 ? (uint64_t)res : 0;
    }
}

void rl_loop_stats_reset(rl_loop *loop)
{
    uint64_t inflight[RL_OP__COUNT];

    /* the per-opcode gauges are kept up to date: keep them */
    memcpy(inflight, loop->stats.inflight, sizeof(inflight));
    memset(&loop->stats, 0, sizeof(loop->stats));
    memcpy(loop->stats.inflight, inflight, sizeof(inflight));
    loop->timer_seq0 = loop->timer_seq;
    loop->timing = true;
    if (loop->ops->stats)
        loop->ops->stats(loop, NULL);
}

/* ---- call_soon and the thread-safe queue ------------------------------- */

void rl_callback_init(rl_callback *cb, rl_callback_fn fn, void *data)
{
    rl_list_init(&cb->node);
    cb->fn = fn;
    cb->data = data;
    cb->next_ts = NULL;
    cb->queued = 0;
}

int rl_call_soon(rl_loop *loop, rl_callback *cb)
{
    if (cb->queued)
        return -EBUSY;
    cb->queued = 1;
    rl_list_add_tail(&loop->ready, &cb->node);
    return 0;
}

bool rl_callback_cancel(rl_loop *loop, rl_callback *cb)
{
    (void)loop;
    if (!cb->queued)
        return false;
    rl_list_del(&cb->node);
    cb->queued = 0;
    return true;
}

/*
 * Wake a sleeping loop: by a ring message from the loop this thread runs
 * (msg_ring), when both have it and neither is a stale copy in a forked
 * child (the message would go out on, or to, the parent's ring), else by
 * the backend's wake().
 */
static void wake_loop(rl_loop *loop)
{
    rl_loop *from = current_loop;
    unsigned gen;

    if (from && from != loop && from->msg_wake &&
        from->msg_wake == loop->msg_wake) {
        gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
        if (from->fork_gen == gen && loop->fork_gen == gen &&
            from->msg_wake(from, loop) == 0)
            return;
    }
    loop->ops->wake(loop);
}

int rl_call_threadsafe(rl_loop *loop, rl_callback *cb)
{
    rl_callback *head =
        atomic_load_explicit(&loop->ts_head, memory_order_relaxed);

    do {
        cb->next_ts = head;
    } while (!atomic_compare_exchange_weak(&loop->ts_head, &head, cb));
    /* Pairs with the sleeping store + queue check in loop_iterate(). */
    if (atomic_load(&loop->sleeping) &&
        !atomic_exchange(&loop->wake_pending, 1))
        wake_loop(loop);
    return 0;
}

static void fd_msg_deliver(rl_loop *loop, rl_callback *cb)
{
    rl_fd_msg *m = cb->data;

    m->fn(loop, m, m->fd);
}

int rl_loop_send_fd(rl_loop *to, rl_fd_msg *m, int fd, rl_fd_msg_fn fn,
                    void *data)
{
    if (fd < 0)
        return -EBADF;
    rl_callback_init(&m->cb, fd_msg_deliver, m);
    m->fd = fd;
    m->fn = fn;
    m->data = data;
    return rl_call_threadsafe(to, &m->cb);
}

/* Move thread-safe callbacks to the ready queue in the order they came. */
static void drain_threadsafe(rl_loop *loop)
{
    rl_callback *cb, *rev = NULL, *next;

    if (!atomic_load_explicit(&loop->ts_head, memory_order_relaxed))
        return;
    cb = atomic_exchange(&loop->ts_head, NULL);
    for (; cb; cb = next) {
        next = cb->next_ts;
        cb->next_ts = rev;
        rev = cb;
    }
    for (cb = rev; cb; cb = next) {
        next = cb->next_ts;
        cb->next_ts = NULL;
        loop->stats.threadsafe_calls++;
        if (!cb->queued) {
            cb->queued = 1;
            rl_list_add_tail(&loop->ready, &cb->node);
        }
    }
}

/* Run the callbacks queued before this phase began; those they queue wait
 * for the next iteration. */
static void run_ready(rl_loop *loop)
{
    struct rl_list todo, *n;

    if (rl_list_empty(&loop->ready) || loop->brk)
        return;
    rl_list_init(&todo);
    rl_list_splice_tail(&todo, &loop->ready);
    while ((n = rl_list_pop(&todo))) {
        rl_callback *cb = rl_container_of(n, rl_callback, node);
        cb->queued = 0;
        loop->stats.callbacks++;
        cb->fn(loop, cb);
        if (loop->brk) {
            /* put the rest back in front of what was queued meanwhile */
            rl_list_splice_tail(&todo, &loop->ready);
            rl_list_splice_tail(&loop->ready, &todo);
            return;
        }
    }
}

static bool loop_alive(const rl_loop *loop)
{
    return loop->pending || loop->timers.n || !rl_list_empty(&loop->ready) ||
           atomic_load_explicit(&loop->ts_head, memory_order_relaxed);
}

static int64_t loop_timeout(rl_loop *loop, bool nowait)
{
    uint64_t next;

    if (nowait || loop->stop || !rl_list_empty(&loop->ready))
        return 0;
    next = rl__timers_next(loop);
    if (next == UINT64_MAX)
        return -1;
    return next > loop->now ? (int64_t)(next - loop->now) : 0;
}

static int loop_iterate(rl_loop *loop, bool nowait)
{
    uint64_t start;
    int64_t timeout;
    int ret;

    loop->brk = false;
    loop->now = start = rl__clock_ns();
    loop->iter_wait_ns = 0;
    timeout = loop_timeout(loop, nowait);
    if (timeout != 0) {
        atomic_store(&loop->sleeping, 1);
        if (atomic_load(&loop->ts_head))
            timeout = 0;
    }
    ret = loop->ops->wait(loop, timeout);
    atomic_store_explicit(&loop->sleeping, 0, memory_order_relaxed);
    atomic_store_explicit(&loop->wake_pending, 0, memory_order_relaxed);
    loop->now = rl__clock_ns();
    drain_threadsafe(loop);
    rl__timers_expire(loop);
    run_ready(loop);
    /* Once timing: one clock read per iteration, busy is what was not
     * spent asleep. */
    loop->stats.iterations++;
    if (loop->timing)
        loop->stats.busy_ns += rl__clock_ns() - start - loop->iter_wait_ns;
    return ret < 0 ? ret : 0;
}

int rl_loop_run(rl_loop *loop, int mode)
{
    rl_loop *prev;
    int ret = 0;

    if (mode < RL_RUN_DEFAULT || mode > RL_RUN_NOWAIT)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    if (loop->fork_gen != atomic_load(&fork_generation)) {
        ret = rl_loop_fork(loop);
        if (ret < 0)
            return ret;
    }
    loop->running = true;
    prev = current_loop;
    current_loop = loop;
    do {
        bool nowait = mode == RL_RUN_NOWAIT ||
                      (mode == RL_RUN_DEFAULT && !loop_alive(loop));
        ret = loop_iterate(loop, nowait);
    } while (ret == 0 && mode == RL_RUN_DEFAULT && !loop->stop && !loop->brk &&
             loop_alive(loop));
    current_loop = prev;
    loop->stop = false;
    loop->brk = false;
    loop->running = false;
    return ret < 0 ? ret : loop_alive(loop);
}
