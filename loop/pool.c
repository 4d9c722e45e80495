/*
 * The worker pool: file operations that would block the loop thread run on
 * a few threads owned by the loop (the epoll backend's file ops, and the
 * opcodes the kernel's io_uring lacks).
 *
 * Started lazily: no thread until the first op, then one more whenever an
 * op is queued and no thread is idle, up to the configured count. A worker
 * takes the oldest queued op, makes the call without any lock, and puts the
 * op on the done list; the first op to land there posts the pool's
 * rl_callback through rl_call_threadsafe(), which wakes a sleeping loop,
 * and that callback delivers every done op on the loop thread.
 *
 * Every op the pool holds is on exactly one of its lists (op->node): queue
 * (not started: a cancel finishes it with -ECANCELED at once), running (the
 * call is being made: a cancel changes nothing, the real result comes) or
 * done. op->priv belongs to the pool while it holds the op: where it is in
 * the high half, the bytes a backend already moved inline in the low half
 * (the epoll backend's short RWF_NOWAIT read: the pool does the rest).
 *
 * Fork: a pthread_atfork handler takes every pool's lock around fork(), so
 * the child inherits consistent lists. The child has no workers: what was
 * queued or running ends with -ECANCELED, what was done is delivered, and a
 * new pool starts lazily.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loop.h"

#define P_QUEUED 1u
#define P_RUNNING 2u
#define P_DONE 3u
#define P_CANCELED 4u /* never started: not counted as run */

struct rl_pool {
    rl_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t work; /* an op was queued, or stop */
    struct rl_list queue;
    struct rl_list running;
    struct rl_list done;
    pthread_t *threads;
    unsigned nthreads;
    unsigned max;
    unsigned idle;   /* workers waiting for work */
    unsigned queued; /* ops on queue */
    bool stop;
    bool posted; /* cb is on its way to (or in) the ready queue */
    rl_callback cb;
    struct rl_list reg; /* in pools, for the fork handlers */
};

/* Every pool of the process, so that fork() can take their locks. */
static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rl_list pools = {&pools, &pools};
static pthread_once_t pools_once = PTHREAD_ONCE_INIT;

static void pools_lock(void)
{
    struct rl_list *n;

    pthread_mutex_lock(&pools_mu);
    for (n = pools.next; n != &pools; n = n->next)
        pthread_mutex_lock(&rl_container_of(n, struct rl_pool, reg)->mu);
}

static void pools_unlock(void)
{
    struct rl_list *n;

    for (n = pools.next; n != &pools; n = n->next)
        pthread_mutex_unlock(&rl_container_of(n, struct rl_pool, reg)->mu);
    pthread_mutex_unlock(&pools_mu);
}

static void pools_atfork(void)
{
    pthread_atfork(pools_lock, pools_unlock, pools_unlock);
}

static inline unsigned where(const rl_op *op)
{
    return (unsigned)(op->priv >> 32);
}

static inline void put_on(struct rl_list *l, rl_op *op, unsigned w)
{
    op->priv = (uint64_t)w << 32 | (uint32_t)op->priv;
    rl_list_add_tail(l, &op->node);
}

/* op (unlinked) is done with res. Lock held. Posts the delivery callback
 * unless it is already on its way. */
static void land(struct rl_pool *p, rl_op *op, int res, unsigned w)
{
    op->res = res;
    put_on(&p->done, op, w);
    if (!p->posted) {
        p->posted = true;
        rl_call_threadsafe(p->loop, &p->cb);
    }
}

/* ---- the calls ---------------------------------------------------------- */

/* READ/WRITE with `skip` bytes already moved: the rest, at the offset
 * after them (offset -1: the file position, which moved already). */
static ssize_t do_rw(rl_op *op, size_t skip)
{
    struct iovec one, *iov, *copy = NULL;
    bool wr = op->opcode == RL_OP_WRITE;
    int64_t off, moved = (int64_t)skip;
    size_t nr, i;
    ssize_t r;

    if (op->flags & RL_F_VECTORED) {
        iov = (struct iovec *)op->u.rwv.iov;
        nr = op->u.rwv.nr;
        off = op->u.rwv.offset;
    } else {
        one.iov_base = op->u.rw.buf;
        one.iov_len = op->u.rw.len;
        iov = &one;
        nr = 1;
        off = op->u.rw.offset;
    }
    if (skip) {
        copy = malloc(nr * sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        memcpy(copy, iov, nr * sizeof(*copy));
        for (i = 0; i < nr && skip >= copy[i].iov_len; i++)
            skip -= copy[i].iov_len;
        iov = copy + i;
        nr -= i;
        if (nr) {
            iov->iov_base = (char *)iov->iov_base + skip;
            iov->iov_len -= skip;
        }
        if (off >= 0)
            off += moved;
    }
    r = wr ? pwritev2(op->fd, iov, (int)nr, off < 0 ? -1 : off, 0)
           : preadv2(op->fd, iov, (int)nr, off < 0 ? -1 : off, 0);
    r = r < 0 ? -errno : r;
    free(copy);
    return r;
}

/* Make op's call on a worker. res or -errno. */
static int run(rl_op *op)
{
    size_t skip = (uint32_t)op->priv;
    ssize_t r;
    int ret;

    switch (op->opcode) {
    case RL_OP_READ:
    case RL_OP_WRITE:
        r = do_rw(op, skip);
        if (skip)
            return r < 0 ? (int)skip : (int)(r + (ssize_t)skip);
        return (int)r;
    case RL_OP_OPENAT:
        ret = openat(op->u.path.dfd, op->u.path.path,
                     op->u.path.flags | O_CLOEXEC, (mode_t)op->u.path.mode);
        break;
    case RL_OP_FSYNC:
        ret = op->u.fsync.flags & RL_FSYNC_DATASYNC ? fdatasync(op->fd)
                                                    : fsync(op->fd);
        break;
    case RL_OP_FALLOCATE:
        ret = fallocate(op->fd, op->u.falloc.mode, (off_t)op->u.falloc.offset,
                        (off_t)op->u.falloc.len);
        break;
    case RL_OP_FTRUNCATE:
        ret = ftruncate(op->fd, (off_t)op->u.falloc.len);
        break;
    case RL_OP_STATX:
        ret = statx(op->u.statx.dfd, op->u.statx.path, op->u.statx.flags,
                    op->u.statx.mask, op->u.statx.buf);
        break;
    case RL_OP_RENAME:
        ret = renameat2(op->u.rename.olddfd, op->u.rename.oldpath,
                        op->u.rename.newdfd, op->u.rename.newpath,
                        op->u.rename.flags);
        break;
    case RL_OP_UNLINK:
        ret = unlinkat(op->u.path.dfd, op->u.path.path, op->u.path.flags);
        break;
    case RL_OP_MKDIR:
        ret = mkdirat(op->u.path.dfd, op->u.path.path, (mode_t)op->u.path.mode);
        break;
    default:
        return -EINVAL;
    }
    return ret < 0 ? -errno : ret;
}

static void *worker(void *arg)
{
    struct rl_pool *p = arg;
    struct rl_list *n;
    rl_op *op;
    int res;

    pthread_setname_np(pthread_self(), "ringloop-pool");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (rl_list_empty(&p->queue) && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->work, &p->mu);
            p->idle--;
        }
        n = rl_list_pop(&p->queue);
        if (!n)
            break; /* stop, and nothing left */
        p->queued--;
        op = rl_container_of(n, rl_op, node);
        put_on(&p->running, op, P_RUNNING);
        pthread_mutex_unlock(&p->mu);
        res = run(op);
        pthread_mutex_lock(&p->mu);
        rl_list_del(&op->node);
        land(p, op, res, P_DONE);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the loop thread ---------------------------------------------------- */

/* The pool's rl_callback: deliver every done op, oldest first. */
static void deliver(rl_loop *loop, rl_callback *cb)
{
    struct rl_pool *p = cb->data;
    struct rl_list todo, *n;

    rl_list_init(&todo);
    pthread_mutex_lock(&p->mu);
    rl_list_splice_tail(&todo, &p->done);
    p->posted = false;
    pthread_mutex_unlock(&p->mu);
    while ((n = rl_list_pop(&todo))) {
        rl_op *op = rl_container_of(n, rl_op, node);

        if (where(op) == P_DONE)
            loop->stats.pool_ops++;
        op->priv = 0;
        rl__op_complete(loop, op, op->res, 0, NULL);
    }
}

static int pool_create(rl_loop *loop)
{
    struct rl_pool *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->threads = calloc(loop->cfg.pool_threads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->max = loop->cfg.pool_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    rl_list_init(&p->queue);
    rl_list_init(&p->running);
    rl_list_init(&p->done);
    rl_callback_init(&p->cb, deliver, p);
    pthread_once(&pools_once, pools_atfork);
    pthread_mutex_lock(&pools_mu);
    rl_list_add_tail(&pools, &p->reg);
    pthread_mutex_unlock(&pools_mu);
    loop->pool = p;
    return 0;
}

/* One more worker, with every signal blocked (they belong to the loop's
 * threads, e.g. Python's handlers). Lock held. 0 or -errno. */
static int spawn(struct rl_pool *p)
{
    sigset_t all, old;
    int ret;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret)
        return -ret;
    p->nthreads++;
    return 0;
}

int rl__pool_submit(rl_loop *loop, rl_op *op, size_t done)
{
    struct rl_pool *p;
    int ret;

    if (!loop->pool && (ret = pool_create(loop)) < 0)
        return ret;
    p = loop->pool;
    pthread_mutex_lock(&p->mu);
    if (p->queued >= p->idle && p->nthreads < p->max) {
        ret = spawn(p);
        if (ret < 0 && !p->nthreads) {
            pthread_mutex_unlock(&p->mu);
            return ret; /* no worker at all: refuse the op */
        }
    }
    op->state |= RL__OP_POOL;
    op->priv = (uint32_t)done;
    put_on(&p->queue, op, P_QUEUED);
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* A queued op: -ECANCELED without running. Lock held. */
static void cancel_queued(struct rl_pool *p, rl_op *op)
{
    rl_list_del(&op->node);
    p->queued--;
    land(p, op, -ECANCELED, P_CANCELED);
}

int rl__pool_cancel(rl_loop *loop, rl_op *op)
{
    struct rl_pool *p = loop->pool;

    if (!p)
        return -ENOENT;
    pthread_mutex_lock(&p->mu);
    if (where(op) == P_QUEUED)
        cancel_queued(p, op);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void rl__pool_cancel_fd(rl_loop *loop, int fd)
{
    struct rl_pool *p = loop->pool;
    struct rl_list *n, *next;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    for (n = p->queue.next; n != &p->queue; n = next) {
        rl_op *op = rl_container_of(n, rl_op, node);

        next = n->next;
        if (fd < 0 || op->fd == fd)
            cancel_queued(p, op);
    }
    pthread_mutex_unlock(&p->mu);
}

/*
 * rl_loop_free(): cancel what has not started, let the running calls end,
 * join the workers and deliver every final completion on this thread, then
 * free the pool. The delivery callback may still sit in the thread-safe
 * queue: the loop drops that queue without touching it.
 */
void rl__pool_free(rl_loop *loop)
{
    struct rl_pool *p = loop->pool;
    unsigned i;

    if (!p)
        return;
    rl__pool_cancel_fd(loop, -1);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    deliver(loop, &p->cb);
    /* Its callback may still be on the ready queue (or on the thread-safe
     * one, which nothing reads once the loop is being freed). */
    rl_callback_cancel(loop, &p->cb);
    pthread_mutex_lock(&pools_mu);
    rl_list_del(&p->reg);
    pthread_mutex_unlock(&pools_mu);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
    loop->pool = NULL;
}

/*
 * In the child after fork(): no worker came along. What was queued or
 * running ends with -ECANCELED (the delivery callback, re-posted through
 * the new backend's wakeup, brings it); the next op starts new workers.
 * The fork handlers made the lists consistent.
 */
void rl__pool_fork(rl_loop *loop)
{
    struct rl_pool *p = loop->pool;
    struct rl_list *n;

    if (!p)
        return;
    p->nthreads = 0;
    p->idle = 0;
    p->queued = 0;
    pthread_cond_init(&p->work, NULL); /* no waiter is left */
    while ((n = rl_list_pop(&p->queue)))
        land(p, rl_container_of(n, rl_op, node), -ECANCELED, P_CANCELED);
    while ((n = rl_list_pop(&p->running)))
        land(p, rl_container_of(n, rl_op, node), -ECANCELED, P_CANCELED);
    if (!rl_list_empty(&p->done) && !p->posted) {
        p->posted = true;
        rl_call_threadsafe(loop, &p->cb);
    }
}

int rl__pool_threads_config(unsigned *threads)
{
    const char *env;
    char *end;
    unsigned long v;

    if (*threads > RL_POOL_MAX_THREADS)
        return -EINVAL;
    if (*threads)
        return 0;
    env = getenv("RINGLOOP_POOL_THREADS");
    if (!env || !*env) {
        *threads = RL_POOL_DEFAULT_THREADS;
        return 0;
    }
    errno = 0;
    v = strtoul(env, &end, 10);
    if (errno || *end || env[0] < '0' || env[0] > '9' || v < 1 ||
        v > RL_POOL_MAX_THREADS)
        return -EINVAL;
    *threads = (unsigned)v;
    return 0;
}
