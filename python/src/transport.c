/*
 * Transport: the base of the stream, pipe and datagram transports, as
 * asyncio's _SelectorTransport. See transport.h for the layers.
 *
 * Life cycle: close() stops reading and, once the write queue drained,
 * calls connection_lost() from a handle in the next ready phase; abort()
 * and fatal errors drop the queue and do the same at once. After
 * connection_lost() the subtype's close_fd hook closes the fd (a socket's
 * through RL_OP_CLOSE, which cancels the ops still in flight on it). An
 * unclosed transport's finalizer warns and closes the fd at once.
 *
 * Creating a transport runs no Python code of ours: the extra info
 * (TransportSocket, sockname, peername) and the server's bookkeeping are
 * made here. A plain socket's extra info is taken as two addresses and
 * becomes Python objects on first use (rlpy_tr_extra()): a connection
 * served without asking for it makes none, and leaves the collector five
 * fewer objects when its protocol and transport form a cycle.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

PyObject *rlpy_oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

bool rlpy_is_fatal_base(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
           PyErr_GivenExceptionMatches(exc, PyExc_SystemExit);
}

static rlpy_state *state(TransportObject *t)
{
    return t->loop->st;
}

void rlpy_tr_report(TransportObject *t, PyObject *exc, const char *msg)
{
    PyObject *ctx, *r = NULL;

    ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", msg, "exception", exc,
                        "transport", (PyObject *)t, "protocol",
                        t->protocol ? t->protocol : Py_None);
    if (ctx)
        r = PyObject_CallMethodOneArg(
            (PyObject *)t->loop, state(t)->str_call_exception_handler, ctx);
    Py_XDECREF(ctx);
    if (!r)
        rlpy_loop_stash_exc(t->loop, rlpy_exc_take());
    Py_XDECREF(r);
}

void rlpy_tr_callback_failed(TransportObject *t, const char *msg)
{
    PyObject *exc = rlpy_exc_take();

    if (!exc)
        return;
    if (rlpy_is_fatal_base(exc)) {
        rlpy_loop_stash_exc(t->loop, exc);
        return;
    }
    rlpy_tr_report(t, exc, msg);
    Py_DECREF(exc);
}

/* loop.call_soon(t.<def>, arg), in debug mode with call_soon's check
 * that it runs in the loop's thread. */
int rlpy_tr_soon(TransportObject *t, PyMethodDef *def, PyObject *arg)
{
    PyObject *cb, *args, *r;
    HandleObject *h;

    if (rlpy_loop_check_closed(t->loop) < 0)
        return -1;
    if (t->loop->debug) {
        r = PyObject_CallMethod((PyObject *)t->loop, "_check_thread", NULL);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    cb = PyCFunction_NewEx(def, (PyObject *)t, NULL);
    args = arg ? PyTuple_Pack(1, arg) : PyTuple_New(0);
    h = cb && args ? rlpy_handle_new(t->loop, cb, args, NULL) : NULL;
    Py_XDECREF(cb);
    Py_XDECREF(args);
    if (!h)
        return -1;
    if (rlpy_handle_schedule(h, false) < 0) {
        Py_DECREF(h);
        return -1;
    }
    Py_DECREF(h);
    return 0;
}

static PyMethodDef call_lost_def;

static int schedule_lost(TransportObject *t, PyObject *exc)
{
    return rlpy_tr_soon(t, &call_lost_def, exc ? exc : Py_None);
}

static void stop_reading(TransportObject *t)
{
    if (rl_op_in_flight(&t->rop) && t->loop->rl)
        rl_op_cancel(t->loop->rl, &t->rop);
}

static void flush(TransportObject *t)
{
    if (t->ops->flush)
        t->ops->flush(t);
}

void rlpy_tr_force_close(TransportObject *t, PyObject *exc)
{
    if (t->conn_lost)
        return;
    flush(t);
    if (t->conn_lost)
        return; /* the send failed: that closed it */
    if (t->ops->on_force_close)
        t->ops->on_force_close(t, exc);
    if (rl_op_in_flight(&t->wop))
        rl_op_cancel(t->loop->rl, &t->wop); /* its completion clears wq */
    else
        t->ops->wq_clear(t);
    if (!t->closing) {
        t->closing = true;
        stop_reading(t);
    }
    t->conn_lost++;
    if (t->loop->closed)
        return;
    if (schedule_lost(t, exc) < 0)
        rlpy_loop_stash_exc(t->loop, rlpy_exc_take());
}

void rlpy_tr_fatal_error(TransportObject *t, PyObject *exc, const char *msg)
{
    if (!exc) {
        rlpy_loop_stash_exc(t->loop, rlpy_exc_take());
        return;
    }
    if (rlpy_is_fatal_base(exc)) {
        rlpy_loop_stash_exc(t->loop, exc);
        return;
    }
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError))
        rlpy_tr_report(t, exc, msg);
    rlpy_tr_force_close(t, exc);
    Py_DECREF(exc);
}

/* pause_writing / resume_writing failures only go to the handler. */
static void call_flow(TransportObject *t, PyObject *name, const char *msg)
{
    PyObject *r = PyObject_CallMethodNoArgs(t->protocol, name);

    if (r)
        Py_DECREF(r);
    else
        rlpy_tr_callback_failed(t, msg);
}

void rlpy_tr_maybe_pause(TransportObject *t)
{
    if (t->write_paused || !t->protocol || t->ops->write_size(t) <= t->high)
        return;
    t->write_paused = true;
    call_flow(t, state(t)->str_pause_writing,
              "protocol.pause_writing() failed");
}

void rlpy_tr_maybe_resume(TransportObject *t)
{
    if (!t->write_paused || !t->protocol || t->ops->write_size(t) > t->low)
        return;
    t->write_paused = false;
    call_flow(t, state(t)->str_resume_writing,
              "protocol.resume_writing() failed");
}

/* ---- connection_lost --------------------------------------------------- */

static void close_done(rl_loop *rl, rl_op *op)
{
    (void)rl;
    Py_DECREF((TransportObject *)op->data);
}

/* The socket's fd, detached from it (-1: none; an exception may be set). */
static long detach(TransportObject *t)
{
    PyObject *r;
    long fd;

    rlpy_fd_clear_transport(t->loop, t->fd, (PyObject *)t);
    if (!t->sock)
        return -1;
    r = PyObject_CallMethodNoArgs(t->sock, state(t)->str_detach);
    fd = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    return fd;
}

void rlpy_tr_close_socket(TransportObject *t)
{
    long fd = detach(t);

    PyErr_Clear();
    if (fd < 0)
        return;
    if (t->loop->rl) {
        rl_prep_close(&t->cop, (int)fd, close_done, t);
        if (rl_submit(t->loop->rl, &t->cop) == 0) {
            Py_INCREF(t);
            return;
        }
        rl_loop_fd_closed(t->loop->rl, (int)fd);
    }
    close((int)fd);
}

PyObject *rlpy_tr_close_socket_now(TransportObject *t)
{
    long fd = detach(t);

    if (fd < 0)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (t->loop->rl)
        rl_loop_fd_closed(t->loop->rl, (int)fd);
    close((int)fd);
    Py_RETURN_NONE;
}

/* The server counts its transports (wait_closed() waits for them): the one
 * place it learns of a new one. */
static int server_attach(TransportObject *t)
{
    PyObject *r;

    if (t->server == Py_None)
        return 0;
    r = PyObject_CallMethodOneArg(t->server, state(t)->str__attach,
                                  (PyObject *)t);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void server_detach(TransportObject *t, PyObject *server)
{
    PyObject *exc = PyErr_Occurred() ? rlpy_exc_take() : NULL, *r;

    r = PyObject_CallMethodOneArg(server, state(t)->str__detach, (PyObject *)t);
    if (!r)
        PyErr_WriteUnraisable(server);
    Py_XDECREF(r);
    if (exc)
        rlpy_exc_restore(exc);
}

/* asyncio's _call_connection_lost(): exactly once. */
static PyObject *call_lost(TransportObject *t, PyObject *exc)
{
    PyObject *r, *proto, *server;

    if (t->lost_done)
        Py_RETURN_NONE;
    t->lost_done = true;
    t->closing = true;
    if (!t->conn_lost)
        t->conn_lost = 1; /* later writes are counted, never sent */
    stop_reading(t);
    proto = t->protocol;
    t->protocol = NULL;
    r = proto ? PyObject_CallMethodOneArg(proto, state(t)->str_connection_lost,
                                          exc ? exc : Py_None)
              : Py_NewRef(Py_None);
    t->ops->close_fd(t);
    /* No read runs in it again: asyncio's reader handle, which held it,
     * went with the close (a context kept here would wait for the
     * collector whenever the protocol and the transport form a cycle). */
    Py_CLEAR(t->context);
    server = t->server;
    t->server = NULL;
    if (server && server != Py_None)
        server_detach(t, server);
    Py_XDECREF(server);
    Py_XDECREF(proto);
    return r;
}

void rlpy_tr_lost_now(TransportObject *t, const char *msg)
{
    PyObject *r = call_lost(t, NULL);

    if (r)
        Py_DECREF(r);
    else
        rlpy_tr_callback_failed(t, msg);
}

/* ---- construction ------------------------------------------------------ */

int rlpy_tr_extra_set(TransportObject *t, PyObject *key, PyObject *value)
{
    if (!t->extra && !(t->extra = PyDict_New()))
        return -1;
    return PyDict_SetItem(t->extra, key, value);
}

/* extra["socket"] = TransportSocket(sock), without running its __init__:
 * its one slot, set through the slot's descriptor. */
static int extra_transport_socket(TransportObject *t)
{
    rlpy_state *st = state(t);
    PyObject *ts = st->TransportSocket->tp_alloc(st->TransportSocket, 0);
    int r;

    if (!ts)
        return -1;
    r = Py_TYPE(st->TransportSocket_sock)
            ->tp_descr_set(st->TransportSocket_sock, ts, t->sock);
    if (r == 0)
        r = rlpy_tr_extra_set(t, st->str_socket, ts);
    Py_DECREF(ts);
    return r;
}

/* extra["sockname"] (i 0) or extra["peername"] (i 1): names[i] as the
 * socket module makes it, or else sock.getsockname() / getpeername(),
 * None on OSError. */
static int extra_name(TransportObject *t, int i)
{
    rlpy_state *st = state(t);
    PyObject *name;
    int r;

    if (t->names_in_c) {
        name = rlpy_sockaddr_to_py((struct sockaddr *)&t->names[i],
                                   t->name_len[i]);
    } else {
        name = PyObject_CallMethodNoArgs(t->sock, i ? st->str_getpeername
                                                    : st->str_getsockname);
        if (!name && PyErr_ExceptionMatches(PyExc_OSError)) {
            PyErr_Clear();
            name = Py_NewRef(Py_None);
        }
    }
    r = name ? rlpy_tr_extra_set(t, i ? st->str_peername : st->str_sockname,
                                 name)
             : -1;
    Py_XDECREF(name);
    return r;
}

/* socket, sockname and peername, in asyncio's order. */
static int extra_fill(TransportObject *t)
{
    if ((t->peer == RLPY_PEER_FIRST && extra_name(t, 1) < 0) ||
        extra_transport_socket(t) < 0 || extra_name(t, 0) < 0 ||
        (t->peer == RLPY_PEER_LAST && extra_name(t, 1) < 0))
        return -1;
    t->names_lazy = false;
    return 0;
}

PyObject *rlpy_tr_extra(TransportObject *t)
{
    if (t->names_lazy && extra_fill(t) < 0)
        return NULL;
    return t->extra;
}

/* getsockname(2) or getpeername(2) into names[i]; len 0 (None) where the
 * socket method would raise OSError. */
static void take_name(TransportObject *t, int i)
{
    socklen_t len = sizeof(t->names[i]);
    int r = i == 0 ? getsockname(t->fd, (struct sockaddr *)&t->names[i], &len)
                   : getpeername(t->fd, (struct sockaddr *)&t->names[i], &len);

    t->name_len[i] = r < 0 ? 0 : len;
}

/* A socket.socket whose addresses addr.c converts as the socket module
 * does: a subclass may override getsockname(), and other families have
 * formats of their own. */
static bool names_in_c(TransportObject *t)
{
    rlpy_state *st = state(t);
    PyTypeObject *tp = Py_TYPE(t->sock);
    int family;

    if (tp != st->PySocketType && tp != st->SocketType)
        return false;
    take_name(t, 0);
    if (t->name_len[0] < sizeof(sa_family_t))
        return false;
    family = t->names[0].ss_family;
    return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

int rlpy_tr_extra_socket(TransportObject *t)
{
    int r = t->extra ? PyDict_Contains(t->extra, state(t)->str_peername) : 0;

    if (r < 0)
        return -1;
    /* asyncio's server makes its transports with extra={"peername": the
     * address accept() gave}: that key comes first. */
    t->peer = r                      ? RLPY_PEER_GIVEN
              : t->server != Py_None ? RLPY_PEER_FIRST
                                     : RLPY_PEER_LAST;
    t->names_in_c = names_in_c(t);
    if (!t->names_in_c)
        return extra_fill(t);
    if (t->peer != RLPY_PEER_GIVEN)
        take_name(t, 1);
    t->names_lazy = true;
    return 0;
}

int rlpy_tr_check(PyTypeObject *tp, PyObject *loop, PyObject *sock)
{
    rlpy_state *st = rlpy_state_of_type(tp);
    PyObject *r;
    long fd;

    if (!st)
        return -1;
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a ringloop loop");
        return -1;
    }
    if (rlpy_loop_check_closed((LoopObject *)loop) < 0)
        return -1;
    r = PyObject_CallMethodNoArgs(sock, st->str_fileno);
    if (!r)
        return -1;
    fd = PyLong_AsLong(r);
    Py_DECREF(r);
    if (fd == -1 && PyErr_Occurred())
        return -1;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        return -1;
    }
    return (int)fd;
}

/* _extra: a copy of the mapping given, or none (0, or -1 with an
 * exception). */
static int extra_copy(TransportObject *t, PyObject *extra)
{
    int given = extra ? PyObject_IsTrue(extra) : 0;

    if (given <= 0)
        return given;
    t->extra = PyObject_CallOneArg((PyObject *)&PyDict_Type, extra);
    return t->extra ? 0 : -1;
}

int rlpy_tr_init(TransportObject *t, const struct rlpy_transport_ops *ops,
                 PyObject *loop, PyObject *sock, int fd, PyObject *protocol,
                 PyObject *buffered, PyObject *server, PyObject *extra)
{
    rlpy_state *st = ((LoopObject *)loop)->st;
    int b;

    t->ops = ops;
    t->lost_done = true; /* no finalizer until rlpy_tr_init_done() */
    t->loop = (LoopObject *)Py_NewRef(loop);
    t->sock = Py_NewRef(sock);
    t->protocol = Py_NewRef(protocol);
    t->server = Py_NewRef(server ? server : Py_None);
    t->fd = fd;
    t->high = 64 * 1024;
    t->low = 16 * 1024;
    b = !buffered || buffered == Py_None
            ? PyObject_IsInstance(protocol, st->BufferedProtocol)
            : PyObject_IsTrue(buffered);
    if (b < 0)
        return -1;
    t->buffered = b;
    t->context = PyContext_CopyCurrent();
    if (!t->context || extra_copy(t, extra) < 0 ||
        rlpy_fd_set_transport(t->loop, fd, (PyObject *)t) < 0)
        return -1;
    return 0;
}

/* asyncio's transports attach themselves to the server last. Until then a
 * failure leaves the socket to the caller: no finalizer closes it. */
int rlpy_tr_init_done(TransportObject *t)
{
    if (server_attach(t) < 0)
        return -1;
    t->lost_done = false;
    return 0;
}

int rlpy_tr_traverse(TransportObject *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->extra);
    Py_VISIT(t->loop);
    Py_VISIT(t->sock);
    Py_VISIT(t->protocol);
    Py_VISIT(t->server);
    Py_VISIT(t->context);
    Py_VISIT(t->wctx);
    return 0;
}

void rlpy_tr_clear(TransportObject *t)
{
    Py_CLEAR(t->extra);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->server);
    Py_CLEAR(t->wctx);
}

bool rlpy_tr_dealloc(TransportObject *t)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)t) < 0)
        return false;
    PyObject_GC_UnTrack(t);
    if (t->loop)
        rlpy_fd_clear_transport(t->loop, t->fd, (PyObject *)t);
    if (t->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)t);
    rlpy_tr_clear(t);
    Py_CLEAR(t->context);
    Py_CLEAR(t->sock);
    Py_CLEAR(t->loop);
    return true;
}

/* ---- Python API -------------------------------------------------------- */

static PyObject *tr_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    PyErr_Format(PyExc_TypeError, "cannot create '%s' instances", tp->tp_name);
    return NULL;
}

/* tp_new made it: not asyncio.BaseTransport.__init__ (Python code, which
 * would reset _extra). */
static int tr_init(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    (void)args;
    (void)kw;
    return 0;
}

static PyObject *tr_close(TransportObject *t, PyObject *unused)
{
    (void)unused;
    if (t->closing)
        Py_RETURN_NONE;
    flush(t);
    if (t->closing) /* the send failed: that closed it */
        Py_RETURN_NONE;
    t->closing = true;
    stop_reading(t);
    if (t->ops->write_idle(t)) {
        t->conn_lost++;
        if (!t->loop->closed && schedule_lost(t, NULL) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *tr_abort(TransportObject *t, PyObject *unused)
{
    (void)unused;
    rlpy_tr_force_close(t, NULL);
    Py_RETURN_NONE;
}

static PyObject *tr_force_close(TransportObject *t, PyObject *exc)
{
    rlpy_tr_force_close(t, exc == Py_None ? NULL : exc);
    Py_RETURN_NONE;
}

static PyObject *tr_is_closing(TransportObject *t, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(t->closing);
}

static PyObject *tr_is_reading(TransportObject *t, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(!t->paused && !t->closing);
}

static PyObject *tr_pause_reading(TransportObject *t, PyObject *unused)
{
    (void)unused;
    if (t->closing || t->paused)
        Py_RETURN_NONE;
    t->paused = true;
    stop_reading(t);
    Py_RETURN_NONE;
}

/* As asyncio's, which adds a new reader callback: from here on the protocol
 * is called in a copy of the caller's context. */
static PyObject *tr_resume_reading(TransportObject *t, PyObject *unused)
{
    PyObject *ctx;

    (void)unused;
    if (t->closing || !t->paused)
        Py_RETURN_NONE;
    ctx = PyContext_CopyCurrent();
    if (!ctx)
        return NULL;
    Py_XSETREF(t->context, ctx);
    t->paused = false;
    if (t->ops->resume(t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tr_start_reading(TransportObject *t, PyObject *unused)
{
    (void)unused;
    t->ops->start_reading(t);
    Py_RETURN_NONE;
}

static PyObject *tr_call_connection_lost(TransportObject *t, PyObject *exc)
{
    return call_lost(t, exc == Py_None ? NULL : exc);
}

static PyMethodDef call_lost_def = {"_call_connection_lost",
                                    (PyCFunction)tr_call_connection_lost,
                                    METH_O, NULL};

static void set_protocol(TransportObject *t, PyObject *protocol, bool buffered)
{
    if (t->ops->set_protocol)
        t->ops->set_protocol(t, protocol, buffered);
    else
        Py_XSETREF(t->protocol, Py_NewRef(protocol));
}

static PyObject *tr_set_protocol(TransportObject *t, PyObject *protocol)
{
    int buffered = PyObject_IsInstance(protocol, state(t)->BufferedProtocol);

    if (buffered < 0)
        return NULL;
    set_protocol(t, protocol, buffered);
    Py_RETURN_NONE;
}

static PyObject *tr_get_protocol(TransportObject *t, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(t->protocol ? t->protocol : Py_None);
}

static PyObject *tr_get_extra_info(TransportObject *t, PyObject *args,
                                   PyObject *kw)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None, *v;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:get_extra_info", kwlist,
                                     &name, &dflt))
        return NULL;
    if (!rlpy_tr_extra(t)) {
        if (PyErr_Occurred())
            return NULL;
        return Py_NewRef(dflt);
    }
    if (!PyDict_Check(t->extra))
        return PyObject_CallMethod(t->extra, "get", "OO", name, dflt);
    v = PyDict_GetItemWithError(t->extra, name);
    if (!v && PyErr_Occurred())
        return NULL;
    return Py_NewRef(v ? v : dflt);
}

static PyObject *tr_set_write_buffer_limits(TransportObject *t, PyObject *args,
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
    flush(t);
    t->high = high;
    t->low = low;
    rlpy_tr_maybe_pause(t);
    Py_RETURN_NONE;
}

static PyObject *tr_get_write_buffer_limits(TransportObject *t,
                                            PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nn)", t->low, t->high);
}

static PyObject *tr_get_write_buffer_size(TransportObject *t, PyObject *unused)
{
    (void)unused;
    flush(t); /* asyncio's write() sends at once: count what it would not */
    return PyLong_FromSsize_t(t->ops->write_size(t));
}

/* Close the fd now: the finalizer of an unclosed transport with nothing in
 * flight. */
static PyObject *tr_close_now(TransportObject *t, PyObject *unused)
{
    (void)unused;
    flush(t);
    if (t->lost_done || !t->sock || rl_op_in_flight(&t->rop) ||
        rl_op_in_flight(&t->wop))
        Py_RETURN_NONE;
    t->lost_done = true;
    t->closing = true;
    if (!t->conn_lost)
        t->conn_lost = 1;
    return t->ops->close_fd_now(t);
}

/* asyncio's __del__: an unclosed transport warns and closes its fd. */
static void tr_finalize(TransportObject *t)
{
    PyObject *exc, *r;

    if (t->lost_done || t->released || !t->ops)
        return;
    exc = rlpy_exc_take();
    if ((!t->closing || t->ops->warn_closing) &&
        PyErr_ResourceWarning((PyObject *)t, 1, "unclosed transport %R",
                              (PyObject *)t) < 0)
        PyErr_WriteUnraisable((PyObject *)t);
    r = tr_close_now(t, NULL);
    if (!r)
        PyErr_WriteUnraisable((PyObject *)t);
    Py_XDECREF(r);
    if (exc)
        rlpy_exc_restore(exc);
}

static int add_word(PyObject *words, const char *fmt, ...)
{
    va_list va;
    PyObject *w;
    int r;

    va_start(va, fmt);
    w = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (!w)
        return -1;
    r = PyList_Append(words, w);
    Py_DECREF(w);
    return r;
}

/* <Name [closed|closing|open] fd=N ...>, as asyncio's transports. */
static PyObject *tr_repr(TransportObject *t)
{
    PyObject *words = PyList_New(0), *name, *sep = NULL, *s = NULL;
    bool closed = t->lost_done || t->released;
    int r;

    if (!words)
        return NULL;
    name = PyObject_GetAttr((PyObject *)Py_TYPE(t), state(t)->str___name__);
    r = name ? PyList_Append(words, name) : -1;
    Py_XDECREF(name);
    if (r == 0 && (closed || t->closing || t->ops->repr_open))
        r = add_word(words, "%s",
                     closed       ? "closed"
                     : t->closing ? "closing"
                                  : t->ops->repr_open);
    if (r == 0)
        r = add_word(words, "fd=%d", t->lost_done ? -1 : t->fd);
    if (r == 0 && !closed && t->ops->repr_info)
        r = t->ops->repr_info(t, words);
    if (r == 0 && (sep = PyUnicode_FromString(" ")))
        s = PyUnicode_Join(sep, words);
    Py_XDECREF(sep);
    Py_DECREF(words);
    if (!s)
        return NULL;
    Py_SETREF(s, PyUnicode_FromFormat("<%U>", s));
    return s;
}

static PyObject *get_fd(TransportObject *t, void *c)
{
    (void)c;
    return PyLong_FromLong(t->lost_done ? -1 : t->fd);
}

static PyObject *get_loop(TransportObject *t, void *c)
{
    (void)c;
    return Py_NewRef((PyObject *)t->loop);
}

static PyObject *get_conn_lost(TransportObject *t, void *c)
{
    (void)c;
    return PyLong_FromLong(t->conn_lost);
}

static PyObject *get_sock(TransportObject *t, void *c)
{
    (void)c;
    return Py_NewRef(t->sock && !t->lost_done ? t->sock : Py_None);
}

static PyMethodDef tr_methods[] = {
    {"close", (PyCFunction)tr_close, METH_NOARGS,
     "Close after the queued data was sent."},
    {"abort", (PyCFunction)tr_abort, METH_NOARGS,
     "Close now, dropping queued data."},
    {"is_closing", (PyCFunction)tr_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)tr_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)tr_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)tr_resume_reading, METH_NOARGS, NULL},
    {"get_protocol", (PyCFunction)tr_get_protocol, METH_NOARGS, NULL},
    {"set_protocol", (PyCFunction)tr_set_protocol, METH_O, NULL},
    {"get_extra_info", (PyCFunction)(void (*)(void))tr_get_extra_info,
     METH_VARARGS | METH_KEYWORDS,
     "Optional transport information (socket, sockname, peername, ...)."},
    {"set_write_buffer_limits",
     (PyCFunction)(void (*)(void))tr_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_write_buffer_limits", (PyCFunction)tr_get_write_buffer_limits,
     METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)tr_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"_start_reading", (PyCFunction)tr_start_reading, METH_NOARGS, NULL},
    {"_call_connection_lost", (PyCFunction)tr_call_connection_lost, METH_O,
     NULL},
    {"_force_close", (PyCFunction)tr_force_close, METH_O, NULL},
    {"_close_now", (PyCFunction)tr_close_now, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* asyncio.BaseTransport's _extra, with what is made on first use. */
static PyObject *get_extra(TransportObject *t, void *c)
{
    (void)c;
    if (!rlpy_tr_extra(t)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "_extra");
        return NULL;
    }
    return Py_NewRef(t->extra);
}

static int set_extra(TransportObject *t, PyObject *v, void *c)
{
    (void)c;
    t->names_lazy = false; /* what is set replaces them */
    Py_XSETREF(t->extra, Py_XNewRef(v));
    return 0;
}

static PyGetSetDef tr_getset[] = {
    {"_extra", (getter)get_extra, (setter)set_extra, NULL, NULL},
    {"_sock_fd", (getter)get_fd, NULL, NULL, NULL},
    {"_loop", (getter)get_loop, NULL, NULL, NULL},
    {"_conn_lost", (getter)get_conn_lost, NULL, NULL, NULL},
    {"_sock", (getter)get_sock, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef tr_members[] = {
    {"__weaklistoffset__", RLPY_T_PYSSIZET,
     offsetof(TransportObject, weakreflist), RLPY_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int tr_traverse(TransportObject *t, visitproc visit, void *arg)
{
    return rlpy_tr_traverse(t, visit, arg);
}

static int tr_clear(TransportObject *t)
{
    rlpy_tr_clear(t);
    return 0;
}

static void tr_dealloc(TransportObject *t)
{
    PyTypeObject *tp = Py_TYPE(t);

    if (!rlpy_tr_dealloc(t))
        return;
    tp->tp_free(t);
    Py_DECREF(tp);
}

static PyType_Slot tr_slots[] = {
    {Py_tp_doc, "The C base of ringloop's transports."},
    {Py_tp_new, tr_new},
    {Py_tp_init, tr_init},
    {Py_tp_dealloc, tr_dealloc},
    {Py_tp_traverse, tr_traverse},
    {Py_tp_clear, tr_clear},
    {Py_tp_finalize, tr_finalize},
    {Py_tp_repr, tr_repr},
    {Py_tp_methods, tr_methods},
    {Py_tp_getset, tr_getset},
    {Py_tp_members, tr_members},
    {0, NULL},
};

PyType_Spec rlpy_transport_spec = {
    .name = "ringloop._ext.Transport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = tr_slots,
};
