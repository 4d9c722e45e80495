/*
 * The loop's private file methods, which ringloop.files is built on:
 * _file_open, _file_pread, _file_preadinto, _file_pwrite, _file_fsync,
 * _file_fallocate, _file_ftruncate, _file_stat, _file_rename, _file_unlink,
 * _file_mkdir, _file_close, plus _file_hold / _file_release.
 *
 * Each starts one core file op (io_uring ops; on epoll a non-blocking try
 * and the core's worker pool) and returns a FileOp: `await op` waits for
 * its future. The FileOp owns everything the op points to (the bytes read
 * into, the exported buffer written from, the paths, the statx buffer, an
 * aligned bounce buffer for O_DIRECT) and holds a reference to itself from
 * rl_submit() to the final completion, so nothing the kernel or a pool
 * thread uses goes away early.
 *
 * Cancellation is the caller's: op.cancel() asks the core to cancel the op
 * (a read that has not started never happens). The result is kept in the
 * FileOp: op.wait() returns a new future for it, so that a caller whose
 * future was cancelled can still learn how a write ended.
 *
 * A file object holds its fd in the loop's fd table (_file_hold) while it
 * is open, so that the epoll backend keeps what it learnt about the fd
 * (a regular file, RWF_NOWAIT support) from one op to the next;
 * _file_release / _file_close let it go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pyloop.h"

#define DIRECT_ALIGN 4096

enum file_kind {
    FK_OPEN,
    FK_READ,
    FK_READINTO,
    FK_WRITE,
    FK_FSYNC,
    FK_FALLOCATE,
    FK_FTRUNCATE,
    FK_STAT,
    FK_RENAME,
    FK_UNLINK,
    FK_MKDIR,
    FK_CLOSE,
};

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *fut;          /* what `await op` waits for */
    PyObject *waiter;       /* the last wait() future */
    PyObject *result;       /* once completed: the result, or the exception */
    PyObject *data;         /* FK_READ: the bytes read into; path ops: the path
                               (bytes); FK_READINTO/FK_WRITE: the buffer owner */
    PyObject *data2;        /* FK_RENAME: the new path (bytes) */
    PyObject *name, *name2; /* the paths as given, for OSError.filename */
    Py_buffer view;
    void *bounce; /* O_DIRECT: an aligned buffer for the transfer */
    size_t len;   /* FK_READ: bytes asked for */
    struct statx *stx;
    rl_op op;
    int kind;
    bool view_held;
    bool completed;
    bool failed; /* result is an exception */
} FileOpObject;

static PyTypeObject *fileop_type;
static PyObject *stat_result, *str_set_result, *str_set_exception, *str_done;

/* ---- results ----------------------------------------------------------- */

static bool fut_done(PyObject *fut)
{
    PyObject *r = PyObject_CallMethodNoArgs(fut, str_done);
    int done = r ? PyObject_IsTrue(r) : 1;

    Py_XDECREF(r);
    PyErr_Clear();
    return done != 0;
}

static void fut_complete(PyObject *fut, PyObject *res, bool failed)
{
    PyObject *r;

    if (!fut || fut_done(fut))
        return;
    r = PyObject_CallMethodOneArg(
        fut, failed ? str_set_exception : str_set_result, res);
    if (!r)
        PyErr_WriteUnraisable(fut);
    Py_XDECREF(r);
}

static PyObject *ns_time(const struct statx_timestamp *t)
{
    PyObject *s = PyLong_FromLongLong(t->tv_sec);
    PyObject *b = PyLong_FromLong(1000000000L), *m, *n, *r = NULL;

    m = s && b ? PyNumber_Multiply(s, b) : NULL;
    n = PyLong_FromUnsignedLong(t->tv_nsec);
    if (m && n)
        r = PyNumber_Add(m, n);
    Py_XDECREF(s);
    Py_XDECREF(b);
    Py_XDECREF(m);
    Py_XDECREF(n);
    return r;
}

/* os.stat_result for a statx buffer, with os.stat()'s fields. */
static PyObject *stat_from_statx(const struct statx *x)
{
    const struct statx_timestamp *ts[3] = {&x->stx_atime, &x->stx_mtime,
                                           &x->stx_ctime};
    Py_ssize_t n = 19, i;
    PyObject *t, *r, *nf;

    if (!stat_result) {
        PyObject *os = PyImport_ImportModule("os");
        stat_result = os ? PyObject_GetAttrString(os, "stat_result") : NULL;
        Py_XDECREF(os);
        if (!stat_result)
            return NULL;
    }
    nf = PyObject_GetAttrString(stat_result, "n_fields");
    if (nf) {
        n = PyLong_AsSsize_t(nf);
        Py_DECREF(nf);
    }
    if (n < 19) {
        PyErr_Clear();
        n = 19;
    }
    if (!(t = PyTuple_New(n)))
        return NULL;
    PyTuple_SET_ITEM(t, 0, PyLong_FromLong(x->stx_mode));
    PyTuple_SET_ITEM(t, 1, PyLong_FromUnsignedLongLong(x->stx_ino));
    PyTuple_SET_ITEM(t, 2,
                     PyLong_FromUnsignedLongLong(
                         makedev(x->stx_dev_major, x->stx_dev_minor)));
    PyTuple_SET_ITEM(t, 3, PyLong_FromUnsignedLong(x->stx_nlink));
    PyTuple_SET_ITEM(t, 4, PyLong_FromUnsignedLong(x->stx_uid));
    PyTuple_SET_ITEM(t, 5, PyLong_FromUnsignedLong(x->stx_gid));
    PyTuple_SET_ITEM(t, 6, PyLong_FromLongLong((long long)x->stx_size));
    for (i = 0; i < 3; i++) {
        PyTuple_SET_ITEM(t, 7 + i, PyLong_FromLongLong(ts[i]->tv_sec));
        PyTuple_SET_ITEM(
            t, 10 + i,
            PyFloat_FromDouble((double)ts[i]->tv_sec + ts[i]->tv_nsec * 1e-9));
        PyTuple_SET_ITEM(t, 13 + i, ns_time(ts[i]));
    }
    PyTuple_SET_ITEM(t, 16, PyLong_FromUnsignedLong(x->stx_blksize));
    PyTuple_SET_ITEM(t, 17, PyLong_FromUnsignedLongLong(x->stx_blocks));
    PyTuple_SET_ITEM(t, 18,
                     PyLong_FromUnsignedLongLong(
                         makedev(x->stx_rdev_major, x->stx_rdev_minor)));
    for (i = 19; i < n; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(Py_None));
    for (i = 0; i < n; i++)
        if (!PyTuple_GET_ITEM(t, i)) {
            Py_DECREF(t);
            return NULL;
        }
    r = PyObject_CallOneArg(stat_result, t);
    Py_DECREF(t);
    return r;
}

/* The OSError for -res, with the filenames os and open() give; the
 * exception object (not raised). */
static PyObject *op_error(FileOpObject *o, int res)
{
    errno = -res;
    if (o->name2)
        PyErr_SetFromErrnoWithFilenameObjects(PyExc_OSError, o->name, o->name2);
    else if (o->name)
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, o->name);
    else
        PyErr_SetFromErrno(PyExc_OSError);
    return rlpy_exc_take();
}

/* The op's result as Python sees it: a new reference, or NULL with an
 * exception set. */
static PyObject *op_value(FileOpObject *o, int res)
{
    PyObject *r;

    switch (o->kind) {
    case FK_OPEN:
        return PyLong_FromLong(res);
    case FK_READ:
        if (o->bounce)
            memcpy(PyBytes_AS_STRING(o->data), o->bounce, (size_t)res);
        if ((size_t)res < o->len &&
            _PyBytes_Resize(&o->data, (Py_ssize_t)res) < 0)
            return NULL; /* o->data is NULL now */
        r = o->data;
        o->data = NULL;
        return r;
    case FK_READINTO:
        if (o->bounce)
            memcpy(o->view.buf, o->bounce, (size_t)res);
        return PyLong_FromLong(res);
    case FK_WRITE:
        return PyLong_FromLong(res);
    case FK_STAT:
        return stat_from_statx(o->stx);
    default:
        Py_RETURN_NONE;
    }
}

/* Let go of what the op pointed to (it is over). */
static void op_release(FileOpObject *o)
{
    if (o->view_held) {
        PyBuffer_Release(&o->view);
        o->view_held = false;
    }
    free(o->bounce);
    o->bounce = NULL;
    PyMem_Free(o->stx);
    o->stx = NULL;
    Py_CLEAR(o->data);
    Py_CLEAR(o->data2);
}

/* The final completion. */
static void fileop_done(rl_loop *rl, rl_op *op)
{
    FileOpObject *o = op->data;
    bool closed = o->loop->closed;
    int res = op->res;

    (void)rl;
    if (o->kind == FK_OPEN && res >= 0 && (closed || fut_done(o->fut))) {
        close(res); /* nobody takes it */
        res = -ECANCELED;
    }
    if (res < 0) {
        o->result = op_error(o, res);
        o->failed = true;
    } else {
        o->result = op_value(o, res);
        if (!o->result) {
            o->result = rlpy_exc_take();
            o->failed = true;
        }
    }
    o->completed = true;
    op_release(o);
    if (!closed && o->result) {
        fut_complete(o->fut, o->result, o->failed);
        fut_complete(o->waiter, o->result, o->failed);
    }
    Py_DECREF(o); /* the op's */
}

/* ---- FileOp ------------------------------------------------------------ */

static PyObject *fileop_await(FileOpObject *o)
{
    PyTypeObject *tp = Py_TYPE(o->fut);

    if (!tp->tp_as_async || !tp->tp_as_async->am_await)
        return PyObject_CallMethod(o->fut, "__await__", NULL);
    return tp->tp_as_async->am_await(o->fut);
}

/* op.cancel(): ask the core to cancel the op (no effect once it ended). */
static PyObject *fileop_cancel(FileOpObject *o, PyObject *unused)
{
    (void)unused;
    if (!o->completed && o->loop->rl && rl_op_in_flight(&o->op))
        rl_op_cancel(o->loop->rl, &o->op);
    Py_RETURN_NONE;
}

/* op.wait(): a new future for the op's result (done at once when it has
 * completed). */
static PyObject *fileop_wait(FileOpObject *o, PyObject *unused)
{
    PyObject *args[2] = {NULL, (PyObject *)o->loop};
    PyObject *fut;

    (void)unused;
    fut = PyObject_Vectorcall(o->loop->st->Future, args + 1, 0,
                              o->loop->st->kw_loop);
    if (!fut)
        return NULL;
    if (o->completed) {
        if (o->result)
            fut_complete(fut, o->result, o->failed);
    } else {
        Py_XSETREF(o->waiter, Py_NewRef(fut));
    }
    return fut;
}

static PyObject *fileop_get_done(FileOpObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(o->completed);
}

static int fileop_traverse(FileOpObject *o, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(o));
    Py_VISIT(o->loop);
    Py_VISIT(o->fut);
    Py_VISIT(o->waiter);
    Py_VISIT(o->result);
    Py_VISIT(o->name);
    Py_VISIT(o->name2);
    Py_VISIT(o->data);
    Py_VISIT(o->data2);
    if (o->view_held)
        Py_VISIT(o->view.obj);
    return 0;
}

static int fileop_clear(FileOpObject *o)
{
    if (!o->completed && rl_op_in_flight(&o->op))
        return 0; /* the op owns o and what it points to */
    Py_CLEAR(o->fut);
    Py_CLEAR(o->waiter);
    Py_CLEAR(o->result);
    Py_CLEAR(o->name);
    Py_CLEAR(o->name2);
    op_release(o);
    return 0;
}

static void fileop_dealloc(FileOpObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);

    PyObject_GC_UnTrack(o);
    op_release(o);
    Py_CLEAR(o->fut);
    Py_CLEAR(o->waiter);
    Py_CLEAR(o->result);
    Py_CLEAR(o->name);
    Py_CLEAR(o->name2);
    Py_CLEAR(o->loop);
    tp->tp_free(o);
    Py_DECREF(tp);
}

static PyMethodDef fileop_methods[] = {
    {"cancel", (PyCFunction)fileop_cancel, METH_NOARGS,
     "Ask for the op to be cancelled."},
    {"wait", (PyCFunction)fileop_wait, METH_NOARGS,
     "A new future for the op's result."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fileop_getset[] = {
    {"completed", (getter)fileop_get_done, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot fileop_slots[] = {
    {Py_am_await, fileop_await},
    {Py_tp_methods, fileop_methods},
    {Py_tp_getset, fileop_getset},
    {Py_tp_dealloc, fileop_dealloc},
    {Py_tp_traverse, fileop_traverse},
    {Py_tp_clear, fileop_clear},
    {0, NULL},
};

static PyType_Spec fileop_spec = {
    .name = "ringloop._ext._FileOp",
    .basicsize = sizeof(FileOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = fileop_slots,
};

/* ---- starting ops ------------------------------------------------------ */

/* A new FileOp of kind with its future; NULL with an exception. */
static FileOpObject *fileop_new(LoopObject *loop, int kind)
{
    PyObject *args[2] = {NULL, (PyObject *)loop};
    FileOpObject *o;

    if (rlpy_loop_check_closed(loop) < 0)
        return NULL;
    o = PyObject_GC_New(FileOpObject, fileop_type);
    if (!o)
        return NULL;
    memset((char *)o + sizeof(PyObject), 0, sizeof(*o) - sizeof(PyObject));
    o->loop = (LoopObject *)Py_NewRef(loop);
    o->kind = kind;
    PyObject_GC_Track(o);
    o->fut =
        PyObject_Vectorcall(loop->st->Future, args + 1, 0, loop->st->kw_loop);
    if (!o->fut) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

/* Submit o's prepared op: o itself, or NULL with OSError. */
static PyObject *fileop_submit(FileOpObject *o)
{
    int ret = rl_submit(o->loop->rl, &o->op);

    if (ret < 0) {
        PyObject *exc = op_error(o, ret);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        op_release(o);
        Py_DECREF(o);
        return NULL;
    }
    Py_INCREF(o); /* the op's, until its final completion */
    return (PyObject *)o;
}

static int arg_int(PyObject *v, int *out)
{
    long x = PyLong_AsLong(v);

    if (x == -1 && PyErr_Occurred())
        return -1;
    if (x < INT_MIN || x > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError,
                        "signed integer is greater than maximum");
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int arg_i64(PyObject *v, int64_t *out)
{
    long long x = PyLong_AsLongLong(v);

    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = x;
    return 0;
}

static int check_nargs(const char *fn, Py_ssize_t nargs, Py_ssize_t min,
                       Py_ssize_t max)
{
    if (nargs >= min && nargs <= max)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)",
                 fn, min, max, nargs);
    return -1;
}

/* path as bytes (str, bytes, os.PathLike) into o->data or o->data2. */
static const char *op_path(FileOpObject *o, PyObject *path, bool second)
{
    PyObject **slot = second ? &o->data2 : &o->data;

    if (!PyUnicode_FSConverter(path, slot))
        return NULL;
    return PyBytes_AS_STRING(*slot);
}

/* Filenames in errors are what os functions report: the str or bytes
 * given (os.fspath() of a PathLike). */
static PyObject *fs_name(PyObject *path)
{
    return PyOS_FSPath(path);
}

/* _file_open(path, flags, mode) -> fd */
static PyObject *file_open(LoopObject *loop, PyObject *const *args,
                           Py_ssize_t nargs)
{
    FileOpObject *o;
    const char *path;
    int flags, mode;

    if (check_nargs("_file_open", nargs, 3, 3) < 0 ||
        arg_int(args[1], &flags) < 0 || arg_int(args[2], &mode) < 0 ||
        !(o = fileop_new(loop, FK_OPEN)))
        return NULL;
    if (!(path = op_path(o, args[0], false)) || !(o->name = fs_name(args[0]))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_openat(&o->op, AT_FDCWD, path, flags, (unsigned)mode, fileop_done,
                   o);
    return fileop_submit(o);
}

/* An aligned buffer of at least len bytes (O_DIRECT), or NULL with
 * MemoryError. */
static void *aligned_alloc_buf(size_t len)
{
    void *p = NULL;

    if (posix_memalign(&p, DIRECT_ALIGN, len ? len : DIRECT_ALIGN) != 0) {
        PyErr_NoMemory();
        return NULL;
    }
    return p;
}

static int arg_direct(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t i)
{
    return nargs > i ? PyObject_IsTrue(args[i]) : 0;
}

/* _file_pread(fd, n, offset[, direct]) -> bytes (offset -1: the file
 * position) */
static PyObject *file_pread(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    FileOpObject *o;
    Py_ssize_t n;
    int64_t off;
    int fd, direct;

    if (check_nargs("_file_pread", nargs, 3, 4) < 0 ||
        arg_int(args[0], &fd) < 0)
        return NULL;
    n = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if ((n == -1 && PyErr_Occurred()) || arg_i64(args[2], &off) < 0 ||
        (direct = arg_direct(args, nargs, 3)) < 0)
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative buffersize in pread");
        return NULL;
    }
    if (!(o = fileop_new(loop, FK_READ)))
        return NULL;
    o->len = (size_t)n;
    o->data = PyBytes_FromStringAndSize(NULL, n);
    if (!o->data || (direct && !(o->bounce = aligned_alloc_buf((size_t)n)))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_read(&o->op, fd, o->bounce ? o->bounce : PyBytes_AS_STRING(o->data),
                 (size_t)n, off, fileop_done, o);
    return fileop_submit(o);
}

/* _file_preadinto(fd, buffer, offset[, direct]) -> int */
static PyObject *file_preadinto(LoopObject *loop, PyObject *const *args,
                                Py_ssize_t nargs)
{
    FileOpObject *o;
    int64_t off;
    int fd, direct;

    if (check_nargs("_file_preadinto", nargs, 3, 4) < 0 ||
        arg_int(args[0], &fd) < 0 || arg_i64(args[2], &off) < 0 ||
        (direct = arg_direct(args, nargs, 3)) < 0 ||
        !(o = fileop_new(loop, FK_READINTO)))
        return NULL;
    if (PyObject_GetBuffer(args[1], &o->view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    o->view_held = true;
    if (direct && !(o->bounce = aligned_alloc_buf((size_t)o->view.len))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_read(&o->op, fd, o->bounce ? o->bounce : o->view.buf,
                 (size_t)o->view.len, off, fileop_done, o);
    return fileop_submit(o);
}

/* _file_pwrite(fd, data, offset[, direct]) -> int (offset -1: the file
 * position, or the end with O_APPEND) */
static PyObject *file_pwrite(LoopObject *loop, PyObject *const *args,
                             Py_ssize_t nargs)
{
    FileOpObject *o;
    int64_t off;
    int fd, direct;

    if (check_nargs("_file_pwrite", nargs, 3, 4) < 0 ||
        arg_int(args[0], &fd) < 0 || arg_i64(args[2], &off) < 0 ||
        (direct = arg_direct(args, nargs, 3)) < 0 ||
        !(o = fileop_new(loop, FK_WRITE)))
        return NULL;
    if (PyObject_GetBuffer(args[1], &o->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    o->view_held = true;
    if (direct) {
        if (!(o->bounce = aligned_alloc_buf((size_t)o->view.len))) {
            Py_DECREF(o);
            return NULL;
        }
        memcpy(o->bounce, o->view.buf, (size_t)o->view.len);
    }
    rl_prep_write(&o->op, fd, o->bounce ? o->bounce : o->view.buf,
                  (size_t)o->view.len, off, fileop_done, o);
    return fileop_submit(o);
}

/* _file_fsync(fd, datasync) */
static PyObject *file_fsync(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    FileOpObject *o;
    int fd, datasync;

    if (check_nargs("_file_fsync", nargs, 2, 2) < 0 ||
        arg_int(args[0], &fd) < 0 ||
        (datasync = PyObject_IsTrue(args[1])) < 0 ||
        !(o = fileop_new(loop, FK_FSYNC)))
        return NULL;
    rl_prep_fsync(&o->op, fd, datasync ? RL_FSYNC_DATASYNC : 0, fileop_done, o);
    return fileop_submit(o);
}

/* _file_fallocate(fd, mode, offset, len) */
static PyObject *file_fallocate(LoopObject *loop, PyObject *const *args,
                                Py_ssize_t nargs)
{
    FileOpObject *o;
    int64_t off, len;
    int fd, mode;

    if (check_nargs("_file_fallocate", nargs, 4, 4) < 0 ||
        arg_int(args[0], &fd) < 0 || arg_int(args[1], &mode) < 0 ||
        arg_i64(args[2], &off) < 0 || arg_i64(args[3], &len) < 0 ||
        !(o = fileop_new(loop, FK_FALLOCATE)))
        return NULL;
    rl_prep_fallocate(&o->op, fd, mode, off, len, fileop_done, o);
    return fileop_submit(o);
}

/* _file_ftruncate(fd, length) */
static PyObject *file_ftruncate(LoopObject *loop, PyObject *const *args,
                                Py_ssize_t nargs)
{
    FileOpObject *o;
    int64_t len;
    int fd;

    if (check_nargs("_file_ftruncate", nargs, 2, 2) < 0 ||
        arg_int(args[0], &fd) < 0 || arg_i64(args[1], &len) < 0 ||
        !(o = fileop_new(loop, FK_FTRUNCATE)))
        return NULL;
    rl_prep_ftruncate(&o->op, fd, len, fileop_done, o);
    return fileop_submit(o);
}

/* _file_stat(path_or_fd, follow_symlinks) -> os.stat_result */
static PyObject *file_stat(LoopObject *loop, PyObject *const *args,
                           Py_ssize_t nargs)
{
    FileOpObject *o;
    const char *path = "";
    int follow, dfd = AT_FDCWD, flags = 0;

    if (check_nargs("_file_stat", nargs, 1, 2) < 0)
        return NULL;
    follow = nargs > 1 ? PyObject_IsTrue(args[1]) : 1;
    if (follow < 0 || !(o = fileop_new(loop, FK_STAT)))
        return NULL;
    if (PyLong_Check(args[0])) {
        if (arg_int(args[0], &dfd) < 0) {
            Py_DECREF(o);
            return NULL;
        }
        flags = AT_EMPTY_PATH;
    } else if (!(path = op_path(o, args[0], false)) ||
               !(o->name = fs_name(args[0]))) {
        Py_DECREF(o);
        return NULL;
    }
    if (!follow)
        flags |= AT_SYMLINK_NOFOLLOW;
    if (!(o->stx = PyMem_Calloc(1, sizeof(*o->stx)))) {
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    rl_prep_statx(&o->op, dfd, path, flags, STATX_BASIC_STATS, o->stx,
                  fileop_done, o);
    return fileop_submit(o);
}

/* _file_rename(src, dst[, flags]) (renameat2 flags) */
static PyObject *file_rename(LoopObject *loop, PyObject *const *args,
                             Py_ssize_t nargs)
{
    FileOpObject *o;
    const char *src, *dst;
    int flags = 0;

    if (check_nargs("_file_rename", nargs, 2, 3) < 0 ||
        (nargs > 2 && arg_int(args[2], &flags) < 0) ||
        !(o = fileop_new(loop, FK_RENAME)))
        return NULL;
    if (!(src = op_path(o, args[0], false)) ||
        !(dst = op_path(o, args[1], true)) || !(o->name = fs_name(args[0])) ||
        !(o->name2 = fs_name(args[1]))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_renameat(&o->op, AT_FDCWD, src, AT_FDCWD, dst, (unsigned)flags,
                     fileop_done, o);
    return fileop_submit(o);
}

/* _file_unlink(path, rmdir) */
static PyObject *file_unlink(LoopObject *loop, PyObject *const *args,
                             Py_ssize_t nargs)
{
    FileOpObject *o;
    const char *path;
    int rmdir_;

    if (check_nargs("_file_unlink", nargs, 1, 2) < 0)
        return NULL;
    rmdir_ = nargs > 1 ? PyObject_IsTrue(args[1]) : 0;
    if (rmdir_ < 0 || !(o = fileop_new(loop, FK_UNLINK)))
        return NULL;
    if (!(path = op_path(o, args[0], false)) || !(o->name = fs_name(args[0]))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_unlinkat(&o->op, AT_FDCWD, path, rmdir_ ? AT_REMOVEDIR : 0,
                     fileop_done, o);
    return fileop_submit(o);
}

/* _file_mkdir(path, mode) */
static PyObject *file_mkdir(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    FileOpObject *o;
    const char *path;
    int mode = 0777;

    if (check_nargs("_file_mkdir", nargs, 1, 2) < 0 ||
        (nargs > 1 && arg_int(args[1], &mode) < 0) ||
        !(o = fileop_new(loop, FK_MKDIR)))
        return NULL;
    if (!(path = op_path(o, args[0], false)) || !(o->name = fs_name(args[0]))) {
        Py_DECREF(o);
        return NULL;
    }
    rl_prep_mkdirat(&o->op, AT_FDCWD, path, (unsigned)mode, fileop_done, o);
    return fileop_submit(o);
}

/* _file_hold(fd): a file object uses fd from now on (see the top). */
static PyObject *file_hold(LoopObject *loop, PyObject *arg)
{
    int fd;

    if (arg_int(arg, &fd) < 0 || rlpy_loop_check_closed(loop) < 0)
        return NULL;
    if (fd < 0) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (rlpy_fd_ref(loop, fd) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _file_release(fd): the file object is done with fd (closefd=False). */
static PyObject *file_release(LoopObject *loop, PyObject *arg)
{
    int fd;

    if (arg_int(arg, &fd) < 0)
        return NULL;
    if (loop->rl && !loop->closed && fd >= 0)
        rlpy_fd_unref(loop, fd);
    Py_RETURN_NONE;
}

/* _file_close(fd): release fd and close it (RL_OP_CLOSE). */
static PyObject *file_close(LoopObject *loop, PyObject *arg)
{
    FileOpObject *o;
    int fd;

    if (arg_int(arg, &fd) < 0 || !(o = fileop_new(loop, FK_CLOSE)))
        return NULL;
    rlpy_fd_unref(loop, fd);
    rl_prep_close(&o->op, fd, fileop_done, o);
    return fileop_submit(o);
}

#define FASTCALL(fn) (PyCFunction)(void (*)(void))(fn), METH_FASTCALL
static PyMethodDef file_methods[] = {
    {"_file_open", FASTCALL(file_open), NULL},
    {"_file_pread", FASTCALL(file_pread), NULL},
    {"_file_preadinto", FASTCALL(file_preadinto), NULL},
    {"_file_pwrite", FASTCALL(file_pwrite), NULL},
    {"_file_fsync", FASTCALL(file_fsync), NULL},
    {"_file_fallocate", FASTCALL(file_fallocate), NULL},
    {"_file_ftruncate", FASTCALL(file_ftruncate), NULL},
    {"_file_stat", FASTCALL(file_stat), NULL},
    {"_file_rename", FASTCALL(file_rename), NULL},
    {"_file_unlink", FASTCALL(file_unlink), NULL},
    {"_file_mkdir", FASTCALL(file_mkdir), NULL},
    {"_file_hold", (PyCFunction)file_hold, METH_O, NULL},
    {"_file_release", (PyCFunction)file_release, METH_O, NULL},
    {"_file_close", (PyCFunction)file_close, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
#undef FASTCALL

/* Module exec: the FileOp type, and the methods above on the Loop type. */
int rlpy_file_init(PyObject *mod, rlpy_state *st)
{
    PyMethodDef *m;
    PyObject *d;
    int ret;

    if (!(str_set_result = PyUnicode_InternFromString("set_result")) ||
        !(str_set_exception = PyUnicode_InternFromString("set_exception")) ||
        !(str_done = PyUnicode_InternFromString("done")))
        return -1;
    fileop_type =
        (PyTypeObject *)PyType_FromModuleAndSpec(mod, &fileop_spec, NULL);
    if (!fileop_type)
        return -1;
    for (m = file_methods; m->ml_name; m++) {
        d = PyDescr_NewMethod(st->LoopType, m);
        ret =
            d ? PyObject_SetAttrString((PyObject *)st->LoopType, m->ml_name, d)
              : -1;
        Py_XDECREF(d);
        if (ret < 0)
            return -1;
    }
    return 0;
}
