/*
 * add_reader / add_writer: level-triggered fd watches, as asyncio's.
 *
 * A watch is one one-shot RL_OP_POLL. When it completes, the watch's
 * callback is queued in this iteration's ready phase; after the callback
 * ran, the poll is armed again. So while the fd stays readable the callback
 * runs once per iteration, as with asyncio's level-triggered selector, and
 * a callback that reads everything is not called again until new data.
 *
 * Removing a watch (remove_reader, replacing, close) cancels its op; the
 * struct lives on until the op's final completion. When an fd has no watch
 * left the backend is told (rl_loop_fd_closed), since the caller may now
 * close(2) it behind the loop's back, as asyncio's selector allows.
 *
 * Bad fds fail as in asyncio, in its order of checks (watch_fd). A watch
 * keeps the object it was added as (unless an int): like the selector's
 * key, it finds a socket closed while watched, whose fileno() is now -1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pyloop.h"

enum { DIR_READ = 0, DIR_WRITE = 1 };

struct rlpy_io {
    rl_op op;             /* the poll, while armed */
    rl_callback ready;    /* queued when the poll completes */
    LoopObject *loop;     /* borrowed: the loop frees its watches first */
    HandleObject *handle; /* strong */
    PyObject *fileobj;    /* strong: what the fd was added as, unless an int */
    int fd;
    uint8_t dir;
    bool queued;  /* ready is in the core's ready queue */
    bool running; /* its callback is running */
    bool removed; /* out of the fd table: free when idle */
    bool dormant; /* the poll failed (fd closed?): wait for removal */
};

/*
 * selectors._fileobj_to_fd() without its range check, which asyncio makes
 * later (after the transport and closed-loop checks): the fd of fileobj,
 * an int or an object with fileno(), as a long. An int too large for a long
 * is LONG_MAX or LONG_MIN (no fd is that large). -1 with ValueError if
 * fileno() fails as asyncio expects it to (AttributeError, TypeError,
 * ValueError); other exceptions from fileno() propagate.
 */
static int fileobj_fd(PyObject *fileobj, long *fd)
{
    PyObject *r;
    int overflow;

    if (PyLong_Check(fileobj)) {
        r = Py_NewRef(fileobj);
    } else {
        r = PyObject_CallMethod(fileobj, "fileno", NULL);
        if (r && !PyLong_Check(r))
            Py_SETREF(r, PyNumber_Long(r));
        if (!r) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError) ||
                PyErr_ExceptionMatches(PyExc_TypeError) ||
                PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "Invalid file object: %R",
                             fileobj);
            }
            return -1;
        }
    }
    *fd = PyLong_AsLongAndOverflow(r, &overflow);
    Py_DECREF(r);
    if (overflow)
        *fd = overflow > 0 ? LONG_MAX : LONG_MIN;
    else if (*fd == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* What epoll_ctl(EPOLL_CTL_ADD) would refuse, which asyncio reports. */
static int check_pollable(int fd)
{
    struct stat st;

    if (fcntl(fd, F_GETFD) < 0 || fstat(fd, &st) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        errno = EPERM;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static struct rlpy_fdslot *slot_get(LoopObject *loop, int fd, bool grow)
{
    struct rlpy_fdslot *v;
    size_t n;

    if ((size_t)fd < loop->nfds)
        return &loop->fds[fd];
    if (!grow)
        return NULL;
    n = loop->nfds ? loop->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    v = PyMem_Realloc(loop->fds, n * sizeof(*v));
    if (!v) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(v + loop->nfds, 0, (n - loop->nfds) * sizeof(*v));
    loop->fds = v;
    loop->nfds = n;
    return &v[fd];
}

static void io_poll_done(rl_loop *rl, rl_op *op);
static int check_no_transport(LoopObject *self, long fd);

static int io_arm(struct rlpy_io *io)
{
    rl_prep_poll(&io->op, io->fd, io->dir == DIR_READ ? POLLIN : POLLOUT, false,
                 io_poll_done, io);
    return rl_submit(io->loop->rl, &io->op);
}

static void io_free_if_idle(struct rlpy_io *io)
{
    HandleObject *h = io->handle;

    if (!io->removed || io->queued || io->running || rl_op_in_flight(&io->op))
        return;
    free(io);
    if (h) {
        h->where = RLPY_IDLE;
        Py_DECREF(h);
    }
}

/* Take io out of the fd table and stop it; tell the backend when the fd
 * has no watch left. */
static void io_remove(struct rlpy_io *io, bool fd_closed)
{
    LoopObject *loop = io->loop;
    struct rlpy_fdslot *slot = slot_get(loop, io->fd, false);
    PyObject *fileobj = io->fileobj;

    if (slot && slot->io[io->dir] == io)
        slot->io[io->dir] = NULL;
    io->removed = true;
    if (rl_op_in_flight(&io->op))
        rl_op_cancel(loop->rl, &io->op);
    if (io->queued) {
        rl_callback_cancel(loop->rl, &io->ready);
        io->queued = false;
    }
    if (fd_closed && slot && !slot->io[DIR_READ] && !slot->io[DIR_WRITE] &&
        !slot->nops)
        rl_loop_fd_closed(loop->rl, io->fd);
    io->fileobj = NULL;
    io_free_if_idle(io);
    Py_XDECREF(fileobj); /* last: a finalizer may run */
}

static void io_ready(rl_loop *rl, rl_callback *cb);

/* The poll completed: queue the callback for this iteration's ready phase. */
static void io_poll_done(rl_loop *rl, rl_op *op)
{
    struct rlpy_io *io = op->data;

    if (io->removed || io->loop->closed) {
        io_free_if_idle(io);
        return;
    }
    if (op->res < 0 || (op->res & POLLNVAL)) {
        /* e.g. the fd was closed without remove_reader(): like asyncio's
         * epoll selector, the watch silently never fires again. */
        io->dormant = true;
        return;
    }
    rl_callback_init(&io->ready, io_ready, io);
    if (rl_call_soon(rl, &io->ready) == 0)
        io->queued = true;
}

static void io_ready(rl_loop *rl, rl_callback *cb)
{
    struct rlpy_io *io = cb->data;
    LoopObject *loop = io->loop;
    HandleObject *h = io->handle;

    (void)rl;
    io->queued = false;
    if (io->removed) {
        io_free_if_idle(io);
        return;
    }
    if (h->cancelled) { /* asyncio: a cancelled watch handle is removed */
        io_remove(io, true);
        return;
    }
    Py_INCREF(loop);
    Py_INCREF(h);
    io->running = true;
    if (rlpy_handle_invoke(h) < 0)
        rlpy_loop_stash_exc(loop, rlpy_exc_take());
    io->running = false;
    Py_DECREF(h);
    if (io->removed)
        io_free_if_idle(io);
    else if (!loop->closed && io_arm(io) < 0)
        io->dormant = true;
    Py_DECREF(loop);
}

/* ---- Python API -------------------------------------------------------- */

/* The watch added as fileobj (by identity), for a fileobj whose fileno()
 * has gone negative: asyncio's selector finds a socket closed while
 * watched this way (_fileobj_lookup's exhaustive search). */
static struct rlpy_io *find_fileobj(LoopObject *self, PyObject *fileobj)
{
    size_t fd;
    int dir;

    for (fd = 0; fd < self->nfds; fd++)
        for (dir = 0; dir < 2; dir++)
            if (self->fds[fd].io[dir] &&
                self->fds[fd].io[dir]->fileobj == fileobj)
                return self->fds[fd].io[dir];
    return NULL;
}

/*
 * The fd that add_* / remove_* act on, with asyncio's checks in asyncio's
 * order: a usable fileobj and no transport on it (_ensure_fd_no_transport),
 * then the closed loop (RuntimeError from add_*; remove_* returns False:
 * 0 here), then the range. An fd too large for epoll is an OverflowError
 * for add_* and "not watched" (0) for remove_*. 1 when *fd is set.
 */
static int watch_fd(LoopObject *self, PyObject *fileobj, bool add, int *fd)
{
    struct rlpy_io *io;
    long lfd;

    if (fileobj_fd(fileobj, &lfd) < 0 || check_no_transport(self, lfd) < 0)
        return -1;
    if (self->closed)
        return add ? rlpy_loop_check_closed(self) : 0;
    if (lfd < 0) {
        io = find_fileobj(self, fileobj);
        if (!io) {
            PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", lfd);
            return -1;
        }
        *fd = io->fd;
        return 1;
    }
    if (lfd > INT_MAX) {
        if (!add)
            return 0;
        /* what epoll.register() says */
        PyErr_SetString(PyExc_OverflowError,
                        "Python int too large to convert to C int");
        return -1;
    }
    *fd = (int)lfd;
    return 1;
}

static PyObject *add_watch(LoopObject *self, PyObject *const *args,
                           Py_ssize_t nargs, int dir)
{
    const char *meth = dir == DIR_READ ? "add_reader" : "add_writer";
    PyObject *cbargs, *fileobj;
    HandleObject *h, *old;
    struct rlpy_fdslot *slot;
    struct rlpy_io *io, *other;
    Py_ssize_t i;
    int fd, ret;

    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required positional arguments", meth);
        return NULL;
    }
    if (watch_fd(self, args[0], true, &fd) < 0)
        return NULL;
    slot = slot_get(self, fd, false);
    io = slot ? slot->io[dir] : NULL;
    /* Replacing a callback is no syscall in asyncio either. */
    if (!io && check_pollable(fd) < 0)
        return NULL;
    cbargs = PyTuple_New(nargs - 2);
    if (!cbargs)
        return NULL;
    for (i = 2; i < nargs; i++)
        PyTuple_SET_ITEM(cbargs, i - 2, Py_NewRef(args[i]));
    h = rlpy_handle_new(self, args[1], cbargs, NULL);
    Py_DECREF(cbargs);
    if (!h)
        return NULL;
    h->where = RLPY_IO;
    slot = slot_get(self, fd, true);
    if (!slot)
        goto err_handle;
    io = slot->io[dir];
    if (io) {
        /* asyncio replaces the callback and cancels the old handle */
        old = io->handle;
        io->handle = h;
        old->where = RLPY_IDLE;
        if (rlpy_handle_mark_cancelled(old) < 0)
            PyErr_Clear();
        Py_DECREF(old);
        if (io->dormant && !io->running && !io->queued &&
            !rl_op_in_flight(&io->op)) {
            io->dormant = false;
            if (io_arm(io) < 0)
                io->dormant = true;
        }
        Py_RETURN_NONE;
    }
    io = calloc(1, sizeof(*io));
    if (!io) {
        PyErr_NoMemory();
        goto err_handle;
    }
    io->loop = self;
    io->handle = h;
    io->fd = fd;
    io->dir = (uint8_t)dir;
    ret = io_arm(io);
    if (ret < 0) {
        free(io);
        errno = -ret;
        PyErr_SetFromErrno(PyExc_OSError);
        goto err_handle;
    }
    /* The selector key's fileobj is the one the fd was first added as. */
    other = slot->io[!dir];
    fileobj = other ? other->fileobj : PyLong_Check(args[0]) ? NULL : args[0];
    io->fileobj = Py_XNewRef(fileobj);
    slot->io[dir] = io;
    Py_RETURN_NONE;

err_handle:
    h->where = RLPY_IDLE;
    Py_DECREF(h);
    return NULL;
}

static PyObject *remove_watch(LoopObject *self, PyObject *fileobj, int dir)
{
    struct rlpy_fdslot *slot;
    struct rlpy_io *io;
    HandleObject *h;
    int fd, ret;

    ret = watch_fd(self, fileobj, false, &fd);
    if (ret <= 0)
        return ret < 0 ? NULL : Py_NewRef(Py_False);
    slot = slot_get(self, fd, false);
    io = slot ? slot->io[dir] : NULL;
    if (!io)
        Py_RETURN_FALSE;
    h = (HandleObject *)Py_NewRef(io->handle);
    io_remove(io, true);
    if (rlpy_handle_mark_cancelled(h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(h);
    Py_RETURN_TRUE;
}

PyObject *rlpy_loop_add_reader(LoopObject *self, PyObject *const *args,
                               Py_ssize_t nargs)
{
    return add_watch(self, args, nargs, DIR_READ);
}

PyObject *rlpy_loop_add_writer(LoopObject *self, PyObject *const *args,
                               Py_ssize_t nargs)
{
    return add_watch(self, args, nargs, DIR_WRITE);
}

PyObject *rlpy_loop_remove_reader(LoopObject *self, PyObject *fileobj)
{
    return remove_watch(self, fileobj, DIR_READ);
}

PyObject *rlpy_loop_remove_writer(LoopObject *self, PyObject *fileobj)
{
    return remove_watch(self, fileobj, DIR_WRITE);
}

void rlpy_fdwatch_close_all(LoopObject *self)
{
    size_t fd;
    int dir;

    for (fd = 0; fd < self->nfds; fd++)
        for (dir = 0; dir < 2; dir++)
            if (self->fds[fd].io[dir])
                io_remove(self->fds[fd].io[dir], false);
}

int rlpy_fdwatch_traverse(LoopObject *self, visitproc visit, void *arg)
{
    size_t fd;
    int dir;

    for (fd = 0; fd < self->nfds; fd++) {
        for (dir = 0; dir < 2; dir++) {
            if (self->fds[fd].io[dir]) {
                Py_VISIT(self->fds[fd].io[dir]->handle);
                Py_VISIT(self->fds[fd].io[dir]->fileobj);
            }
        }
    }
    return 0;
}

int rlpy_fd_ref(LoopObject *self, int fd)
{
    struct rlpy_fdslot *slot = slot_get(self, fd, true);

    if (!slot)
        return -1;
    slot->nops++;
    return 0;
}

void rlpy_fd_unref(LoopObject *self, int fd)
{
    struct rlpy_fdslot *slot = slot_get(self, fd, false);

    if (!slot || !slot->nops)
        return;
    /* a transport's fd stays known: its ops may be in flight */
    if (--slot->nops == 0 && !slot->io[DIR_READ] && !slot->io[DIR_WRITE] &&
        !slot->transport && self->rl)
        rl_loop_fd_closed(self->rl, fd);
}

int rlpy_fd_set_transport(LoopObject *self, int fd, PyObject *t)
{
    struct rlpy_fdslot *slot = slot_get(self, fd, true);

    if (!slot)
        return -1;
    slot->transport = t;
    return 0;
}

void rlpy_fd_clear_transport(LoopObject *self, int fd, PyObject *t)
{
    struct rlpy_fdslot *slot = slot_get(self, fd, false);

    if (slot && slot->transport == t)
        slot->transport = NULL;
}

/* asyncio's _ensure_fd_no_transport(). */
static int check_no_transport(LoopObject *self, long fd)
{
    struct rlpy_fdslot *slot =
        fd < 0 || fd > INT_MAX ? NULL : slot_get(self, (int)fd, false);

    if (slot && slot->transport) {
        PyErr_Format(PyExc_RuntimeError,
                     "File descriptor %d is used by transport %R", fd,
                     slot->transport);
        return -1;
    }
    return 0;
}
