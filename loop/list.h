/* Intrusive circular doubly linked list (static inline, internal). */
#ifndef RL_LIST_H
#define RL_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "ringloop.h"

#define rl_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void rl_list_init(struct rl_list *h)
{
    h->next = h->prev = h;
}

static inline bool rl_list_empty(const struct rl_list *h)
{
    return h->next == h;
}

/* True if n is linked into some list (after rl_list_init/rl_list_del). */
static inline bool rl_list_linked(const struct rl_list *n)
{
    return n->next != NULL && n->next != n;
}

static inline void rl_list_add_tail(struct rl_list *h, struct rl_list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void rl_list_del(struct rl_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Move all of src to the tail of dst; src becomes empty. */
static inline void rl_list_splice_tail(struct rl_list *dst, struct rl_list *src)
{
    if (rl_list_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    rl_list_init(src);
}

static inline struct rl_list *rl_list_pop(struct rl_list *h)
{
    struct rl_list *n;

    if (rl_list_empty(h))
        return NULL;
    n = h->next;
    rl_list_del(n);
    return n;
}

#endif /* RL_LIST_H */
