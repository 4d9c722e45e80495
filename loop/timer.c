/*
 * Timers: a 4-ary min-heap of (deadline, timer) slots keyed on
 * (deadline, seq).
 * The sequence number makes equal deadlines fire in start order. The heap
 * array grows by doubling; it never shrinks while the loop lives.
 */
#include <errno.h>
#include <stdlib.h>

#include "loop.h"

#define HEAP_D 4
#define NOT_ARMED UINT32_MAX

static inline bool slot_before(const struct rl_timer_slot *a,
                               const struct rl_timer_slot *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->t->seq < b->t->seq);
}

static inline void heap_set(struct rl_timer_heap *h, uint32_t i,
                            struct rl_timer_slot s)
{
    h->v[i] = s;
    s.t->index = i;
}

static void sift_up(struct rl_timer_heap *h, uint32_t i)
{
    struct rl_timer_slot s = h->v[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / HEAP_D;
        if (!slot_before(&s, &h->v[parent]))
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, s);
}

static void sift_down(struct rl_timer_heap *h, uint32_t i)
{
    struct rl_timer_slot s = h->v[i];

    for (;;) {
        uint32_t first = i * HEAP_D + 1, best = i, c, end;
        const struct rl_timer_slot *bs = &s;

        if (first >= h->n)
            break;
        end = first + HEAP_D < h->n ? first + HEAP_D : h->n;
        for (c = first; c < end; c++) {
            if (slot_before(&h->v[c], bs)) {
                best = c;
                bs = &h->v[c];
            }
        }
        if (best == i)
            break;
        heap_set(h, i, *bs);
        i = best;
    }
    heap_set(h, i, s);
}

static void heap_remove(struct rl_timer_heap *h, rl_timer *t)
{
    uint32_t i = t->index;
    struct rl_timer_slot last = h->v[--h->n];

    t->index = NOT_ARMED;
    if (i == h->n)
        return;
    heap_set(h, i, last);
    if (i > 0 && slot_before(&last, &h->v[(i - 1) / HEAP_D]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

static int heap_reserve(struct rl_timer_heap *h)
{
    uint32_t cap;
    struct rl_timer_slot *v;

    if (h->n < h->cap)
        return 0;
    cap = h->cap ? h->cap * 2 : 64;
    v = realloc(h->v, (size_t)cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

static void timer_run(rl_loop *loop, rl_callback *cb)
{
    rl_timer *t = rl_container_of(cb, rl_timer, expire);

    t->fn(loop, t);
}

int rl__timers_init(rl_loop *loop)
{
    loop->timers.v = NULL;
    loop->timers.n = loop->timers.cap = 0;
    return heap_reserve(&loop->timers);
}

void rl__timers_fini(rl_loop *loop)
{
    struct rl_timer_heap *h = &loop->timers;

    while (h->n)
        h->v[--h->n].t->index = NOT_ARMED;
    free(h->v);
    h->v = NULL;
    h->cap = 0;
}

uint64_t rl__timers_next(const rl_loop *loop)
{
    return loop->timers.n ? loop->timers.v[0].deadline : UINT64_MAX;
}

void rl__timers_expire(rl_loop *loop)
{
    struct rl_timer_heap *h = &loop->timers;

    while (h->n && h->v[0].deadline <= loop->now) {
        rl_timer *t = h->v[0].t;
        heap_remove(h, t);
        loop->stats.timers_fired++;
        rl_call_soon(loop, &t->expire);
    }
}

void rl_timer_init(rl_timer *t, rl_timer_fn fn, void *data)
{
    t->deadline = 0;
    t->seq = 0;
    t->index = NOT_ARMED;
    t->fn = fn;
    t->data = data;
    rl_callback_init(&t->expire, timer_run, t);
}

int rl_timer_start_at(rl_loop *loop, rl_timer *t, uint64_t deadline)
{
    struct rl_timer_heap *h = &loop->timers;
    int ret;

    if (!t->fn)
        return -EINVAL;
    rl_timer_stop(loop, t);
    ret = heap_reserve(h);
    if (ret < 0)
        return ret;
    t->deadline = deadline;
    t->seq = loop->timer_seq++;
    h->v[h->n].deadline = deadline;
    h->v[h->n].t = t;
    t->index = h->n++;
    sift_up(h, t->index);
    return 0;
}

int rl_timer_start(rl_loop *loop, rl_timer *t, uint64_t timeout_ns)
{
    uint64_t deadline = loop->now + timeout_ns;

    if (deadline < loop->now) /* saturate instead of wrapping */
        deadline = UINT64_MAX;
    return rl_timer_start_at(loop, t, deadline);
}

bool rl_timer_stop(rl_loop *loop, rl_timer *t)
{
    if (t->index != NOT_ARMED) {
        heap_remove(&loop->timers, t);
        return true;
    }
    return rl_callback_cancel(loop, &t->expire);
}

bool rl_timer_active(const rl_timer *t)
{
    return t->index != NOT_ARMED || t->expire.queued;
}

size_t rl_loop_timer_count(const rl_loop *loop)
{
    return loop->timers.n;
}
