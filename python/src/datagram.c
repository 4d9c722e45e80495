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
 * The life cycle, flow control and the rest of the transport API are the
 * base's (transport.c); here are the hooks it calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

#define DGRAM_MAX_SIZE (256 * 1024) /* asyncio's max_size */

struct dentry {
    PyObject *data; /* bytes */
    struct sockaddr_storage addr;
    socklen_t alen; /* 0: connected socket */
};

typedef struct {
    TransportObject t;
    PyObject *address; /* the remote address, or None */
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
    Py_ssize_t wsize;
    int family;
    bool connected;    /* peername known: send, not sendto */
    bool rhave;        /* rres/rbuf hold a result not yet delivered */
    bool ready_queued; /* a delivery handle is scheduled */
} DgramObject;

static rlpy_state *state(DgramObject *d)
{
    return d->t.loop->st;
}

static void callback_failed(DgramObject *d, const char *msg)
{
    rlpy_tr_callback_failed(&d->t, msg);
}

static void fatal_error(DgramObject *d, PyObject *exc, const char *msg)
{
    rlpy_tr_fatal_error(&d->t, exc, msg);
}

static void wq_clear(DgramObject *d)
{
    while (d->whead < d->wtail)
        Py_CLEAR(d->wq[d->whead++].data);
    d->whead = d->wtail = 0;
    d->wsize = 0;
}

/* protocol.error_received(OSError(err)). */
static void error_received(DgramObject *d, int err)
{
    PyObject *exc = rlpy_oserror(err), *r;

    if (!exc) {
        callback_failed(d, "error_received");
        return;
    }
    r = PyObject_CallMethodOneArg(d->t.protocol, state(d)->str_error_received,
                                  exc);
    Py_DECREF(exc);
    if (!r)
        callback_failed(d, "Exception in callback "
                           "DatagramTransport._read_ready()");
    Py_XDECREF(r);
}

/* pause_writing() or resume_writing(), when the queue crossed a limit. */
static void flow(DgramObject *d)
{
    rlpy_tr_maybe_pause(&d->t);
    rlpy_tr_maybe_resume(&d->t);
}

/* ---- reading ----------------------------------------------------------- */

static void recv_done(rl_loop *rl, rl_op *op);

static void read_arm(DgramObject *d)
{
    TransportObject *t = &d->t;
    int ret;

    if (t->paused || t->closing || t->conn_lost || t->loop->closed ||
        d->rhave || rl_op_in_flight(&t->rop))
        return;
    if (!d->rbuf && !(d->rbuf = malloc(DGRAM_MAX_SIZE))) {
        fatal_error(d, rlpy_oserror(ENOMEM),
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
    rl_prep_recvmsg(&t->rop, t->fd, &d->rmsg, 0, recv_done, d);
    ret = rl_submit(t->loop->rl, &t->rop);
    if (ret < 0) {
        fatal_error(d, rlpy_oserror(-ret),
                    "Fatal read error on datagram transport");
        return;
    }
    Py_INCREF(d);
}

/* protocol.datagram_received(data, addr) with what rbuf holds. */
static void datagram_received(DgramObject *d)
{
    PyObject *args[3] = {d->t.protocol, NULL, NULL}, *r = NULL;

    args[1] = PyBytes_FromStringAndSize(d->rbuf, d->rres);
    if (args[1])
        args[2] = rlpy_sockaddr_to_py((struct sockaddr *)&d->raddr,
                                      d->rmsg.msg_namelen);
    if (args[2])
        r = PyObject_VectorcallMethod(state(d)->str_datagram_received, args,
                                      3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (!r)
        callback_failed(d, "Exception in callback "
                           "DatagramTransport._read_ready()");
    Py_XDECREF(r);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
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
    TransportObject *t = &d->t;
    PyObject *ctx = NULL;

    if (!PyObject_TypeCheck(arg, (PyTypeObject *)type)) {
        PyErr_SetString(PyExc_TypeError, "a datagram transport expected");
        return NULL;
    }
    d->ready_queued = false;
    if (t->loop->closed || !d->rhave || t->paused)
        Py_RETURN_NONE; /* resume_reading() schedules it again */
    d->rhave = false;
    if (t->conn_lost || t->closing || !t->protocol)
        Py_RETURN_NONE;
    if (t->context != d->qctx)
        ctx = rlpy_ctx_enter(t->context);
    if (d->rres >= 0)
        datagram_received(d);
    else
        error_received(d, -d->rres);
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
    TransportObject *t = &d->t;
    PyObject *args;
    HandleObject *h = NULL;

    if (d->ready_queued || t->loop->closed)
        return;
    args = PyTuple_Pack(1, (PyObject *)d);
    if (args)
        h = rlpy_handle_new(t->loop, d->read_ready, args, t->context);
    Py_XDECREF(args);
    if (!h || rlpy_handle_schedule(h, false) < 0) {
        Py_XDECREF(h);
        fatal_error(d, rlpy_exc_take(),
                    "Fatal read error on datagram transport");
        return;
    }
    Py_DECREF(h); /* the loop's now */
    d->qctx = t->context;
    d->ready_queued = true;
}

static void recv_done(rl_loop *rl, rl_op *op)
{
    DgramObject *d = op->data;
    int res = op->res;

    (void)rl;
    if (d->t.loop->closed || d->t.conn_lost || !d->t.protocol)
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

static void send_submit(DgramObject *d)
{
    TransportObject *t = &d->t;
    struct dentry *e = &d->wq[d->whead];
    int ret;

    if (rl_op_in_flight(&t->wop))
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
    rl_prep_sendmsg(&t->wop, t->fd, &d->wmsg, MSG_NOSIGNAL, send_done, d);
    ret = rl_submit(t->loop->rl, &t->wop);
    if (ret < 0) {
        wq_clear(d);
        fatal_error(d, rlpy_oserror(-ret),
                    "Fatal write error on datagram transport");
        return;
    }
    Py_INCREF(d);
}

/* In the writer context, as asyncio's _sendto_ready(). */
static void send_done(rl_loop *rl, rl_op *op)
{
    DgramObject *d = op->data;
    TransportObject *t = &d->t;
    struct dentry *e;
    PyObject *ctx;
    int res = op->res;

    (void)rl;
    if (t->conn_lost || t->loop->closed) {
        wq_clear(d);
        goto out;
    }
    ctx = rlpy_ctx_enter(t->wctx);
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
    if (t->conn_lost || rl_op_in_flight(&t->wop))
        goto out_ctx;
    if (d->whead < d->wtail)
        send_submit(d);
    else if (t->closing)
        rlpy_tr_lost_now(t, "Exception in connection_lost()");
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

/* sendto(data, addr=None) with addr already checked against the remote
 * address by the caller when connected; addr must be numeric (the Python
 * side resolves names). */
static PyObject *dgram_sendto_impl(DgramObject *d, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    TransportObject *t = &d->t;
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
    if (t->conn_lost && d->address != Py_None) {
        t->conn_lost++;
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
    if (d->whead == d->wtail && !rl_op_in_flight(&t->wop)) {
        n = alen ? sendto(t->fd, v.buf, (size_t)v.len,
                          MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss,
                          alen)
                 : send(t->fd, v.buf, (size_t)v.len,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
        rl_loop_stats_count(t->loop->rl, RL_STATS_SEND, n);
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
        Py_XSETREF(t->wctx, ctx);
    }
    keep = PyBytes_FromStringAndSize(v.buf, v.len);
    PyBuffer_Release(&v);
    if (!keep || wq_push(d, keep, &ss, alen) < 0) {
        Py_XDECREF(keep);
        return NULL;
    }
    if (!rl_op_in_flight(&t->wop))
        send_submit(d);
    flow(d);
    Py_RETURN_NONE;
}

/* ---- the base's hooks -------------------------------------------------- */

static Py_ssize_t dgram_write_size(TransportObject *t)
{
    return ((DgramObject *)t)->wsize;
}

static bool dgram_write_idle(TransportObject *t)
{
    DgramObject *d = (DgramObject *)t;

    return d->whead == d->wtail && !rl_op_in_flight(&t->wop);
}

static void dgram_wq_clear(TransportObject *t)
{
    wq_clear((DgramObject *)t);
}

static int dgram_resume(TransportObject *t)
{
    DgramObject *d = (DgramObject *)t;

    if (d->rhave)
        queue_ready(d); /* a datagram read before the pause */
    else
        read_arm(d); /* a recv being cancelled re-arms when done */
    return 0;
}

static void dgram_start_reading(TransportObject *t)
{
    read_arm((DgramObject *)t);
}

static const struct rlpy_transport_ops dgram_ops = {
    .write_size = dgram_write_size,
    .write_idle = dgram_write_idle,
    .wq_clear = dgram_wq_clear,
    .resume = dgram_resume,
    .start_reading = dgram_start_reading,
    .close_fd = rlpy_tr_close_socket,
    .close_fd_now = rlpy_tr_close_socket_now,
    .repr_open = "open",
};

/* ---- Python API -------------------------------------------------------- */

/* DatagramTransport(loop, sock, protocol, address=None, connected=False,
 * extra=None). */
static PyObject *dgram_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop",      "sock",  "protocol", "address",
                             "connected", "extra", NULL};
    PyObject *loop, *sock, *protocol, *address = Py_None, *extra = NULL, *r;
    DgramObject *d;
    int connected = 0, fd;
    long family;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OpO:DatagramTransport",
                                     kwlist, &loop, &sock, &protocol, &address,
                                     &connected, &extra))
        return NULL;
    fd = rlpy_tr_check(tp, loop, sock);
    if (fd < 0)
        return NULL;
    r = PyObject_GetAttr(sock, ((LoopObject *)loop)->st->str_family);
    family = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (family == -1 && PyErr_Occurred())
        return NULL;
    d = (DgramObject *)tp->tp_alloc(tp, 0);
    if (!d)
        return NULL;
    d->address = Py_NewRef(address);
    d->family = (int)family;
    d->connected = connected;
    /* bound to the type, not to d: the handle's argument holds d */
    d->read_ready = PyCFunction_NewEx(
        &read_ready_def, (PyObject *)((LoopObject *)loop)->st->DgramType, NULL);
    if (!d->read_ready ||
        rlpy_tr_init(&d->t, &dgram_ops, loop, sock, fd, protocol, Py_False,
                     NULL, extra) < 0 ||
        rlpy_tr_extra_socket(&d->t) < 0 || rlpy_tr_init_done(&d->t) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return (PyObject *)d;
}

static int dgram_traverse(DgramObject *d, visitproc visit, void *arg)
{
    Py_VISIT(d->address);
    Py_VISIT(d->read_ready);
    return rlpy_tr_traverse(&d->t, visit, arg);
}

static int dgram_clear(DgramObject *d)
{
    rlpy_tr_clear(&d->t);
    return 0;
}

static void dgram_dealloc(DgramObject *d)
{
    PyTypeObject *tp = Py_TYPE(d);

    if (!rlpy_tr_dealloc(&d->t))
        return;
    wq_clear(d);
    PyMem_Free(d->wq);
    free(d->rbuf);
    Py_CLEAR(d->address);
    Py_CLEAR(d->read_ready);
    tp->tp_free(d);
    Py_DECREF(tp);
}

static PyObject *get_address(DgramObject *d, void *c)
{
    (void)c;
    return Py_NewRef(d->address);
}

static PyMethodDef dgram_methods[] = {
    {"_sendto", (PyCFunction)(void (*)(void))dgram_sendto_impl, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dgram_getset[] = {
    {"_address", (getter)get_address, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dgram_slots[] = {
    {Py_tp_doc, "The C core of ringloop's datagram transport."},
    {Py_tp_new, dgram_new},
    {Py_tp_dealloc, dgram_dealloc},
    {Py_tp_traverse, dgram_traverse},
    {Py_tp_clear, dgram_clear},
    {Py_tp_methods, dgram_methods},
    {Py_tp_getset, dgram_getset},
    {0, NULL},
};

PyType_Spec rlpy_dgram_spec = {
    .name = "ringloop._ext.DatagramTransport",
    .basicsize = sizeof(DgramObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = dgram_slots,
};
