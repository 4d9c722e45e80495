/* The loop object, shared by the core and the backends (internal). */
#ifndef RL_LOOP_INTERNAL_H
#define RL_LOOP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "list.h"
#include "policy/backend.h"
#include "ringloop.h"

/* A heap slot keeps the deadline next to the timer, so that sifting
 * compares without dereferencing timers (the seq breaks ties). */
struct rl_timer_slot {
    uint64_t deadline;
    rl_timer *t;
};

struct rl_timer_heap {
    struct rl_timer_slot *v;
    uint32_t n;
    uint32_t cap;
};

struct rl_loop {
    const struct rl_backend_ops *ops;
    void *backend; /* the backend's own state */

    uint64_t now; /* cached monotonic ns */
    struct rl_list ready;
    struct rl_timer_heap timers;
    uint64_t timer_seq;

    /* Thread-safe queue: a Treiber stack, reversed by the loop on drain. */
    _Atomic(rl_callback *) ts_head;
    atomic_int sleeping;     /* the loop is in (or about to enter) wait */
    atomic_int wake_pending; /* a wake() was sent and not yet consumed */

    unsigned pending; /* ops in flight */
    unsigned fork_gen;
    bool stop;
    bool brk;
    bool freeing; /* rl_loop_free() runs: rl_submit() refuses */
    bool running;

    rl_block_fn block_before;
    rl_block_fn block_after;
    void *block_arg;
    void *data; /* the embedder's */

    /* Counted on the loop thread only; see rl_loop_stats(). The clock is
     * read for wait_ns and busy_ns only once timing is set (by the first
     * rl_loop_stats() or reset): until somebody asks, the loop reads no
     * clock for them. block_t0: when the current sleep began (0: not
     * timed); iter_wait_ns: how long this iteration slept. timers_started
     * is timer_seq - timer_seq0. */
    struct rl_loop_stats stats;
    uint64_t block_t0;
    uint64_t iter_wait_ns;
    uint64_t timer_seq0;
    bool timing;

    struct rl_pool *pool; /* the worker pool, NULL until first needed */

    struct rl_loop_config cfg; /* with defaults filled in */
    unsigned disable;          /* features switched off (cfg | env) */
    int fallback_errno;
    char fallback_reason[192];
};

uint64_t rl__clock_ns(void);

/*
 * Backends wrap the syscall that may sleep (timeout != 0) in these, and
 * dispatch no completion in between. The time in between (hooks included:
 * retaking an interpreter lock is not the loop's work) is the loop's wait
 * time: two clock reads per sleep once timing is on, none before.
 */
static inline void rl__block_begin(rl_loop *loop)
{
    if (loop->timing)
        loop->block_t0 = rl__clock_ns();
    if (loop->block_before)
        loop->block_before(loop, loop->block_arg);
}

static inline void rl__block_end(rl_loop *loop)
{
    uint64_t dt;

    if (loop->block_after)
        loop->block_after(loop, loop->block_arg);
    if (loop->block_t0) {
        dt = rl__clock_ns() - loop->block_t0;
        loop->block_t0 = 0;
        loop->stats.wait_ns += dt;
        loop->iter_wait_ns += dt;
    }
}

/* loop/pool.c: the worker pool for file ops that would block. */
#define RL_POOL_DEFAULT_THREADS 4
#define RL_POOL_MAX_THREADS 1024
/* op->state bit: the pool holds op (cancel goes to the pool). */
#define RL__OP_POOL 0x100u
#define RL__OP_STATE_MASK 0xffu
/*
 * Hand op (in flight, counted pending) to the pool, from a backend's
 * submit() or wait(): its final completion comes from the pool (through the
 * thread-safe queue), never from inside this call. `done`: bytes of a
 * READ/WRITE the backend already moved (the pool does the rest and adds
 * them to the result). 0 or -errno (then the op is not taken).
 */
int rl__pool_submit(rl_loop *loop, rl_op *op, size_t done);
/* Cancel a pool op: -ECANCELED if it has not started, else nothing (the
 * real result comes). 0. */
int rl__pool_cancel(rl_loop *loop, rl_op *op);
/* Cancel the pool's ops on fd that have not started (fd < 0: all). */
void rl__pool_cancel_fd(rl_loop *loop, int fd);
/* rl_loop_free(): finish every pool op (running ones complete), join the
 * workers, free the pool. */
void rl__pool_free(rl_loop *loop);
/* In a forked child, after the backend's fork(). */
void rl__pool_fork(rl_loop *loop);
/* Validate cfg.pool_threads, or fill it from RINGLOOP_POOL_THREADS / the
 * default. 0 or -EINVAL. */
int rl__pool_threads_config(unsigned *threads);

/* loop/timer.c */
int rl__timers_init(rl_loop *loop);
void rl__timers_fini(rl_loop *loop);
/* Deadline of the earliest armed timer, or UINT64_MAX. */
uint64_t rl__timers_next(const rl_loop *loop);
/* Move timers due at loop->now to the ready queue, earliest first. */
void rl__timers_expire(rl_loop *loop);

#endif /* RL_LOOP_INTERNAL_H */
