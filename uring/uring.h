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

    /* wake(): an eventfd whose read is kept armed in the ring */
    int efd;
    bool wake_armed;
    uint64_t efd_val;

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
    unsigned br_free; /* buffers the kernel can still pick */
    /* With bufring_inc: bytes of each buffer the kernel has filled so far
     * (the next piece starts there); the buffer is recycled when a
     * completion comes without IORING_CQE_F_BUF_MORE. */
    uint32_t *br_off;
    char *scratch; /* br_size bytes for the poll+recv(2) emulation */
};

/* uring/uring.c */
int rl__uring_enable(struct rl_uring *u);

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

#endif /* RL_URING_H */
