/*
 * The backend interface: one versioned table of functions per backend.
 * Nothing outside policy/ and uring/ knows which backend a loop runs on.
 * New methods are only ever appended; `version` says how many there are.
 */
#ifndef RL_BACKEND_H
#define RL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ringloop.h"

#define RL_BACKEND_OPS_VERSION 3

struct rl_backend_ops {
    unsigned version;
    const char *name; /* "uring", "epoll" */
    int kind;         /* enum rl_backend_kind */

    /*
     * Set up loop->backend. `disable` holds the feature bits switched off.
     * On failure return -errno and write one sentence into why[whylen]
     * saying what failed ("io_uring_setup: Operation not permitted ...").
     */
    int (*init)(rl_loop *loop, const struct rl_loop_config *cfg,
                unsigned disable, char *why, size_t whylen);

    /*
     * Tear down. Called with no op in flight (the core cancels and drains
     * first), or after fork in the child (see fork).
     */
    void (*fini)(rl_loop *loop);

    /*
     * Start op (state already RL__OP_IN_FLIGHT, counted pending). Must not
     * call op->fn before returning: completions, even immediate ones, are
     * delivered from wait(). Returns 0 or -errno (then the op is not taken).
     */
    int (*submit)(rl_loop *loop, rl_op *op);

    /*
     * Request cancellation of op (op != NULL) or of every op on fd
     * (op == NULL). Never calls op->fn inline. 0 or -errno.
     */
    int (*cancel)(rl_loop *loop, rl_op *op, int fd);

    /*
     * Flush submissions, wait for completions at most timeout_ns (0: do not
     * block, < 0: no limit), and deliver every completion that is ready
     * through rl__op_complete(). Returns the number delivered, or -errno
     * for a fatal backend error. -EINTR is not fatal: return 0.
     */
    int (*wait)(rl_loop *loop, int64_t timeout_ns);

    /* Any thread: make a wait() in progress, or the next one, return. */
    void (*wake)(rl_loop *loop);

    /* Fast paths in use (enum rl_feature bits). */
    unsigned (*capabilities)(const rl_loop *loop);

    /* fd is about to be closed outside the loop; drop what refers to it. */
    int (*fd_closed)(rl_loop *loop, int fd);

    /*
     * In a forked child: drop the inherited kernel objects without touching
     * the parent's (no cancel, no unregister), set up a fresh instance, and
     * make every op the backend still holds complete with -ECANCELED: from
     * here or from the next wait() (which then must not sleep). 0 or -errno.
     */
    int (*fork)(rl_loop *loop);

    /* Version 2. */

    /*
     * Start what was submitted since the last wait() without delivering any
     * completion (those wait for the next wait()): at least every queued
     * RL_OP_CLOSE whose fd has no op submitted before it. 0 or -errno.
     */
    int (*flush)(rl_loop *loop);

    /* Version 3. */

    /*
     * What the backend keeps itself (the rest it counts in loop->stats):
     * add it to *out, or (out == NULL) take the current values as the new
     * zero. May be NULL.
     */
    void (*stats)(rl_loop *loop, struct rl_loop_stats *out);
};

extern const struct rl_backend_ops rl__uring_ops;
extern const struct rl_backend_ops rl__epoll_ops;

/* ---- Provided by the core to the backends (loop/op.c) ------------------ */

/* op states (op->state) */
#define RL__OP_IDLE 0u
#define RL__OP_IN_FLIGHT 1u
#define RL__OP_CANCELING 2u

/*
 * Deliver one completion: sets op->res, op->cflags, op->buf and calls
 * op->fn. Without RL_CQE_MORE in cflags it is the final one: the op becomes
 * idle and stops counting as pending before fn runs (fn may resubmit or free
 * it). The backend must not touch op after a final completion, and must not
 * reuse a buffer delivered with RL_CQE_BUFFER until this returns.
 */
void rl__op_complete(rl_loop *loop, rl_op *op, int res, unsigned cflags,
                     void *buf);

/* Backend selection (policy/select.c). Sets loop->ops and loop->backend,
 * records the fallback reason. 0 or -errno. */
int rl__backend_select(rl_loop *loop, const struct rl_loop_config *cfg);

#endif /* RL_BACKEND_H */
