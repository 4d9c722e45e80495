/*
 * The io_uring backend's private state, shared by uring/uring.c (ring
 * lifecycle, wait) and uring/submit.c (submission, completion dispatch,
 * cancellation, provided buffers). Nothing outside uring/ includes this.
 */
#ifndef RL_URING_H
#define RL_URING_H

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop.h"
#include "uring/compat.h"

/*
 * user_data of the backend's own requests. An rl_op pointer is at least
 * 8-byte aligned, so these small values can never be one.
 */
#define RL_URING_TAG_WAKE 1u    /* the eventfd read that wake() completes */
#define RL_URING_TAG_CANCEL 2u  /* ASYNC_CANCEL and TIMEOUT_REMOVE requests */
#define RL_URING_TAG_TIMEOUT 3u /* the wait timeout when EXT_ARG is off */
#define RL_URING_TAG_LIMIT 8u   /* user_data below this is a tag */
/* msg_ring: the message another loop's MSG_RING posts here (a wake, so
 * nothing to do); and, in the low bits of the target rl_loop pointer (at
 * least 8-byte aligned), the sender's own MSG_RING SQE, whose CQE comes
 * only on failure (IOSQE_CQE_SKIP_SUCCESS). */
#define RL_URING_TAG_MSG 6u
#define RL_URING_TAG_MSG_SENT 7u

/* Completions copied out of the CQ per batch. */
#define RL_URING_CQE_BATCH 64

/* Buffer group id of the backend's provided-buffer ring. */
#define RL_URING_BGID 0
/* Its default shape: whole buffers, or large ones consumed in pieces
 * (bufring_inc); 4 MiB either way. */
#define RL_URING_BR_ENTRIES 256
#define RL_URING_BR_SIZE (16 * 1024)
#define RL_URING_BR_INC_ENTRIES 16
#define RL_URING_BR_INC_SIZE (256 * 1024)
/* Multishot recv goes by readiness for large data: a completion of
 * RL_URING_LARGE_READ bytes or more (rl_loop_config.large_read; or a whole
 * buffer, if they are smaller, but at least 2 x RL_URING_SMALL_READ)
 * moves the op to POLL_ADD + recv(2) into u->scratch, so that
 * a large message lands in one buffer that stays in the cache, just before
 * its callback, instead of in the ring's buffers of every connection at
 * once (a batch of 64 KiB messages on 50 connections fills 3 MiB of ring
 * buffers before the first callback runs). RL_URING_SMALL_RUN recv(2)s in
 * a row under RL_URING_SMALL_READ bytes bring it back to the ring. */
#define RL_URING_LARGE_READ (32 * 1024)
#define RL_URING_SMALL_READ (8 * 1024)
#define RL_URING_SMALL_RUN 4
/* The recv(2) buffer of readiness mode: at least this large. */
#define RL_URING_SCRATCH_MIN (256 * 1024)

enum rl_uring_bufring_state {
    RL_URING_BR_NONE = 0, /* not set up yet (lazy) */
    RL_URING_BR_READY,    /* registered and filled */
    RL_URING_BR_OFF,      /* disabled or registration failed: emulate */
};

/* One completion, copied out of the CQ before dispatch. */
struct rl_uring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

struct rl_uring {
    struct io_uring ring;
    rl_loop *loop;
    unsigned setup_flags; /* IORING_SETUP_* from setup_steps[] */
    unsigned features;    /* RL_FEAT_* in use */
    unsigned sq_entries;
    unsigned cq_entries;
    bool ring_ok;            /* false only after a failed re-creation in fork */
    unsigned koverflow_base; /* *ring.cq.koverflow at the last stats reset */
    bool cq_overflowed;      /* the last drain found the CQ overflowed */
    bool need_enable; /* created IORING_SETUP_R_DISABLED, not enabled yet */
    /* File opcodes (1u << RL_OP_*) this kernel's io_uring lacks (the probe;
     * or named in RINGLOOP_TEST_NO_OPCODES): they run on the worker pool. */
    uint32_t pool_opcodes;
    bool zc_ops; /* the kernel has SEND_ZC and SENDMSG_ZC */

    /* wake(): an eventfd whose read is kept armed in the ring */
    int efd;
    bool wake_armed;
    uint64_t efd_val;

    /* msg_ring: msg_ready is set (by this loop's thread) once the ring is
     * enabled, so that senders only message a ring that takes messages;
     * msg_off is set when the kernel refused one (the eventfd from then) */
    atomic_bool msg_ready;
    bool msg_off;

    /* Without EXT_ARG: the one TIMEOUT SQE armed for wait(), if any */
    bool tmo_armed;
    uint64_t tmo_deadline; /* monotonic ns */
    struct __kernel_timespec tmo_ts;

    /* Every op the backend holds is on exactly one list, via op->node.
     * Those with an SQE in the ring are listed per fd, so that a close or
     * an rl_cancel_fd() walks only that fd's ops: byfd[fd] (grown to cover
     * the largest fd seen), or nofd for an op without one. */
    struct rl_list *byfd;
    unsigned nbyfd;
    struct rl_list nofd;
    struct rl_list nobufs;   /* multishot recvs parked on -ENOBUFS */
    struct rl_list deferred; /* final completions wait() delivers */

    /* Provided buffers for multishot recv (set up at the first one) */
    int br_state;
    struct io_uring_buf_ring *br;
    char *br_bufs;
    unsigned br_entries;
    unsigned br_size;
    unsigned large_read; /* see RL_URING_LARGE_READ (bufring_sizes() fits it
                            to the buffers); UINT_MAX: never */
    unsigned br_free;    /* buffers the kernel can still pick */
    /* With bufring_inc: bytes of each buffer the kernel has filled so far
     * (the next piece starts there); the buffer is recycled when a
     * completion comes without IORING_CQE_F_BUF_MORE. */
    uint32_t *br_off;
    char *scratch;      /* recv(2) buffer of readiness mode */
    size_t scratch_len; /* its size: br_size, at least RL_URING_SCRATCH_MIN */
    /* With recv_bundle: the ring slot (a free-running index, masked on
     * use) each buffer was last put in; a bundle's buffers are the slots
     * that follow its first one. */
    uint32_t *br_slot;
    uint32_t br_tail; /* the next slot to fill */

    /* Per-fd state, fdf[fd] (nbyfd entries, grown with byfd) */
    uint8_t *fdf;
    unsigned zc_min; /* send_zc: smallest send made zero-copy (bytes) */
    unsigned ftable; /* fixed_files: slots in the file table (0: none yet) */

    /* ring_fd: the ring's index in the table of the thread that first
     * entered it (reg_thread, an rl__uring_thread_id()); -1 before. While
     * another thread runs the loop, liburing enters by the plain fd
     * (reg_by_fd). */
    int reg_index;
    uint64_t reg_thread;
    bool reg_by_fd;

    /* Why a feature asked for is not in use (rl_loop_feature_reason()),
     * by bit number. */
    int feat_errno[32];
    char feat_reason[32][112];
};

/* u->fdf[fd] bits */
#define RL_URING_FD_NOZC 0x1u  /* the socket refused SEND_ZC: plain send */
#define RL_URING_FD_FIXED 0x2u /* fd is in the file table, slot fd */

/*
 * send_zc: sends of at least this many bytes go zero-copy (RINGLOOP_ZC_MIN
 * overrides it, for measurements). See docs/kernel-data-path.md.
 */
#define RL_URING_ZC_MIN (64 * 1024)
/* fixed_files: at most this many table slots (fds above are not fixed) */
#define RL_URING_FTABLE_MAX 65536u

/* uring/uring.c */
/* Before anything enters the ring (every path that may call
 * io_uring_enter): enable a ring created disabled, and pick the registered
 * index or the plain fd for the calling thread. 0 or -errno. */
int rl__uring_enable(struct rl_uring *u);
/* Make room for n SQEs (n <= the SQ size) by handing the queued ones to the
 * kernel; with SQPOLL, also wait until its thread has taken enough. Calls
 * rl__uring_enable(). 0 or -errno. */
int rl__uring_sq_room(struct rl_uring *u, unsigned n);
/* Record why feature (one RL_FEAT_* bit) is not in use and drop it from
 * u->features. err is -errno or 0. */
void rl__uring_feature_off(struct rl_uring *u, unsigned feature, int err,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A MSG_RING this loop sent to `to` failed with res: wake `to` by its
 * eventfd (and stop messaging on a refusal). */
void rl__uring_msg_failed(struct rl_uring *u, rl_loop *to, int res);

/* uring/submit.c */
int rl__uring_submit(rl_loop *loop, rl_op *op);
int rl__uring_cancel(rl_loop *loop, rl_op *op, int fd);
int rl__uring_fd_closed(rl_loop *loop, int fd);
/* Without EXT_ARG: make sure a TIMEOUT SQE ends a wait of timeout_ns.
 * 0 or -errno. */
int rl__uring_arm_timeout(struct rl_uring *u, int64_t timeout_ns);
/* Arm the internal eventfd read. 0 or -errno. */
int rl__uring_arm_wake(struct rl_uring *u);
/* Handle one copied CQE. Returns the number of callbacks run. */
unsigned rl__uring_dispatch(struct rl_uring *u, const struct rl_uring_cqe *c);
/* Re-arm recvs parked on -ENOBUFS if buffers came back. */
void rl__uring_rearm_parked(struct rl_uring *u);
/* Deliver the deferred final completions queued so far. */
unsigned rl__uring_flush_deferred(struct rl_uring *u);
/* Fork: every op the backend holds gets a deferred -ECANCELED (the next
 * wait() delivers it); nothing is asked of the kernel. */
void rl__uring_forget_all(struct rl_uring *u);
/* Forget the buffer ring without unregistering it (the ring is gone, or is
 * the parent's); unmap it too unless in a forked child, where the ranges
 * are MADV_DONTFORK holes the child may have reused. */
void rl__uring_bufring_free(struct rl_uring *u, bool unmap);
/* Record why a data-path feature fell back, for rl_loop_feature_reason()
 * (the first reason stays); the caller drops the feature if it must. */
void rl__uring_data_fallback(struct rl_uring *u, unsigned feature,
                             const char *why, int err);

#endif /* RL_URING_H */
