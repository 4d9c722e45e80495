/*
 * Pipe transports (loop.connect_read_pipe / connect_write_pipe: pipes,
 * FIFOs, character devices, PTYs, sockets): asyncio's
 * _UnixReadPipeTransport and _UnixWritePipeTransport, as stream transports
 * (stream.c) that read and write with read(2)/writev(2).
 *
 * The read end reads with single-shot reads into its own buffer (or the
 * BufferedProtocol's); EOF always closes. The write end writes at once,
 * then queues and leaves in one writev per iteration; on a FIFO or socket
 * a poll for POLLIN stands in for asyncio's reader that notices the
 * reading side going away. Neither corks. The pipe object owns the fd: it
 * is closed with pipe.close() after connection_lost(), once the backend
 * forgot it.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

#define PIPE_BUF_LEN 65536 /* a pipe's read buffer: a default pipe's size */

typedef struct {
    StreamObject s;
    bool write_end;
} PipeObject;

static rlpy_state *state(StreamObject *s)
{
    return s->t.loop->st;
}

/* ---- reading, and noticing the reader go ------------------------------- */

/* A single-shot read into ibuf, handled as a final multishot completion. */
static void pipe_read_done(rl_loop *rl, rl_op *op)
{
    op->buf = ((StreamObject *)op->data)->ibuf;
    rlpy_stream_recv_done(rl, op);
}

/* The write end polled readable: the reading side went away (POLLERR on a
 * pipe, EOF or data on a socket). asyncio closes, losing what is queued. */
static void pipe_hup_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    TransportObject *t = &s->t;
    PyObject *exc = NULL, *ctx;

    (void)rl;
    if (op->res < 0 || t->loop->closed || t->closing || t->conn_lost)
        goto out;
    ctx = rlpy_ctx_enter(t->context); /* asyncio: the pipe's reader */
    if (s->wq.size)
        exc = PyObject_CallNoArgs(PyExc_BrokenPipeError);
    if (s->wq.size && !exc)
        rlpy_loop_stash_exc(t->loop, rlpy_exc_take());
    else
        rlpy_tr_force_close(t, exc);
    Py_XDECREF(exc);
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
}

static void pipe_arm(StreamObject *s)
{
    TransportObject *t = &s->t;
    int ret;

    if (!rlpy_stream_can_read(s) || rl_op_in_flight(&t->rop))
        return;
    if (((PipeObject *)s)->write_end) {
        rl_prep_poll(&t->rop, t->fd, POLLIN, false, pipe_hup_done, s);
    } else {
        if (!s->ibuf && !(s->ibuf = PyMem_Malloc(PIPE_BUF_LEN))) {
            PyErr_NoMemory();
            rlpy_tr_fatal_error(t, rlpy_exc_take(), "Fatal read error on pipe");
            return;
        }
        rl_prep_read(&t->rop, t->fd, s->ibuf, PIPE_BUF_LEN, -1, pipe_read_done,
                     s);
    }
    ret = rl_submit(t->loop->rl, &t->rop);
    if (ret < 0) {
        rlpy_tr_fatal_error(t, rlpy_oserror(-ret),
                            "Fatal error on pipe transport");
        return;
    }
    Py_INCREF(s);
}

static void pipe_start_read(StreamObject *s)
{
    if (((PipeObject *)s)->write_end || !s->t.buffered)
        pipe_arm(s);
    else
        rlpy_stream_read_buffered(s);
}

/* asyncio's pipe transports call eof_received() with call_soon(): in a
 * copy of the reader context, whose changes connection_lost() (another
 * copy) does not see. */
static PyObject *pipe_eof_received(StreamObject *s)
{
    PyObject *ctx = PyContext_CopyCurrent(), *entered, *r;

    if (!ctx)
        return NULL;
    entered = rlpy_ctx_enter(ctx);
    r = PyObject_CallMethodNoArgs(s->t.protocol, state(s)->str_eof_received);
    rlpy_ctx_exit(entered);
    Py_DECREF(ctx);
    return r;
}

/* asyncio: a pipe's EOF always closes it. */
static void pipe_on_eof(StreamObject *s)
{
    PyObject *r;

    s->read_done = true;
    if (!s->t.protocol)
        return;
    r = pipe_eof_received(s);
    if (!r)
        rlpy_stream_proto_failed(
            s, rlpy_exc_take(),
            "Fatal error: protocol.eof_received() call failed.");
    Py_XDECREF(r);
    if (!s->t.conn_lost)
        Py_XDECREF(
            PyObject_CallMethodNoArgs((PyObject *)s, state(s)->str_close));
}

/* ---- writing and closing ----------------------------------------------- */

static void pipe_prep_read(rl_op *op, int fd, void *buf, size_t len,
                           rl_op_fn cb, void *data)
{
    rl_prep_read(op, fd, buf, len, -1, cb, data);
}

static void pipe_prep_write(StreamObject *s, rl_op_fn cb)
{
    size_t n = rlpy_wq_iov(&s->wq);

    rl_prep_writev(&s->t.wop, s->t.fd, s->wq.iov, n, -1, cb, s);
}

/* Non-blocking, as asyncio sets the pipe. */
static ssize_t pipe_write_now(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

/* The pipe object closes its fd, after the backend forgot it (the ops
 * still in flight have had their cancellation requested). */
static void pipe_close_fd(TransportObject *t)
{
    PyObject *r;

    rlpy_fd_clear_transport(t->loop, t->fd, (PyObject *)t);
    if (!t->sock)
        return;
    if (t->loop->rl)
        rl_loop_fd_closed(t->loop->rl, t->fd);
    r = PyObject_CallMethodNoArgs(t->sock, t->loop->st->str_close);
    if (!r)
        PyErr_WriteUnraisable(t->sock);
    Py_XDECREF(r);
}

static PyObject *pipe_close_fd_now(TransportObject *t)
{
    pipe_close_fd(t);
    Py_RETURN_NONE;
}

/* open (the loop closed), else the read end's polling|idle, the write
 * end's polling|idle bufsize=N, as asyncio's. */
static int pipe_repr_info(TransportObject *t, PyObject *words)
{
    PyObject *w;
    Py_ssize_t size = ((StreamObject *)t)->wq.size;
    int r;

    if (t->loop->closed)
        w = PyUnicode_FromString("open");
    else if (((PipeObject *)t)->write_end)
        w = PyUnicode_FromFormat("%s bufsize=%zd", size ? "polling" : "idle",
                                 size);
    else
        w = PyUnicode_FromString(!t->paused && !t->closing ? "polling"
                                                           : "idle");
    r = w ? PyList_Append(words, w) : -1;
    Py_XDECREF(w);
    return r;
}

static const struct rlpy_stream_ops pipe_ops = {
    .base =
        {
            RLPY_STREAM_HOOKS,
            .close_fd = pipe_close_fd,
            .close_fd_now = pipe_close_fd_now,
            .repr_info = pipe_repr_info,
            .warn_closing = true,
        },
    .start_read = pipe_start_read,
    .prep_read = pipe_prep_read,
    .prep_write = pipe_prep_write,
    .write_now = pipe_write_now,
    .on_eof = pipe_on_eof,
    .drop_when_closing = true,
};

/* ---- Python API -------------------------------------------------------- */

/* PipeTransport(loop, pipe, protocol, end, extra=None): end "r" or "w";
 * the fd is non-blocking already. */
static PyObject *pipe_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop", "pipe", "protocol", "end", "extra", NULL};
    PyObject *loop, *pipe, *protocol, *extra = NULL;
    const char *end;
    PipeObject *p;
    int fd;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOs|O:PipeTransport", kwlist,
                                     &loop, &pipe, &protocol, &end, &extra))
        return NULL;
    if (strcmp(end, "r") && strcmp(end, "w")) {
        PyErr_SetString(PyExc_ValueError, "end must be 'r' or 'w'");
        return NULL;
    }
    fd = rlpy_tr_check(tp, loop, pipe);
    if (fd < 0)
        return NULL;
    p = (PipeObject *)tp->tp_alloc(tp, 0);
    if (!p)
        return NULL;
    p->write_end = *end == 'w';
    if (rlpy_tr_init(&p->s.t, &pipe_ops.base, loop, pipe, fd, protocol, NULL,
                     NULL, extra) < 0 ||
        rlpy_tr_extra_set(&p->s.t, ((LoopObject *)loop)->st->str_pipe, pipe) <
            0 ||
        rlpy_tr_init_done(&p->s.t) < 0) {
        Py_DECREF(p);
        return NULL;
    }
    return (PyObject *)p;
}

/* asyncio's write pipe: write_eof() is close(). */
static PyObject *pipe_write_eof(PipeObject *p, PyObject *unused)
{
    (void)unused;
    return PyObject_CallMethodNoArgs((PyObject *)p, state(&p->s)->str_close);
}

/* asyncio's _pipe: whoever sets it to None takes the pipe over (no
 * finalizer closes it then). */
static PyObject *get_pipe(PipeObject *p, void *c)
{
    (void)c;
    return Py_NewRef(p->s.t.released || !p->s.t.sock ? Py_None : p->s.t.sock);
}

static int set_pipe(PipeObject *p, PyObject *v, void *c)
{
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _pipe");
        return -1;
    }
    p->s.t.released = v == Py_None;
    if (v != Py_None)
        Py_XSETREF(p->s.t.sock, Py_NewRef(v));
    return 0;
}

static PyMethodDef pipe_methods[] = {
    {"write_eof", (PyCFunction)pipe_write_eof, METH_NOARGS,
     "Close after the queued data was written."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef pipe_getset[] = {
    {"_pipe", (getter)get_pipe, (setter)set_pipe, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot pipe_slots[] = {
    {Py_tp_doc, "The C core of ringloop's pipe transports."},
    {Py_tp_new, pipe_new},
    {Py_tp_dealloc, rlpy_stream_dealloc},
    {Py_tp_traverse, rlpy_stream_traverse},
    {Py_tp_clear, rlpy_stream_clear},
    {Py_tp_methods, pipe_methods},
    {Py_tp_getset, pipe_getset},
    {0, NULL},
};

PyType_Spec rlpy_pipe_spec = {
    .name = "ringloop._ext.PipeTransport",
    .basicsize = sizeof(PipeObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = pipe_slots,
};
