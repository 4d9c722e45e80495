/*
 * The byte-stream machinery of the stream transports, which stream.c
 * (sockets) and pipe.c (pipes) make subtypes of through struct
 * rlpy_stream_ops (how a subtype reads and writes its fd).
 *
 * Reading: a BufferedProtocol gets a single-shot read straight into the
 * buffer from get_buffer(), and buffer_updated() from its completion; a
 * Protocol gets what the subtype reads (a socket's multishot recv, a
 * pipe's reads) as bytes, through rlpy_stream_recv_done(), which calls
 * protocol.data_received() right there. pause_reading() cancels the read;
 * what still completes before the cancellation is kept (as bytes) and
 * delivered, in order, after resume_reading(), to the protocol of that
 * time: start_tls() swaps the protocol in between.
 *
 * Writing: write() writes at once when nothing is queued (as asyncio
 * does); what is left is queued (wqueue.c) and leaves in one vectored
 * sendmsg/writev, resubmitted from its completion with everything queued
 * meanwhile: one per iteration. Short writes leave the rest queued. What a
 * protocol writes while it takes received data is corked (cork.c) when
 * the subtype corks.
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
 * queued bytes objects that are released only once no write is in flight.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "transport.h"
static rlpy_state *state(StreamObject *s)
{
    return s->t.loop->st;
}

/* Complete the sendfile waiter (exc NULL: with None). */
static void empty_waiter_done(StreamObject *s, PyObject *exc)
{
    rlpy_state *st = state(s);
    PyObject *w = s->empty_waiter, *r, *done;

    if (!w)
        return;
    done = PyObject_CallMethodNoArgs(w, st->str_done);
    if (done == Py_False)
        r = exc ? PyObject_CallMethodOneArg(w, st->str_set_exception, exc)
                : PyObject_CallMethodOneArg(w, st->str_set_result, Py_None);
    else
        r = Py_NewRef(Py_None);
    Py_XDECREF(done);
    if (!r)
        PyErr_WriteUnraisable(w);
    Py_XDECREF(r);
}

static void fatal_error(StreamObject *s, PyObject *exc, const char *msg)
{
    rlpy_tr_fatal_error(&s->t, exc, msg);
}

void rlpy_stream_proto_failed(StreamObject *s, PyObject *exc, const char *msg)
{
    if (rlpy_stream_ops(s)->proto_errors_close || !exc ||
        rlpy_is_fatal_base(exc)) {
        fatal_error(s, exc, msg);
        return;
    }
    rlpy_tr_report(&s->t, exc, msg);
    Py_DECREF(exc);
}

/* protocol.<name>(n) through the interned name, without a format. */
static PyObject *call_n(StreamObject *s, PyObject *name, Py_ssize_t n)
{
    PyObject *args[2] = {s->t.protocol, PyLong_FromSsize_t(n)}, *r;

    if (!args[1])
        return NULL;
    r = PyObject_VectorcallMethod(name, args,
                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(args[1]);
    return r;
}

/* ---- reading ----------------------------------------------------------- */

static void recv_buf_done(rl_loop *rl, rl_op *op);

bool rlpy_stream_can_read(StreamObject *s)
{
    TransportObject *t = &s->t;

    return !t->paused && !t->closing && !s->read_done && !t->conn_lost &&
           !t->loop->closed && t->protocol && !s->pending && !s->pending_eof;
}

void rlpy_stream_submitted(StreamObject *s, int ret, const char *msg)
{
    if (ret < 0)
        fatal_error(s, rlpy_oserror(-ret), msg);
    else
        Py_INCREF(s);
}

static void rbuf_release(StreamObject *s)
{
    if (s->rbuf_held) {
        PyBuffer_Release(&s->rbuf);
        s->rbuf_held = false;
    }
}

/* BufferedProtocol: get_buffer(-1) into s->rbuf. -1 when it failed (the
 * transport is then closing). */
static int rbuf_get(StreamObject *s)
{
    PyObject *buf = call_n(s, state(s)->str_get_buffer, -1);

    if (buf && PyObject_GetBuffer(buf, &s->rbuf, PyBUF_WRITABLE) < 0)
        Py_CLEAR(buf);
    if (buf && s->rbuf.len == 0) {
        PyBuffer_Release(&s->rbuf);
        Py_CLEAR(buf);
        PyErr_SetString(PyExc_RuntimeError,
                        "get_buffer() returned an empty buffer");
    }
    if (!buf) {
        fatal_error(s, rlpy_exc_take(),
                    "Fatal error: protocol.get_buffer() call failed.");
        return -1;
    }
    Py_DECREF(buf); /* the Py_buffer keeps its exporter */
    s->rbuf_held = true;
    s->rbuf_stale = false;
    return 0;
}

/* A BufferedProtocol's read of n bytes: large reads are read when the
 * socket is ready (RL_F_AT_READY), into a buffer still in the cache when
 * buffer_updated() copies from it, until they get small again. */
#define RLPY_LARGE_READ (32 * 1024)
#define RLPY_SMALL_READ (8 * 1024)
static void note_read(StreamObject *s, Py_ssize_t n)
{
    if (n >= RLPY_LARGE_READ)
        s->read_large = true;
    else if (n < RLPY_SMALL_READ)
        s->read_large = false;
}

/* Submit the read into the buffer held in s->rbuf. */
static void rbuf_submit(StreamObject *s)
{
    TransportObject *t = &s->t;
    int ret;

    rlpy_stream_ops(s)->prep_read(&t->rop, t->fd, s->rbuf.buf,
                                  (size_t)s->rbuf.len, recv_buf_done, s);
    if (s->read_large && t->rop.opcode == RL_OP_RECV)
        t->rop.flags |= RL_F_AT_READY;
    ret = rl_submit(t->loop->rl, &t->rop);
    if (ret < 0) {
        PyBuffer_Release(&s->rbuf);
        s->rbuf_held = false;
    }
    rlpy_stream_submitted(s, ret, "Fatal read error on socket transport");
}

/* BufferedProtocol: get_buffer(-1), then a read into it. */
void rlpy_stream_read_buffered(StreamObject *s)
{
    if (!rlpy_stream_can_read(s) || rl_op_in_flight(&s->t.rop))
        return;
    if (rbuf_get(s) == 0)
        rbuf_submit(s);
}

static void start_read(StreamObject *s)
{
    rlpy_stream_ops(s)->start_read(s);
}

/* Give n bytes to a BufferedProtocol through get_buffer/buffer_updated. */
static int deliver_buffered(StreamObject *s, const char *p, Py_ssize_t n)
{
    rlpy_state *st = state(s);
    Py_buffer v;
    PyObject *buf, *r;
    Py_ssize_t k;

    while (n > 0 && s->t.protocol && !s->t.conn_lost) {
        buf = call_n(s, st->str_get_buffer, n);
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
        r = call_n(s, st->str_buffer_updated, k);
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

/* Data for the protocol, whichever kind it is now. What the protocol
 * writes meanwhile (a reply, or many to pipelined requests) is corked: it
 * leaves in one sendmsg per transport when the callback returns. */
static int deliver(StreamObject *s, PyObject *data)
{
    LoopObject *loop = s->t.loop;
    PyObject *r;
    int ret = 0;

    rlpy_cork_begin(loop);
    if (s->t.buffered) {
        ret = deliver_buffered(s, PyBytes_AS_STRING(data),
                               PyBytes_GET_SIZE(data));
        goto out;
    }
    if (!s->t.protocol) {
        ret = -1;
        goto out;
    }
    r = PyObject_CallMethodOneArg(s->t.protocol, loop->st->str_data_received,
                                  data);
    if (!r) {
        rlpy_stream_proto_failed(
            s, rlpy_exc_take(),
            "Fatal error: protocol.data_received() call failed.");
        ret = -1;
        goto out;
    }
    Py_DECREF(r);
out:
    rlpy_cork_end(loop);
    return ret;
}

static void read_error(StreamObject *s, int res)
{
    s->read_done = true;
    fatal_error(s, rlpy_oserror(-res), "Fatal read error on socket transport");
}

static PyMethodDef start_reading_def;

/* Schedule _start_reading(), which delivers what is pending first. */
static void resume_later(StreamObject *s)
{
    if (rlpy_tr_soon(&s->t, &start_reading_def, NULL) < 0)
        rlpy_loop_stash_exc(s->t.loop, rlpy_exc_take());
}

/* Keep data for _start_reading() to deliver; -1 with an exception set. */
static int pending_add(StreamObject *s, PyObject *data)
{
    if (!s->pending && !(s->pending = PyList_New(0)))
        return -1;
    return PyList_Append(s->pending, data);
}

static bool read_stopped(StreamObject *s)
{
    return s->t.closing || s->t.conn_lost || s->read_done;
}

/* Completions of the read op run in the reader context (t->context), as
 * asyncio's reader callback: what the protocol gets, the errors reported
 * and connection_lost() scheduled from there, and the next get_buffer(). */
void rlpy_stream_recv_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    bool more = op->cflags & RL_CQE_MORE, paused = s->t.paused || s->pending;
    PyObject *data, *ctx;

    (void)rl;
    if (s->t.loop->closed)
        goto out;
    ctx = rlpy_ctx_enter(s->t.context);
    if (read_stopped(s))
        goto rearm;
    if (op->res > 0) {
        data = PyBytes_FromStringAndSize(op->buf, op->res);
        if (!data)
            fatal_error(s, rlpy_exc_take(), "Fatal read error");
        else if (paused && pending_add(s, data) < 0)
            fatal_error(s, rlpy_exc_take(), "Fatal read error");
        else if (!paused)
            deliver(s, data);
        Py_XDECREF(data);
    } else if (op->res == 0) {
        if (paused) {
            s->pending_eof = true;
            s->read_done = true;
        } else {
            rlpy_stream_ops(s)->on_eof(s);
        }
        if (more)
            rl_op_cancel(s->t.loop->rl, op);
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

/* The data is in a buffer whose protocol set_protocol() replaced, or
 * reading is paused and the protocol may yet be replaced (as start_tls()
 * does): keep it as bytes, for deliver() to hand to the protocol of the
 * time. */
static void recv_buf_keep(StreamObject *s, int res)
{
    PyObject *data = PyBytes_FromStringAndSize(s->rbuf.buf, res);

    rbuf_release(s);
    if (!data) {
        fatal_error(s, rlpy_exc_take(), "Fatal read error");
    } else if (!s->t.closing && !s->t.conn_lost) {
        if (pending_add(s, data) < 0)
            fatal_error(s, rlpy_exc_take(), "Fatal read error");
        else if (!s->t.paused)
            resume_later(s);
    }
    Py_XDECREF(data);
}

/* How many reads a filled buffer may chain before the loop goes on with
 * the other connections (libuv's read loop stops after 32). */
#define RLPY_READ_AGAIN_MAX 16

/*
 * The last read filled the protocol's buffer: more may be waiting, as
 * asyncio's and uvloop's readers find by reading until the socket is
 * drained. Read into the next get_buffer() at once, without a submission,
 * a completion and a loop iteration per piece, while reads keep filling the
 * buffer; then (a short read, EAGAIN) the read op is armed as usual, into
 * the buffer already got when nothing came. Subtypes without read_now do
 * not. Called in the reader context, corked by nothing.
 */
static void read_again(StreamObject *s)
{
    const struct rlpy_stream_ops *ops = rlpy_stream_ops(s);
    TransportObject *t = &s->t;
    PyObject *r;
    Py_ssize_t len;
    ssize_t n;
    int i;

    for (i = 0; i < RLPY_READ_AGAIN_MAX; i++) {
        if (!ops->read_now || !t->buffered || !rlpy_stream_can_read(s) ||
            rl_op_in_flight(&t->rop) || rbuf_get(s) < 0)
            return;
        len = s->rbuf.len;
        n = ops->read_now(t->fd, s->rbuf.buf, (size_t)len);
        rl_loop_stats_count(t->loop->rl, RL_STATS_RECV, n); /* stats */
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            rbuf_submit(s); /* into the buffer just got */
            return;
        }
        rbuf_release(s);
        if (n < 0) {
            read_error(s, -errno);
            return;
        }
        note_read(s, n);
        if (n == 0) {
            ops->on_eof(s);
            return;
        }
        rlpy_cork_begin(t->loop);
        r = call_n(s, state(s)->str_buffer_updated, n);
        if (!r)
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.buffer_updated() call failed.");
        Py_XDECREF(r);
        rlpy_cork_end(t->loop);
        if (!r || n < len || t->loop->closed)
            return;
    }
}

static void recv_buf_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    PyObject *r, *ctx;
    Py_ssize_t len;
    int res = op->res;

    (void)rl;
    if (s->t.loop->closed) {
        rbuf_release(s);
        goto out;
    }
    ctx = rlpy_ctx_enter(s->t.context);
    if (res > 0 && s->rbuf_held && (s->rbuf_stale || s->t.paused)) {
        recv_buf_keep(s, res);
        goto out_ctx;
    }
    len = s->rbuf_held ? s->rbuf.len : -1;
    rbuf_release(s);
    if (read_stopped(s))
        goto out_ctx;
    if (res > 0) {
        note_read(s, res);
        rlpy_cork_begin(s->t.loop);
        r = call_n(s, state(s)->str_buffer_updated, res);
        if (!r)
            fatal_error(s, rlpy_exc_take(),
                        "Fatal error: protocol.buffer_updated() call failed.");
        Py_XDECREF(r);
        rlpy_cork_end(s->t.loop);
        if (r && res == len && !s->t.loop->closed)
            read_again(s);
    } else if (res == 0) {
        if (s->t.paused) {
            s->pending_eof = true;
            s->read_done = true;
        } else {
            rlpy_stream_ops(s)->on_eof(s);
        }
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
        read_error(s, res);
    }
    if (!s->t.loop->closed)
        start_read(s);
out_ctx:
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
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
            if (s->t.paused || s->t.closing || s->t.conn_lost) {
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
    if (s->pending_eof && !s->t.paused && !s->t.closing && !s->t.conn_lost) {
        s->pending_eof = false;
        rlpy_stream_ops(s)->on_eof(s);
    }
    start_read(s);
}

/* _start_reading(), from a handle: in the reader context, as the read
 * completions. */
void rlpy_stream_start_reading(TransportObject *t)
{
    StreamObject *s = (StreamObject *)t;
    PyObject *ctx;

    if (t->paused || t->closing || t->conn_lost || t->loop->closed)
        return;
    ctx = rlpy_ctx_enter(t->context);
    start_reading(s);
    rlpy_ctx_exit(ctx);
}

static PyObject *start_reading_meth(StreamObject *s, PyObject *unused)
{
    (void)unused;
    rlpy_stream_start_reading(&s->t);
    Py_RETURN_NONE;
}

static PyMethodDef start_reading_def = {
    "_start_reading", (PyCFunction)start_reading_meth, METH_NOARGS, NULL};

/* resume_reading(): as asyncio's, which adds a new reader callback. */
int rlpy_stream_resume(TransportObject *t)
{
    return rlpy_tr_soon(t, &start_reading_def, NULL);
}

void rlpy_stream_set_protocol(TransportObject *t, PyObject *protocol,
                              bool buffered)
{
    StreamObject *s = (StreamObject *)t;

    if (s->rbuf_held && protocol != t->protocol)
        s->rbuf_stale = true;
    Py_XSETREF(t->protocol, Py_NewRef(protocol));
    if (buffered != t->buffered) {
        t->buffered = buffered;
        /* its final completion starts the right kind of read */
        if (rl_op_in_flight(&t->rop) && t->loop->rl)
            rl_op_cancel(t->loop->rl, &t->rop);
    }
}

/* ---- writing ----------------------------------------------------------- */

static void write_done(rl_loop *rl, rl_op *op);

static void write_submit(StreamObject *s)
{
    TransportObject *t = &s->t;
    int ret;

    if (rl_op_in_flight(&t->wop))
        return; /* never prep an op the loop owns; its completion resubmits */
    rlpy_stream_ops(s)->prep_write(s, write_done);
    ret = rl_submit(t->loop->rl, &t->wop);
    if (ret < 0)
        rlpy_wq_clear(&s->wq);
    rlpy_stream_submitted(s, ret, "Fatal write error on socket transport");
}

/* The queue, idle until now, waits for the fd: asyncio adds its writer
 * callback here, in a copy of the current context, which the write
 * completions run in until the queue drained. */
void rlpy_stream_write_start(StreamObject *s)
{
    PyObject *ctx = PyContext_CopyCurrent();

    if (ctx)
        Py_XSETREF(s->t.wctx, ctx);
    else /* out of memory: the completions keep the previous context */
        PyErr_Clear();
    write_submit(s);
}

/* After the queue drained: asyncio's tail of _write_ready(). */
void rlpy_stream_write_drained(StreamObject *s)
{
    empty_waiter_done(s, NULL);
    if (s->t.closing)
        rlpy_tr_lost_now(
            &s->t, "Fatal error: protocol.connection_lost() call failed.");
    else if (s->eof_req)
        shutdown(s->t.fd, SHUT_WR);
}

/* In the writer context: resume_writing(), connection_lost() after a
 * close() that waited for the queue, and what a write error reports. */
static void write_done(rl_loop *rl, rl_op *op)
{
    StreamObject *s = op->data;
    TransportObject *t = &s->t;
    PyObject *ctx;
    int res = op->res;

    (void)rl;
    if (t->conn_lost || t->loop->closed) {
        rlpy_wq_clear(&s->wq);
        goto out;
    }
    ctx = rlpy_ctx_enter(t->wctx);
    if (res == -EAGAIN || res == -EINTR) {
        write_submit(s);
        goto out_ctx;
    }
    if (res < 0) {
        rlpy_wq_clear(&s->wq);
        fatal_error(s, rlpy_oserror(-res),
                    "Fatal write error on socket transport");
        goto out_ctx;
    }
    rlpy_wq_consume(&s->wq, res);
    /* resume_writing() may write: that can send at once, or queue and
     * submit the next sendmsg itself (wop is idle in its final callback) */
    rlpy_tr_maybe_resume(t);
    if (t->conn_lost || rl_op_in_flight(&t->wop))
        goto out_ctx;
    if (!rlpy_wq_empty(&s->wq))
        write_submit(s);
    else
        rlpy_stream_write_drained(s);
out_ctx:
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(s);
}

bool rlpy_stream_write_idle(TransportObject *t)
{
    return rlpy_wq_empty(&((StreamObject *)t)->wq) && !rl_op_in_flight(&t->wop);
}

Py_ssize_t rlpy_stream_write_size(TransportObject *t)
{
    return ((StreamObject *)t)->wq.size;
}

void rlpy_stream_wq_clear(TransportObject *t)
{
    rlpy_wq_clear(&((StreamObject *)t)->wq);
}

void rlpy_stream_on_force_close(TransportObject *t, PyObject *exc)
{
    empty_waiter_done((StreamObject *)t, exc);
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

/* Buffers other than bytes that the cork copies: smaller ones. */
#define RLPY_CORK_COPY_MAX (16 * 1024)

/* write() without the argument checks. */
static int write_one(StreamObject *s, PyObject *data)
{
    const struct rlpy_stream_ops *ops = rlpy_stream_ops(s);
    TransportObject *t = &s->t;
    Py_buffer v;
    PyObject *keep;
    ssize_t n = 0;
    bool idle, corkable;

    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0)
        return -1;
    if (v.len == 0)
        goto out;
    /* A large buffer other than bytes is not corked: it may change once
     * write() returns, so it would be copied to wait for the flush, which
     * costs more than the send the cork saves (64 KiB bytearray echoes).
     * It goes out at once, as uncorked, after what is corked. */
    corkable = PyBytes_CheckExact(data) || v.len < RLPY_CORK_COPY_MAX;
    if (s->corked && !corkable && t->ops->flush)
        t->ops->flush(t);
    if (t->conn_lost) {
        t->conn_lost++;
        goto out;
    }
    if (ops->drop_when_closing && t->closing)
        goto out;
    idle = rlpy_stream_write_idle(t);
    if (s->corked || (t->loop->cork_depth && ops->cork && idle && corkable)) {
        int r = rlpy_cork_write(s, &v, data);

        PyBuffer_Release(&v);
        return r;
    }
    if (idle) {
        n = ops->write_now(t->fd, v.buf, (size_t)v.len);
        rl_loop_stats_count(t->loop->rl, RL_STATS_SEND, n); /* stats */
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            PyBuffer_Release(&v);
            fatal_error(s, rlpy_oserror(errno),
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
    if (!keep || rlpy_wq_push(&s->wq, keep, 0, !rl_op_in_flight(&t->wop)) < 0) {
        PyBuffer_Release(&v);
        return -1;
    }
    if (idle)
        rlpy_stream_write_start(s);
    else if (!rl_op_in_flight(&t->wop))
        write_submit(s);
    rlpy_tr_maybe_pause(t);
out:
    PyBuffer_Release(&v);
    return 0;
}

/* ---- the subtype's life ------------------------------------------------ */

int rlpy_stream_traverse(StreamObject *s, visitproc visit, void *arg)
{
    Py_VISIT(s->pending);
    Py_VISIT(s->empty_waiter);
    return rlpy_tr_traverse(&s->t, visit, arg);
}

int rlpy_stream_clear(StreamObject *s)
{
    rlpy_tr_clear(&s->t);
    Py_CLEAR(s->pending);
    Py_CLEAR(s->empty_waiter);
    return 0;
}

void rlpy_stream_dealloc(StreamObject *s)
{
    PyTypeObject *tp = Py_TYPE(s);

    if (!rlpy_tr_dealloc(&s->t))
        return;
    rbuf_release(s);
    rlpy_wq_free(&s->wq);
    PyMem_Free(s->ibuf);
    Py_CLEAR(s->pending);
    Py_CLEAR(s->empty_waiter);
    tp->tp_free(s);
    Py_DECREF(tp);
}

/* ---- Python API: the methods of StreamTransport ------------------------- */

PyObject *rlpy_stream_write(StreamObject *s, PyObject *data)
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
PyObject *rlpy_stream_writelines(StreamObject *s, PyObject *lines)
{
    PyObject *it = PyObject_GetIter(lines), *data;

    if (!it)
        return NULL;
    while ((data = PyIter_Next(it))) {
        PyObject *r = rlpy_stream_write(s, data);
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
PyObject *rlpy_stream_make_empty_waiter(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->empty_waiter) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return NULL;
    }
    s->empty_waiter = PyObject_CallMethodNoArgs((PyObject *)s->t.loop,
                                                state(s)->str_create_future);
    if (!s->empty_waiter)
        return NULL;
    if (s->t.ops->flush)
        s->t.ops->flush(&s->t);
    if (rlpy_stream_write_idle(&s->t))
        empty_waiter_done(s, NULL);
    return Py_NewRef(s->empty_waiter);
}
PyObject *rlpy_stream_reset_empty_waiter(StreamObject *s, PyObject *unused)
{
    (void)unused;
    Py_CLEAR(s->empty_waiter);
    Py_RETURN_NONE;
}
