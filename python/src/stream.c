/*
 * Stream transports for TCP and Unix sockets: asyncio's
 * _SelectorSocketTransport on completions.
 *
 * Reading: a Protocol gets one multishot recv from the loop's buffer pool;
 * each completion copies the data once into a bytes object and calls
 * protocol.data_received() right there. A BufferedProtocol gets a
 * single-shot recv straight into the buffer from get_buffer(), and
 * buffer_updated() from its completion. pause_reading() cancels the recv;
 * what still completes before the cancellation is kept (as bytes) and
 * delivered, in order, after resume_reading(), to the protocol of that
 * time: start_tls() swaps the protocol in between.
 *
 * Writing: write() sends at once when nothing is queued (as asyncio does);
 * what is left is queued (bytes are kept by reference, other buffers are
 * copied) and leaves in one vectored sendmsg, resubmitted from its
 * completion with everything queued meanwhile: one sendmsg per iteration.
 * Short sends leave the rest queued.
 *
 * Contexts (contextvars), as asyncio's reader and writer callbacks: read
 * completions and _start_reading() run in the reader context, a copy of
 * the context the transport was made in (resume_reading() makes a new
 * copy of its caller's); write completions run in the writer context, a
 * copy of the context of the write that found the queue idle and left
 * data in it. So data_received() sees what the previous one set, and
 * connection_lost() runs in a copy of whichever context closed it.
 *
 * Lifetime: every op in flight holds a reference to the transport (taken
 * at rl_submit, dropped in the final completion), and the iovecs point into
 * queued bytes objects that are released only once no sendmsg is in flight.
 * The socket is closed after connection_lost() with an RL_OP_CLOSE op, which
 * also cancels the ops still in flight on it.
 *
 * Pipe mode (loop.connect_read_pipe / connect_write_pipe: pipes, FIFOs,
 * character devices, PTYs, sockets), asyncio's _UnixReadPipeTransport and
 * _UnixWritePipeTransport: the read end reads with single-shot reads into
 * its own buffer (or the BufferedProtocol's); EOF always closes. The write
 * end writes at once, then queues and leaves in one writev per iteration;
 * on a FIFO or socket a poll for POLLIN stands in for asyncio's reader that
 * notices the reading side going away. The pipe object owns the fd: it is
 * closed with pipe.close() after connection_lost(), once the backend
 * forgot it.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloop.h"

#define WQ_IOV 256         /* iovecs per sendmsg / writev */
#define PIPE_BUF_LEN 65536 /* a pipe's read buffer: a default pipe's size */

enum { PIPE_NONE = 0, PIPE_READ, PIPE_WRITE };

struct wentry {
    PyObject *data; /* bytes */
    Py_ssize_t off;
};

typedef struct {
    PyObject_HEAD PyObject *extra; /* asyncio.BaseTransport's _extra slot */
    LoopObject *loop;
    PyObject *sock;
    PyObject *protocol;
    PyObject *server;
    PyObject *context;      /* the reader's: read completions run in it */
    PyObject *wctx;         /* the writer's: write completions run in it */
    PyObject *pending;      /* list of bytes received while paused, or NULL */
    PyObject *empty_waiter; /* loop.sendfile(): set when the queue drains */
    PyObject *weakreflist;
    rl_op rop, wop, cop;
    struct msghdr msg;
    struct iovec iov[WQ_IOV];
    Py_buffer rbuf; /* BufferedProtocol: get_buffer()'s buffer, in flight */
    char *pbuf;     /* pipe mode, Protocol: reads land here */
    struct wentry *wq;
    size_t whead, wtail, wcap;
    Py_ssize_t wsize, high, low;
    int fd;
    int conn_lost;
    bool buffered;    /* protocol is a BufferedProtocol */
    bool paused;      /* pause_reading() */
    bool closing;     /* close() or a forced close */
    bool read_done;   /* EOF or read error: no more recv */
    bool pending_eof; /* EOF seen while paused */
    bool rbuf_held;
    bool rbuf_stale; /* set_protocol() replaced rbuf's protocol */
    bool eof_req;    /* write_eof() */
    bool write_paused;
    bool connected;      /* connection_made() was scheduled */
    bool lost_done;      /* connection_lost() was called */
    bool corked;         /* queued writes wait for the end of a delivery */
    bool cork_listed;    /* on the loop's corked list (until cork_end) */
    uint8_t pipe;        /* PIPE_NONE (a socket), PIPE_READ or PIPE_WRITE */
    PyObject *cork_next; /* the loop's corked list (a strong reference) */
} StreamObject;

static PyObject *oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

static bool is_fatal_base(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
           PyErr_GivenExceptionMatches(exc, PyExc_SystemExit);
}

/* loop.call_exception_handler({message, exception, transport, protocol}). */
static void report(StreamObject *s, PyObject *exc, const char *msg)
{
    PyObject *ctx, *r = NULL;

    ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", msg, "exception", exc,
                        "transport", (PyObject *)s, "protocol",
                        s->protocol ? s->protocol : Py_None);
    if (ctx)
        r = PyObject_CallMethod((PyObject *)s->loop, "call_exception_handler",
                                "O", ctx);
    Py_XDECREF(ctx);
    if (!r)
        rlpy_loop_stash_exc(s->loop, rlpy_exc_take());
    Py_XDECREF(r);
}

static int schedule_lost(StreamObject *s, PyObject *exc)
{
    PyObject *m, *r;

    m = PyObject_GetAttrString((PyObject *)s, "_call_connection_lost");
    if (!m)
        return -1;
    r = PyObject_CallMethod((PyObject *)s->loop, "call_soon", "OO", m,
                            exc ? exc : Py_None);
    Py_DECREF(m);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Complete the sendfile waiter (exc NULL: with None). */
static void empty_waiter_done(StreamObject *s, PyObject *exc)
{
    PyObject *w = s->empty_waiter, *r, *done;

    if (!w)
        return;
    done = PyObject_CallMethod(w, "done", NULL);
    if (done == Py_False)
        r = exc ? PyObject_CallMethod(w, "set_exception", "(O)", exc)
                : PyObject_CallMethod(w, "set_result", "(O)", Py_None);
    else
        r = Py_NewRef(Py_None);
    Py_XDECREF(done);
    if (!r)
        PyErr_WriteUnraisable(w);
    Py_XDECREF(r);
}

static void wq_clear(StreamObject *s)
{
    while (s->whead < s->wtail)
        Py_CLEAR(s->wq[s->whead++].data);
    s->whead = s->wtail = 0;
    s->wsize = 0;
}

static void stop_reading(StreamObject *s)
{
    if (rl_op_in_flight(&s->rop) && s->loop->rl)
        rl_op_cancel(s->loop->rl, &s->rop);
}

static void uncork(StreamObject *s);

/* asyncio's _force_close(). What is corked is sent first: asyncio's
 * write() would have sent it already. */
static void force_close(StreamObject *s, PyObject *exc)
{
    if (s->conn_lost)
        return;
    uncork(s);
    if (s->conn_lost)
        return; /* the send failed: that closed it */
    empty_waiter_done(s, exc);
    if (rl_op_in_flight(&s->wop))
        rl_op_cancel(s->loop->rl, &s->wop); /* its completion clears wq */
    else
        wq_clear(s);
    if (!s->closing) {
        s->closing = true;
        stop_reading(s);
    }
    s->conn_lost++;
    if (s->loop->closed)
        return;
    if (schedule_lost(s, exc) < 0)
        rlpy_loop_stash_exc(s->loop, rlpy_exc_take());
}

/* asyncio's _fatal_error(); steals exc. */
static void fatal_error(StreamObject *s, PyObject *exc, const char *msg)
{
    if (!exc) {
        rlpy_loop_stash_exc(s->loop, rlpy_exc_take());
        return;
    }
    if (is_fatal_base(exc)) {
        rlpy_loop_stash_exc(s->loop, exc);
        return;
    }
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError))
        report(s, exc, msg);
    force_close(s, exc);
    Py_DECREF(exc);
}

/* Call protocol.<name>(arg); on failure, fatal_error(msg). A new reference
 * to the result, or NULL (handled). */
static PyObject *call_proto(StreamObject *s, const char *name, PyObject *arg,
                            const char *msg)
{
    PyObject *r;

    if (!s->protocol)
        return NULL;
    r = arg ? PyObject_CallMethod(s->protocol, name, "O", arg)
            : PyObject_CallMethod(s->protocol, name, NULL);
    if (!r)
        fatal_error(s, rlpy_exc_take(), msg);
    return r;
}

/* protocol.data_received() or eof_received() failed (exc stolen). asyncio's
 * socket transports close with the error; its pipe transports call those
 * from plain loop callbacks, so the error only goes to the handler. */
static void proto_failed(StreamObject *s, PyObject *exc, const char *msg)
{
    if (!s->pipe || !exc || is_fatal_base(exc)) {
        fatal_error(s, exc, msg);
        return;
    }
    report(s, exc, msg);
    Py_DECREF(exc);
}

/* pause_writing / resume_writing failures only go to the handler. */
static void call_flow(StreamObject *s, const char *name, const char *msg)
{
    PyObject *r = PyObject_CallMethod(s->protocol, name, NULL), *exc;

    if (r) {
        Py_DECREF(r);
        return;
    }
    exc = rlpy_exc_take();
    if (is_fatal_base(exc)) {
        rlpy_loop_stash_exc(s->loop, exc);
        return;
    }
    report(s, exc, msg);
    Py_DECREF(exc);
}

static void maybe_pause(StreamObject *s)
{
    if (s->wsize <= s->high || s->write_paused || !s->protocol)
        return;
    s->write_paused = true;
    call_flow(s, "pause_writing", "protocol.pause_writing() failed");
}

static void maybe_resume(StreamObject *s)
{
    if (!s->write_paused || s->wsize > s->low || !s->protocol)
        return;
    s->write_paused = false;
    call_flow(s, "resume_writing", "protocol.resume_writing() failed");
}

/* ---- reading ----------------------------------------------------------- */

static void recv_multi_done(rl_loop *rl, rl_op *op);
static void recv_buf_done(rl_loop *rl, rl_op *op);

static bool can_read(StreamObject *s)
{
    return !s->paused && !s->closing && !s->read_done && !s->conn_lost &&
           !s->loop->closed && s->protocol && !s->pending && !s->pending_eof;
}

/* Protocol: one multishot recv, unless one is in flight. */
static void read_arm(StreamObject *s)
{
    int ret;

    if (!can_read(s) || rl_op_in_flight(&s->rop))
        return;
    rl_prep_recv_multishot(&s->rop, s->fd, recv_multi_done, s);
    ret = rl_submit(s->loop->rl, &s->rop);
    if (ret < 0) {
        fatal_error(s, oserror(-ret), "Fatal read error on socket transport");
        return;
    }
    Py_INCREF(s);
}

/* BufferedProtocol: get_buffer(-1), then recv into it. */
static void read_arm_buffered(StreamObject *s)
{
    PyObject *buf, *exc;
    int ret;

    if (!can_read(s) || rl_op_in_flight(&s->rop))
        return;
    buf = PyObject_CallMethod(s->protocol, "get_buffer", "i", -1);
    if (buf && PyObject_GetBuffer(buf, &s->rbuf, PyBUF_WRITABLE) < 0)
        Py_CLEAR(buf);
    if (buf && s->rbuf.len == 0) {
        PyBuffer_Release(&s->rbuf);
        Py_CLEAR(buf);
        PyErr_SetString(PyExc_RuntimeError,
                        "get_buffer() returned an empty buffer");
    }
    if (!buf) {
        exc = rlpy_exc_take();
        fatal_error(s, exc, "Fatal error: protocol.get_buffer() call failed.");
        return;
    }
    Py_DECREF(buf); /* the Py_buffer keeps its exporter */
    s->rbuf_held = true;
    s->rbuf_stale = false;
    if (s->pipe)
        rl_prep_read(&s->rop, s->fd, s->rbuf.buf, (size_t)s->rbuf.len, -1,
                     recv_buf_done, s);
    else
        rl_prep_recv(&s->rop, s->fd, s->rbuf.buf, (size_t)s->rbuf.len, 0,
                     recv_buf_done, s);
    ret = rl_submit(s->loop->rl, &s->rop);
    if (ret < 0) {
        PyBuffer_Release(&s->rbuf);
        s->rbuf_held = false;
        fatal_error(s, oserror(-ret), "Fatal read error on socket transport");
        return;
    }
    Py_INCREF(s);
}

static void pipe_arm(StreamObject *s);

static void start_read(StreamObject *s)
{
    if (s->pipe && (s->pipe == PIPE_WRITE || !s->buffered))
        pipe_arm(s);
    else if (s->buffered)
        read_arm_buffered(s);
    else
        read_arm(s);
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
    r = PyObject_CallMethod(s->protocol, "eof_received", NULL);
    rlpy_ctx_exit(entered);
    Py_DECREF(ctx);
    return r;
}

/* asyncio's _read_ready__on_eof(). */
static void on_eof(StreamObject *s)
{
    PyObject *r;
    int keep;

    s->read_done = true;
    if (s->pipe && s->protocol) { /* asyncio: a pipe's EOF always closes it */
        r = pipe_eof_received(s);
        if (!r)
            proto_failed(s, rlpy_exc_take(),
                         "Fatal error: protocol.eof_received() call failed.");
        Py_XDECREF(r);
        if (!s->conn_lost)
            Py_XDECREF(PyObject_CallMethod((PyObject *)s, "close", NULL));
        return;
    }
    r = call_proto(s, "eof_received", NULL,
                   "Fatal error: protocol.eof_received() call failed.");
    if (!r)
        return;
    keep = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (keep < 0) {
        fatal_error(s, rlpy_exc_take(),
                    "Fatal error: protocol.eof_received() call failed.");
        return;
    }
    if (!keep)
        Py_XDECREF(PyObject_CallMethod((PyObject *)s, "close", NULL));
}

/* Give n bytes to a BufferedProtocol through get_buffer/buffer_updated. */
static int deliver_buffered(StreamObject *s, const char *p, Py_ssize_t n)
{
    Py_buffer v;
    PyObject *buf, *r;
    Py_ssize_t k;

    while (n > 0 && s->protocol && !s->conn_lost) {
        buf = PyObject_CallMethod(s->protocol, "get_buffer", "n", n);
        if (buf && PyObject_GetBuffer(buf, &v, PyBUF_WRITABLE) < 0)
            Py_CLEAR(buf);
        if (!buf) {
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.get_buffer() call failed.");
            return -1;
        }
        k = v.len < n ? v.len : n;
        memcpy(v.buf, p, (size_t)k);
        PyBuffer_Release(&v);
        Py_DECREF(buf);
        if (k == 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "get_buffer() returned an empty buffer");
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.get_buffer() call failed.");
            return -1;
        }
        r = PyObject_CallMethod(s->protocol, "buffer_updated", "n", k);
        if (!r) {
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.buffer_updated() call failed.");
            return -1;
        }
        Py_DECREF(r);
        p += k;
        n -= k;
    }
    return 0;
}

static void cork_begin(LoopObject *loop);
static void cork_end(LoopObject *loop);

/* Data for the protocol, whichever kind it is now. What the protocol
 * writes meanwhile (a reply, or many to pipelined requests) is corked: it
 * leaves in one sendmsg per transport when the callback returns. */
static int deliver(StreamObject *s, PyObject *data)
{
    LoopObject *loop = s->loop;
    PyObject *r;
    int ret = 0;

    cork_begin(loop);
    if (s->buffered) {
        ret = deliver_buffered(s, PyBytes_AS_STRING(data),
                               PyBytes_GET_SIZE(data));
        goto out;
    }
    /* Hot: one call per received chunk, with the interned name and no
     * argument tuple (call_proto builds both from C strings). */
    if (!s->protocol) {
        ret = -1;
        goto out;
    }
    r = PyObject_CallMethodOneArg(s->protocol, loop->st->str_data_received,
                                  data);
    if (!r) {
        proto_failed(s, rlpy_exc_take(),
                     "Fatal error: protocol.data_received() call failed.");
        ret = -1;
        goto out;
    }
    Py_DECREF(r);
out:
    cork_end(loop);
    return ret;
}

static void read_error(StreamObject *s, int res)
{
    s->read_done = true;
    fatal_error(s, oserror(-res), "Fatal read error on socket transport");
}

/* Schedule _start_reading(), which delivers what is pending first. */
static void stream_resume_later(StreamObject *s)
{
    PyObject *m, *r = NULL;

    m = PyObject_GetAttrString((PyObject *)s, "_start_reading");
    if (m)
        r = PyObject_CallMethod((PyObject *)s->loop, "call_soon", "O", m);
    Py_XDECREF(m);
    if (!r)
        rlpy_loop_stash_exc(s->loop, rlpy_exc_take());
    Py_XDECREF(r);
}

/* Keep data for _start_reading() to deliver; -1 with an exception set. */
static int pending_add(StreamObject *s, PyObject *data)
{
    if (!s->pending && !(s->pending = PyList_New(0)))
        return -1;
    return PyList_Append(s->pending, data);
}

/* Completions of the read op run in the reader context (s->context), as
 * asyncio's reader callback: what the protocol gets, the errors reported
 * and connection_lost() scheduled from there, and the next get_buffer(). */
static void recv_multi_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    bool more = op->cflags & RL_CQE_MORE;
    PyObject *data, *ctx;

    (void)rl;
    if (s->loop->closed)
        goto out;
    ctx = rlpy_ctx_enter(s->context);
    if (s->closing || s->conn_lost || s->read_done)
        goto rearm;
    if (op->res > 0) {
        data = PyBytes_FromStringAndSize(op->buf, op->res);
        if (!data) {
            fatal_error(s, rlpy_exc_take(), "Fatal read error");
        } else if (s->paused || s->pending) {
            if (pending_add(s, data) < 0)
                fatal_error(s, rlpy_exc_take(), "Fatal read error");
        } else {
            deliver(s, data);
        }
        Py_XDECREF(data);
    } else if (op->res == 0) {
        if (s->paused || s->pending) {
            s->pending_eof = true;
            s->read_done = true;
        } else {
            on_eof(s);
        }
        if (more)
            rl_op_cancel(s->loop->rl, op);
    } else if (op->res != -ECANCELED && op->res != -ENOBUFS &&
               op->res != -EAGAIN && op->res != -EINTR) {
        read_error(s, op->res);
    }
rearm:
    if (!more)
        start_read(s);
    rlpy_ctx_exit(ctx);
out:
    if (!more)
        Py_DECREF(s);
}

static void recv_buf_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    PyObject *r, *ctx;
    int res = op->res;

    (void)rl;
    if (s->loop->closed) {
        if (s->rbuf_held) {
            PyBuffer_Release(&s->rbuf);
            s->rbuf_held = false;
        }
        goto out;
    }
    ctx = rlpy_ctx_enter(s->context);
    if (res > 0 && s->rbuf_held && (s->rbuf_stale || s->paused)) {
        /* The data is in a buffer whose protocol set_protocol() replaced,
         * or reading is paused and the protocol may yet be replaced (as
         * start_tls() does): keep it as bytes, for deliver() to hand to
         * the protocol of the time. */
        PyObject *data = PyBytes_FromStringAndSize(s->rbuf.buf, res);
        PyBuffer_Release(&s->rbuf);
        s->rbuf_held = false;
        if (!data) {
            fatal_error(s, rlpy_exc_take(), "Fatal read error");
        } else if (!s->closing && !s->conn_lost) {
            if (pending_add(s, data) < 0)
                fatal_error(s, rlpy_exc_take(), "Fatal read error");
            else if (!s->paused)
                stream_resume_later(s);
        }
        Py_XDECREF(data);
        goto out_ctx;
    }
    if (s->rbuf_held) {
        PyBuffer_Release(&s->rbuf);
        s->rbuf_held = false;
    }
    if (s->closing || s->conn_lost || s->read_done)
        goto out_ctx;
    if (res > 0) {
        cork_begin(s->loop);
        r = PyObject_CallMethod(s->protocol, "buffer_updated", "i", res);
        if (!r)
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.buffer_updated() call failed.");
        Py_XDECREF(r);
        cork_end(s->loop);
    } else if (res == 0) {
        if (s->paused) {
            s->pending_eof = true;
            s->read_done = true;
        } else {
            on_eof(s);
        }
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
        read_error(s, res);
    }
    if (!s->loop->closed)
        start_read(s);
out_ctx:
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
}

/* ---- pipe mode: reading, and noticing the reader go ---------------------- */

/* A single-shot read into pbuf, handled as a final multishot completion. */
static void pipe_read_done(rl_loop *rl, rl_op *op)
{
    op->buf = ((StreamObject *)op->data)->pbuf;
    recv_multi_done(rl, op);
}

/* The write end polled readable: the reading side went away (POLLERR on a
 * pipe, EOF or data on a socket). asyncio closes, losing what is queued. */
static void pipe_hup_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    PyObject *exc = NULL, *ctx;

    (void)rl;
    if (op->res < 0 || s->loop->closed || s->closing || s->conn_lost)
        goto out;
    ctx = rlpy_ctx_enter(s->context); /* asyncio: the pipe's reader */
    if (s->wsize)
        exc = PyObject_CallNoArgs(PyExc_BrokenPipeError);
    if (s->wsize && !exc)
        rlpy_loop_stash_exc(s->loop, rlpy_exc_take());
    else
        force_close(s, exc);
    Py_XDECREF(exc);
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
}

static void pipe_arm(StreamObject *s)
{
    int ret;

    if (!can_read(s) || rl_op_in_flight(&s->rop))
        return;
    if (s->pipe == PIPE_WRITE) {
        rl_prep_poll(&s->rop, s->fd, POLLIN, false, pipe_hup_done, s);
    } else {
        if (!s->pbuf && !(s->pbuf = PyMem_Malloc(PIPE_BUF_LEN))) {
            PyErr_NoMemory();
            fatal_error(s, rlpy_exc_take(), "Fatal read error on pipe");
            return;
        }
        rl_prep_read(&s->rop, s->fd, s->pbuf, PIPE_BUF_LEN, -1, pipe_read_done,
                     s);
    }
    ret = rl_submit(s->loop->rl, &s->rop);
    if (ret < 0) {
        fatal_error(s, oserror(-ret), "Fatal error on pipe transport");
        return;
    }
    Py_INCREF(s);
}

/* ---- writing ----------------------------------------------------------- */

static void write_done(rl_loop *rl, rl_op *op);

/* Point s->iov (and, for a socket, s->msg) at the queued data; the
 * number of iovecs. */
static size_t wq_iov(StreamObject *s)
{
    size_t i, n = 0;

    for (i = s->whead; i < s->wtail && n < WQ_IOV; i++, n++) {
        struct wentry *e = &s->wq[i];
        s->iov[n].iov_base = PyBytes_AS_STRING(e->data) + e->off;
        s->iov[n].iov_len = (size_t)(PyBytes_GET_SIZE(e->data) - e->off);
    }
    memset(&s->msg, 0, sizeof(s->msg));
    s->msg.msg_iov = s->iov;
    s->msg.msg_iovlen = n;
    return n;
}

static void write_submit(StreamObject *s)
{
    size_t n;
    int ret;

    if (rl_op_in_flight(&s->wop))
        return; /* never prep an op the loop owns; its completion resubmits */
    n = wq_iov(s);
    if (s->pipe)
        rl_prep_writev(&s->wop, s->fd, s->iov, n, -1, write_done, s);
    else
        rl_prep_sendmsg(&s->wop, s->fd, &s->msg, MSG_NOSIGNAL, write_done, s);
    ret = rl_submit(s->loop->rl, &s->wop);
    if (ret < 0) {
        wq_clear(s);
        fatal_error(s, oserror(-ret), "Fatal write error on socket transport");
        return;
    }
    Py_INCREF(s);
}

/* The queue, idle until now, waits for the socket: asyncio adds its writer
 * callback here, in a copy of the current context, which the write
 * completions run in until the queue drained. */
static void write_start(StreamObject *s)
{
    PyObject *ctx = PyContext_CopyCurrent();

    if (ctx)
        Py_XSETREF(s->wctx, ctx);
    else /* out of memory: the completions keep the previous context */
        PyErr_Clear();
    write_submit(s);
}

static void wq_consume(StreamObject *s, Py_ssize_t n)
{
    s->wsize -= n;
    while (n > 0 && s->whead < s->wtail) {
        struct wentry *e = &s->wq[s->whead];
        Py_ssize_t left = PyBytes_GET_SIZE(e->data) - e->off;
        if (n < left) {
            e->off += n;
            return;
        }
        n -= left;
        Py_CLEAR(e->data);
        s->whead++;
    }
    if (s->whead == s->wtail)
        s->whead = s->wtail = 0;
}

static PyObject *call_lost(StreamObject *s, PyObject *exc);

/* After the queue drained: asyncio's tail of _write_ready(). */
static void write_drained(StreamObject *s)
{
    PyObject *r;

    empty_waiter_done(s, NULL);
    if (s->closing) {
        r = call_lost(s, NULL);
        if (!r) {
            PyObject *exc = rlpy_exc_take();
            if (is_fatal_base(exc)) {
                rlpy_loop_stash_exc(s->loop, exc);
                return;
            }
            report(s, exc,
                   "Fatal error: protocol.connection_lost() call "
                   "failed.");
            Py_DECREF(exc);
        }
        Py_XDECREF(r);
    } else if (s->eof_req) {
        shutdown(s->fd, SHUT_WR);
    }
}

/* In the writer context: resume_writing(), connection_lost() after a
 * close() that waited for the queue, and what a write error reports. */
static void write_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    PyObject *ctx;
    int res = op->res;

    (void)rl;
    if (s->conn_lost || s->loop->closed) {
        wq_clear(s);
        goto out;
    }
    ctx = rlpy_ctx_enter(s->wctx);
    if (res == -EAGAIN || res == -EINTR) {
        write_submit(s);
        goto out_ctx;
    }
    if (res < 0) {
        wq_clear(s);
        fatal_error(s, oserror(-res), "Fatal write error on socket transport");
        goto out_ctx;
    }
    wq_consume(s, res);
    /* resume_writing() may write: that can send at once, or queue and
     * submit the next sendmsg itself (wop is idle in its final callback) */
    maybe_resume(s);
    if (s->conn_lost || rl_op_in_flight(&s->wop))
        goto out_ctx;
    if (s->whead < s->wtail)
        write_submit(s);
    else
        write_drained(s);
out_ctx:
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
}

static int wq_push(StreamObject *s, PyObject *data, Py_ssize_t off)
{
    struct wentry *v;
    size_t cap;

    if (s->wtail == s->wcap) {
        if (s->whead > 0 && !rl_op_in_flight(&s->wop)) {
            memmove(s->wq, s->wq + s->whead,
                    (s->wtail - s->whead) * sizeof(*v));
            s->wtail -= s->whead;
            s->whead = 0;
        }
    }
    if (s->wtail == s->wcap) {
        cap = s->wcap ? s->wcap * 2 : 16;
        v = PyMem_Realloc(s->wq, cap * sizeof(*v));
        if (!v) {
            PyErr_NoMemory();
            return -1;
        }
        s->wq = v;
        s->wcap = cap;
    }
    s->wq[s->wtail].data = data;
    s->wq[s->wtail].off = off;
    s->wtail++;
    s->wsize += PyBytes_GET_SIZE(data) - off;
    return 0;
}

static bool wq_idle(StreamObject *s)
{
    return s->whead == s->wtail && !rl_op_in_flight(&s->wop);
}

/* ---- corking ----------------------------------------------------------- */

static void cork_begin(LoopObject *loop)
{
    loop->cork_depth++;
}

/* Send what s queued while corked: at once, as write() would have, in one
 * sendmsg; what the socket does not take goes on as any queued data. */
static void uncork(StreamObject *s)
{
    ssize_t sent;

    if (!s->corked)
        return;
    s->corked = false;
    if (s->conn_lost || rl_op_in_flight(&s->wop) || s->whead == s->wtail)
        return;
    wq_iov(s);
    sent = sendmsg(s->fd, &s->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    rl_loop_stats_count(s->loop->rl, RL_STATS_SEND, sent); /* stats */
    if (sent < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            wq_clear(s);
            fatal_error(s, oserror(errno),
                        "Fatal write error on socket transport");
            return;
        }
        sent = 0;
    }
    wq_consume(s, sent);
    if (s->whead < s->wtail) {
        write_start(s);
        maybe_pause(s);
    } else if (s->closing || s->eof_req) {
        write_drained(s);
    }
}

/* The delivery that began with cork_begin() returned: send what was
 * corked. A transport stays listed (and referenced) until here, even when
 * something uncorked it earlier. */
static void cork_end(LoopObject *loop)
{
    if (--loop->cork_depth > 0)
        return;
    while (loop->corked) {
        StreamObject *s = (StreamObject *)loop->corked;
        loop->corked = s->cork_next;
        s->cork_next = NULL;
        s->cork_listed = false;
        uncork(s);
        Py_DECREF(s);
    }
}

/* write() while corked: queue data (a reference to bytes, else a copy);
 * the first such write lists s on the loop. -1 with an exception set. */
static int cork_write(StreamObject *s, const Py_buffer *v, PyObject *data)
{
    PyObject *keep = PyBytes_CheckExact(data)
                         ? Py_NewRef(data)
                         : PyBytes_FromStringAndSize(v->buf, v->len);

    if (!keep || wq_push(s, keep, 0) < 0) {
        Py_XDECREF(keep);
        return -1;
    }
    s->corked = true;
    /* Uncorked early (get_write_buffer_size(), ...), s is still listed. */
    if (!s->cork_listed) {
        s->cork_listed = true;
        s->cork_next = s->loop->corked;
        s->loop->corked = Py_NewRef((PyObject *)s);
    }
    /* Past the high-water mark asyncio would have sent, then paused. */
    if (s->wsize > s->high)
        uncork(s);
    return 0;
}

static int check_data(PyObject *data)
{
    if (!PyObject_CheckBuffer(data)) {
        PyObject *name =
            PyObject_GetAttrString((PyObject *)Py_TYPE(data), "__name__");
        if (name)
            PyErr_Format(PyExc_TypeError,
                         "data argument must be a bytes-like object, not %R",
                         name);
        Py_XDECREF(name);
        return -1;
    }
    return 0;
}

/* write() without the argument checks. */
static int write_one(StreamObject *s, PyObject *data)
{
    Py_buffer v;
    PyObject *keep;
    ssize_t n = 0;
    bool idle;

    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0)
        return -1;
    if (v.len == 0)
        goto out;
    if (s->conn_lost) {
        s->conn_lost++;
        goto out;
    }
    if (s->pipe && s->closing)
        goto out; /* asyncio's pipes drop writes once closing */
    if (s->corked || (s->loop->cork_depth && !s->pipe && wq_idle(s))) {
        int r = cork_write(s, &v, data);

        PyBuffer_Release(&v);
        return r;
    }
    idle = wq_idle(s);
    if (idle) {
        if (s->pipe) /* non-blocking, as asyncio sets it */
            n = write(s->fd, v.buf, (size_t)v.len);
        else
            n = send(s->fd, v.buf, (size_t)v.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        rl_loop_stats_count(s->loop->rl, RL_STATS_SEND, n); /* stats */
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            PyBuffer_Release(&v);
            fatal_error(s, oserror(errno),
                        "Fatal write error on socket transport");
            return 0;
        }
        if (n < 0)
            n = 0;
        if (n == v.len)
            goto out;
    }
    if (PyBytes_CheckExact(data) && n == 0)
        keep = Py_NewRef(data);
    else
        keep = PyBytes_FromStringAndSize((char *)v.buf + n, v.len - n);
    if (!keep || wq_push(s, keep, 0) < 0) {
        Py_XDECREF(keep);
        PyBuffer_Release(&v);
        return -1;
    }
    if (idle)
        write_start(s);
    else if (!rl_op_in_flight(&s->wop))
        write_submit(s);
    maybe_pause(s);
out:
    PyBuffer_Release(&v);
    return 0;
}

/* ---- connection_lost --------------------------------------------------- */

static void close_done(rl_loop *rl, rl_op *op)
{
    (void)rl;
    Py_DECREF((StreamObject *)op->data);
}

/* Pipe mode: the pipe object closes its fd, after the backend forgot it
 * (the ops still in flight have had their cancellation requested). */
static void close_pipe(StreamObject *s)
{
    PyObject *r;

    rlpy_fd_clear_transport(s->loop, s->fd, (PyObject *)s);
    if (!s->sock)
        return;
    if (s->loop->rl)
        rl_loop_fd_closed(s->loop->rl, s->fd);
    r = PyObject_CallMethod(s->sock, "close", NULL);
    if (!r)
        PyErr_WriteUnraisable(s->sock);
    Py_XDECREF(r);
}

/* Close the socket: detach its fd and close it through the loop, which
 * cancels the ops still in flight on it first. */
static void close_sock(StreamObject *s)
{
    PyObject *r;
    long fd;

    if (s->pipe) {
        close_pipe(s);
        return;
    }
    rlpy_fd_clear_transport(s->loop, s->fd, (PyObject *)s);
    if (!s->sock)
        return;
    r = PyObject_CallMethod(s->sock, "detach", NULL);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    PyErr_Clear();
    if (fd < 0)
        return;
    if (s->loop->rl) {
        rl_prep_close(&s->cop, (int)fd, close_done, s);
        if (rl_submit(s->loop->rl, &s->cop) == 0) {
            Py_INCREF(s);
            return;
        }
        rl_loop_fd_closed(s->loop->rl, (int)fd);
    }
    close((int)fd);
}

/* asyncio's _call_connection_lost(): exactly once. */
static PyObject *call_lost(StreamObject *s, PyObject *exc)
{
    PyObject *r = Py_None, *proto, *server;

    if (s->lost_done)
        Py_RETURN_NONE;
    s->lost_done = true;
    s->closing = true;
    if (!s->conn_lost)
        s->conn_lost = 1; /* later writes are counted, never sent */
    stop_reading(s);
    proto = s->protocol;
    s->protocol = NULL;
    if (proto && s->connected)
        r = PyObject_CallMethod(proto, "connection_lost", "O",
                                exc ? exc : Py_None);
    else
        Py_INCREF(r);
    close_sock(s);
    server = s->server;
    s->server = NULL;
    if (server && server != Py_None) {
        PyObject *exc0 = r ? NULL : rlpy_exc_take();
        PyObject *d = PyObject_CallMethod(server, "_detach", "O", s);
        if (!d)
            PyErr_WriteUnraisable(server);
        Py_XDECREF(d);
        if (exc0)
            rlpy_exc_restore(exc0);
    }
    Py_XDECREF(server);
    Py_XDECREF(proto);
    return r;
}

/* ---- Python API -------------------------------------------------------- */

static PyObject *stream_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop",   "sock",  "protocol", "buffered",
                             "server", "extra", "pipe",     NULL};
    PyObject *loop, *sock, *protocol, *server = Py_None, *extra = NULL, *r;
    const char *pipe = NULL;
    rlpy_state *st = rlpy_state_of_type(tp);
    StreamObject *s;
    int buffered = 0;
    long fd;

    if (!st || !PyArg_ParseTupleAndKeywords(
                   args, kw, "OOO|pOOz:StreamTransport", kwlist, &loop, &sock,
                   &protocol, &buffered, &server, &extra, &pipe))
        return NULL;
    if (pipe && strcmp(pipe, "r") && strcmp(pipe, "w")) {
        PyErr_SetString(PyExc_ValueError, "pipe must be 'r', 'w' or None");
        return NULL;
    }
    (void)extra; /* the Python subclass keeps it */
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a ringloop loop");
        return NULL;
    }
    if (rlpy_loop_check_closed((LoopObject *)loop) < 0)
        return NULL;
    r = PyObject_CallMethod(sock, "fileno", NULL);
    if (!r)
        return NULL;
    fd = PyLong_AsLong(r);
    Py_DECREF(r);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        return NULL;
    }
    s = (StreamObject *)tp->tp_alloc(tp, 0);
    if (!s)
        return NULL;
    s->loop = (LoopObject *)Py_NewRef(loop);
    s->sock = Py_NewRef(sock);
    s->protocol = Py_NewRef(protocol);
    s->server = Py_NewRef(server);
    s->context = PyContext_CopyCurrent();
    s->fd = (int)fd;
    s->buffered = buffered;
    s->pipe = !pipe ? PIPE_NONE : *pipe == 'r' ? PIPE_READ : PIPE_WRITE;
    s->high = 64 * 1024;
    s->low = 16 * 1024;
    s->connected = true;
    if (!s->context ||
        rlpy_fd_set_transport(s->loop, s->fd, (PyObject *)s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static int stream_traverse(StreamObject *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->extra);
    Py_VISIT(s->loop);
    Py_VISIT(s->sock);
    Py_VISIT(s->protocol);
    Py_VISIT(s->server);
    Py_VISIT(s->context);
    Py_VISIT(s->wctx);
    Py_VISIT(s->pending);
    Py_VISIT(s->empty_waiter);
    return 0;
}

static int stream_clear(StreamObject *s)
{
    Py_CLEAR(s->extra);
    Py_CLEAR(s->protocol);
    Py_CLEAR(s->server);
    Py_CLEAR(s->pending);
    Py_CLEAR(s->empty_waiter);
    Py_CLEAR(s->wctx);
    return 0;
}

static void stream_dealloc(StreamObject *s)
{
    PyTypeObject *tp = Py_TYPE(s);

    PyObject_GC_UnTrack(s);
    if (s->loop)
        rlpy_fd_clear_transport(s->loop, s->fd, (PyObject *)s);
    if (s->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)s);
    if (s->rbuf_held)
        PyBuffer_Release(&s->rbuf);
    wq_clear(s);
    PyMem_Free(s->wq);
    PyMem_Free(s->pbuf);
    Py_CLEAR(s->protocol);
    Py_CLEAR(s->server);
    Py_CLEAR(s->pending);
    Py_CLEAR(s->empty_waiter);
    Py_CLEAR(s->context);
    Py_CLEAR(s->wctx);
    Py_CLEAR(s->sock);
    Py_CLEAR(s->loop);
    Py_CLEAR(s->extra);
    tp->tp_free(s);
    Py_DECREF(tp);
}

static PyObject *stream_write(StreamObject *s, PyObject *data)
{
    if (check_data(data) < 0)
        return NULL;
    if (s->eof_req) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot call write() after write_eof()");
        return NULL;
    }
    if (s->empty_waiter) {
        PyErr_SetString(PyExc_RuntimeError,
                        "unable to write; sendfile is in progress");
        return NULL;
    }
    if (write_one(s, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *stream_writelines(StreamObject *s, PyObject *lines)
{
    PyObject *it = PyObject_GetIter(lines), *data;

    if (!it)
        return NULL;
    while ((data = PyIter_Next(it))) {
        PyObject *r = stream_write(s, data);
        Py_DECREF(data);
        if (!r) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *stream_close(StreamObject *s, PyObject *unused);

static PyObject *stream_write_eof(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->pipe) /* asyncio's write pipe: write_eof() is close() */
        return stream_close(s, NULL);
    if (s->closing || s->eof_req)
        Py_RETURN_NONE;
    uncork(s);
    if (s->closing) /* the send failed: that closed it */
        Py_RETURN_NONE;
    s->eof_req = true;
    if (wq_idle(s) && shutdown(s->fd, SHUT_WR) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *stream_can_write_eof(StreamObject *s, PyObject *unused)
{
    (void)s;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *stream_close(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->closing)
        Py_RETURN_NONE;
    uncork(s);
    if (s->closing) /* the send failed: that closed it */
        Py_RETURN_NONE;
    s->closing = true;
    stop_reading(s);
    if (wq_idle(s)) {
        s->conn_lost++;
        if (!s->loop->closed && schedule_lost(s, NULL) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *stream_abort(StreamObject *s, PyObject *unused)
{
    (void)unused;
    force_close(s, NULL);
    Py_RETURN_NONE;
}

static PyObject *stream_force_close(StreamObject *s, PyObject *exc)
{
    force_close(s, exc == Py_None ? NULL : exc);
    Py_RETURN_NONE;
}

static PyObject *stream_is_closing(StreamObject *s, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(s->closing);
}

static PyObject *stream_is_reading(StreamObject *s, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(!s->paused && !s->closing);
}

static PyObject *stream_pause_reading(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->closing || s->paused)
        Py_RETURN_NONE;
    s->paused = true;
    stop_reading(s);
    Py_RETURN_NONE;
}

/* As asyncio's, which adds a new reader callback: from here on the protocol
 * is called in a copy of the caller's context. */
static PyObject *stream_resume_reading(StreamObject *s, PyObject *unused)
{
    PyObject *m, *r, *ctx;

    (void)unused;
    if (s->closing || !s->paused)
        Py_RETURN_NONE;
    ctx = PyContext_CopyCurrent();
    if (!ctx)
        return NULL;
    Py_XSETREF(s->context, ctx);
    s->paused = false;
    m = PyObject_GetAttrString((PyObject *)s, "_start_reading");
    if (!m)
        return NULL;
    r = PyObject_CallMethod((PyObject *)s->loop, "call_soon", "O", m);
    Py_DECREF(m);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* Deliver what arrived while paused, then read on. */
static void start_reading(StreamObject *s)
{
    PyObject *pending;
    Py_ssize_t i, n;

    if (s->pending) {
        pending = s->pending;
        s->pending = NULL;
        n = PyList_GET_SIZE(pending);
        for (i = 0; i < n; i++) {
            if (s->paused || s->closing || s->conn_lost) {
                s->pending = PyList_GetSlice(pending, i, n);
                if (!s->pending)
                    fatal_error(s, rlpy_exc_take(), "Fatal read error");
                break;
            }
            deliver(s, PyList_GET_ITEM(pending, i));
        }
        Py_DECREF(pending);
        if (s->pending)
            return;
    }
    if (s->pending_eof && !s->paused && !s->closing && !s->conn_lost) {
        s->pending_eof = false;
        on_eof(s);
    }
    start_read(s);
}

/* From call_soon: in the reader context, as the read completions. */
static PyObject *stream_start_reading(StreamObject *s, PyObject *unused)
{
    PyObject *ctx;

    (void)unused;
    if (s->paused || s->closing || s->conn_lost || s->loop->closed)
        Py_RETURN_NONE;
    ctx = rlpy_ctx_enter(s->context);
    start_reading(s);
    rlpy_ctx_exit(ctx);
    Py_RETURN_NONE;
}

static PyObject *stream_make_empty_waiter(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->empty_waiter) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return NULL;
    }
    s->empty_waiter = PyObject_CallMethodNoArgs((PyObject *)s->loop,
                                                s->loop->st->str_create_future);
    if (!s->empty_waiter)
        return NULL;
    uncork(s);
    if (wq_idle(s))
        empty_waiter_done(s, NULL);
    return Py_NewRef(s->empty_waiter);
}

static PyObject *stream_reset_empty_waiter(StreamObject *s, PyObject *unused)
{
    (void)unused;
    Py_CLEAR(s->empty_waiter);
    Py_RETURN_NONE;
}

static PyObject *stream_call_connection_lost(StreamObject *s, PyObject *exc)
{
    return call_lost(s, exc == Py_None ? NULL : exc);
}

static PyObject *stream_set_protocol(StreamObject *s, PyObject *const *args,
                                     Py_ssize_t nargs)
{
    int buffered;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_set_protocol(protocol, buffered)");
        return NULL;
    }
    buffered = PyObject_IsTrue(args[1]);
    if (buffered < 0)
        return NULL;
    if (s->rbuf_held && args[0] != s->protocol)
        s->rbuf_stale = true;
    Py_XSETREF(s->protocol, Py_NewRef(args[0]));
    if (buffered != s->buffered) {
        s->buffered = buffered;
        stop_reading(s); /* its final completion starts the right kind */
    }
    Py_RETURN_NONE;
}

static PyObject *stream_get_protocol(StreamObject *s, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(s->protocol ? s->protocol : Py_None);
}

static PyObject *stream_set_write_buffer_limits(StreamObject *s, PyObject *args,
                                                PyObject *kw)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *ho = Py_None, *lo = Py_None;
    Py_ssize_t high, low = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:set_write_buffer_limits",
                                     kwlist, &ho, &lo))
        return NULL;
    if (lo != Py_None) {
        low = PyNumber_AsSsize_t(lo, PyExc_OverflowError);
        if (low == -1 && PyErr_Occurred())
            return NULL;
    }
    if (ho == Py_None) {
        high = lo == Py_None ? 64 * 1024 : 4 * low;
    } else {
        high = PyNumber_AsSsize_t(ho, PyExc_OverflowError);
        if (high == -1 && PyErr_Occurred())
            return NULL;
    }
    if (lo == Py_None)
        low = high / 4;
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError,
                     "high (%zd) must be >= low (%zd) must be >= 0", high, low);
        return NULL;
    }
    uncork(s);
    s->high = high;
    s->low = low;
    maybe_pause(s);
    Py_RETURN_NONE;
}

static PyObject *stream_get_write_buffer_limits(StreamObject *s,
                                                PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nn)", s->low, s->high);
}

static PyObject *stream_get_write_buffer_size(StreamObject *s, PyObject *unused)
{
    (void)unused;
    uncork(s); /* asyncio's write() sends at once: count what it would not */
    return PyLong_FromSsize_t(s->wsize);
}

static PyObject *get_fd(StreamObject *s, void *c)
{
    (void)c;
    return PyLong_FromLong(s->lost_done ? -1 : s->fd);
}

static PyObject *get_loop(StreamObject *s, void *c)
{
    (void)c;
    return Py_NewRef((PyObject *)s->loop);
}

static PyObject *get_conn_lost(StreamObject *s, void *c)
{
    (void)c;
    return PyLong_FromLong(s->conn_lost);
}

static PyObject *get_sock(StreamObject *s, void *c)
{
    (void)c;
    return Py_NewRef(s->sock && !s->lost_done ? s->sock : Py_None);
}

/* Finalizer of an unclosed transport with nothing in flight: close the
 * socket now, telling the backend first. */
static PyObject *stream_close_now(StreamObject *s, PyObject *unused)
{
    PyObject *r;
    long fd;

    (void)unused;
    uncork(s);
    if (s->lost_done || !s->sock || rl_op_in_flight(&s->rop) ||
        rl_op_in_flight(&s->wop))
        Py_RETURN_NONE;
    s->lost_done = true;
    s->closing = true;
    if (!s->conn_lost)
        s->conn_lost = 1;
    if (s->pipe) {
        close_pipe(s);
        Py_RETURN_NONE;
    }
    rlpy_fd_clear_transport(s->loop, s->fd, (PyObject *)s);
    r = PyObject_CallMethod(s->sock, "detach", NULL);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (fd < 0)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (s->loop->rl)
        rl_loop_fd_closed(s->loop->rl, (int)fd);
    close((int)fd);
    Py_RETURN_NONE;
}

static PyMethodDef stream_methods[] = {
    {"write", (PyCFunction)stream_write, METH_O,
     "Queue data to send; send at once when nothing is queued."},
    {"writelines", (PyCFunction)stream_writelines, METH_O,
     "Write each buffer of an iterable."},
    {"write_eof", (PyCFunction)stream_write_eof, METH_NOARGS,
     "Shut the write side down once the queue drained."},
    {"can_write_eof", (PyCFunction)stream_can_write_eof, METH_NOARGS, NULL},
    {"close", (PyCFunction)stream_close, METH_NOARGS,
     "Close after the queued data was sent."},
    {"abort", (PyCFunction)stream_abort, METH_NOARGS,
     "Close now, dropping queued data."},
    {"is_closing", (PyCFunction)stream_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)stream_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)stream_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)stream_resume_reading, METH_NOARGS, NULL},
    {"get_protocol", (PyCFunction)stream_get_protocol, METH_NOARGS, NULL},
    {"set_write_buffer_limits",
     (PyCFunction)(void (*)(void))stream_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_write_buffer_limits", (PyCFunction)stream_get_write_buffer_limits,
     METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)stream_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"_start_reading", (PyCFunction)stream_start_reading, METH_NOARGS, NULL},
    {"_call_connection_lost", (PyCFunction)stream_call_connection_lost, METH_O,
     NULL},
    {"_force_close", (PyCFunction)stream_force_close, METH_O, NULL},
    {"_close_now", (PyCFunction)stream_close_now, METH_NOARGS, NULL},
    {"_make_empty_waiter", (PyCFunction)stream_make_empty_waiter, METH_NOARGS,
     NULL},
    {"_reset_empty_waiter", (PyCFunction)stream_reset_empty_waiter, METH_NOARGS,
     NULL},
    {"_set_protocol", (PyCFunction)(void (*)(void))stream_set_protocol,
     METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stream_getset[] = {
    {"_sock_fd", (getter)get_fd, NULL, NULL, NULL},
    {"_loop", (getter)get_loop, NULL, NULL, NULL},
    {"_conn_lost", (getter)get_conn_lost, NULL, NULL, NULL},
    {"_sock", (getter)get_sock, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef stream_members[] = {
    {"__weaklistoffset__", RLPY_T_PYSSIZET, offsetof(StreamObject, weakreflist),
     RLPY_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot stream_slots[] = {
    {Py_tp_doc, "The C core of ringloop's TCP/Unix stream transport."},
    {Py_tp_new, stream_new},
    {Py_tp_dealloc, stream_dealloc},
    {Py_tp_traverse, stream_traverse},
    {Py_tp_clear, stream_clear},
    {Py_tp_methods, stream_methods},
    {Py_tp_getset, stream_getset},
    {Py_tp_members, stream_members},
    {0, NULL},
};

PyType_Spec rlpy_stream_spec = {
    .name = "ringloop._ext.StreamTransport",
    .basicsize = sizeof(StreamObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = stream_slots,
};
