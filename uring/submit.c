/*
 * io_uring backend: submission, completion dispatch, cancellation and the
 * provided-buffer ring.
 *
 * Every op the backend holds is on exactly one list (op->node): its fd's
 * in-flight list (u->byfd[fd], or u->nofd) while an SQE of it is in the
 * ring, u->nobufs while a multishot
 * recv waits for buffers, u->deferred while its final completion waits for
 * wait() to deliver it. op->priv keeps the backend's state: the U_* flags in
 * the low half, a deferred result in the high half (or a zero-copy send's
 * result while its notification is due).
 *
 * Rule: before a callback with RL_CQE_MORE runs, the op's next step is
 * already settled (re-armed, parked or deferred), so a cancel, a close or
 * an rl_cancel_fd() from inside that callback always finds it.
 *
 * O_NONBLOCK sockets (Python's always are), measured on Linux 6.18: recv,
 * send, recvmsg, accept (single and multishot) and connect on an O_NONBLOCK
 * socket, and read on an O_NONBLOCK pipe or eventfd, all wait in the kernel
 * (internal poll) instead of completing with -EAGAIN or -EINPROGRESS; a
 * connect to a full backlog waits too. But a send punted to io-wq after a
 * partial write can still complete with -EAGAIN on an O_NONBLOCK socket
 * (the sendmsg path ORs in MSG_DONTWAIT there), and older kernels returned
 * -EAGAIN for reads of O_NONBLOCK files. So -EAGAIN (and -EINPROGRESS for
 * connect) is handled here: arm a one-shot POLL_ADD, then retry (or read
 * SO_ERROR). The caller never sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uring/uring.h"

/* op->priv, low half */
#define U_WHERE 0x3u
#define U_IDLE 0x0u     /* on none of the lists (being delivered) */
#define U_KERNEL 0x1u   /* on its fd's in-flight list */
#define U_NOBUFS 0x2u   /* on u->nobufs */
#define U_DEFERRED 0x3u /* on u->deferred, result in the high half */
#define U_MODE (0x3u << 2)
#define U_DIRECT (0u << 2)       /* the op's own SQE */
#define U_POLL_RETRY (1u << 2)   /* a POLL_ADD, then the op's SQE again */
#define U_POLL_CONNECT (2u << 2) /* a POLL_ADD(POLLOUT), then SO_ERROR */
#define U_POLL_RECV (3u << 2)    /* multishot recv emulated: POLL_ADD+recv */
#define U_CANCELED (1u << 4)     /* never re-arm; end with -ECANCELED */
/* U_ZC_NOTIF: sent zero-copy, the notification is to come and the result
 * waits in the high half. */
#define U_ZC (1u << 5)       /* the SQE armed is a SEND(MSG)_ZC */
#define U_ZC_NOTIF (1u << 6) /* see above */
#define U_BUNDLE (1u << 7)   /* the recv armed has IORING_RECVSEND_BUNDLE */
#define U_FIXED (1u << 8)    /* the SQE armed uses the fixed file */
#define U_VOIDED                                                               \
    (1u << 9) /* cancelled before the kernel saw its SQE,                      \
                 which became a NOP: ends with -ECANCELED */
/* Multishot recv, readiness for large data (uring.h): U_TO_POLL, a cancel
 * is on its way to the ring's recv, whose end moves the op to U_POLL_RECV;
 * U_SMALL counts the short recv(2)s in a row since. */
#define U_TO_POLL (1u << 10)
#define U_SMALL_SHIFT 11
#define U_SMALL (3u << U_SMALL_SHIFT)

/* The kernel's MAX_RW_COUNT: larger lengths are clamped anyway. */
#define RL_URING_MAX_RW 0x7ffff000u

static inline unsigned uflags(const rl_op *op)
{
    return (uint32_t)op->priv;
}

static inline void set_uflags(rl_op *op, unsigned f)
{
    op->priv = (op->priv & ~(uint64_t)UINT32_MAX) | f;
}

static inline unsigned where(const rl_op *op)
{
    return uflags(op) & U_WHERE;
}

static inline unsigned mode(const rl_op *op)
{
    return uflags(op) & U_MODE;
}

static inline void set_mode(rl_op *op, unsigned m)
{
    set_uflags(op, (uflags(op) & ~U_MODE) | m);
}

static inline bool canceled(const rl_op *op)
{
    return uflags(op) & U_CANCELED;
}

static inline unsigned clamp_len(size_t len)
{
    return len > RL_URING_MAX_RW ? RL_URING_MAX_RW : (unsigned)len;
}

static void put_on(struct rl_list *list, rl_op *op, unsigned w)
{
    set_uflags(op, (uflags(op) & ~U_WHERE) | w);
    rl_list_add_tail(list, &op->node);
}

/* Make u->byfd cover fd, moving the lists to a larger array. 0 or -ENOMEM. */
static int byfd_reserve(struct rl_uring *u, int fd)
{
    struct rl_list *lists;
    unsigned n = u->nbyfd ? u->nbyfd : 64, i;
    uint8_t *fdf;

    if ((unsigned)fd < u->nbyfd)
        return 0;
    while (n <= (unsigned)fd)
        n *= 2;
    lists = malloc(n * sizeof(*lists));
    if (!lists)
        return -ENOMEM;
    fdf = realloc(u->fdf, n);
    if (!fdf) {
        free(lists);
        return -ENOMEM;
    }
    memset(fdf + u->nbyfd, 0, n - u->nbyfd);
    u->fdf = fdf;
    for (i = 0; i < n; i++) {
        rl_list_init(&lists[i]);
        if (i < u->nbyfd)
            rl_list_splice_tail(&lists[i], &u->byfd[i]);
    }
    free(u->byfd);
    u->byfd = lists;
    u->nbyfd = n;
    return 0;
}

/* fd's in-flight list, or NULL for fd < 0 and an fd no op was armed on. */
static struct rl_list *fd_list(struct rl_uring *u, int fd)
{
    return fd >= 0 && (unsigned)fd < u->nbyfd ? &u->byfd[fd] : NULL;
}

/* Take op off whichever backend list it is on. */
static void unlink_op(rl_op *op)
{
    if (where(op) == U_IDLE)
        return;
    rl_list_del(&op->node);
    set_uflags(op, uflags(op) & ~U_WHERE);
}

/* Queue op's final completion with res for the end of this wait(). The
 * kernel must hold nothing of op any more. */
static void defer_final(struct rl_uring *u, rl_op *op, int res)
{
    unlink_op(op);
    op->priv = (uint64_t)(uint32_t)res << 32 | uflags(op);
    put_on(&u->deferred, op, U_DEFERRED);
}

/* Deliver op's final completion now (dispatch only). */
static unsigned complete_final(struct rl_uring *u, rl_op *op, int res)
{
    unlink_op(op);
    rl__op_complete(u->loop, op, res, 0, NULL);
    return 1;
}

/*
 * An SQE, submitting what is queued if the SQ is full. Never dispatches.
 * 0 or -errno.
 */
static int get_sqe(struct rl_uring *u, struct io_uring_sqe **out)
{
    int ret;

    *out = io_uring_get_sqe(&u->ring);
    if (*out) {
        u->loop->stats.sqes_submitted++;
        return 0;
    }
    ret = rl__uring_sq_room(u, 1);
    if (ret < 0)
        return ret;
    *out = io_uring_get_sqe(&u->ring);
    if (!*out)
        return -EBUSY;
    u->loop->stats.sqes_submitted++;
    return 0;
}

/* ---- provided buffers --------------------------------------------------- */

static void bufring_recycle(struct rl_uring *u, unsigned bid)
{
    if (u->br_off)
        u->br_off[bid] = 0;
    if (u->br_slot)
        u->br_slot[bid] = u->br_tail;
    u->br_tail++;
    io_uring_buf_ring_add(u->br, u->br_bufs + (size_t)bid * u->br_size,
                          u->br_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(u->br_entries), 0);
    io_uring_buf_ring_advance(u->br, 1);
    u->br_free++;
}

void rl__uring_bufring_free(struct rl_uring *u, bool unmap)
{
    if (unmap && u->br)
        munmap(u->br, u->br_entries * sizeof(struct io_uring_buf));
    if (unmap && u->br_bufs)
        munmap(u->br_bufs, (size_t)u->br_entries * u->br_size);
    free(u->br_off);
    u->br_off = NULL;
    free(u->br_slot);
    u->br_slot = NULL;
    u->br = NULL;
    u->br_bufs = NULL;
    u->br_free = 0;
    u->br_state = RL_URING_BR_NONE;
}

static void bufring_off(struct rl_uring *u)
{
    u->br_state = RL_URING_BR_OFF;
    u->features &= ~(RL_FEAT_BUFRING | RL_FEAT_MULTISHOT_RECV |
                     RL_FEAT_BUFRING_INC | RL_FEAT_RECV_BUNDLE);
    if (!u->br_size) /* the emulation's read buffer */
        u->br_size = RL_URING_BR_INC_SIZE;
}

/* The buffers' count and size: as configured, else the defaults (the same
 * 4 MiB carved up for incremental consumption or for whole buffers). */
static void bufring_sizes(struct rl_uring *u, bool inc, unsigned cfg_entries,
                          unsigned cfg_size)
{
    if (!cfg_entries && !cfg_size && inc) {
        u->br_entries = RL_URING_BR_INC_ENTRIES;
        u->br_size = RL_URING_BR_INC_SIZE;
    } else {
        u->br_entries = cfg_entries ? cfg_entries : RL_URING_BR_ENTRIES;
        u->br_size = cfg_size ? cfg_size : RL_URING_BR_SIZE;
    }
    /* The bytes of one completion that make a multishot recv a large-data
     * one (uring.h): a whole buffer if that is less, but not so few that a
     * run of short reads would count as large (the op would go back and
     * forth). UINT_MAX stays: never. */
    if (u->large_read == UINT_MAX)
        return;
    if (u->br_size < u->large_read)
        u->large_read = u->br_size;
    if (u->large_read < 2 * RL_URING_SMALL_READ)
        u->large_read = 2 * RL_URING_SMALL_READ;
}

/*
 * Register the provided-buffer ring and fill it; called at the first
 * multishot recv. With bufring_inc the kernel fills each buffer a piece
 * per recv (IOU_PBUF_RING_INC; used from Linux 6.15), so large buffers
 * serve small and large reads alike; if the kernel refuses that, whole
 * buffers. On any other failure the backend emulates multishot recv with
 * POLL_ADD + recv(2) from then on.
 */
static void bufring_setup(struct rl_uring *u)
{
    unsigned cfg_entries = u->br_entries, cfg_size = u->br_size;
    bool inc = u->features & RL_FEAT_BUFRING_INC;
    size_t ring_len, bufs_len;
    unsigned i;
    int ret;

    if (!(u->features & RL_FEAT_BUFRING)) {
        bufring_off(u);
        return;
    }
    bufring_sizes(u, inc, cfg_entries, cfg_size);
    u->br = rl_uring_setup_buf_ring(&u->ring, u->br_entries, RL_URING_BGID,
                                    inc ? IOU_PBUF_RING_INC : 0, &ret);
    if (!u->br && inc) {
        u->features &= ~RL_FEAT_BUFRING_INC;
        inc = false;
        bufring_sizes(u, false, cfg_entries, cfg_size);
        u->br = rl_uring_setup_buf_ring(&u->ring, u->br_entries, RL_URING_BGID,
                                        0, &ret);
    }
    if (!u->br) {
        bufring_off(u);
        return;
    }
    ring_len = u->br_entries * sizeof(struct io_uring_buf);
    bufs_len = (size_t)u->br_entries * u->br_size;
    if (inc && !(u->br_off = calloc(u->br_entries, sizeof(*u->br_off))))
        goto err_unregister;
    if ((u->features & RL_FEAT_RECV_BUNDLE) &&
        !(u->br_slot = calloc(u->br_entries, sizeof(*u->br_slot))))
        goto err_unregister;
    u->br_bufs = mmap(NULL, bufs_len, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (u->br_bufs == MAP_FAILED) {
        u->br_bufs = NULL;
        goto err_unregister;
    }
    /* A forked child drops these without touching them: do not copy. */
    madvise(u->br, ring_len, MADV_DONTFORK);
    madvise(u->br_bufs, bufs_len, MADV_DONTFORK);
    io_uring_buf_ring_init(u->br);
    for (i = 0; i < u->br_entries; i++) {
        io_uring_buf_ring_add(u->br, u->br_bufs + (size_t)i * u->br_size,
                              u->br_size, (unsigned short)i,
                              io_uring_buf_ring_mask(u->br_entries), (int)i);
        if (u->br_slot)
            u->br_slot[i] = i;
    }
    io_uring_buf_ring_advance(u->br, (int)u->br_entries);
    u->br_tail = u->br_entries;
    u->br_free = u->br_entries;
    u->br_state = RL_URING_BR_READY;
    return;

err_unregister:
    io_uring_unregister_buf_ring(&u->ring, RL_URING_BGID);
    munmap(u->br, ring_len);
    free(u->br_off);
    u->br_off = NULL;
    free(u->br_slot);
    u->br_slot = NULL;
    u->br = NULL;
    bufring_off(u);
}

/* ---- the data path: fallbacks, fixed files ----------------------------- */

void rl__uring_data_fallback(struct rl_uring *u, unsigned feature,
                             const char *why, int err)
{
    unsigned i = (unsigned)__builtin_ctz(feature);

    if (u->feat_reason[i][0])
        return; /* the first reason stays */
    u->feat_errno[i] = err < 0 ? err : -err;
    snprintf(u->feat_reason[i], sizeof(u->feat_reason[i]), "%s: %s (%s)",
             rl_feature_name(feature), why, strerror(err < 0 ? -err : err));
}

/* The ring's sparse file table, registered at the first socket op that
 * wants it: slot fd for descriptor fd. 0 or -errno (fixed_files off). */
static int ftable_setup(struct rl_uring *u)
{
    struct rlimit rl;
    unsigned n = RL_URING_FTABLE_MAX;
    int ret;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (unsigned)rl.rlim_cur;
    ret = io_uring_register_files_sparse(&u->ring, n);
    if (ret < 0) {
        u->features &= ~RL_FEAT_FIXED_FILES;
        rl__uring_data_fallback(u, RL_FEAT_FIXED_FILES,
                                "IORING_REGISTER_FILES2 refused", ret);
        return ret;
    }
    u->ftable = n;
    return 0;
}

/* Whether op's SQE goes through the file table (putting op->fd in it at
 * its first op): the socket data ops only, whose descriptors the loop
 * sees closed (RL_OP_CLOSE, rl_loop_fd_closed). u->fdf covers op->fd. */
static bool use_fixed(struct rl_uring *u, const rl_op *op)
{
    int fd = op->fd, ret;

    if (!(u->features & RL_FEAT_FIXED_FILES))
        return false;
    switch (op->opcode) {
    case RL_OP_RECV:
    case RL_OP_SEND:
    case RL_OP_RECVMSG:
    case RL_OP_SENDMSG:
        break;
    default:
        return false;
    }
    if (u->fdf[fd] & RL_URING_FD_FIXED)
        return true;
    if (!u->ftable && ftable_setup(u) < 0)
        return false;
    if ((unsigned)fd >= u->ftable)
        return false;
    ret = io_uring_register_files_update(&u->ring, (unsigned)fd, &fd, 1);
    if (ret == -EINVAL || ret == -EOPNOTSUPP || ret == -ENXIO) {
        u->features &= ~RL_FEAT_FIXED_FILES;
        rl__uring_data_fallback(u, RL_FEAT_FIXED_FILES,
                                "IORING_REGISTER_FILES_UPDATE2 refused", ret);
    }
    if (ret != 1)
        return false; /* e.g. -EBADF: the op fails the plain way */
    u->fdf[fd] |= RL_URING_FD_FIXED;
    return true;
}

/* fd is being closed: empty its slot (after handing the kernel the SQEs
 * queued so far, which may use it) and forget what was learnt of it. */
static void fd_forget(struct rl_uring *u, int fd)
{
    int none = -1;

    if (fd < 0 || (unsigned)fd >= u->nbyfd)
        return;
    if ((u->fdf[fd] & RL_URING_FD_FIXED) && u->ring_ok) {
        if (io_uring_sq_ready(&u->ring) && rl__uring_enable(u) == 0) {
            u->loop->stats.io_uring_enter++;
            io_uring_submit(&u->ring);
        }
        io_uring_register_files_update(&u->ring, (unsigned)fd, &none, 1);
    }
    u->fdf[fd] = 0;
}

/* ---- preparing SQEs ----------------------------------------------------- */

/* Poll events to wait for before retrying op after -EAGAIN; 0: no retry. */
static unsigned retry_events(const rl_op *op)
{
    switch (op->opcode) {
    case RL_OP_ACCEPT:
    case RL_OP_RECV:
    case RL_OP_RECVMSG:
    case RL_OP_READ:
        return POLLIN;
    case RL_OP_SEND:
    case RL_OP_SENDMSG:
    case RL_OP_WRITE:
        return POLLOUT;
    default:
        return 0;
    }
}

/*
 * Socket flags for the kernel. MSG_DONTWAIT is dropped, as the epoll
 * backend ignores it too: an op waits until it can complete, on both.
 */
static int sock_flags(int msg_flags)
{
    return msg_flags & ~MSG_DONTWAIT;
}

static void prep_accept(struct rl_uring *u, struct io_uring_sqe *sqe, rl_op *op)
{
    if (!(op->flags & RL_F_MULTISHOT))
        io_uring_prep_accept(sqe, op->fd, op->u.accept.addr,
                             op->u.accept.addrlen, op->u.accept.flags);
    else if (u->features & RL_FEAT_MULTISHOT_ACCEPT)
        io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
                                       op->u.accept.flags);
    else
        io_uring_prep_accept(sqe, op->fd, NULL, NULL, op->u.accept.flags);
}

static void prep_recv(struct rl_uring *u, struct io_uring_sqe *sqe, rl_op *op)
{
    if (!(op->flags & RL_F_MULTISHOT)) {
        io_uring_prep_recv(sqe, op->fd, op->u.io.buf, clamp_len(op->u.io.len),
                           sock_flags(op->u.io.msg_flags));
        return;
    }
    if (u->features & RL_FEAT_MULTISHOT_RECV) {
        io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
        if (u->br_slot && (u->features & RL_FEAT_RECV_BUNDLE)) {
            sqe->ioprio |= IORING_RECVSEND_BUNDLE;
            set_uflags(op, uflags(op) | U_BUNDLE);
        }
    } else {
        io_uring_prep_recv(sqe, op->fd, NULL, u->br_size, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RL_URING_BGID;
}

/* send_zc: whether op's SEND(MSG) goes zero-copy: large enough, and the
 * socket has not refused it. */
static bool use_zc(struct rl_uring *u, const rl_op *op)
{
    size_t len = 0, i;

    if (!(u->features & RL_FEAT_SEND_ZC) || (u->fdf[op->fd] & RL_URING_FD_NOZC))
        return false;
    if (op->opcode == RL_OP_SEND)
        return op->u.io.len >= u->zc_min;
    for (i = 0; i < (size_t)op->u.msg.msg->msg_iovlen && len < u->zc_min; i++)
        len += op->u.msg.msg->msg_iov[i].iov_len;
    return len >= u->zc_min;
}

/* Offset -1 means the file position, for io_uring as for us. */
static void prep_rw(struct io_uring_sqe *sqe, rl_op *op)
{
    bool wr = op->opcode == RL_OP_WRITE;

    if (op->flags & RL_F_VECTORED)
        io_uring_prep_rw(wr ? IORING_OP_WRITEV : IORING_OP_READV, sqe, op->fd,
                         op->u.rwv.iov, (unsigned)op->u.rwv.nr,
                         (uint64_t)op->u.rwv.offset);
    else
        io_uring_prep_rw(wr ? IORING_OP_WRITE : IORING_OP_READ, sqe, op->fd,
                         op->u.rw.buf, clamp_len(op->u.rw.len),
                         (uint64_t)op->u.rw.offset);
}

/* File ops (issue 15); only those the ring has (u->pool_opcodes). */
static void prep_file(struct io_uring_sqe *sqe, rl_op *op)
{
    switch (op->opcode) {
    case RL_OP_OPENAT:
        io_uring_prep_openat(sqe, op->u.path.dfd, op->u.path.path,
                             op->u.path.flags | O_CLOEXEC,
                             (mode_t)op->u.path.mode);
        break;
    case RL_OP_FSYNC:
        io_uring_prep_fsync(
            sqe, op->fd,
            op->u.fsync.flags & RL_FSYNC_DATASYNC ? IORING_FSYNC_DATASYNC : 0);
        break;
    case RL_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, op->fd, op->u.falloc.mode,
                                (off_t)op->u.falloc.offset,
                                (off_t)op->u.falloc.len);
        break;
    case RL_OP_FTRUNCATE:
        rl_uring_prep_ftruncate(sqe, op->fd, op->u.falloc.len);
        break;
    case RL_OP_STATX:
        io_uring_prep_statx(sqe, op->u.statx.dfd, op->u.statx.path,
                            op->u.statx.flags, op->u.statx.mask,
                            op->u.statx.buf);
        break;
    case RL_OP_RENAME:
        io_uring_prep_renameat(sqe, op->u.rename.olddfd, op->u.rename.oldpath,
                               op->u.rename.newdfd, op->u.rename.newpath,
                               op->u.rename.flags);
        break;
    case RL_OP_UNLINK:
        io_uring_prep_unlinkat(sqe, op->u.path.dfd, op->u.path.path,
                               op->u.path.flags);
        break;
    case RL_OP_MKDIR:
        io_uring_prep_mkdirat(sqe, op->u.path.dfd, op->u.path.path,
                              (mode_t)op->u.path.mode);
        break;
    }
}

static void prep_direct(struct rl_uring *u, struct io_uring_sqe *sqe, rl_op *op)
{
    switch (op->opcode) {
    case RL_OP_NOP:
        io_uring_prep_nop(sqe);
        break;
    case RL_OP_ACCEPT:
        prep_accept(u, sqe, op);
        break;
    case RL_OP_CONNECT:
        io_uring_prep_connect(sqe, op->fd, op->u.connect.addr,
                              op->u.connect.addrlen);
        break;
    case RL_OP_RECV:
        prep_recv(u, sqe, op);
        break;
    case RL_OP_SEND:
        /* EPIPE as a result, never SIGPIPE */
        if (use_zc(u, op)) {
            io_uring_prep_send_zc(
                sqe, op->fd, op->u.io.buf, clamp_len(op->u.io.len),
                sock_flags(op->u.io.msg_flags) | MSG_NOSIGNAL, 0);
            set_uflags(op, uflags(op) | U_ZC);
            break;
        }
        io_uring_prep_send(sqe, op->fd, op->u.io.buf, clamp_len(op->u.io.len),
                           sock_flags(op->u.io.msg_flags) | MSG_NOSIGNAL);
        break;
    case RL_OP_RECVMSG:
        io_uring_prep_recvmsg(sqe, op->fd, op->u.msg.msg,
                              (unsigned)sock_flags(op->u.msg.msg_flags));
        break;
    case RL_OP_SENDMSG:
        if (use_zc(u, op)) {
            io_uring_prep_sendmsg_zc(sqe, op->fd, op->u.msg.msg,
                                     (unsigned)sock_flags(op->u.msg.msg_flags) |
                                         MSG_NOSIGNAL);
            set_uflags(op, uflags(op) | U_ZC);
            break;
        }
        io_uring_prep_sendmsg(sqe, op->fd, op->u.msg.msg,
                              (unsigned)sock_flags(op->u.msg.msg_flags) |
                                  MSG_NOSIGNAL);
        break;
    case RL_OP_READ:
    case RL_OP_WRITE:
        prep_rw(sqe, op);
        break;
    case RL_OP_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case RL_OP_SHUTDOWN:
        io_uring_prep_shutdown(sqe, op->fd, op->u.shutdown.how);
        break;
    case RL_OP_POLL:
        if ((op->flags & RL_F_MULTISHOT) &&
            (u->features & RL_FEAT_MULTISHOT_POLL))
            io_uring_prep_poll_multishot(sqe, op->fd, op->u.poll.events);
        else
            io_uring_prep_poll_add(sqe, op->fd, op->u.poll.events);
        break;
    default:
        prep_file(sqe, op);
        break;
    }
}

/* Put op's next request (per its mode) in the SQ and op on its fd's
 * in-flight list. */
static int arm(struct rl_uring *u, rl_op *op)
{
    struct io_uring_sqe *sqe;
    int ret;

    if (op->fd >= 0 && (ret = byfd_reserve(u, op->fd)) < 0)
        return ret;
    ret = get_sqe(u, &sqe);
    if (ret < 0)
        return ret;
    set_uflags(op, uflags(op) & ~(U_ZC | U_BUNDLE | U_FIXED));
    switch (mode(op)) {
    case U_DIRECT:
        prep_direct(u, sqe, op);
        if (op->fd >= 0 && use_fixed(u, op)) {
            sqe->fd = op->fd; /* the slot */
            sqe->flags |= IOSQE_FIXED_FILE;
            set_uflags(op, uflags(op) | U_FIXED);
        }
        break;
    case U_POLL_RETRY:
        io_uring_prep_poll_add(sqe, op->fd, retry_events(op));
        break;
    case U_POLL_CONNECT:
        io_uring_prep_poll_add(sqe, op->fd, POLLOUT);
        break;
    case U_POLL_RECV:
        io_uring_prep_poll_add(sqe, op->fd, POLLIN);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    put_on(op->fd >= 0 ? fd_list(u, op->fd) : &u->nofd, op, U_KERNEL);
    return 0;
}

/* After the kernel ended op's request: arm the next one, or, if op was
 * cancelled (or no SQE can be had), queue its final completion. */
static void rearm_or_defer(struct rl_uring *u, rl_op *op)
{
    int ret;

    if (canceled(op)) {
        defer_final(u, op, -ECANCELED);
        return;
    }
    ret = arm(u, op);
    if (ret < 0)
        defer_final(u, op, ret);
    else
        u->loop->stats.multishot_rearms++;
}

int rl__uring_arm_timeout(struct rl_uring *u, int64_t timeout_ns)
{
    uint64_t deadline = rl__clock_ns() + (uint64_t)timeout_ns;
    struct io_uring_sqe *sqe;
    int ret;

    /* One armed earlier does: waking early only costs an iteration. */
    if (u->tmo_armed && u->tmo_deadline <= deadline)
        return 0;
    if (u->tmo_armed) {
        ret = get_sqe(u, &sqe);
        if (ret < 0)
            return ret;
        io_uring_prep_timeout_remove(sqe, RL_URING_TAG_TIMEOUT, 0);
        io_uring_sqe_set_data64(sqe, RL_URING_TAG_CANCEL);
    }
    ret = get_sqe(u, &sqe);
    if (ret < 0)
        return ret;
    u->tmo_ts.tv_sec = timeout_ns / 1000000000;
    u->tmo_ts.tv_nsec = timeout_ns % 1000000000;
    /* count 0: a pure timer, never completed by other CQEs */
    io_uring_prep_timeout(sqe, &u->tmo_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, RL_URING_TAG_TIMEOUT);
    u->tmo_armed = true;
    u->tmo_deadline = deadline;
    return 0;
}

int rl__uring_arm_wake(struct rl_uring *u)
{
    struct io_uring_sqe *sqe;
    int ret;

    ret = get_sqe(u, &sqe);
    if (ret < 0)
        return ret;
    io_uring_prep_read(sqe, u->efd, &u->efd_val, sizeof(u->efd_val), 0);
    io_uring_sqe_set_data64(sqe, RL_URING_TAG_WAKE);
    u->wake_armed = true;
    return 0;
}

/* ---- cancellation ------------------------------------------------------- */

static int prep_cancel_op(struct rl_uring *u, rl_op *op)
{
    struct io_uring_sqe *sqe;
    int ret;

    ret = get_sqe(u, &sqe);
    if (ret < 0)
        return ret;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data64(sqe, RL_URING_TAG_CANCEL);
    return 0;
}

/*
 * op is cancelled while its SQE still waits in the SQ (io_uring_submit()
 * has not handed it to the kernel): make that SQE a NOP with the same
 * user_data, so that the op never starts. A cancel request sent after it
 * would race with the op itself: a send could still move data (the kernel
 * retries a send whose socket became writable before it looks at the
 * cancel), which asyncio's abort() never does. True if found.
 */
static bool void_unsubmitted(struct rl_uring *u, rl_op *op)
{
    struct io_uring_sq *sq = &u->ring.sq;
    uint64_t ud = (uint64_t)(uintptr_t)op;
    struct io_uring_sqe *sqe;
    bool found = false;
    unsigned i;

    for (i = sq->sqe_head; i != sq->sqe_tail; i++) {
        sqe = &sq->sqes[i & sq->ring_mask];
        if (sqe->user_data != ud)
            continue;
        /* Keep only a link to what follows: a NOP needs no file, no
         * buffer, and must post its CQE. */
        sqe->flags &= IOSQE_IO_LINK | IOSQE_IO_HARDLINK;
        sqe->opcode = IORING_OP_NOP;
        sqe->fd = -1;
        sqe->ioprio = 0;
        sqe->off = 0;
        sqe->addr = 0;
        sqe->len = 0;
        sqe->rw_flags = 0;
        sqe->buf_index = 0;
        sqe->personality = 0;
        sqe->file_index = 0;
        sqe->addr3 = 0;
        sqe->__pad2[0] = 0;
        found = true;
    }
    if (found)
        set_uflags(op, uflags(op) | U_CANCELED | U_VOIDED);
    return found;
}

static int cancel_op(struct rl_uring *u, rl_op *op)
{
    switch (where(op)) {
    case U_KERNEL:
        if (void_unsubmitted(u, op))
            return 0;
        set_uflags(op, uflags(op) | U_CANCELED);
        return prep_cancel_op(u, op);
    case U_NOBUFS:
        defer_final(u, op, -ECANCELED);
        return 0;
    case U_DEFERRED:
        return 0; /* its final completion is already queued */
    default:
        set_uflags(op, uflags(op) | U_CANCELED);
        return 0;
    }
}

/* Mark the ops of fd (every op if fd < 0) as cancelled and finish the
 * parked ones. The kernel side is cancelled by the caller. */
static void mark_list(struct rl_list *l)
{
    struct rl_list *n;
    rl_op *op;

    for (n = l->next; n != l; n = n->next) {
        op = rl_container_of(n, rl_op, node);
        if (!void_unsubmitted(op->loop->backend, op))
            set_uflags(op, uflags(op) | U_CANCELED);
    }
}

static void mark_canceled(struct rl_uring *u, int fd)
{
    struct rl_list *n, *next, *l;
    rl_op *op;
    unsigned i;

    if (fd < 0) {
        for (i = 0; i < u->nbyfd; i++)
            mark_list(&u->byfd[i]);
        mark_list(&u->nofd);
    } else if ((l = fd_list(u, fd))) {
        mark_list(l);
    }
    for (n = u->nobufs.next; n != &u->nobufs; n = next) {
        next = n->next;
        op = rl_container_of(n, rl_op, node);
        if (fd < 0 || op->fd == fd)
            defer_final(u, op, -ECANCELED);
    }
}

static int cancel_list(struct rl_uring *u, struct rl_list *l)
{
    struct rl_list *n;
    int ret;

    for (n = l->next; n != l; n = n->next) {
        ret = prep_cancel_op(u, rl_container_of(n, rl_op, node));
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Cancel one by one (no IORING_ASYNC_CANCEL_FD/ANY, or switched off). */
static int cancel_each(struct rl_uring *u, int fd)
{
    struct rl_list *l;
    unsigned i;
    int ret;

    if (fd >= 0)
        return (l = fd_list(u, fd)) ? cancel_list(u, l) : 0;
    for (i = 0; i < u->nbyfd; i++)
        if ((ret = cancel_list(u, &u->byfd[i])) < 0)
            return ret;
    return cancel_list(u, &u->nofd);
}

/*
 * Cancel every op on fd. With `link`, the cancel SQE is hard-linked to the
 * SQE the caller gets next (the close), so that runs after it even when
 * the cancel finds nothing. No SQE at all when nothing of fd is in flight.
 */
static int cancel_fd(struct rl_uring *u, int fd, bool link)
{
    struct rl_list *l = fd_list(u, fd);
    struct io_uring_sqe *sqe;
    int ret;

    mark_canceled(u, fd);
    if (!l || rl_list_empty(l))
        return 0; /* the kernel holds nothing of ours on fd */
    if (!(u->features & RL_FEAT_CANCEL_FD))
        return cancel_each(u, fd);
    /* The linked pair must go in one submission. */
    if (link && io_uring_sq_space_left(&u->ring) < 2) {
        ret = rl__uring_sq_room(u, 2);
        if (ret < 0)
            return ret;
    }
    ret = get_sqe(u, &sqe);
    if (ret < 0)
        return ret;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, RL_URING_TAG_CANCEL);
    if (link)
        sqe->flags |= IOSQE_IO_HARDLINK;
    return 0;
}

int rl__uring_cancel(rl_loop *loop, rl_op *op, int fd)
{
    struct rl_uring *u = loop->backend;

    if (!u->ring_ok)
        return -EBADFD;
    if (op)
        return cancel_op(u, op);
    if (fd >= 0)
        return cancel_fd(u, fd, false);
    /* Everything (rl_loop_free); the internal eventfd read stays armed. */
    mark_canceled(u, -1);
    return cancel_each(u, -1);
}

int rl__uring_fd_closed(rl_loop *loop, int fd)
{
    struct rl_uring *u = loop->backend;
    struct rl_list *n, *next;
    rl_op *op;

    /* Nothing of fd may be in flight; finish what is parked anyway. */
    for (n = u->nobufs.next; n != &u->nobufs; n = next) {
        next = n->next;
        op = rl_container_of(n, rl_op, node);
        if (op->fd == fd)
            defer_final(u, op, -ECANCELED);
    }
    fd_forget(u, fd);
    return 0;
}

/* ---- submission --------------------------------------------------------- */

/* RL_OP_CLOSE: cancel every op on the fd, then close it (hard-linked). */
static int submit_close(struct rl_uring *u, rl_op *op)
{
    int ret;

    /* The file table lets go of the socket with the fd. */
    fd_forget(u, op->fd);
    ret = cancel_fd(u, op->fd, true);
    if (ret < 0)
        return ret;
    return arm(u, op);
}

/* The recv(2) buffer of readiness mode, allocated at its first use. */
static int scratch_get(struct rl_uring *u)
{
    size_t len =
        u->br_size > RL_URING_SCRATCH_MIN ? u->br_size : RL_URING_SCRATCH_MIN;

    if (u->scratch)
        return 0;
    if (!(u->scratch = malloc(len)))
        return -ENOMEM;
    u->scratch_len = len;
    return 0;
}

int rl__uring_submit(rl_loop *loop, rl_op *op)
{
    struct rl_uring *u = loop->backend;

    if (!u->ring_ok)
        return -EBADFD;
    if (u->pool_opcodes & (1u << op->opcode))
        return rl__pool_submit(loop, op, 0); /* the kernel lacks it */
    op->priv = 0;
    rl_list_init(&op->node);
    if (op->opcode == RL_OP_CLOSE)
        return submit_close(u, op);
    if (op->opcode == RL_OP_RECV && (op->flags & RL_F_MULTISHOT)) {
        if (u->br_state == RL_URING_BR_NONE)
            bufring_setup(u);
        if (u->br_state != RL_URING_BR_READY) {
            if (scratch_get(u) < 0)
                return -ENOMEM;
            set_mode(op, U_POLL_RECV);
        }
    }
    if (op->flags & RL_F_AT_READY)
        set_mode(op, U_POLL_RECV); /* a one-shot recv: recv_at_ready() */
    return arm(u, op);
}

/* ---- completion dispatch ------------------------------------------------ */

/* A -EAGAIN (or a finished poll) on op: wait for readiness, then retry. */
static unsigned retry_after_poll(struct rl_uring *u, rl_op *op, int res)
{
    int ret;

    if (canceled(op))
        return complete_final(u, op, -ECANCELED);
    set_mode(op, U_POLL_RETRY);
    ret = arm(u, op);
    return ret < 0 ? complete_final(u, op, res) : 0;
}

/* A one-shot request of op ended with res. */
static unsigned on_single(struct rl_uring *u, rl_op *op, int res)
{
    if (res == -EAGAIN && retry_events(op))
        return retry_after_poll(u, op, res);
    if ((res == -EINPROGRESS || res == -EALREADY) &&
        op->opcode == RL_OP_CONNECT) {
        if (canceled(op))
            return complete_final(u, op, -ECANCELED);
        set_mode(op, U_POLL_CONNECT);
        return arm(u, op) < 0 ? complete_final(u, op, res) : 0;
    }
    return complete_final(u, op, res);
}

/*
 * Accept and poll that repeat (RL_F_MULTISHOT): RL_CQE_MORE while armed.
 * A kernel that ends the request after a success (or single-shot requests,
 * when the multishot form is off) is re-armed without the user noticing.
 */
static unsigned on_repeat(struct rl_uring *u, rl_op *op,
                          const struct rl_uring_cqe *c)
{
    if (c->flags & IORING_CQE_F_MORE) {
        rl__op_complete(u->loop, op, c->res, RL_CQE_MORE, NULL);
        return 1;
    }
    if (c->res < 0) {
        if (c->res == -EAGAIN && op->opcode == RL_OP_ACCEPT)
            return retry_after_poll(u, op, c->res);
        return complete_final(u, op, c->res); /* e.g. -EMFILE */
    }
    rearm_or_defer(u, op);
    rl__op_complete(u->loop, op, c->res, RL_CQE_MORE, NULL);
    return 1;
}

/*
 * The res bytes of a recv completion that picked buffer bid, handed out a
 * callback per buffer: with recv_bundle they fill the buffers of the ring
 * slots that follow bid's, one after the other (with bufring_inc the first
 * from where its last piece ended, the last maybe not to its end:
 * IORING_CQE_F_BUF_MORE). A buffer used up goes back to the ring after its
 * callback. Returns the callbacks run.
 */
static unsigned deliver_buffers(struct rl_uring *u, rl_op *op, unsigned bid,
                                uint32_t res, uint32_t cflags)
{
    unsigned count = 0, next = bid, mask = u->br_entries - 1;
    uint32_t off, piece;
    bool used_up;

    while (res > 0) {
        bid = next;
        off = u->br_off ? u->br_off[bid] : 0;
        piece = res < u->br_size - off ? res : u->br_size - off;
        res -= piece;
        if (res > 0) {
            if (!u->br_slot) /* cannot be: one buffer per completion */
                res = 0;
            else /* read before the recycle below can reuse the slot */
                next = u->br->bufs[(u->br_slot[bid] + 1) & mask].bid;
        }
        used_up = res > 0 || !u->br_off || !(cflags & IORING_CQE_F_BUF_MORE);
        if (used_up)
            u->br_free--;
        else
            u->br_off[bid] += piece;
        rl__op_complete(u->loop, op, (int)piece, RL_CQE_MORE | RL_CQE_BUFFER,
                        u->br_bufs + (size_t)bid * u->br_size + off);
        count++;
        if (used_up)
            bufring_recycle(u, bid);
    }
    return count;
}

/* Move op, a multishot recv from the ring that just got a large piece, to
 * readiness. A recv the kernel ended (more false) is re-armed so; one still
 * armed is cancelled, and its last completion (to_poll_ended) arms the
 * POLL_ADD. A cancel that finds the recv already ended does nothing: the
 * SQ is consumed in order, so it cannot reach what op arms later. */
static void to_poll(struct rl_uring *u, rl_op *op, bool more)
{
    if ((uflags(op) & U_TO_POLL) || scratch_get(u) < 0)
        return;
    set_uflags(op, uflags(op) & ~U_SMALL);
    if (!more) {
        set_mode(op, U_POLL_RECV);
        u->loop->stats.recv_to_readiness++;
    } else if (prep_cancel_op(u, op) == 0) {
        set_uflags(op, uflags(op) | U_TO_POLL);
    }
}

/* The ring's recv of op, which to_poll() cancels, ended with res: from now
 * on op waits for readiness. True if nothing is left to do with res (the
 * cancel's doing, or a lack of buffers it no longer needs): the POLL_ADD
 * is armed, or the op ends if it could not be. */
static bool to_poll_ended(struct rl_uring *u, rl_op *op, int res)
{
    int ret;

    set_uflags(op, uflags(op) & ~U_TO_POLL);
    if (canceled(op))
        return false; /* the caller's cancel: end as usual */
    set_mode(op, U_POLL_RECV);
    u->loop->stats.recv_to_readiness++;
    /* Ended by itself: re-armed as usual; but no need to wait for buffers
     * (-ENOBUFS) any more. */
    if (res != -ECANCELED && res != -ENOBUFS)
        return false;
    ret = arm(u, op);
    if (ret < 0)
        defer_final(u, op, ret);
    return true;
}

/* Multishot recv from the buffer ring (or single-shot BUFFER_SELECT recv
 * re-armed, when multishot recv is off). */
static unsigned on_recv_buffer(struct rl_uring *u, rl_op *op,
                               const struct rl_uring_cqe *c)
{
    bool more = c->flags & IORING_CQE_F_MORE;
    unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;

    if (!more && (uflags(op) & U_TO_POLL) && to_poll_ended(u, op, c->res))
        return 0;
    if (c->res > 0 && (c->flags & IORING_CQE_F_BUFFER)) {
        if ((unsigned)c->res >= u->large_read && mode(op) == U_DIRECT &&
            !canceled(op))
            to_poll(u, op, more);
        if (!more)
            rearm_or_defer(u, op);
        return deliver_buffers(u, op, bid, (uint32_t)c->res, c->flags);
    }
    if (c->flags & IORING_CQE_F_BUFFER) {
        /* Nothing in it. With bufring_inc the kernel keeps a buffer that
         * got nothing unless it says otherwise (no BUF_MORE: e.g. from
         * io-wq, which consumes it). */
        if (!u->br_off || !(c->flags & IORING_CQE_F_BUF_MORE)) {
            u->br_free--;
            bufring_recycle(u, bid);
        }
    }
    if (c->res == -EINVAL && !more && (uflags(op) & U_BUNDLE)) {
        /* The kernel refuses bundles: whole buffers from now on. */
        u->features &= ~RL_FEAT_RECV_BUNDLE;
        rl__uring_data_fallback(u, RL_FEAT_RECV_BUNDLE,
                                "recv with IORING_RECVSEND_BUNDLE refused",
                                c->res);
        rearm_or_defer(u, op);
        return 0;
    }
    if (c->res == -ENOBUFS) {
        u->loop->stats.recv_enobufs++;
        /* Never shown: wait for buffers, then re-arm (if the kernel did
         * not keep it armed). */
        if (more)
            return 0;
        if (canceled(op))
            return complete_final(u, op, -ECANCELED);
        put_on(&u->nobufs, op, U_NOBUFS);
        return 0;
    }
    if (more) {
        rl__op_complete(u->loop, op, c->res, RL_CQE_MORE, NULL);
        return 1;
    }
    if (c->res == -EAGAIN)
        return retry_after_poll(u, op, c->res);
    return complete_final(u, op, c->res > 0 ? -EIO : c->res);
}

/* recv(2) now, for a recv in readiness mode: bytes, or -errno. */
static ssize_t recv_now(struct rl_uring *u, int fd, void *buf, size_t len,
                        int flags)
{
    ssize_t n;

    do {
        u->loop->stats.recv_calls++;
        n = recv(fd, buf, len, flags | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* A recv in readiness mode failed with err: wait for readiness again
 * (-EAGAIN) or end op. */
static unsigned recv_failed(struct rl_uring *u, rl_op *op, int err)
{
    if (err == -EAGAIN || err == -EWOULDBLOCK) {
        err = arm(u, op);
        if (err == 0)
            return 0;
    }
    return complete_final(u, op, err);
}

/* A multishot recv in readiness mode read n bytes: after a run of short
 * reads it goes back to the ring (its next arm). */
static void maybe_to_ring(struct rl_uring *u, rl_op *op, size_t n)
{
    unsigned small = (uflags(op) & U_SMALL) >> U_SMALL_SHIFT;

    small = n < RL_URING_SMALL_READ ? small + 1 : 0;
    if (small >= RL_URING_SMALL_RUN) {
        small = 0;
        set_mode(op, U_DIRECT);
        u->loop->stats.recv_to_ring++;
    }
    set_uflags(op, (uflags(op) & ~U_SMALL) | small << U_SMALL_SHIFT);
}

/* Multishot recv in readiness mode (no buffer ring, or large data): the
 * poll fired, recv(2) now. */
static unsigned recv_emulated(struct rl_uring *u, rl_op *op)
{
    ssize_t n = recv_now(u, op->fd, u->scratch, u->scratch_len, 0);

    if (n > 0) {
        if (u->br_state == RL_URING_BR_READY)
            maybe_to_ring(u, op, (size_t)n);
        rearm_or_defer(u, op);
        rl__op_complete(u->loop, op, (int)n, RL_CQE_MORE | RL_CQE_BUFFER,
                        u->scratch);
        return 1;
    }
    if (n == 0)
        return complete_final(u, op, 0);
    return recv_failed(u, op, (int)n);
}

/* A one-shot recv with RL_F_AT_READY: the poll fired, recv(2) into the
 * caller's buffer now. */
static unsigned recv_at_ready(struct rl_uring *u, rl_op *op)
{
    ssize_t n = recv_now(u, op->fd, op->u.io.buf, clamp_len(op->u.io.len),
                         op->u.io.msg_flags);

    return n >= 0 ? complete_final(u, op, (int)n) : recv_failed(u, op, (int)n);
}

static int sock_error(int fd)
{
    socklen_t len = sizeof(int);
    int err = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* A POLL_ADD standing in for op completed with res (revents or -errno). */
static unsigned on_poll(struct rl_uring *u, rl_op *op, int res)
{
    int ret;

    if (res < 0)
        return complete_final(u, op, res);
    if (canceled(op))
        return complete_final(u, op, -ECANCELED);
    switch (mode(op)) {
    case U_POLL_CONNECT:
        return complete_final(u, op, sock_error(op->fd));
    case U_POLL_RECV:
        if (!(op->flags & RL_F_MULTISHOT))
            return recv_at_ready(u, op);
        return recv_emulated(u, op);
    default: /* U_POLL_RETRY */
        set_mode(op, U_DIRECT);
        ret = arm(u, op);
        return ret < 0 ? complete_final(u, op, ret) : 0;
    }
}

/*
 * A SEND(MSG)_ZC. Its first completion has the result; with
 * IORING_CQE_F_MORE the kernel may still read the data, until the
 * notification (IORING_CQE_F_NOTIF) says it is done. The op's final
 * completion comes only then, so the data stays the caller's promise
 * (include/ringloop.h) until the kernel has let go of it.
 */
static unsigned on_zc(struct rl_uring *u, rl_op *op,
                      const struct rl_uring_cqe *c)
{
    int res = c->res, ret;

    if (c->flags & IORING_CQE_F_NOTIF) {
        res = (int32_t)(op->priv >> 32);
    } else if (c->flags & IORING_CQE_F_MORE) {
        /* Stays on its fd's list; the notification ends it. */
        op->priv = (uint64_t)(uint32_t)res << 32 | uflags(op) | U_ZC_NOTIF;
        return 0;
    }
    unlink_op(op);
    set_uflags(op, uflags(op) & ~(U_ZC | U_ZC_NOTIF));
    if (res == -EOPNOTSUPP || res == -EINVAL) {
        /* This socket cannot send zero-copy (e.g. AF_UNIX): plain sends
         * on it from now on, this one too. Nothing was sent. */
        u->fdf[op->fd] |= RL_URING_FD_NOZC;
        rl__uring_data_fallback(u, RL_FEAT_SEND_ZC,
                                "a socket refused SEND_ZC, plain send there",
                                res);
        if (canceled(op))
            return complete_final(u, op, -ECANCELED);
        ret = arm(u, op);
        return ret < 0 ? complete_final(u, op, ret) : 0;
    }
    return on_single(u, op, res);
}

unsigned rl__uring_dispatch(struct rl_uring *u, const struct rl_uring_cqe *c)
{
    rl_op *op = (rl_op *)(uintptr_t)c->user_data;

    if (c->user_data == RL_URING_TAG_WAKE) {
        /* The counter is drained; read again (if no SQE is to be had
         * now, wait() arms it). */
        u->wake_armed = false;
        rl__uring_arm_wake(u);
        return 0;
    }
    if (c->user_data == RL_URING_TAG_TIMEOUT) {
        /* -ECANCELED: an older one replaced by an earlier deadline */
        if (c->res != -ECANCELED)
            u->tmo_armed = false;
        return 0;
    }
    if (c->user_data < RL_URING_TAG_LIMIT)
        return 0; /* RL_URING_TAG_CANCEL, RL_URING_TAG_MSG */
    if ((c->user_data & 7) == RL_URING_TAG_MSG_SENT) {
        rl__uring_msg_failed(u, (rl_loop *)(uintptr_t)(c->user_data & ~7ull),
                             c->res);
        return 0;
    }
    if (uflags(op) & U_VOIDED) { /* the NOP its SQE became */
        set_uflags(op, uflags(op) & ~U_VOIDED);
        return complete_final(u, op, -ECANCELED);
    }
    if (uflags(op) & U_ZC)
        return on_zc(u, op, c);
    if (!(c->flags & IORING_CQE_F_MORE))
        unlink_op(op); /* the kernel is done with this request */
    if (mode(op) != U_DIRECT)
        return on_poll(u, op, c->res);
    if (op->flags & RL_F_MULTISHOT) {
        if (op->opcode == RL_OP_RECV)
            return on_recv_buffer(u, op, c);
        return on_repeat(u, op, c);
    }
    return on_single(u, op, c->res);
}

void rl__uring_rearm_parked(struct rl_uring *u)
{
    unsigned budget = u->br_free;
    struct rl_list *n;

    /* Parked ops had data waiting: re-arm about as many as there are free
     * buffers, oldest first, so that they do not all hit -ENOBUFS again.
     * wait() does not sleep while some stay parked with buffers free. */
    while (budget-- > 0 && (n = rl_list_pop(&u->nobufs))) {
        rl_op *op = rl_container_of(n, rl_op, node);
        set_uflags(op, uflags(op) & ~U_WHERE);
        rearm_or_defer(u, op);
    }
}

unsigned rl__uring_flush_deferred(struct rl_uring *u)
{
    struct rl_list todo, *n;
    unsigned count = 0;

    if (rl_list_empty(&u->deferred))
        return 0;
    /* Those deferred by these callbacks wait for the next wait(). */
    rl_list_init(&todo);
    rl_list_splice_tail(&todo, &u->deferred);
    while ((n = rl_list_pop(&todo))) {
        rl_op *op = rl_container_of(n, rl_op, node);
        int res = (int32_t)(op->priv >> 32);

        set_uflags(op, uflags(op) & ~U_WHERE);
        rl__op_complete(u->loop, op, res, 0, NULL);
        count++;
    }
    return count;
}

void rl__uring_forget_all(struct rl_uring *u)
{
    struct rl_list held, *n;
    unsigned i;

    rl_list_init(&held);
    /* The file table went with the parent's ring. */
    u->ftable = 0;
    for (i = 0; i < u->nbyfd; i++) {
        rl_list_splice_tail(&held, &u->byfd[i]);
        u->fdf[i] &= ~RL_URING_FD_FIXED;
    }
    rl_list_splice_tail(&held, &u->nofd);
    rl_list_splice_tail(&held, &u->nobufs);
    rl_list_splice_tail(&held, &u->deferred);
    while ((n = rl_list_pop(&held))) {
        rl_op *op = rl_container_of(n, rl_op, node);

        set_uflags(op, uflags(op) & ~U_WHERE);
        defer_final(u, op, -ECANCELED);
    }
}
