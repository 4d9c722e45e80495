/*
 * Datagram transports (UDP and Unix datagram sockets): asyncio's
 * _SelectorDatagramTransport on completions.
 *
 * Reading: one recvmsg at a time into a transport buffer of max_size bytes.
 * Its completion schedules a Handle (the delivery) in the ready phase, so
 * that, as with asyncio's reader callbacks, what was queued before the
 * datagram arrived runs first; the delivery calls
 * protocol.datagram_received(data, addr) (or error_received(exc) for an
 * OSError) and submits the next recvmsg. Being a handle, the loop owns it:
 * it holds the transport until it ran, and the loop drops it unrun at close
 * and shows it to the garbage collector, as any scheduled callback.
 * Writing: sendto() sends at once when nothing is queued; a datagram that
 * would block is queued (bytes plus its sockaddr) and the queue leaves one
 * sendmsg per datagram, in order.
 *
 * Contexts as for stream transports: datagram_received() and read errors
 * in the reader context, send completions in the writer context (a copy of
 * the context of the sendto() that queued first).
 *
 * Lifetime as for stream transports: every op in flight holds a reference,
 * and the socket is closed with an RL_OP_CLOSE op after connection_lost().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloop.h"

#define DGRAM_MAX_SIZE (256 * 1024) /* asyncio's max_size */

struct dentry {
    PyObject *data; /* bytes */
    struct sockaddr_storage addr;
    socklen_t alen; /* 0: connected socket */
};

typedef struct {
    PyObject_HEAD PyObject *extra; /* asyncio.BaseTransport's _extra slot */
    LoopObject *loop;
    PyObject *sock;
    PyObject *protocol;
    PyObject *context; /* the reader's: datagram_received() runs in it */
    PyObject *wctx;    /* the writer's: send completions run in it */
    PyObject *address; /* the remote address, or None */
    PyObject *weakreflist;
    rl_op rop, wop, cop;
    struct msghdr rmsg, wmsg;
    struct iovec riov, wiov;
    struct sockaddr_storage raddr, waddr;
    char *rbuf;
    PyObject *read_ready; /* the delivery handle's callback (read_ready()) */
    PyObject *qctx; /* borrowed: the context the scheduled delivery runs in;
                       only compared, while that handle runs */
    int rres;       /* the recvmsg result waiting in rbuf */
    struct dentry *wq;
    size_t whead, wtail, wcap;
    Py_ssize_t wsize, high, low;
    int fd, family;
    int conn_lost;
    bool connected; /* peername known: send, not sendto */
    bool paused, closing, write_paused, lost_done;
    bool rhave;        /* rres/rbuf hold a result not yet delivered */
    bool ready_queued; /* a delivery handle is scheduled */
} DgramObject;

static PyObject *oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

static bool is_fatal_base(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
           PyErr_GivenExceptionMatches(exc, PyExc_SystemExit);
}

static void report(DgramObject *d, PyObject *exc, const char *msg)
{
    PyObject *ctx, *r = NULL;

    ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", msg, "exception", exc,
                        "transport", (PyObject *)d, "protocol",
                        d->protocol ? d->protocol : Py_None);
    if (ctx)
        r = PyObject_CallMethod((PyObject *)d->loop, "call_exception_handler",
                                "O", ctx);
    Py_XDECREF(ctx);
    if (!r)
        rlpy_loop_stash_exc(d->loop, rlpy_exc_take());
    Py_XDECREF(r);
}

/* A protocol callback raised: what a failing asyncio callback does. */
static void callback_failed(DgramObject *d, const char *msg)
{
    PyObject *exc = rlpy_exc_take();

    if (!exc)
        return;
    if (is_fatal_base(exc)) {
        rlpy_loop_stash_exc(d->loop, exc);
        return;
    }
    report(d, exc, msg);
    Py_DECREF(exc);
}

static int schedule_lost(DgramObject *d, PyObject *exc)
{
    PyObject *m, *r;

    m = PyObject_GetAttrString((PyObject *)d, "_call_connection_lost");
    if (!m)
        return -1;
    r = PyObject_CallMethod((PyObject *)d->loop, "call_soon", "OO", m,
                            exc ? exc : Py_None);
    Py_DECREF(m);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void wq_clear(DgramObject *d)
{
    while (d->whead < d->wtail)
        Py_CLEAR(d->wq[d->whead++].data);
    d->whead = d->wtail = 0;
    d->wsize = 0;
}

static void stop_reading(DgramObject *d)
{
    if (rl_op_in_flight(&d->rop) && d->loop->rl)
        rl_op_cancel(d->loop->rl, &d->rop);
}

static void force_close(DgramObject *d, PyObject *exc)
{
    if (d->conn_lost)
        return;
    if (rl_op_in_flight(&d->wop))
        rl_op_cancel(d->loop->rl, &d->wop);
    else
        wq_clear(d);
    if (!d->closing) {
        d->closing = true;
        stop_reading(d);
    }
    d->conn_lost++;
    if (!d->loop->closed && schedule_lost(d, exc) < 0)
        rlpy_loop_stash_exc(d->loop, rlpy_exc_take());
}

/* Steals exc. */
static void fatal_error(DgramObject *d, PyObject *exc, const char *msg)
{
    if (!exc) {
        rlpy_loop_stash_exc(d->loop, rlpy_exc_take());
        return;
    }
    if (is_fatal_base(exc)) {
        rlpy_loop_stash_exc(d->loop, exc);
        return;
    }
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError))
        report(d, exc, msg);
    force_close(d, exc);
    Py_DECREF(exc);
}

/* protocol.error_received(OSError(err)). */
static void error_received(DgramObject *d, int err)
{
    PyObject *exc = oserror(err), *r;

    if (!exc) {
        callback_failed(d, "error_received");
        return;
    }
    r = PyObject_CallMethod(d->protocol, "error_received", "O", exc);
    Py_DECREF(exc);
    if (!r)
        callback_failed(d, "Exception in callback "
                           "DatagramTransport._read_ready()");
    Py_XDECREF(r);
}

static void flow(DgramObject *d)
{
    const char *name = NULL;
    PyObject *r;

    if (!d->protocol)
        return;
    if (!d->write_paused && d->wsize > d->high) {
        d->write_paused = true;
        name = "pause_writing";
    } else if (d->write_paused && d->wsize <= d->low) {
        d->write_paused = false;
        name = "resume_writing";
    }
    if (!name)
        return;
    r = PyObject_CallMethod(d->protocol, name, NULL);
    if (!r) {
        PyObject *exc = rlpy_exc_take();
        if (is_fatal_base(exc)) {
            rlpy_loop_stash_exc(d->loop, exc);
            return;
        }
        report(d, exc,
               d->write_paused ? "protocol.pause_writing() failed"
                               : "protocol.resume_writing() failed");
        Py_DECREF(exc);
    }
    Py_XDECREF(r);
}

/* ---- reading ----------------------------------------------------------- */

static void recv_done(rl_loop *rl, rl_op *op);

static void read_arm(DgramObject *d)
{
    int ret;

    if (d->paused || d->closing || d->conn_lost || d->loop->closed ||
        d->rhave || rl_op_in_flight(&d->rop))
        return;
    if (!d->rbuf && !(d->rbuf = malloc(DGRAM_MAX_SIZE))) {
        fatal_error(d, oserror(ENOMEM),
                    "Fatal read error on datagram transport");
        return;
    }
    memset(&d->rmsg, 0, sizeof(d->rmsg));
    d->riov.iov_base = d->rbuf;
    d->riov.iov_len = DGRAM_MAX_SIZE;
    d->rmsg.msg_iov = &d->riov;
    d->rmsg.msg_iovlen = 1;
    d->rmsg.msg_name = &d->raddr;
    d->rmsg.msg_namelen = sizeof(d->raddr);
    rl_prep_recvmsg(&d->rop, d->fd, &d->rmsg, 0, recv_done, d);
    ret = rl_submit(d->loop->rl, &d->rop);
    if (ret < 0) {
        fatal_error(d, oserror(-ret), "Fatal read error on datagram transport");
        return;
    }
    Py_INCREF(d);
}

/*
 * The delivery handle's callback, with the transport as its argument: hand
 * the datagram (or error) to the protocol, then read the next one. Like
 * asyncio's reader callback, it runs after the callbacks queued before the
 * datagram arrived, in the reader context: the handle's, unless
 * resume_reading() replaced it since the handle was made. It reports what
 * the protocol raises itself and returns None.
 */
static PyObject *read_ready(PyObject *type, PyObject *arg)
{
    DgramObject *d = (DgramObject *)arg;
    PyObject *data, *addr, *r, *ctx = NULL;

    if (!PyObject_TypeCheck(arg, (PyTypeObject *)type)) {
        PyErr_SetString(PyExc_TypeError, "a datagram transport expected");
        return NULL;
    }
    d->ready_queued = false;
    if (d->loop->closed || !d->rhave || d->paused)
        Py_RETURN_NONE; /* resume_reading() schedules it again */
    d->rhave = false;
    if (d->conn_lost || d->closing || !d->protocol)
        Py_RETURN_NONE;
    if (d->context != d->qctx)
        ctx = rlpy_ctx_enter(d->context);
    if (d->rres >= 0) {
        data = PyBytes_FromStringAndSize(d->rbuf, d->rres);
        addr = data ? rlpy_sockaddr_to_py((struct sockaddr *)&d->raddr,
                                          d->rmsg.msg_namelen)
                    : NULL;
        r = addr ? PyObject_CallMethod(d->protocol, "datagram_received", "OO",
                                       data, addr)
                 : NULL;
        if (!r)
            callback_failed(d, "Exception in callback "
                               "DatagramTransport._read_ready()");
        Py_XDECREF(r);
        Py_XDECREF(data);
        Py_XDECREF(addr);
    } else {
        error_received(d, -d->rres);
    }
    read_arm(d);
    rlpy_ctx_exit(ctx);
    Py_RETURN_NONE;
}

static PyMethodDef read_ready_def = {"_read_ready", read_ready, METH_O, NULL};

/*
 * Schedule the delivery: a handle for read_ready(d) in the reader context.
 * While it is scheduled no recv is in flight, and the handle holds the
 * transport, as asyncio's selector holds _read_ready.
 *
 * Cost: the handle comes from the loop's free list and its argument tuple
 * from CPython's, so a delivery allocates nothing and brings the next
 * collection no closer. Making, scheduling, running and freeing them adds
 * some 700 instructions per datagram (CPython 3.11) to a raw core
 * callback, a few percent of a UDP echo's time; what addr.c's IPv4 path
 * saves per datagram is more.
 */
static void queue_ready(DgramObject *d)
{
    PyObject *args;
    HandleObject *h = NULL;

    if (d->ready_queued || d->loop->closed)
        return;
    args = PyTuple_Pack(1, (PyObject *)d);
    if (args)
        h = rlpy_handle_new(d->loop, d->read_ready, args, d->context);
    Py_XDECREF(args);
    if (!h || rlpy_handle_schedule(h, false) < 0) {
        Py_XDECREF(h);
        fatal_error(d, rlpy_exc_take(),
                    "Fatal read error on datagram transport");
        return;
    }
    Py_DECREF(h); /* the loop's now */
    d->qctx = d->context;
    d->ready_queued = true;
}

static void recv_done(rl_loop *rl, rl_op *op)
{
    DgramObject *d = op->data;
    int res = op->res;

    (void)rl;
    if (d->loop->closed || d->conn_lost || !d->protocol)
        goto out;
    if (res == -ECANCELED || res == -EAGAIN || res == -EINTR) {
        read_arm(d);
        goto out;
    }
    d->rres = res;
    d->rhave = true;
    queue_ready(d);
out:
    Py_DECREF(d);
}

/* ---- writing ----------------------------------------------------------- */

static void send_done(rl_loop *rl, rl_op *op);
static PyObject *call_lost(DgramObject *d, PyObject *exc);

static void send_submit(DgramObject *d)
{
    struct dentry *e = &d->wq[d->whead];
    int ret;

    if (rl_op_in_flight(&d->wop))
        return; /* never prep an op the loop owns; its completion resubmits */
    memset(&d->wmsg, 0, sizeof(d->wmsg));
    d->wiov.iov_base = PyBytes_AS_STRING(e->data);
    d->wiov.iov_len = (size_t)PyBytes_GET_SIZE(e->data);
    d->wmsg.msg_iov = &d->wiov;
    d->wmsg.msg_iovlen = 1;
    if (e->alen) {
        memcpy(&d->waddr, &e->addr, e->alen);
        d->wmsg.msg_name = &d->waddr;
        d->wmsg.msg_namelen = e->alen;
    }
    rl_prep_sendmsg(&d->wop, d->fd, &d->wmsg, MSG_NOSIGNAL, send_done, d);
    ret = rl_submit(d->loop->rl, &d->wop);
    if (ret < 0) {
        wq_clear(d);
        fatal_error(d, oserror(-ret),
                    "Fatal write error on datagram transport");
        return;
    }
    Py_INCREF(d);
}

/* In the writer context, as asyncio's _sendto_ready(). */
static void send_done(rl_loop *rl, rl_op *op)
{
    DgramObject *d = op->data;
    struct dentry *e;
    PyObject *ctx;
    int res = op->res;

    (void)rl;
    if (d->conn_lost || d->loop->closed) {
        wq_clear(d);
        goto out;
    }
    ctx = rlpy_ctx_enter(d->wctx);
    if (res == -EAGAIN || res == -EINTR) {
        send_submit(d);
        goto out_ctx;
    }
    e = &d->wq[d->whead++];
    d->wsize -= PyBytes_GET_SIZE(e->data);
    Py_CLEAR(e->data);
    if (d->whead == d->wtail)
        d->whead = d->wtail = 0;
    if (res < 0)
        error_received(d, -res);
    flow(d); /* resume_writing() may sendto() and submit the next one */
    if (d->conn_lost || rl_op_in_flight(&d->wop))
        goto out_ctx;
    if (d->whead < d->wtail) {
        send_submit(d);
    } else if (d->closing) {
        PyObject *r = call_lost(d, NULL);
        if (!r)
            callback_failed(d, "Exception in connection_lost()");
        Py_XDECREF(r);
    }
out_ctx:
    rlpy_ctx_exit(ctx);
out:
    Py_DECREF(d);
}

static int wq_push(DgramObject *d, PyObject *data,
                   const struct sockaddr_storage *addr, socklen_t alen)
{
    struct dentry *v;
    size_t cap;

    if (d->wtail == d->wcap) {
        cap = d->wcap ? d->wcap * 2 : 16;
        v = PyMem_Realloc(d->wq, cap * sizeof(*v));
        if (!v) {
            PyErr_NoMemory();
            return -1;
        }
        d->wq = v;
        d->wcap = cap;
    }
    v = &d->wq[d->wtail++];
    v->data = data;
    v->alen = alen;
    if (alen)
        memcpy(&v->addr, addr, alen);
    d->wsize += PyBytes_GET_SIZE(data);
    return 0;
}

/* ---- connection_lost --------------------------------------------------- */

static void close_done(rl_loop *rl, rl_op *op)
{
    (void)rl;
    Py_DECREF((DgramObject *)op->data);
}

static void close_sock(DgramObject *d)
{
    PyObject *r;
    long fd;

    rlpy_fd_clear_transport(d->loop, d->fd, (PyObject *)d);
    if (!d->sock)
        return;
    r = PyObject_CallMethod(d->sock, "detach", NULL);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    PyErr_Clear();
    if (fd < 0)
        return;
    if (d->loop->rl) {
        rl_prep_close(&d->cop, (int)fd, close_done, d);
        if (rl_submit(d->loop->rl, &d->cop) == 0) {
            Py_INCREF(d);
            return;
        }
        rl_loop_fd_closed(d->loop->rl, (int)fd);
    }
    close((int)fd);
}

static PyObject *call_lost(DgramObject *d, PyObject *exc)
{
    PyObject *r, *proto;

    if (d->lost_done)
        Py_RETURN_NONE;
    d->lost_done = true;
    d->closing = true;
    if (!d->conn_lost)
        d->conn_lost = 1;
    stop_reading(d);
    proto = d->protocol;
    d->protocol = NULL;
    r = proto ? PyObject_CallMethod(proto, "connection_lost", "O",
                                    exc ? exc : Py_None)
              : Py_NewRef(Py_None);
    close_sock(d);
    Py_XDECREF(proto);
    return r;
}

/* ---- Python API -------------------------------------------------------- */

static PyObject *dgram_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop",      "sock",  "protocol", "address",
                             "connected", "extra", NULL};
    PyObject *loop, *sock, *protocol, *address = Py_None, *extra = NULL, *r;
    rlpy_state *st = rlpy_state_of_type(tp);
    DgramObject *d;
    int connected = 0;
    long fd, family;

    if (!st || !PyArg_ParseTupleAndKeywords(
                   args, kw, "OOO|OpO:DatagramTransport", kwlist, &loop, &sock,
                   &protocol, &address, &connected, &extra))
        return NULL;
    (void)extra;
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a ringloop loop");
        return NULL;
    }
    if (rlpy_loop_check_closed((LoopObject *)loop) < 0)
        return NULL;
    r = PyObject_CallMethod(sock, "fileno", NULL);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    r = fd >= 0 ? PyObject_GetAttrString(sock, "family") : NULL;
    family = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        return NULL;
    }
    d = (DgramObject *)tp->tp_alloc(tp, 0);
    if (!d)
        return NULL;
    d->loop = (LoopObject *)Py_NewRef(loop);
    d->sock = Py_NewRef(sock);
    d->protocol = Py_NewRef(protocol);
    d->address = Py_NewRef(address);
    d->context = PyContext_CopyCurrent();
    /* bound to the type, not to d: the handle's argument holds d */
    d->read_ready =
        PyCFunction_NewEx(&read_ready_def, (PyObject *)st->DgramType, NULL);
    d->fd = (int)fd;
    d->family = (int)family;
    d->connected = connected;
    d->high = 64 * 1024;
    d->low = 16 * 1024;
    if (!d->context || !d->read_ready ||
        rlpy_fd_set_transport(d->loop, d->fd, (PyObject *)d) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return (PyObject *)d;
}

static int dgram_traverse(DgramObject *d, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(d));
    Py_VISIT(d->extra);
    Py_VISIT(d->loop);
    Py_VISIT(d->sock);
    Py_VISIT(d->protocol);
    Py_VISIT(d->context);
    Py_VISIT(d->wctx);
    Py_VISIT(d->address);
    Py_VISIT(d->read_ready);
    return 0;
}

static int dgram_clear(DgramObject *d)
{
    Py_CLEAR(d->extra);
    Py_CLEAR(d->protocol);
    Py_CLEAR(d->wctx);
    return 0;
}

static void dgram_dealloc(DgramObject *d)
{
    PyTypeObject *tp = Py_TYPE(d);

    PyObject_GC_UnTrack(d);
    if (d->loop)
        rlpy_fd_clear_transport(d->loop, d->fd, (PyObject *)d);
    if (d->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)d);
    wq_clear(d);
    PyMem_Free(d->wq);
    free(d->rbuf);
    Py_CLEAR(d->protocol);
    Py_CLEAR(d->context);
    Py_CLEAR(d->wctx);
    Py_CLEAR(d->address);
    Py_CLEAR(d->read_ready);
    Py_CLEAR(d->sock);
    Py_CLEAR(d->loop);
    Py_CLEAR(d->extra);
    tp->tp_free(d);
    Py_DECREF(tp);
}

/* sendto(data, addr=None) with addr already checked against the remote
 * address by the caller when connected; addr must be numeric (the Python
 * side resolves names). */
static PyObject *dgram_sendto_impl(DgramObject *d, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    struct sockaddr_storage ss;
    socklen_t alen = 0;
    PyObject *data, *addr, *keep, *ctx;
    Py_buffer v;
    ssize_t n;

    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_sendto(data, addr)");
        return NULL;
    }
    data = args[0];
    addr = nargs > 1 ? args[1] : Py_None;
    if (d->conn_lost && d->address != Py_None) {
        d->conn_lost++;
        Py_RETURN_NONE;
    }
    if (!d->connected && addr != Py_None &&
        rlpy_sockaddr_from_py(d->family, addr, &ss, &alen) < 0) {
        if (PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL; /* a name: the Python side resolves it */
        /* as asyncio, where socket.sendto() raised it */
        fatal_error(d, rlpy_exc_take(),
                    "Fatal write error on datagram transport");
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    if (d->whead == d->wtail && !rl_op_in_flight(&d->wop)) {
        n = alen ? sendto(d->fd, v.buf, (size_t)v.len,
                          MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss,
                          alen)
                 : send(d->fd, v.buf, (size_t)v.len,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
            int err = errno;
            PyBuffer_Release(&v);
            if (n < 0)
                error_received(d, err);
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE;
        }
        /* asyncio adds its writer callback now, in a copy of the
         * current context, which the send completions run in */
        if (!(ctx = PyContext_CopyCurrent())) {
            PyBuffer_Release(&v);
            return NULL;
        }
        Py_XSETREF(d->wctx, ctx);
    }
    keep = PyBytes_FromStringAndSize(v.buf, v.len);
    PyBuffer_Release(&v);
    if (!keep || wq_push(d, keep, &ss, alen) < 0) {
        Py_XDECREF(keep);
        return NULL;
    }
    if (!rl_op_in_flight(&d->wop))
        send_submit(d);
    flow(d);
    Py_RETURN_NONE;
}

static PyObject *dgram_close(DgramObject *d, PyObject *unused)
{
    (void)unused;
    if (d->closing)
        Py_RETURN_NONE;
    d->closing = true;
    stop_reading(d);
    if (d->whead == d->wtail && !rl_op_in_flight(&d->wop)) {
        d->conn_lost++;
        if (!d->loop->closed && schedule_lost(d, NULL) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *dgram_abort(DgramObject *d, PyObject *unused)
{
    (void)unused;
    force_close(d, NULL);
    Py_RETURN_NONE;
}

static PyObject *dgram_force_close(DgramObject *d, PyObject *exc)
{
    force_close(d, exc == Py_None ? NULL : exc);
    Py_RETURN_NONE;
}

static PyObject *dgram_is_closing(DgramObject *d, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(d->closing);
}

static PyObject *dgram_is_reading(DgramObject *d, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(!d->paused && !d->closing);
}

static PyObject *dgram_pause_reading(DgramObject *d, PyObject *unused)
{
    (void)unused;
    if (!d->closing && !d->paused) {
        d->paused = true;
        stop_reading(d);
    }
    Py_RETURN_NONE;
}

static PyObject *dgram_resume_reading(DgramObject *d, PyObject *unused)
{
    PyObject *ctx;

    (void)unused;
    if (!d->closing && d->paused) {
        /* as asyncio's new reader callback: a copy of the caller's */
        if (!(ctx = PyContext_CopyCurrent()))
            return NULL;
        Py_XSETREF(d->context, ctx);
        d->paused = false;
        if (d->rhave)
            queue_ready(d); /* a datagram read before the pause */
        else
            read_arm(d); /* a recv being cancelled re-arms when done */
    }
    Py_RETURN_NONE;
}

static PyObject *dgram_start_reading(DgramObject *d, PyObject *unused)
{
    (void)unused;
    read_arm(d);
    Py_RETURN_NONE;
}

static PyObject *dgram_call_connection_lost(DgramObject *d, PyObject *exc)
{
    return call_lost(d, exc == Py_None ? NULL : exc);
}

static PyObject *dgram_get_protocol(DgramObject *d, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(d->protocol ? d->protocol : Py_None);
}

static PyObject *dgram_set_protocol(DgramObject *d, PyObject *protocol)
{
    Py_XSETREF(d->protocol, Py_NewRef(protocol));
    Py_RETURN_NONE;
}

static PyObject *dgram_set_write_buffer_limits(DgramObject *d, PyObject *args,
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
    d->high = high;
    d->low = low;
    flow(d);
    Py_RETURN_NONE;
}

static PyObject *dgram_get_write_buffer_limits(DgramObject *d, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nn)", d->low, d->high);
}

static PyObject *dgram_get_write_buffer_size(DgramObject *d, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(d->wsize);
}

static PyObject *get_fd(DgramObject *d, void *c)
{
    (void)c;
    return PyLong_FromLong(d->lost_done ? -1 : d->fd);
}

static PyObject *get_address(DgramObject *d, void *c)
{
    (void)c;
    return Py_NewRef(d->address);
}

static PyObject *get_conn_lost(DgramObject *d, void *c)
{
    (void)c;
    return PyLong_FromLong(d->conn_lost);
}

static PyObject *get_loop(DgramObject *d, void *c)
{
    (void)c;
    return Py_NewRef((PyObject *)d->loop);
}

/* Finalizer of an unclosed transport with nothing in flight: close the
 * socket now, telling the backend first. */
static PyObject *dgram_close_now(DgramObject *d, PyObject *unused)
{
    PyObject *r;
    long fd;

    (void)unused;
    if (d->lost_done || !d->sock || rl_op_in_flight(&d->rop) ||
        rl_op_in_flight(&d->wop))
        Py_RETURN_NONE;
    d->lost_done = true;
    d->closing = true;
    if (!d->conn_lost)
        d->conn_lost = 1;
    rlpy_fd_clear_transport(d->loop, d->fd, (PyObject *)d);
    r = PyObject_CallMethod(d->sock, "detach", NULL);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (fd < 0)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (d->loop->rl)
        rl_loop_fd_closed(d->loop->rl, (int)fd);
    close((int)fd);
    Py_RETURN_NONE;
}

static PyMethodDef dgram_methods[] = {
    {"_sendto", (PyCFunction)(void (*)(void))dgram_sendto_impl, METH_FASTCALL,
     NULL},
    {"close", (PyCFunction)dgram_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)dgram_abort, METH_NOARGS, NULL},
    {"is_closing", (PyCFunction)dgram_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)dgram_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)dgram_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)dgram_resume_reading, METH_NOARGS, NULL},
    {"get_protocol", (PyCFunction)dgram_get_protocol, METH_NOARGS, NULL},
    {"set_protocol", (PyCFunction)dgram_set_protocol, METH_O, NULL},
    {"set_write_buffer_limits",
     (PyCFunction)(void (*)(void))dgram_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_write_buffer_limits", (PyCFunction)dgram_get_write_buffer_limits,
     METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)dgram_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"_start_reading", (PyCFunction)dgram_start_reading, METH_NOARGS, NULL},
    {"_call_connection_lost", (PyCFunction)dgram_call_connection_lost, METH_O,
     NULL},
    {"_force_close", (PyCFunction)dgram_force_close, METH_O, NULL},
    {"_close_now", (PyCFunction)dgram_close_now, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dgram_getset[] = {
    {"_sock_fd", (getter)get_fd, NULL, NULL, NULL},
    {"_address", (getter)get_address, NULL, NULL, NULL},
    {"_conn_lost", (getter)get_conn_lost, NULL, NULL, NULL},
    {"_loop", (getter)get_loop, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef dgram_members[] = {
    {"__weaklistoffset__", RLPY_T_PYSSIZET, offsetof(DgramObject, weakreflist),
     RLPY_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot dgram_slots[] = {
    {Py_tp_doc, "The C core of ringloop's datagram transport."},
    {Py_tp_new, dgram_new},
    {Py_tp_dealloc, dgram_dealloc},
    {Py_tp_traverse, dgram_traverse},
    {Py_tp_clear, dgram_clear},
    {Py_tp_methods, dgram_methods},
    {Py_tp_getset, dgram_getset},
    {Py_tp_members, dgram_members},
    {0, NULL},
};

PyType_Spec rlpy_dgram_spec = {
    .name = "ringloop._ext.DatagramTransport",
    .basicsize = sizeof(DgramObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = dgram_slots,
};
