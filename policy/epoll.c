/*
 * The epoll backend: completions emulated on top of readiness.
 *
 * submit() only queues an op; the next wait() tries its syscall, and only
 * when that says EAGAIN is the op parked on its fd's read, write or poll
 * queue. An fd is registered once, edge-triggered, on its first park and
 * stays registered until it is closed. An edge runs the fd's queues in order
 * until an op would block again.
 *
 * Every op in flight sits on exactly one list, so that cancel, close and
 * fork can find it: submitted (to try), batch (being run now), an fd queue,
 * or done (final result decided, delivered later in wait()). No completion
 * is ever delivered from inside submit(), cancel(), fd_closed() or fork().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"

#define NEVENTS 128
#define BUDGET 8 /* results per multishot op per iteration, for fairness */
#define EV_WAKE UINT64_MAX
/* Every registration; EPOLLOUT only while something waits to write (a UDP
 * socket registered with it would report an edge per datagram sent). */
#define EP_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLET)

enum { Q_READ, Q_WRITE, Q_POLL, NQ };
enum { T_AGAIN, T_DONE, T_BUDGET }; /* what run_op() left behind */

/* op->priv bits */
#define P_DONE 1u    /* on the done list, result in op->res */
#define P_STARTED 2u /* connect in progress: wait for writability */

/* fdent.flags */
#define FD_REG 1u         /* in the epoll set */
#define FD_ALWAYS 2u      /* epoll refused it (EPERM: a regular file) */
#define FD_KNOWN 4u       /* FD_BLOCK is valid */
#define FD_BLOCK 8u       /* blocking mode, and not a file: may sleep */
#define FD_OUT 16u        /* EPOLLOUT is in the registration */
#define FD_TCPKNOWN 32u   /* FD_TCP is valid */
#define FD_TCP 64u        /* a TCP socket: see short_read() */
#define FD_EDGY 128u      /* an edge said urgent data, hang-up or error */
#define FD_DRAINED 256u   /* a recv came back short, no read edge since */
#define FD_FILE 512u      /* a regular file or block device (FD_KNOWN) */
#define FD_NOWAIT_R 1024u /* preadv2(RWF_NOWAIT) said EOPNOTSUPP here */
#define FD_NOWAIT_W 2048u /* pwritev2(RWF_NOWAIT) said EOPNOTSUPP here */

struct fdent {
    struct rl_list q[NQ];
    unsigned flags;
};

struct ep {
    struct rl_loop_stats *st; /* the loop's counters */
    int epfd;
    int evfd;
    bool no_pwait2;
    struct fdent *fds;
    size_t nfds;
    struct rl_list submitted;
    struct rl_list batch;
    struct rl_list done;
    size_t pool_done; /* with TO_POOL: bytes already moved */
    char *scratch;    /* multishot recv data, valid during one callback */
    size_t scratch_len;
    struct epoll_event ev[NEVENTS];
};

/* The queue each opcode waits on; -1: it never waits (NOP, CLOSE, SHUTDOWN
 * always run, and only fork cancels them). */
static const signed char op_q[RL_OP__COUNT] = {
    [RL_OP_NOP] = -1,
    [RL_OP_ACCEPT] = Q_READ,
    [RL_OP_CONNECT] = Q_WRITE,
    [RL_OP_RECV] = Q_READ,
    [RL_OP_SEND] = Q_WRITE,
    [RL_OP_RECVMSG] = Q_READ,
    [RL_OP_SENDMSG] = Q_WRITE,
    [RL_OP_READ] = Q_READ,
    [RL_OP_WRITE] = Q_WRITE,
    [RL_OP_CLOSE] = -1,
    [RL_OP_SHUTDOWN] = -1,
    [RL_OP_POLL] = Q_POLL,
    /* the file ops go to the pool from submit(): never on our lists */
    [RL_OP_OPENAT] = -1,
    [RL_OP_FSYNC] = -1,
    [RL_OP_FALLOCATE] = -1,
    [RL_OP_FTRUNCATE] = -1,
    [RL_OP_STATX] = -1,
    [RL_OP_RENAME] = -1,
    [RL_OP_UNLINK] = -1,
    [RL_OP_MKDIR] = -1,
};

/* Decide op's final result; flush_done() delivers it. */
static void finish(struct ep *b, rl_op *op, int res)
{
    rl_list_del(&op->node);
    op->res = res;
    op->priv |= P_DONE;
    rl_list_add_tail(&b->done, &op->node);
}

static int flush_done(rl_loop *loop)
{
    struct ep *b = loop->backend;
    struct rl_list *n;
    int count = 0;

    while ((n = rl_list_pop(&b->done))) {
        rl_op *op = rl_container_of(n, rl_op, node);
        count++;
        rl__op_complete(loop, op, op->res, 0, NULL);
    }
    return count;
}

/* The queue heads are pointed at by their ops, so a bigger table is filled
 * by splicing, not by realloc(). */
static int fd_grow(struct ep *b, int fd)
{
    size_t cap = b->nfds ? b->nfds : 64, i;
    struct fdent *v;
    int q;

    while (cap <= (size_t)fd)
        cap *= 2;
    v = malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (i = 0; i < cap; i++) {
        v[i].flags = i < b->nfds ? b->fds[i].flags : 0;
        for (q = 0; q < NQ; q++) {
            rl_list_init(&v[i].q[q]);
            if (i < b->nfds)
                rl_list_splice_tail(&v[i].q[q], &b->fds[i].q[q]);
        }
    }
    free(b->fds);
    b->fds = v;
    b->nfds = cap;
    return 0;
}

/* fd's entry, grown on demand. NULL for fd < 0 or out of memory. The table
 * may move in any callback: look entries up again after one. */
static struct fdent *fd_get(struct ep *b, int fd)
{
    if (fd < 0 || ((size_t)fd >= b->nfds && fd_grow(b, fd) < 0))
        return NULL;
    return &b->fds[fd];
}

static bool queued(const struct ep *b, int fd, int q)
{
    return (size_t)fd < b->nfds && !rl_list_empty(&b->fds[fd].q[q]);
}

/* Set fd's registration (entry must exist): EP_EVENTS, plus EPOLLOUT if
 * out. 1: this call (re)registered fd, and the kernel reports its current
 * state as an edge; 0: nothing to do; -errno. */
static int fd_set_events(struct ep *b, int fd, bool out)
{
    struct fdent *e = &b->fds[fd];
    struct epoll_event ev = {.events = EP_EVENTS | (out ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)fd};
    int ctl = e->flags & FD_REG ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (e->flags & FD_ALWAYS)
        return 0;
    if ((e->flags & FD_REG) && out == !!(e->flags & FD_OUT))
        return 0;
    b->st->epoll_ctl++;
    if (epoll_ctl(b->epfd, ctl, fd, &ev) < 0) {
        if (ctl == EPOLL_CTL_ADD && errno == EPERM) {
            e->flags |= FD_ALWAYS; /* a regular file: always ready */
            return 0;
        }
        /* Registered behind our back (EEXIST), or gone from the set
         * (ENOENT): the other call says what it holds. */
        if (errno == EEXIST || errno == ENOENT) {
            ctl = ctl == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
            b->st->epoll_ctl++;
            if (epoll_ctl(b->epfd, ctl, fd, &ev) == 0)
                goto done;
        }
        /* Closed behind our back: whatever reuses the number registers
         * afresh. */
        if (errno == EBADF || errno == ENOENT)
            e->flags &= ~(FD_REG | FD_OUT);
        return -errno;
    }
done:
    e->flags = (e->flags & ~FD_OUT) | FD_REG | (out ? FD_OUT : 0);
    return 1;
}

/* Register fd, adding EPOLLOUT if out and it is not there yet. */
static int fd_arm(struct ep *b, int fd, bool out)
{
    return fd_set_events(b, fd, out || (b->fds[fd].flags & FD_OUT));
}

/* Something on fd still waits for writability. */
static bool wants_out(const struct ep *b, int fd)
{
    const struct fdent *e = &b->fds[fd];
    struct rl_list *n;

    if (!rl_list_empty(&e->q[Q_WRITE]))
        return true;
    for (n = e->q[Q_POLL].next; n != &e->q[Q_POLL]; n = n->next)
        if (rl_container_of(n, rl_op, node)->u.poll.events &
            (POLLOUT | POLLWRNORM))
            return true;
    return false;
}

/* accept, read and write have no per-call "don't wait" flag: true if fd
 * could make them sleep (blocking mode, not a regular file). Cached. */
static bool fd_blocking(struct ep *b, int fd)
{
    struct fdent *e = fd_get(b, fd);
    struct stat st;
    int fl;

    if (!e)
        return false;
    if (!(e->flags & FD_KNOWN)) {
        fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return false; /* the syscall itself will report it */
        if (fstat(fd, &st) == 0) {
            if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
                e->flags |= FD_FILE;
            else if (!(fl & O_NONBLOCK))
                e->flags |= FD_BLOCK;
        }
        e->flags |= FD_KNOWN;
    }
    return e->flags & FD_BLOCK;
}

/* A regular file or block device: reads and writes may sleep on the disk
 * whatever O_NONBLOCK says. Cached with fd_blocking(). */
static bool fd_file(struct ep *b, int fd)
{
    fd_blocking(b, fd);
    return (size_t)fd < b->nfds && (b->fds[fd].flags & FD_FILE);
}

/*
 * fd is a TCP socket. Cached: one getsockopt per socket, none for those
 * accepted through us (they inherit their listener's answer).
 *
 * A nonblocking TCP recv returns less than asked for only once the receive
 * queue (and the backlog) is empty, with three exceptions: it stops before
 * urgent data, at a FIN, and MSG_PEEK leaves the data where it was. So a
 * short read without flags on a socket whose edges never said EPOLLPRI,
 * EPOLLRDHUP, EPOLLHUP or EPOLLERR has drained it, and whatever arrives
 * later brings an edge. Not so elsewhere: a datagram is one read, an
 * AF_UNIX stream read stops at passed descriptors and at another sender's
 * credentials, a tty returns a line, so those keep reading until EAGAIN.
 */
static bool fd_tcp(struct ep *b, int fd)
{
    struct fdent *e;
    int proto = 0;
    socklen_t len = sizeof(proto);

    if ((size_t)fd < b->nfds && (b->fds[fd].flags & FD_TCPKNOWN))
        return b->fds[fd].flags & FD_TCP; /* the usual case, no call */
    e = fd_get(b, fd);
    if (!e)
        return false;
    if (!(e->flags & FD_TCPKNOWN)) {
        b->st->other_calls++;
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
            proto == IPPROTO_TCP)
            e->flags |= FD_TCP;
        e->flags |= FD_TCPKNOWN;
    }
    return e->flags & FD_TCP;
}

/* fd was just accepted from lfd: a new file, so no stale entry of fd's
 * counts, but it speaks its listener's protocol. */
static void fd_accepted(struct ep *b, int lfd, int fd)
{
    unsigned tcp = fd_tcp(b, lfd) ? FD_TCP : 0;
    struct fdent *e = fd_get(b, fd);

    if (e)
        e->flags = FD_TCPKNOWN | tcp;
}

/* A recv of op (about to be delivered with r) drained its socket (see
 * fd_tcp()): note it, so that the next recv waits for an edge. */
static bool short_read(struct ep *b, const rl_op *op, int r)
{
    size_t want = op->flags & RL_F_MULTISHOT ? b->scratch_len : op->u.io.len;
    struct fdent *e;

    if (op->opcode != RL_OP_RECV || r <= 0 || (size_t)r >= want ||
        op->u.io.msg_flags || !fd_tcp(b, op->fd))
        return false;
    e = &b->fds[op->fd];
    if (e->flags & FD_EDGY)
        return false;
    e->flags |= FD_DRAINED;
    return true;
}

/* op would find nothing to read: its socket is drained (short_read()). */
static bool drained(const struct ep *b, const rl_op *op)
{
    return op->opcode == RL_OP_RECV && (size_t)op->fd < b->nfds &&
           (b->fds[op->fd].flags & FD_DRAINED);
}

static bool ready_now(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};

    return poll(&p, 1, 0) > 0;
}

/* A blocking socket is switched to non-blocking for the call only: the
 * connect must not sleep. */
/* -EAGAIN as a result rather than as "park and wait for an edge". */
#define FINAL_EAGAIN (-4096 - EAGAIN)
/* A file read or write that would sleep: the pool makes it (b->pool_done
 * bytes of it were moved already). */
#define TO_POOL (-4096 - 1)
/* The kernel's MAX_RW_COUNT: a call moves at most this much. */
#define MAX_RW 0x7ffff000

static int do_connect(rl_op *op)
{
    int fd = op->fd, err = 0, fl, r;
    socklen_t len = sizeof(err);

    if (op->priv & P_STARTED) {
        if (!ready_now(fd, POLLOUT))
            return -EAGAIN;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        return -err;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    r = connect(fd, op->u.connect.addr, op->u.connect.addrlen) < 0 ? -errno : 0;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
    if (r == -EINPROGRESS) {
        op->priv |= P_STARTED;
        return -EAGAIN;
    }
    /* A Unix-socket connect to a full backlog: no edge would ever come for
     * it, so it completes with -EAGAIN, as it does on io_uring. */
    return r == -EAGAIN ? FINAL_EAGAIN : r;
}

/* A short RWF_NOWAIT read of r bytes at off (-1: the file position) ended
 * at the end of the file: nothing more would come from the disk. */
static bool at_eof(int fd, off_t off, ssize_t r)
{
    struct stat st;
    off_t end = off < 0 ? lseek(fd, 0, SEEK_CUR) : off + r;

    return end >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           end >= st.st_size;
}

/*
 * A regular file (or block device): never sleep on the loop thread. Try
 * with RWF_NOWAIT (a page-cache hit completes here); TO_POOL if it would
 * block (EAGAIN), or the filesystem cannot say (EOPNOTSUPP, remembered per
 * fd), or only part came (the pool does the rest, unless a read hit the end
 * of the file).
 */
static ssize_t do_file_rw(struct ep *b, rl_op *op, const struct iovec *iov,
                          int nr, off_t off)
{
    bool wr = op->opcode == RL_OP_WRITE;
    unsigned no = wr ? FD_NOWAIT_W : FD_NOWAIT_R;
    struct fdent *e = &b->fds[op->fd];
    size_t want = 0;
    ssize_t r;
    int i;

    b->pool_done = 0;
    if (e->flags & no)
        return TO_POOL;
    r = wr ? pwritev2(op->fd, iov, nr, off, RWF_NOWAIT)
           : preadv2(op->fd, iov, nr, off, RWF_NOWAIT);
    if (r < 0) {
        if (errno == EOPNOTSUPP)
            e->flags |= no;
        return errno == EAGAIN || errno == EOPNOTSUPP ? TO_POOL : -1;
    }
    for (i = 0; i < nr && want < MAX_RW; i++)
        want += iov[i].iov_len;
    if ((size_t)r < want && want <= MAX_RW && r > 0 &&
        (wr || !at_eof(op->fd, off, r))) {
        b->pool_done = (size_t)r;
        return TO_POOL;
    }
    /* r == 0 on a read: the end of the file (a cold page gives EAGAIN) */
    b->st->nowait_hits++;
    return r;
}

/* preadv2/pwritev2: offset -1 is the file position. A blocking pipe or
 * socket gets RWF_NOWAIT; where that is not supported (ttys, character
 * devices) readiness is asked first. Files: do_file_rw(). */
static ssize_t do_rw(struct ep *b, rl_op *op)
{
    struct iovec one = {.iov_base = op->u.rw.buf, .iov_len = op->u.rw.len};
    const struct iovec *iov = &one;
    int nr = 1;
    off_t off = op->u.rw.offset < 0 ? -1 : (off_t)op->u.rw.offset;
    bool wr = op->opcode == RL_OP_WRITE;
    int fl = fd_blocking(b, op->fd) ? RWF_NOWAIT : 0;
    ssize_t r;

    if (op->flags & RL_F_VECTORED) {
        iov = op->u.rwv.iov;
        nr = (int)op->u.rwv.nr;
        off = op->u.rwv.offset < 0 ? -1 : (off_t)op->u.rwv.offset;
    }
    if (fd_file(b, op->fd))
        return do_file_rw(b, op, iov, nr, off);
    r = wr ? pwritev2(op->fd, iov, nr, off, fl)
           : preadv2(op->fd, iov, nr, off, fl);
    if (r < 0 && errno == EOPNOTSUPP && fl) {
        if (!ready_now(op->fd, wr ? POLLOUT : POLLIN))
            return errno = EAGAIN, -1;
        r = wr ? pwritev2(op->fd, iov, nr, off, 0)
               : preadv2(op->fd, iov, nr, off, 0);
    }
    return r;
}

/* One try of op's syscall: a result, -errno, or -EAGAIN if it would block.
 * A multishot recv reads into the scratch buffer and sets *buf. */
static int attempt(struct ep *b, rl_op *op, void **buf)
{
    int fd = op->fd;
    ssize_t r;

    /* Every try below is one syscall (or two, rarely: a readiness poll
     * first, a retry without RWF_NOWAIT); count the kind. */
    if (op->opcode == RL_OP_NOP)
        return 0;
    if (op->opcode == RL_OP_RECV || op->opcode == RL_OP_RECVMSG ||
        op->opcode == RL_OP_READ)
        b->st->recv_calls++;
    else if (op->opcode == RL_OP_SEND || op->opcode == RL_OP_SENDMSG ||
             op->opcode == RL_OP_WRITE)
        b->st->send_calls++;
    else
        b->st->other_calls++;
    switch (op->opcode) {
    case RL_OP_ACCEPT:
        if (fd_blocking(b, fd) && !ready_now(fd, POLLIN))
            return -EAGAIN;
        r = op->flags & RL_F_MULTISHOT
                ? accept4(fd, NULL, NULL, op->u.accept.flags)
                : accept4(fd, op->u.accept.addr, op->u.accept.addrlen,
                          op->u.accept.flags);
        if (r >= 0)
            fd_accepted(b, fd, (int)r);
        break;
    case RL_OP_CONNECT:
        return do_connect(op);
    case RL_OP_RECV:
        if (!(op->flags & RL_F_MULTISHOT)) {
            r = recv(fd, op->u.io.buf, op->u.io.len,
                     op->u.io.msg_flags | MSG_DONTWAIT);
            break;
        }
        if (!b->scratch && !(b->scratch = malloc(b->scratch_len)))
            return -ENOMEM;
        *buf = b->scratch;
        r = recv(fd, b->scratch, b->scratch_len,
                 op->u.io.msg_flags | MSG_DONTWAIT);
        break;
    case RL_OP_SEND:
        r = send(fd, op->u.io.buf, op->u.io.len,
                 op->u.io.msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
    case RL_OP_RECVMSG:
        r = recvmsg(fd, op->u.msg.msg, op->u.msg.msg_flags | MSG_DONTWAIT);
        break;
    case RL_OP_SENDMSG:
        r = sendmsg(fd, op->u.msg.msg,
                    op->u.msg.msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
    case RL_OP_READ:
    case RL_OP_WRITE:
        r = do_rw(b, op);
        if (r == TO_POOL)
            return TO_POOL;
        break;
    case RL_OP_SHUTDOWN:
        r = shutdown(fd, op->u.shutdown.how);
        break;
    default:
        return -EINVAL;
    }
    return r < 0 ? -errno : (int)r;
}

/* Move the ops on l that belong to fd (fd < 0: all) to done, cancelled.
 * Ops that never wait are left to run unless all is set. */
static void cancel_list(struct ep *b, struct rl_list *l, int fd, bool all)
{
    struct rl_list *it, *next;

    for (it = l->next; it != l; it = next) {
        rl_op *op = rl_container_of(it, rl_op, node);
        next = it->next;
        if ((fd < 0 || op->fd == fd) && (all || op_q[op->opcode] >= 0))
            finish(b, op, -ECANCELED);
    }
}

static void cancel_fd(struct ep *b, int fd, bool all)
{
    size_t i = fd < 0 ? 0 : (size_t)fd;
    size_t end = fd < 0 || i >= b->nfds ? b->nfds : i + 1;
    int q;

    for (; i < end; i++)
        for (q = 0; q < NQ; q++)
            cancel_list(b, &b->fds[i].q[q], -1, true);
    cancel_list(b, &b->submitted, fd, all);
    cancel_list(b, &b->batch, fd, all);
}

/* fd is being closed: cancel its ops, unregister, forget what we knew. */
static void fd_forget(struct ep *b, int fd)
{
    if (fd < 0)
        return;
    cancel_fd(b, fd, false);
    if ((size_t)fd < b->nfds) {
        if (b->fds[fd].flags & FD_REG) {
            b->st->epoll_ctl++;
            epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
        }
        b->fds[fd].flags = 0;
    }
}

/* op (on batch) would block: queue it behind fd's other waiters. */
static void park(struct ep *b, rl_op *op, int q)
{
    int r = fd_get(b, op->fd) ? fd_arm(b, op->fd, q == Q_WRITE) : -ENOMEM;

    if (r < 0) {
        finish(b, op, r);
        return;
    }
    rl_list_del(&op->node);
    if ((b->fds[op->fd].flags & FD_ALWAYS) && q != Q_POLL)
        rl_list_add_tail(&b->submitted, &op->node); /* no edge will come */
    else
        rl_list_add_tail(&b->fds[op->fd].q[q], &op->node);
}

/*
 * Run op (on batch, or first on its queue) until it would block, delivering
 * each result. T_AGAIN: op is untouched and waits. T_DONE: op left its list
 * (completed, or cancelled from its callback). T_BUDGET: a multishot op had
 * its share of this iteration; more may be ready.
 */
static int run_op(rl_loop *loop, rl_op *op, int *n)
{
    struct ep *b = loop->backend;
    bool multi = (op->flags & RL_F_MULTISHOT) &&
                 (op->opcode == RL_OP_RECV || op->opcode == RL_OP_ACCEPT);
    void *buf = NULL;
    bool dry;
    int i, r;

    for (i = 0; i < BUDGET; i++) {
        r = attempt(b, op, &buf);
        if (r == -EAGAIN)
            return T_AGAIN;
        if (r == TO_POOL) {
            rl_list_del(&op->node);
            r = rl__pool_submit(loop, op, b->pool_done);
            if (r == 0)
                return T_DONE; /* the pool completes it */
        }
        if (r == FINAL_EAGAIN)
            r = -EAGAIN;
        ++*n;
        dry = short_read(b, op, r); /* before fn: it may free op */
        if (!multi || r < 0 || (r == 0 && op->opcode == RL_OP_RECV)) {
            rl_list_del(&op->node);
            rl__op_complete(loop, op, r, 0, NULL);
            return T_DONE;
        }
        rl__op_complete(loop, op, r, RL_CQE_MORE | (buf ? RL_CQE_BUFFER : 0),
                        buf);
        if (op->priv & P_DONE)
            return T_DONE;
        if (dry)
            return T_AGAIN; /* the next try would say EAGAIN */
    }
    return T_BUDGET;
}

/* A poll op's first try. Registering an fd reports its current readiness as
 * an edge, so a freshly registered fd needs no poll(2), and gets no second
 * completion for the same readiness. */
static void try_poll(rl_loop *loop, rl_op *op, int *n)
{
    struct ep *b = loop->backend;
    struct fdent *e = fd_get(b, op->fd);
    struct pollfd p = {.fd = op->fd, .events = (short)op->u.poll.events};
    int r = e ? fd_arm(b, op->fd, op->u.poll.events & (POLLOUT | POLLWRNORM))
              : -ENOMEM;
    bool fresh = r == 1;

    if (r < 0) {
        finish(b, op, r);
        return;
    }
    if (!fresh)
        b->st->other_calls++;
    if (!fresh && poll(&p, 1, 0) > 0 && !(op->flags & RL_F_MULTISHOT)) {
        finish(b, op, p.revents);
        return;
    }
    rl_list_del(&op->node);
    rl_list_add_tail(&e->q[Q_POLL], &op->node);
    if (p.revents) {
        ++*n;
        rl__op_complete(loop, op, p.revents, RL_CQE_MORE, NULL);
    }
}

/* Try every op submitted since the last wait, in order. */
static int run_tries(rl_loop *loop)
{
    struct ep *b = loop->backend;
    void *buf;
    int n = 0, q;

    rl_list_splice_tail(&b->batch, &b->submitted);
    while (!rl_list_empty(&b->batch)) {
        rl_op *op = rl_container_of(b->batch.next, rl_op, node);

        q = op_q[op->opcode];
        if (op->opcode == RL_OP_CLOSE) {
            fd_forget(b, op->fd); /* its ops are done before the close */
            b->st->other_calls++;
            finish(b, op, close(op->fd) < 0 ? -errno : 0);
        } else if (q < 0) {
            finish(b, op, attempt(b, op, &buf));
        } else if (q == Q_POLL) {
            try_poll(loop, op, &n);
        } else if (queued(b, op->fd, q) || drained(b, op)) {
            park(b, op, q); /* FIFO: behind the ops already waiting */
        } else {
            switch (run_op(loop, op, &n)) {
            case T_AGAIN:
                park(b, op, q);
                break;
            case T_BUDGET:
                rl_list_del(&op->node);
                rl_list_add_tail(&b->submitted, &op->node);
                break;
            }
        }
    }
    return n;
}

/* An edge with events ev: run fd's polls against ev. */
static int run_polls(rl_loop *loop, int fd, unsigned ev)
{
    struct ep *b = loop->backend;
    int n = 0;

    ev |= (ev & EPOLLIN ? POLLRDNORM : 0) | (ev & EPOLLOUT ? POLLWRNORM : 0);
    rl_list_splice_tail(&b->batch, &b->fds[fd].q[Q_POLL]);
    while (!rl_list_empty(&b->batch)) {
        rl_op *op = rl_container_of(b->batch.next, rl_op, node);
        unsigned rev = ev & (op->u.poll.events | POLLERR | POLLHUP);

        rl_list_del(&op->node);
        if (rev && !(op->flags & RL_F_MULTISHOT)) {
            n++;
            rl__op_complete(loop, op, (int)rev, 0, NULL);
            continue;
        }
        rl_list_add_tail(&b->fds[fd].q[Q_POLL], &op->node);
        if (rev) {
            n++;
            rl__op_complete(loop, op, (int)rev, RL_CQE_MORE, NULL);
        }
    }
    return n;
}

/* An edge: run fd's queue q in order until an op would block. */
static int run_queue(rl_loop *loop, int fd, int q)
{
    struct ep *b = loop->backend;
    struct rl_list *h;
    int n = 0;

    for (;;) {
        h = &b->fds[fd].q[q];
        if (rl_list_empty(h) ||
            drained(b, rl_container_of(h->next, rl_op, node)))
            return n;
        switch (run_op(loop, rl_container_of(h->next, rl_op, node), &n)) {
        case T_AGAIN:
            return n;
        case T_BUDGET:
            /* The rest saw no EAGAIN, so it must not wait for an edge. */
            rl_list_splice_tail(&b->submitted, &b->fds[fd].q[q]);
            return n;
        }
    }
}

static int dispatch(rl_loop *loop, int fd, unsigned ev)
{
    struct ep *b = loop->backend;
    bool idle_out;
    int n = 0;

    if ((size_t)fd >= b->nfds)
        return 0;
    /* See fd_tcp(): after these a short read proves nothing. */
    if (ev & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        b->fds[fd].flags |= FD_EDGY;
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        b->fds[fd].flags &= ~FD_DRAINED;
    idle_out = (ev & EPOLLOUT) && !wants_out(b, fd);
    if (!rl_list_empty(&b->fds[fd].q[Q_POLL]))
        n += run_polls(loop, fd, ev);
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        n += run_queue(loop, fd, Q_READ);
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        n += run_queue(loop, fd, Q_WRITE);
    /* An edge for writability that nobody waited for (a datagram socket
     * reports one per send): stop asking, until a writer waits again. An
     * edge that served writers keeps it, as they may soon wait again. The
     * callbacks may have closed fd or moved the table. */
    if (idle_out && (size_t)fd < b->nfds && (b->fds[fd].flags & FD_OUT) &&
        !wants_out(b, fd))
        (void)fd_set_events(b, fd, false);
    return n;
}

/* Linux < 5.11 has no epoll_pwait2: epoll_wait, in ms rounded up. */
static int wait_events(rl_loop *loop, int64_t ns)
{
    struct ep *b = loop->backend;
    struct timespec ts = {.tv_sec = ns / 1000000000,
                          .tv_nsec = ns % 1000000000};
    int r = -1, ms;

    if (ns)
        rl__block_begin(loop);
    b->st->epoll_wait++;
    if (ns > 0 && !b->no_pwait2) {
        r = epoll_pwait2(b->epfd, b->ev, NEVENTS, &ts, NULL);
        b->no_pwait2 = r < 0 && errno == ENOSYS;
    }
    if (ns <= 0 || b->no_pwait2) {
        ms = ns < 0                    ? -1
             : ns / 1000000 >= INT_MAX ? INT_MAX
                                       : (int)((ns + 999999) / 1000000);
        r = epoll_wait(b->epfd, b->ev, NEVENTS, ms);
    }
    r = r < 0 ? -errno : r;
    if (ns)
        rl__block_end(loop);
    return r;
}

/*
 * An edge is not a completion: it may find nothing to do (registering an fd
 * reports its current state). Like io_uring, wait until something completes,
 * wake() is called or the time is up.
 */
static int ep_wait(rl_loop *loop, int64_t timeout_ns)
{
    struct ep *b = loop->backend;
    uint64_t v, now, end = timeout_ns > 0 ? rl__clock_ns() + timeout_ns : 0;
    bool woken = false;
    int n = 0, k, i;

    for (;;) {
        n += run_tries(loop);
        n += flush_done(loop);
        if (n || !rl_list_empty(&b->submitted))
            timeout_ns = 0;
        k = wait_events(loop, timeout_ns);
        if (k < 0)
            return k == -EINTR ? n : k;
        for (i = 0; i < k; i++) {
            if (b->ev[i].data.u64 != EV_WAKE) {
                n += dispatch(loop, (int)b->ev[i].data.u64, b->ev[i].events);
                continue;
            }
            b->st->other_calls++;
            woken = read(b->evfd, &v, sizeof(v)) != 0; /* drain */
        }
        n += flush_done(loop);
        if (n || woken || timeout_ns == 0)
            return n;
        if (timeout_ns > 0) {
            now = rl__clock_ns();
            if (now >= end)
                return n;
            timeout_ns = (int64_t)(end - now);
        }
    }
}

/* The closes submitted since the last wait, unless an op of the same fd
 * was submitted before one (the next wait() tries those first, in order). */
static int ep_flush(rl_loop *loop)
{
    struct ep *b = loop->backend;
    struct rl_list *n, *next, *m;

    for (n = b->submitted.next; n != &b->submitted; n = next) {
        rl_op *op = rl_container_of(n, rl_op, node);
        bool behind = false;

        next = n->next;
        if (op->opcode != RL_OP_CLOSE)
            continue;
        for (m = b->submitted.next; m != n && !behind; m = m->next)
            behind = rl_container_of(m, rl_op, node)->fd == op->fd;
        if (behind)
            continue;
        fd_forget(b, op->fd);
        next = n->next; /* fd_forget may have finished ops after op */
        b->st->other_calls++;
        finish(b, op, close(op->fd) < 0 ? -errno : 0);
    }
    return 0;
}

static int ep_submit(rl_loop *loop, rl_op *op)
{
    struct ep *b = loop->backend;

    if (op_q[op->opcode] < 0 && op->opcode >= RL_OP_OPENAT)
        return rl__pool_submit(loop, op, 0); /* they all may sleep */
    op->priv = 0;
    rl_list_add_tail(&b->submitted, &op->node);
    return 0;
}

static int ep_cancel(rl_loop *loop, rl_op *op, int fd)
{
    struct ep *b = loop->backend;

    if (!op)
        cancel_fd(b, fd, false);
    else if (!(op->priv & P_DONE) && op_q[op->opcode] >= 0)
        finish(b, op, -ECANCELED);
    return 0;
}

static void ep_wake(rl_loop *loop)
{
    struct ep *b = loop->backend;
    uint64_t one = 1;
    ssize_t r;

    do
        r = write(b->evfd, &one, sizeof(one));
    while (r < 0 && errno == EINTR);
}

static unsigned ep_capabilities(const rl_loop *loop)
{
    (void)loop;
    return 0;
}

static int ep_fd_closed(rl_loop *loop, int fd)
{
    fd_forget(loop->backend, fd);
    return 0;
}

/* The epoll instance and its wakeup eventfd. why may be NULL. */
static int instance_open(struct ep *b, char *why, size_t whylen)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_WAKE};
    const char *what = "epoll_create1";
    int r;

    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        r = -errno;
        goto err;
    }
    what = "eventfd";
    b->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->evfd < 0) {
        r = -errno;
        goto err_close_epoll;
    }
    what = "epoll_ctl";
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev) == 0)
        return 0;
    r = -errno;
    close(b->evfd);
err_close_epoll:
    close(b->epfd);
err:
    b->epfd = b->evfd = -1;
    if (why)
        snprintf(why, whylen, "%s: %s", what, strerror(-r));
    return r;
}

static int ep_init(rl_loop *loop, const struct rl_loop_config *cfg,
                   unsigned disable, char *why, size_t whylen)
{
    struct ep *b = calloc(1, sizeof(*b));
    int r;

    (void)disable; /* no optional fast paths here */
    if (!b) {
        snprintf(why, whylen, "epoll backend: out of memory");
        return -ENOMEM;
    }
    b->st = &loop->stats;
    rl_list_init(&b->submitted);
    rl_list_init(&b->batch);
    rl_list_init(&b->done);
    b->scratch_len = cfg && cfg->bufring_size ? cfg->bufring_size : 256 * 1024;
    r = instance_open(b, why, whylen);
    if (r < 0)
        goto err_free_backend;
    loop->backend = b;
    return 0;

err_free_backend:
    free(b);
    return r;
}

static void ep_fini(rl_loop *loop)
{
    struct ep *b = loop->backend;

    if (!b)
        return;
    if (b->evfd >= 0)
        close(b->evfd);
    if (b->epfd >= 0)
        close(b->epfd);
    free(b->fds);
    free(b->scratch);
    free(b);
    loop->backend = NULL;
}

/* In the child the epoll set is the parent's too: leave it untouched (no
 * EPOLL_CTL_DEL), just drop our descriptors and start afresh. The ops end
 * with -ECANCELED in the next wait(), which then does not sleep. */
static int ep_fork(rl_loop *loop)
{
    struct ep *b = loop->backend;
    size_t i;

    close(b->evfd);
    close(b->epfd);
    for (i = 0; i < b->nfds; i++)
        b->fds[i].flags &= ~(FD_REG | FD_OUT);
    cancel_fd(b, -1, true);
    return instance_open(b, NULL, 0);
}

const struct rl_backend_ops rl__epoll_ops = {
    .version = RL_BACKEND_OPS_VERSION,
    .name = "epoll",
    .kind = RL_BACKEND_EPOLL,
    .init = ep_init,
    .fini = ep_fini,
    .submit = ep_submit,
    .cancel = ep_cancel,
    .wait = ep_wait,
    .wake = ep_wake,
    .capabilities = ep_capabilities,
    .fd_closed = ep_fd_closed,
    .fork = ep_fork,
    .flush = ep_flush,
    .stats = NULL, /* everything is counted in loop->stats */
};
