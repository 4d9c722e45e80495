/*
 * ringloop: an event loop for Linux whose core submits all IO through
 * io_uring, with an epoll backend behind the same interface.
 *
 * Model (completion style):
 *   - An operation is a caller-owned struct rl_op. Fill it with one of the
 *     rl_prep_*() helpers, then hand it to rl_submit(). Its callback runs
 *     once per completion with op->res set to a value >= 0 or to -errno.
 *   - Multishot operations (RL_OP_ACCEPT and RL_OP_RECV with RL_F_MULTISHOT,
 *     RL_OP_POLL with RL_F_MULTISHOT) call back repeatedly; every completion
 *     but the last has RL_CQE_MORE set in op->cflags.
 *   - Timers and call_soon callbacks are caller-owned nodes too. The loop
 *     never allocates on the hot path.
 *   - Every action returns 0 (or a count) on success and -errno on failure;
 *     nothing reports through errno.
 *
 * Ownership (the one place this is written down):
 *   - An rl_op, and every buffer, iovec, msghdr and sockaddr it points to,
 *     belongs to the loop (and through it to the kernel) from rl_submit()
 *     until its final completion: the callback invoked without RL_CQE_MORE.
 *     Until then the caller must not free, move or reuse any of it. Inside
 *     the final callback the op is the caller's again: it may be freed or
 *     resubmitted from there.
 *   - A buffer delivered by a multishot recv (RL_CQE_BUFFER set, data in
 *     op->buf) belongs to the loop's provided-buffer pool. It is valid only
 *     until the callback returns; copy what you keep.
 *   - rl_op_cancel() requests cancellation; it frees nothing. The op still
 *     gets a final completion (with -ECANCELED, or with its real result if it
 *     completed first), and only then is it the caller's again.
 *   - An RL_OP_CLOSE op first cancels every op in flight on the fd; those
 *     ops get their final completions (usually -ECANCELED) before or in the
 *     same iteration as the close completes. Nothing is freed by the loop.
 *   - A file descriptor closed behind the loop's back (close(2) instead of an
 *     RL_OP_CLOSE op) must be announced with rl_loop_fd_closed() first, with
 *     no ops of it still in flight.
 *   - rl_timer and rl_callback nodes belong to the loop while armed/queued.
 *     A queued rl_callback is handed back just before its function runs; an
 *     armed timer just before its function runs (it can be restarted there).
 */
#ifndef RINGLOOP_H
#define RINGLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RINGLOOP_STATIC)
#define RL_EXTERN
#elif defined(__GNUC__)
#define RL_EXTERN __attribute__((visibility("default")))
#else
#define RL_EXTERN
#endif

#define RINGLOOP_VERSION_MAJOR 0
#define RINGLOOP_VERSION_MINOR 1
#define RINGLOOP_VERSION_PATCH 0

typedef struct rl_loop rl_loop;
typedef struct rl_op rl_op;
typedef struct rl_timer rl_timer;
typedef struct rl_callback rl_callback;

/* ------------------------------------------------------------------------
 * Intrusive doubly linked list node (used by the loop; callers treat it as
 * opaque storage inside their structs).
 */
struct rl_list {
    struct rl_list *next;
    struct rl_list *prev;
};

/* ------------------------------------------------------------------------
 * Backends and optional fast paths
 */
enum rl_backend_kind {
    RL_BACKEND_AUTO = 0,
    RL_BACKEND_URING = 1,
    RL_BACKEND_EPOLL = 2,
};

/*
 * Optional io_uring fast paths. Each can be switched off per loop
 * (rl_loop_config.disable) or by the environment:
 *   RINGLOOP_DISABLE=multishot_recv,bufring
 * rl_feature_name() gives the word for each bit.
 */
enum rl_feature {
    RL_FEAT_MULTISHOT_ACCEPT = 1u << 0, /* one accept SQE, many sockets */
    RL_FEAT_MULTISHOT_RECV = 1u << 1,   /* one recv SQE, many buffers */
    RL_FEAT_BUFRING = 1u << 2,          /* provided-buffer ring for recv */
    RL_FEAT_DEFER_TASKRUN = 1u << 3,    /* SINGLE_ISSUER|DEFER_TASKRUN */
    RL_FEAT_COOP_TASKRUN = 1u << 4,     /* COOP_TASKRUN|TASKRUN_FLAG */
    RL_FEAT_MULTISHOT_POLL = 1u << 5,   /* repeating poll in one SQE */
    RL_FEAT_CANCEL_FD = 1u << 6,        /* cancel all ops of an fd at once */
    RL_FEAT_EXT_ARG = 1u << 7,          /* wait timeout without an SQE */
    RL_FEAT_BUFRING_INC = 1u << 8,      /* large provided buffers, each
                                           consumed a piece per recv
                                           (Linux 6.15+) */
};
#define RL_FEAT_ALL 0x1ffu

/* The word for one feature bit ("multishot_recv"), or NULL. */
RL_EXTERN const char *rl_feature_name(unsigned feature);
/* Parse "a,b,c" into feature bits. Returns bits, or -EINVAL (unknown word). */
RL_EXTERN int rl_feature_parse(const char *list, unsigned *out);

/* ------------------------------------------------------------------------
 * Loop
 */
struct rl_loop_config {
    int backend;         /* enum rl_backend_kind; 0 = auto */
    unsigned sq_entries; /* io_uring SQ size; 0 = 256 */
    unsigned disable;    /* enum rl_feature bits, ORed with the env */
    /* Receive buffers. io_uring: the provided-buffer ring, bufring_entries
     * (a power of 2) buffers of bufring_size bytes; 0 and 0 = 16 x 256 KiB
     * with bufring_inc, else 256 x 16 KiB (4 MiB either way). epoll: one
     * read buffer of bufring_size bytes; 0 = 256 KiB. */
    unsigned bufring_entries;
    unsigned bufring_size;
};

enum rl_run_mode {
    RL_RUN_DEFAULT = 0, /* until stopped or nothing is left to do */
    RL_RUN_ONCE = 1,    /* one iteration, blocking until something happens */
    RL_RUN_NOWAIT = 2,  /* one iteration, never blocking */
};

/* Fill cfg with defaults (auto backend, nothing disabled). */
RL_EXTERN void rl_loop_config_init(struct rl_loop_config *cfg);

/*
 * Create a loop. cfg may be NULL for defaults. Backend choice: an explicit
 * cfg->backend, else RINGLOOP_BACKEND=uring|epoll, else auto (io_uring when a
 * ring can be set up with the required features, else epoll; the reason is
 * kept, see rl_loop_fallback_reason()). An explicitly requested io_uring
 * that cannot be set up fails with its -errno; it does not fall back.
 * Returns 0 and sets *out, or -errno.
 */
RL_EXTERN int rl_loop_new(rl_loop **out, const struct rl_loop_config *cfg);

/*
 * Free a loop. Must not be called from inside rl_loop_run(). Ops still in
 * flight are cancelled and their final callbacks run before it returns (an
 * rl_submit() from one of them fails with -ECANCELED);
 * queued callbacks (also those queued by rl_call_threadsafe) and armed
 * timers are dropped without being called or touched: the caller still owns
 * them and releases what they hold.
 */
RL_EXTERN void rl_loop_free(rl_loop *loop);

/*
 * One iteration, in asyncio's order: wait for completions (not at all when
 * callbacks are ready) and run their callbacks; move thread-safe calls and
 * expired timers to the ready queue; run the callbacks that are ready at
 * that point (those they queue wait for the next iteration).
 *
 * Run the loop. Returns > 0 if work remains (ops in flight, armed timers,
 * queued callbacks), 0 if none, -errno on a backend failure. RL_RUN_DEFAULT
 * returns after rl_loop_stop() or when nothing is left.
 */
RL_EXTERN int rl_loop_run(rl_loop *loop, int mode);

/*
 * Start what was submitted since the last iteration without running any
 * callback: its completions are delivered by the next rl_loop_run(). Each
 * iteration does this anyway; call it when the loop will not run for a
 * while, so that what the last callbacks asked for happens now. Every
 * RL_OP_CLOSE queued is carried out (unless an op on the same fd was
 * submitted before it), so the descriptor is closed when this returns.
 * 0 or -errno.
 */
RL_EXTERN int rl_loop_flush(rl_loop *loop);

/*
 * Threads: a loop is used by one thread at a time. On io_uring with
 * defer_taskrun (the default where the kernel has it) the first thread that
 * runs the loop owns its ring for good: running it, or freeing it with ops
 * in flight, from another thread afterwards fails with -EEXIST. Use
 * RINGLOOP_DISABLE=defer_taskrun for loops that move between threads.
 */

/* Make rl_loop_run() return after the current iteration. Loop thread only. */
RL_EXTERN void rl_loop_stop(rl_loop *loop);

/*
 * Stop running ready callbacks at once: those of the current ready phase
 * that have not run yet go back to the front of the ready queue (in order)
 * and rl_loop_run() returns after the current callback. Called from a block
 * hook or a completion, it keeps the iteration's ready phase from starting. For
 * embedders whose callbacks can raise (e.g. KeyboardInterrupt in Python). Loop
 * thread only.
 */
RL_EXTERN void rl_loop_break(rl_loop *loop);

/*
 * Functions the backend calls around each blocking wait for events (only
 * when the wait may sleep), on the loop thread: e.g. to release and retake
 * an interpreter lock. No callback runs between before and after.
 */
typedef void (*rl_block_fn)(rl_loop *loop, void *arg);
RL_EXTERN void rl_loop_set_block_hooks(rl_loop *loop, rl_block_fn before,
                                       rl_block_fn after, void *arg);

/* Opaque pointer for the embedder. */
RL_EXTERN void rl_loop_set_data(rl_loop *loop, void *data);
RL_EXTERN void *rl_loop_get_data(const rl_loop *loop);

/* Cached monotonic time in nanoseconds, updated once per iteration. */
RL_EXTERN uint64_t rl_loop_now(const rl_loop *loop);
/* Refresh the cached time now and return it. */
RL_EXTERN uint64_t rl_loop_update_time(rl_loop *loop);

/* "uring" or "epoll". */
RL_EXTERN const char *rl_loop_backend_name(const rl_loop *loop);
/* enum rl_backend_kind actually in use. */
RL_EXTERN int rl_loop_backend(const rl_loop *loop);

/*
 * Why auto selection did not pick io_uring: a -errno (0 when it did or when
 * the backend was chosen explicitly) and a human-readable sentence, such as
 * "io_uring_setup: Operation not permitted (kernel.io_uring_disabled=2)".
 */
RL_EXTERN int rl_loop_fallback_errno(const rl_loop *loop);
RL_EXTERN const char *rl_loop_fallback_reason(const rl_loop *loop);

/* Fast paths active on this loop (enum rl_feature bits). */
RL_EXTERN unsigned rl_loop_features(const rl_loop *loop);

/* Number of ops in flight (submitted, final completion not yet run). */
RL_EXTERN unsigned rl_loop_pending(const rl_loop *loop);

/*
 * Tell the loop that fd is about to be closed with close(2) outside the
 * loop. The only ops still in flight on fd may be ones whose cancellation
 * was already requested (their final completions still come). Returns 0 or
 * -errno.
 */
RL_EXTERN int rl_loop_fd_closed(rl_loop *loop, int fd);

/*
 * After fork(), the child must call this before using the loop (rl_loop_run
 * also does it by itself when it notices a fork). The child gets a fresh
 * ring/epoll instance; ops that were in flight in the parent complete in the
 * child with -ECANCELED. Returns 0 or -errno.
 */
RL_EXTERN int rl_loop_fork(rl_loop *loop);

/* ------------------------------------------------------------------------
 * call_soon: run a function in the next ready phase.
 *
 * Callbacks queued while the ready queue runs run in the next iteration, as
 * in asyncio. The node is caller-owned; it is handed back just before fn runs.
 */
typedef void (*rl_callback_fn)(rl_loop *loop, rl_callback *cb);

struct rl_callback {
    struct rl_list node; /* private */
    rl_callback_fn fn;
    void *data;
    rl_callback *next_ts; /* private: thread-safe queue link */
    uint8_t queued;       /* private */
};

RL_EXTERN void rl_callback_init(rl_callback *cb, rl_callback_fn fn, void *data);
/* Queue cb. Loop thread only. -EBUSY if already queued. */
RL_EXTERN int rl_call_soon(rl_loop *loop, rl_callback *cb);
/* Remove a queued cb. Returns true if it was queued. Loop thread only. */
RL_EXTERN bool rl_callback_cancel(rl_loop *loop, rl_callback *cb);
/*
 * Queue cb from any thread and wake the loop if it sleeps. Lock-free.
 * The node must not be reused until fn has started.
 */
RL_EXTERN int rl_call_threadsafe(rl_loop *loop, rl_callback *cb);

/* ------------------------------------------------------------------------
 * Timers: a 4-ary min-heap keyed on (deadline, start sequence). Equal
 * deadlines fire in the order they were started. As in asyncio's
 * _run_once, an iteration waits, then moves the timers that have expired to
 * the tail of the ready queue, then runs the ready queue: an expired timer's
 * function runs in the iteration that found it expired, after the callbacks
 * that were queued before it expired.
 */
typedef void (*rl_timer_fn)(rl_loop *loop, rl_timer *t);

struct rl_timer {
    uint64_t deadline; /* monotonic ns */
    uint64_t seq;      /* private */
    uint32_t index;    /* private: heap slot, UINT32_MAX when not armed */
    rl_timer_fn fn;
    void *data;
    rl_callback expire; /* private */
};

RL_EXTERN void rl_timer_init(rl_timer *t, rl_timer_fn fn, void *data);
/* Arm t to fire timeout_ns after the loop's cached now. Restarts if armed. */
RL_EXTERN int rl_timer_start(rl_loop *loop, rl_timer *t, uint64_t timeout_ns);
/* Arm t for an absolute monotonic deadline (ns). Restarts if armed. */
RL_EXTERN int rl_timer_start_at(rl_loop *loop, rl_timer *t, uint64_t deadline);
/* Disarm t (also if it expired and waits in the ready queue). True if it was
 * armed or waiting. */
RL_EXTERN bool rl_timer_stop(rl_loop *loop, rl_timer *t);
/* True while t is armed or expired and not yet run. */
RL_EXTERN bool rl_timer_active(const rl_timer *t);
/* Number of armed timers. */
RL_EXTERN size_t rl_loop_timer_count(const rl_loop *loop);

/* ------------------------------------------------------------------------
 * Operations
 */
enum rl_opcode {
    RL_OP_NOP = 0,
    RL_OP_ACCEPT,   /* res: new fd */
    RL_OP_CONNECT,  /* res: 0 (-EAGAIN: a Unix listener's backlog is full) */
    RL_OP_RECV,     /* res: bytes (0 = EOF) */
    RL_OP_SEND,     /* res: bytes (may be short) */
    RL_OP_RECVMSG,  /* res: bytes */
    RL_OP_SENDMSG,  /* res: bytes (may be short) */
    RL_OP_READ,     /* res: bytes (0 = EOF) */
    RL_OP_WRITE,    /* res: bytes */
    RL_OP_CLOSE,    /* res: 0 */
    RL_OP_SHUTDOWN, /* res: 0 */
    RL_OP_POLL,     /* res: revents (POLLIN, POLLOUT, ...) */
    RL_OP__COUNT
};

/* op->flags: how to run it */
#define RL_F_MULTISHOT 0x1u /* accept, recv (loop buffers), poll */
#define RL_F_VECTORED 0x2u  /* read, write: u.rwv, an iovec array */

/* op->cflags: what a completion says */
#define RL_CQE_MORE 0x1u   /* more completions follow for this op */
#define RL_CQE_BUFFER 0x2u /* op->buf holds loop-owned received data */

typedef void (*rl_op_fn)(rl_loop *loop, rl_op *op);

struct rl_op {
    /* Set by rl_prep_*() */
    uint8_t opcode;
    uint8_t flags; /* RL_F_* */
    int fd;
    union {
        struct {
            void *buf; /* NULL with RL_F_MULTISHOT recv: loop buffers */
            size_t len;
            int msg_flags;
        } io; /* RECV, SEND */
        struct {
            struct msghdr *msg;
            int msg_flags;
        } msg; /* RECVMSG, SENDMSG */
        struct {
            void *buf;
            size_t len;
            int64_t offset; /* -1: the file's position */
        } rw;               /* READ, WRITE */
        struct {
            const struct iovec *iov;
            size_t nr;      /* iovecs, at most IOV_MAX */
            int64_t offset; /* as in rw */
        } rwv;              /* READ, WRITE with RL_F_VECTORED */
        struct {
            struct sockaddr *addr; /* may be NULL */
            socklen_t *addrlen;
            int flags; /* SOCK_NONBLOCK | SOCK_CLOEXEC */
        } accept;
        struct {
            const struct sockaddr *addr;
            socklen_t addrlen;
        } connect;
        struct {
            int how;
        } shutdown;
        struct {
            unsigned events; /* POLLIN | POLLOUT | ... */
        } poll;
    } u;
    rl_op_fn fn;
    void *data;

    /* Set before each callback */
    int res;         /* >= 0, or -errno */
    unsigned cflags; /* RL_CQE_* */
    void *buf;       /* with RL_CQE_BUFFER: the data (res bytes) */

    /* Private to the loop and its backend */
    struct rl_list node;
    rl_loop *loop;
    uint32_t state;
    uint32_t bid;
    uint64_t priv;
};

RL_EXTERN void rl_prep_nop(rl_op *op, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_accept(rl_op *op, int fd, struct sockaddr *addr,
                              socklen_t *addrlen, int flags, rl_op_fn fn,
                              void *data);
/* Multishot accept: one callback per connection, RL_CQE_MORE while armed.
 * addr/addrlen are not filled (use getpeername). */
RL_EXTERN void rl_prep_accept_multishot(rl_op *op, int fd, int flags,
                                        rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_connect(rl_op *op, int fd, const struct sockaddr *addr,
                               socklen_t addrlen, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_recv(rl_op *op, int fd, void *buf, size_t len,
                            int msg_flags, rl_op_fn fn, void *data);
/* Multishot recv from the loop's buffer pool: each callback gets op->buf
 * (valid until the callback returns) and op->res bytes; res 0 is EOF. */
RL_EXTERN void rl_prep_recv_multishot(rl_op *op, int fd, rl_op_fn fn,
                                      void *data);
RL_EXTERN void rl_prep_send(rl_op *op, int fd, const void *buf, size_t len,
                            int msg_flags, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_recvmsg(rl_op *op, int fd, struct msghdr *msg,
                               int msg_flags, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_sendmsg(rl_op *op, int fd, const struct msghdr *msg,
                               int msg_flags, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_read(rl_op *op, int fd, void *buf, size_t len,
                            int64_t offset, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_write(rl_op *op, int fd, const void *buf, size_t len,
                             int64_t offset, rl_op_fn fn, void *data);
/* readv / writev: the iovec array (and the buffers it points to) is the
 * loop's until the final completion, like any buffer. res: bytes in all. */
RL_EXTERN void rl_prep_readv(rl_op *op, int fd, const struct iovec *iov,
                             size_t nr, int64_t offset, rl_op_fn fn,
                             void *data);
RL_EXTERN void rl_prep_writev(rl_op *op, int fd, const struct iovec *iov,
                              size_t nr, int64_t offset, rl_op_fn fn,
                              void *data);
RL_EXTERN void rl_prep_close(rl_op *op, int fd, rl_op_fn fn, void *data);
RL_EXTERN void rl_prep_shutdown(rl_op *op, int fd, int how, rl_op_fn fn,
                                void *data);
/*
 * One-shot poll; with `repeat` it calls back (RL_CQE_MORE) until cancelled.
 * A repeating poll promises at least one completion after each new
 * readiness, not exactly one: io_uring's multishot poll and epoll complete
 * once per wakeup (edge-like), but where io_uring lacks multishot poll
 * (RINGLOOP_DISABLE=multishot_poll, kernels before 5.13) it is re-armed
 * one-shot and completes again on every iteration while the fd stays ready
 * (level-triggered), and epoll may report one readiness twice. So consume
 * until EAGAIN (or stop the poll) and treat an extra completion as
 * harmless, as with any poller.
 */
RL_EXTERN void rl_prep_poll(rl_op *op, int fd, unsigned events, bool repeat,
                            rl_op_fn fn, void *data);

/*
 * Hand op to the loop. Its callback runs from a later rl_loop_run(), never
 * from inside rl_submit(). Returns 0, or -errno (-EINVAL for a bad opcode or
 * fd, -EBUSY if op is already in flight, -ENOMEM, -ECANCELED from a callback
 * that rl_loop_free() runs).
 */
RL_EXTERN int rl_submit(rl_loop *loop, rl_op *op);

/* True from rl_submit() until the final completion's callback starts. */
RL_EXTERN bool rl_op_in_flight(const rl_op *op);

/*
 * Ask for op to be cancelled. Returns 0 if the request was made (the op's
 * final callback follows), -ENOENT if op is not in flight.
 */
RL_EXTERN int rl_op_cancel(rl_loop *loop, rl_op *op);

/* Cancel every op in flight on fd. Returns 0, or -errno. */
RL_EXTERN int rl_cancel_fd(rl_loop *loop, int fd);

#ifdef __cplusplus
}
#endif

#endif /* RINGLOOP_H */
