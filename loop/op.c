/*
 * Operations: the rl_prep_*() helpers, submission, cancellation and the
 * completion entry point the backends call.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "loop.h"

/* Which opcodes move bytes in, and out (their res counts). */
static const bool rl_opcode_received[RL_OP__COUNT] = {
    [RL_OP_RECV] = true, [RL_OP_RECVMSG] = true, [RL_OP_READ] = true};
static const bool rl_opcode_sent[RL_OP__COUNT] = {
    [RL_OP_SEND] = true, [RL_OP_SENDMSG] = true, [RL_OP_WRITE] = true};

static const char *const opcode_names[RL_OP__COUNT] = {
    [RL_OP_NOP] = "nop",
    [RL_OP_ACCEPT] = "accept",
    [RL_OP_CONNECT] = "connect",
    [RL_OP_RECV] = "recv",
    [RL_OP_SEND] = "send",
    [RL_OP_RECVMSG] = "recvmsg",
    [RL_OP_SENDMSG] = "sendmsg",
    [RL_OP_READ] = "read",
    [RL_OP_WRITE] = "write",
    [RL_OP_CLOSE] = "close",
    [RL_OP_SHUTDOWN] = "shutdown",
    [RL_OP_POLL] = "poll",
    [RL_OP_OPENAT] = "openat",
    [RL_OP_FSYNC] = "fsync",
    [RL_OP_FALLOCATE] = "fallocate",
    [RL_OP_FTRUNCATE] = "ftruncate",
    [RL_OP_STATX] = "statx",
    [RL_OP_RENAME] = "rename",
    [RL_OP_UNLINK] = "unlink",
    [RL_OP_MKDIR] = "mkdir",
};

const char *rl_opcode_name(unsigned opcode)
{
    return opcode < RL_OP__COUNT ? opcode_names[opcode] : NULL;
}

static inline void prep(rl_op *op, uint8_t opcode, int fd, rl_op_fn fn,
                        void *data)
{
    memset(op, 0, sizeof(*op));
    op->opcode = opcode;
    op->fd = fd;
    op->fn = fn;
    op->data = data;
    rl_list_init(&op->node);
}

void rl_prep_nop(rl_op *op, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_NOP, -1, fn, data);
}

void rl_prep_accept(rl_op *op, int fd, struct sockaddr *addr,
                    socklen_t *addrlen, int flags, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_ACCEPT, fd, fn, data);
    op->u.accept.addr = addr;
    op->u.accept.addrlen = addrlen;
    op->u.accept.flags = flags;
}

void rl_prep_accept_multishot(rl_op *op, int fd, int flags, rl_op_fn fn,
                              void *data)
{
    rl_prep_accept(op, fd, NULL, NULL, flags, fn, data);
    op->flags = RL_F_MULTISHOT;
}

void rl_prep_connect(rl_op *op, int fd, const struct sockaddr *addr,
                     socklen_t addrlen, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_CONNECT, fd, fn, data);
    op->u.connect.addr = addr;
    op->u.connect.addrlen = addrlen;
}

void rl_prep_recv(rl_op *op, int fd, void *buf, size_t len, int msg_flags,
                  rl_op_fn fn, void *data)
{
    prep(op, RL_OP_RECV, fd, fn, data);
    op->u.io.buf = buf;
    op->u.io.len = len;
    op->u.io.msg_flags = msg_flags;
}

void rl_prep_recv_multishot(rl_op *op, int fd, rl_op_fn fn, void *data)
{
    rl_prep_recv(op, fd, NULL, 0, 0, fn, data);
    op->flags = RL_F_MULTISHOT;
}

void rl_prep_send(rl_op *op, int fd, const void *buf, size_t len, int msg_flags,
                  rl_op_fn fn, void *data)
{
    prep(op, RL_OP_SEND, fd, fn, data);
    op->u.io.buf = (void *)buf;
    op->u.io.len = len;
    op->u.io.msg_flags = msg_flags;
}

void rl_prep_recvmsg(rl_op *op, int fd, struct msghdr *msg, int msg_flags,
                     rl_op_fn fn, void *data)
{
    prep(op, RL_OP_RECVMSG, fd, fn, data);
    op->u.msg.msg = msg;
    op->u.msg.msg_flags = msg_flags;
}

void rl_prep_sendmsg(rl_op *op, int fd, const struct msghdr *msg, int msg_flags,
                     rl_op_fn fn, void *data)
{
    prep(op, RL_OP_SENDMSG, fd, fn, data);
    op->u.msg.msg = (struct msghdr *)msg;
    op->u.msg.msg_flags = msg_flags;
}

void rl_prep_read(rl_op *op, int fd, void *buf, size_t len, int64_t offset,
                  rl_op_fn fn, void *data)
{
    prep(op, RL_OP_READ, fd, fn, data);
    op->u.rw.buf = buf;
    op->u.rw.len = len;
    op->u.rw.offset = offset;
}

void rl_prep_write(rl_op *op, int fd, const void *buf, size_t len,
                   int64_t offset, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_WRITE, fd, fn, data);
    op->u.rw.buf = (void *)buf;
    op->u.rw.len = len;
    op->u.rw.offset = offset;
}

static void prep_rwv(rl_op *op, uint8_t opcode, int fd, const struct iovec *iov,
                     size_t nr, int64_t offset, rl_op_fn fn, void *data)
{
    prep(op, opcode, fd, fn, data);
    op->flags = RL_F_VECTORED;
    op->u.rwv.iov = iov;
    op->u.rwv.nr = nr;
    op->u.rwv.offset = offset;
}

void rl_prep_readv(rl_op *op, int fd, const struct iovec *iov, size_t nr,
                   int64_t offset, rl_op_fn fn, void *data)
{
    prep_rwv(op, RL_OP_READ, fd, iov, nr, offset, fn, data);
}

void rl_prep_writev(rl_op *op, int fd, const struct iovec *iov, size_t nr,
                    int64_t offset, rl_op_fn fn, void *data)
{
    prep_rwv(op, RL_OP_WRITE, fd, iov, nr, offset, fn, data);
}

void rl_prep_close(rl_op *op, int fd, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_CLOSE, fd, fn, data);
}

void rl_prep_shutdown(rl_op *op, int fd, int how, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_SHUTDOWN, fd, fn, data);
    op->u.shutdown.how = how;
}

void rl_prep_poll(rl_op *op, int fd, unsigned events, bool repeat, rl_op_fn fn,
                  void *data)
{
    prep(op, RL_OP_POLL, fd, fn, data);
    op->u.poll.events = events;
    if (repeat)
        op->flags = RL_F_MULTISHOT;
}

void rl_prep_openat(rl_op *op, int dfd, const char *path, int flags,
                    unsigned mode, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_OPENAT, -1, fn, data);
    op->u.path.dfd = dfd;
    op->u.path.path = path;
    op->u.path.flags = flags;
    op->u.path.mode = mode;
}

void rl_prep_fsync(rl_op *op, int fd, unsigned flags, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_FSYNC, fd, fn, data);
    op->u.fsync.flags = flags;
}

void rl_prep_fallocate(rl_op *op, int fd, int mode, int64_t offset, int64_t len,
                       rl_op_fn fn, void *data)
{
    prep(op, RL_OP_FALLOCATE, fd, fn, data);
    op->u.falloc.mode = mode;
    op->u.falloc.offset = offset;
    op->u.falloc.len = len;
}

void rl_prep_ftruncate(rl_op *op, int fd, int64_t len, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_FTRUNCATE, fd, fn, data);
    op->u.falloc.len = len;
}

void rl_prep_statx(rl_op *op, int dfd, const char *path, int flags,
                   unsigned mask, struct statx *buf, rl_op_fn fn, void *data)
{
    prep(op, RL_OP_STATX, -1, fn, data);
    op->u.statx.dfd = dfd;
    op->u.statx.path = path;
    op->u.statx.flags = flags;
    op->u.statx.mask = mask;
    op->u.statx.buf = buf;
}

void rl_prep_renameat(rl_op *op, int olddfd, const char *oldpath, int newdfd,
                      const char *newpath, unsigned flags, rl_op_fn fn,
                      void *data)
{
    prep(op, RL_OP_RENAME, -1, fn, data);
    op->u.rename.olddfd = olddfd;
    op->u.rename.oldpath = oldpath;
    op->u.rename.newdfd = newdfd;
    op->u.rename.newpath = newpath;
    op->u.rename.flags = flags;
}

void rl_prep_unlinkat(rl_op *op, int dfd, const char *path, int flags,
                      rl_op_fn fn, void *data)
{
    prep(op, RL_OP_UNLINK, -1, fn, data);
    op->u.path.dfd = dfd;
    op->u.path.path = path;
    op->u.path.flags = flags;
}

void rl_prep_mkdirat(rl_op *op, int dfd, const char *path, unsigned mode,
                     rl_op_fn fn, void *data)
{
    prep(op, RL_OP_MKDIR, -1, fn, data);
    op->u.path.dfd = dfd;
    op->u.path.path = path;
    op->u.path.mode = mode;
}

/* The path-based file ops: op->fd is -1, the directory fd in the union. */
static bool opcode_path_based(unsigned opcode)
{
    switch (opcode) {
    case RL_OP_OPENAT:
    case RL_OP_STATX:
    case RL_OP_RENAME:
    case RL_OP_UNLINK:
    case RL_OP_MKDIR:
        return true;
    default:
        return false;
    }
}

static bool op_valid(const rl_op *op)
{
    if (op->opcode >= RL_OP__COUNT || !op->fn)
        return false;
    if (op->flags & ~(RL_F_MULTISHOT | RL_F_VECTORED | RL_F_AT_READY))
        return false;
    if ((op->flags & RL_F_AT_READY) &&
        (op->opcode != RL_OP_RECV || (op->flags & RL_F_MULTISHOT) ||
         (op->u.io.msg_flags & MSG_WAITALL)))
        return false;
    if (op->flags & RL_F_VECTORED)
        return (op->opcode == RL_OP_READ || op->opcode == RL_OP_WRITE) &&
               !(op->flags & RL_F_MULTISHOT) && op->u.rwv.nr <= IOV_MAX &&
               (op->u.rwv.iov || !op->u.rwv.nr);
    if (op->flags & RL_F_MULTISHOT) {
        switch (op->opcode) {
        case RL_OP_ACCEPT:
        case RL_OP_POLL:
            return true;
        case RL_OP_RECV:
            return op->u.io.buf == NULL;
        default:
            return false;
        }
    }
    switch (op->opcode) {
    case RL_OP_RECVMSG:
    case RL_OP_SENDMSG:
        return op->u.msg.msg != NULL;
    case RL_OP_OPENAT:
    case RL_OP_UNLINK:
    case RL_OP_MKDIR:
        return op->u.path.path != NULL;
    case RL_OP_STATX:
        return op->u.statx.path != NULL && op->u.statx.buf != NULL;
    case RL_OP_RENAME:
        return op->u.rename.oldpath != NULL && op->u.rename.newpath != NULL;
    case RL_OP_FSYNC:
        return !(op->u.fsync.flags & ~RL_FSYNC_DATASYNC);
    default:
        return true;
    }
}

int rl_submit(rl_loop *loop, rl_op *op)
{
    int ret;

    if (op->state != RL__OP_IDLE)
        return -EBUSY;
    if (!op_valid(op))
        return -EINVAL;
    if (op->opcode != RL_OP_NOP && op->fd < 0 && !opcode_path_based(op->opcode))
        return -EBADF;
    if (loop->freeing)
        return -ECANCELED;
    if (op->opcode == RL_OP_CLOSE)
        rl__pool_cancel_fd(loop, op->fd); /* as the backend does its own */
    op->loop = loop;
    op->state = RL__OP_IN_FLIGHT;
    op->res = 0;
    op->cflags = 0;
    op->buf = NULL;
    loop->pending++;
    ret = loop->ops->submit(loop, op);
    if (ret < 0) {
        op->state = RL__OP_IDLE;
        loop->pending--;
        return ret;
    }
    loop->stats.ops_submitted++;
    loop->stats.inflight[op->opcode]++;
    return ret;
}

bool rl_op_in_flight(const rl_op *op)
{
    return op->state != RL__OP_IDLE;
}

int rl_op_cancel(rl_loop *loop, rl_op *op)
{
    if (op->state == RL__OP_IDLE || op->loop != loop)
        return -ENOENT;
    if ((op->state & RL__OP_STATE_MASK) == RL__OP_CANCELING)
        return 0;
    if (op->state & RL__OP_POOL) {
        op->state = RL__OP_CANCELING | RL__OP_POOL;
        return rl__pool_cancel(loop, op);
    }
    op->state = RL__OP_CANCELING;
    return loop->ops->cancel(loop, op, -1);
}

int rl_cancel_fd(rl_loop *loop, int fd)
{
    if (fd < 0)
        return -EBADF;
    rl__pool_cancel_fd(loop, fd);
    return loop->ops->cancel(loop, NULL, fd);
}

void rl__op_complete(rl_loop *loop, rl_op *op, int res, unsigned cflags,
                     void *buf)
{
    op->res = res;
    op->cflags = cflags;
    op->buf = buf;
    if (!(cflags & RL_CQE_MORE)) {
        op->state = RL__OP_IDLE;
        loop->pending--;
        loop->stats.inflight[op->opcode]--;
    }
    loop->stats.completions++;
    if (res > 0) {
        if (rl_opcode_received[op->opcode])
            loop->stats.bytes_received += (unsigned)res;
        else if (rl_opcode_sent[op->opcode])
            loop->stats.bytes_sent += (unsigned)res;
    }
    op->fn(loop, op);
}
