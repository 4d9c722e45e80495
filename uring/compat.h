/*
 * What Debian's liburing 2.3 lacks, for the io_uring backend and for
 * ringloop-probe (tools/), which includes this header too. Every constant
 * is guarded with #ifndef, so a newer liburing's #define wins; where it has
 * an enumerator instead (invisible to #ifndef), the value here is the same.
 * The functions carry rl_ names and work with liburing 2.3 and later.
 */
#ifndef RL_URING_COMPAT_H
#define RL_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* ---- Setup flags (the probe tries each) -------------------------------- */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14) /* Linux 6.5 */
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY (1U << 15) /* Linux 6.5 */
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16) /* Linux 6.6 */
#endif
#ifndef IORING_SETUP_HYBRID_IOPOLL
#define IORING_SETUP_HYBRID_IOPOLL (1U << 17) /* Linux 6.13 */
#endif
#ifndef IORING_SETUP_CQE_MIXED
#define IORING_SETUP_CQE_MIXED (1U << 18) /* Linux 6.18 */
#endif
#ifndef IORING_SETUP_SQE_MIXED
#define IORING_SETUP_SQE_MIXED (1U << 19) /* Linux 6.19 */
#endif

/* io_uring_register(2) on a registered ring index, not an fd (Linux 6.3) */
#ifndef IORING_REGISTER_USE_REGISTERED_RING
#define IORING_REGISTER_USE_REGISTERED_RING (1U << 31)
#endif

/* ---- Incrementally consumed provided buffers (Linux 6.12) -------------- */
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4) /* the buffer is not used up yet */
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2 /* registration flag */
#endif

/*
 * io_uring_enable_rings() is declared by liburing 2.3 but Debian's
 * liburing.so.2 does not export it; go through io_uring_register().
 */
static inline int rl_uring_enable_rings(struct io_uring *ring)
{
    return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL,
                             0);
}

/*
 * Map and register a provided-buffer ring of nentries (a power of 2) for
 * group bgid, with IOU_PBUF_RING_* flags in the registration (liburing
 * before 2.8 cannot pass them: its io_uring_buf_reg calls that field
 * "pad", and io_uring_setup_buf_ring() ignores its flags argument there).
 * Returns the ring, or NULL with *ret set to -errno (-EINVAL: the kernel
 * does not know a flag). Free it with munmap(br, nentries * sizeof(struct
 * io_uring_buf)) after io_uring_unregister_buf_ring() or after the ring is
 * gone.
 */
struct rl_uring_buf_reg { /* struct io_uring_buf_reg of Linux 6.12 */
    __u64 ring_addr;
    __u32 ring_entries;
    __u16 bgid;
    __u16 flags;
    __u64 resv[3];
};
_Static_assert(sizeof(struct rl_uring_buf_reg) ==
                   sizeof(struct io_uring_buf_reg),
               "io_uring_buf_reg layout");

static inline struct io_uring_buf_ring *
rl_uring_setup_buf_ring(struct io_uring *ring, unsigned int nentries, int bgid,
                        unsigned short reg_flags, int *ret)
{
    struct rl_uring_buf_reg reg;
    size_t len = nentries * sizeof(struct io_uring_buf);
    void *mem;
    int err;

    mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
               -1, 0);
    if (mem == MAP_FAILED) {
        *ret = -errno;
        return NULL;
    }
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)(uintptr_t)mem;
    reg.ring_entries = nentries;
    reg.bgid = (__u16)bgid;
    reg.flags = reg_flags;
    err = io_uring_register_buf_ring(ring, (struct io_uring_buf_reg *)&reg, 0);
    if (err) {
        munmap(mem, len);
        *ret = err;
        return NULL;
    }
    io_uring_buf_ring_init((struct io_uring_buf_ring *)mem);
    *ret = 0;
    return (struct io_uring_buf_ring *)mem;
}

/* ---- File operations (issue 15) --------------------------------------- */

/* Linux 6.9: ftruncate as a ring op (liburing 2.6 knows it). */
#define RL_IORING_OP_FTRUNCATE 55

static inline void rl_uring_prep_ftruncate(struct io_uring_sqe *sqe, int fd,
                                           int64_t len)
{
    io_uring_prep_rw(RL_IORING_OP_FTRUNCATE, sqe, fd, NULL, 0, (__u64)len);
}

#endif /* RL_URING_COMPAT_H */
