/*
 * The Acceptor that servers use: one listening socket, multishot accept
 * (both backends fall back to one accept per op where the kernel lacks
 * it: the op then completes without RL_CQE_MORE and is armed again).
 *
 * Per connection, asyncio's _accept_connection2 for a plain (not TLS)
 * server runs here in C when the Acceptor is given the server, its
 * protocol factory and the transport type: the socket object, the
 * protocol factory, the transport, and the handles for connection_made
 * and _start_reading, with no Python frame of ours (accept_plain). Else
 * (a loop with its own _make_socket_transport, debug mode), and on an
 * accept error, it calls callback(fd) or callback(-errno), which decides
 * when to start again.
 *
 * Contexts, as asyncio's: its accept reader copies the context of whoever
 * starts serving (Server._start_serving, in create_server's caller or in
 * start_serving()'s), and each accepted connection is set up in a task,
 * which copies that context again. So the Acceptor copies the current
 * context when it is made, and sets up each connection in a fresh copy of
 * it: the protocol factory, the transport (which copies it for its own
 * callbacks) and connection_made see what the task that started serving
 * had set, and nothing one connection sets leaks into the next.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloop.h"

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *callback; /* callback(fd) per connection, callback(-errno) */
    PyObject *context;  /* copied at creation; each callback gets a copy */
    /* accept_plain()'s, all NULL if it is not used: */
    PyObject *server;         /* passed to the transport */
    PyObject *factory;        /* the protocol factory */
    PyObject *transport_type; /* (loop, sock, protocol, buffered, server) */
    PyObject *make_default;   /* the loop's own _make_socket_transport */
    PyObject *socket_type;    /* socket.socket */
    initproc csock_init;      /* its C base's (_socket.socket) tp_init */
    PyObject *str_make;       /* interned names */
    PyObject *str_io_refs;
    PyObject *str_closed;
    PyObject *str_connection_made;
    PyObject *str_start_reading;
    PyObject *zero;
    rl_op op;
    rl_op cop; /* close() */
    int fd;
    int family, type, proto; /* the listening socket's */
    bool active;
    bool closed;
    bool plain; /* accept_plain() since start() */
} AcceptorObject;

static void acceptor_done(rl_loop *rl, rl_op *op);

/*
 * The accepted fd as a socket.socket, as socket.socket(family, type |
 * SOCK_NONBLOCK, proto, fd) makes it but without socket.py's __init__:
 * the C base's __init__, then the two slots that __init__ sets. The fd is
 * the socket's from then on; on an error it is closed here.
 */
static PyObject *accepted_socket(AcceptorObject *a, int fd)
{
    PyTypeObject *tp = (PyTypeObject *)a->socket_type;
    PyObject *args, *conn = NULL;

    args = Py_BuildValue("(iiii)", a->family, a->type | SOCK_NONBLOCK, a->proto,
                         fd);
    if (args)
        conn = tp->tp_new(tp, args, NULL);
    /* A failed __init__ has not taken the fd (it fails before it does). */
    if (conn && a->csock_init(conn, args, NULL) < 0)
        Py_CLEAR(conn);
    Py_XDECREF(args);
    if (!conn) {
        close(fd);
        return NULL;
    }
    if (PyObject_SetAttr(conn, a->str_io_refs, a->zero) < 0 ||
        PyObject_SetAttr(conn, a->str_closed, Py_False) < 0)
        Py_CLEAR(conn); /* closes fd */
    return conn;
}

/* loop.call_exception_handler({message, exception[, protocol]}), as
 * asyncio's _accept_connection2 reports; exc is stolen. */
static int report_creation_error(AcceptorObject *a, PyObject *exc,
                                 PyObject *protocol)
{
    PyObject *ctx, *r = NULL;

    ctx = Py_BuildValue("{s:s,s:O}", "message",
                        "Error on transport creation for incoming connection",
                        "exception", exc);
    Py_DECREF(exc);
    if (ctx && protocol && PyDict_SetItemString(ctx, "protocol", protocol) < 0)
        Py_CLEAR(ctx);
    if (ctx)
        r = PyObject_CallMethodOneArg(
            (PyObject *)a->loop, a->loop->st->str_call_exception_handler, ctx);
    Py_XDECREF(ctx);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static bool exc_is_exit(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

/* A handle for obj.name(*args) in a copy of the current context, in the
 * ready queue: what loop.call_soon(obj.name, *args) does. */
static int call_soon(AcceptorObject *a, PyObject *obj, PyObject *name,
                     PyObject *args)
{
    PyObject *callable = PyObject_GetAttr(obj, name);
    HandleObject *h;
    int ret;

    if (!callable)
        return -1;
    h = rlpy_handle_new(a->loop, callable, args, NULL);
    Py_DECREF(callable);
    if (!h)
        return -1;
    ret = rlpy_handle_schedule(h, false);
    Py_DECREF(h);
    return ret;
}

/* The loop's _make_socket_transport(conn, protocol, server=server); the
 * transport's constructor sets TCP_NODELAY, as asyncio's _set_nodelay(). */
static int make_transport(AcceptorObject *a, PyObject *conn, PyObject *protocol)
{
    PyObject *args[5], *t, *targs;
    int ret;

    args[0] = (PyObject *)a->loop;
    args[1] = conn;
    args[2] = protocol;
    args[3] = Py_None; /* isinstance(protocol, BufferedProtocol) */
    args[4] = a->server;
    t = PyObject_Vectorcall(a->transport_type, args, 5, NULL);
    if (!t)
        return -1;
    ret = -1;
    targs = PyTuple_Pack(1, t);
    if (targs && call_soon(a, protocol, a->str_connection_made, targs) == 0) {
        Py_SETREF(targs, PyTuple_New(0));
        if (targs)
            ret = call_soon(a, t, a->str_start_reading, targs);
    }
    Py_XDECREF(targs);
    Py_DECREF(t);
    return ret;
}

/*
 * A plain connection, as asyncio's _accept_connection2 sets it up (and
 * as _AcceptorSlot._accepted does in Python): a protocol factory that
 * raises, or a transport that cannot be made, is reported and the
 * connection closed; SystemExit and KeyboardInterrupt go up (-1).
 */
static int accept_plain(AcceptorObject *a, int fd)
{
    PyObject *conn, *protocol, *exc, *r;
    int ret;

    conn = accepted_socket(a, fd);
    if (!conn)
        return -1;
    protocol = PyObject_CallNoArgs(a->factory);
    if (protocol && make_transport(a, conn, protocol) == 0) {
        Py_DECREF(protocol);
        Py_DECREF(conn);
        return 0;
    }
    exc = rlpy_exc_take();
    if (!exc_is_exit(exc) || !protocol) {
        /* asyncio closes it unless the transport failed on an exit */
        r = PyObject_CallMethod(conn, "close", NULL);
        if (!r)
            PyErr_WriteUnraisable(conn);
        Py_XDECREF(r);
    }
    Py_DECREF(conn);
    if (exc_is_exit(exc)) {
        Py_XDECREF(protocol);
        rlpy_exc_restore(exc);
        return -1;
    }
    ret = report_creation_error(a, exc, protocol);
    Py_XDECREF(protocol);
    return ret;
}

/* The connection fd (or -errno) in a fresh copy of the Acceptor's context:
 * 0, or -1 with an exception set. */
static int acceptor_call(AcceptorObject *a, int res)
{
    PyObject *ctx, *entered, *r = NULL;
    int ret;

    if (!a->callback || !a->context) {
        PyErr_SetString(PyExc_RuntimeError, "the Acceptor was cleared");
        if (res >= 0)
            close(res);
        return -1;
    }
    ctx = PyContext_Copy(a->context);
    if (!ctx) {
        if (res >= 0)
            close(res);
        return -1;
    }
    entered = rlpy_ctx_enter(ctx);
    /* Debug mode: the Python path, whose call_soon() checks callbacks. */
    if (res >= 0 && a->plain && !a->loop->debug) {
        ret = accept_plain(a, res);
    } else {
        r = PyObject_CallFunction(a->callback, "i", res);
        ret = r ? 0 : -1;
        Py_XDECREF(r);
    }
    rlpy_ctx_exit(entered);
    Py_DECREF(ctx);
    return ret;
}

static int acceptor_arm(AcceptorObject *a)
{
    int ret;

    rl_prep_accept_multishot(&a->op, a->fd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                             acceptor_done, a);
    ret = rl_submit(a->loop->rl, &a->op);
    if (ret == 0)
        Py_INCREF(a);
    return ret;
}

static void acceptor_done(rl_loop *rl, rl_op *op)
{
    AcceptorObject *a = op->data;
    bool more = op->cflags & RL_CQE_MORE;
    int res = op->res;

    (void)rl;
    if (!a->active || a->loop->closed) {
        if (res >= 0)
            close(res);
        if (more && a->loop->rl)
            rl_op_cancel(a->loop->rl, op);
        goto out;
    }
    if (res == -ECANCELED || res == -EAGAIN || res == -EINTR ||
        res == -ECONNABORTED)
        goto rearm;
    if (acceptor_call(a, res) < 0) {
        PyObject *exc = rlpy_exc_take();
        if (exc_is_exit(exc))
            rlpy_loop_stash_exc(a->loop, exc);
        else {
            rlpy_exc_restore(exc);
            PyErr_WriteUnraisable(a->callback);
        }
    }
    if (res < 0 && more && a->active) {
        /* the callback decides when to start again */
        a->active = false;
        rl_op_cancel(a->loop->rl, op);
    } else if (res < 0) {
        a->active = false;
    }
rearm:
    if (!more && a->active && !a->closed && !a->loop->closed &&
        acceptor_arm(a) < 0)
        a->active = false;
out:
    if (!more)
        Py_DECREF(a);
}

static int get_int_attr(PyObject *o, const char *name, int *out)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    long l;

    if (!v)
        return -1;
    l = PyLong_AsLong(v);
    Py_DECREF(v);
    if (l == -1 && PyErr_Occurred())
        return -1;
    *out = (int)l;
    return 0;
}

static PyObject *import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module), *v;

    if (!m)
        return NULL;
    v = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return v;
}

static int intern(PyObject **out, const char *s)
{
    *out = PyUnicode_InternFromString(s);
    return *out ? 0 : -1;
}

/* What accept_plain() needs, looked up once per server. */
static int plain_init(AcceptorObject *a, PyObject *sock)
{
    PyTypeObject *csock = a->loop->st->SocketType; /* _socket.socket */

    if (get_int_attr(sock, "family", &a->family) < 0 ||
        get_int_attr(sock, "type", &a->type) < 0 ||
        get_int_attr(sock, "proto", &a->proto) < 0)
        return -1;
    a->socket_type = import_attr("socket", "socket");
    if (!a->socket_type)
        return -1;
    if (!PyType_Check(a->socket_type) ||
        !PyType_IsSubtype((PyTypeObject *)a->socket_type, csock)) {
        PyErr_SetString(PyExc_TypeError,
                        "socket.socket is not a _socket.socket type");
        return -1;
    }
    a->csock_init = csock->tp_init;
    a->zero = PyLong_FromLong(0);
    if (!a->zero || intern(&a->str_make, "_make_socket_transport") < 0 ||
        intern(&a->str_io_refs, "_io_refs") < 0 ||
        intern(&a->str_closed, "_closed") < 0 ||
        intern(&a->str_connection_made, "connection_made") < 0 ||
        intern(&a->str_start_reading, "_start_reading") < 0)
        return -1;
    return 0;
}

/*
 * Acceptor(loop, sock, callback, server=None, protocol_factory=None,
 * transport_type=None, make_socket_transport=None): with the last four,
 * plain connections are set up in C (accept_plain) as long as the loop's
 * _make_socket_transport is make_socket_transport, and the loop is not in
 * debug mode.
 */
static PyObject *acceptor_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop",
                             "sock",
                             "callback",
                             "server",
                             "protocol_factory",
                             "transport_type",
                             "make_socket_transport",
                             NULL};
    PyObject *loop, *sock, *cb, *server = NULL, *factory = NULL, *ttype = NULL,
                                *make = NULL;
    AcceptorObject *a;
    rlpy_state *st;
    int fd;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OOOO:Acceptor", kwlist,
                                     &loop, &sock, &cb, &server, &factory,
                                     &ttype, &make))
        return NULL;
    st = rlpy_state_of_type(tp);
    if (!st)
        return NULL;
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "loop must be a ringloop loop");
        return NULL;
    }
    fd = rlpy_sock_fd(sock);
    if (fd < 0)
        return NULL;
    a = (AcceptorObject *)tp->tp_alloc(tp, 0);
    if (!a)
        return NULL;
    a->loop = (LoopObject *)Py_NewRef(loop);
    a->callback = Py_NewRef(cb);
    a->context = PyContext_CopyCurrent();
    a->fd = fd;
    if (!a->context)
        goto err;
    if (server && server != Py_None && factory && ttype && make) {
        a->server = Py_NewRef(server);
        a->factory = Py_NewRef(factory);
        a->transport_type = Py_NewRef(ttype);
        a->make_default = Py_NewRef(make);
        if (plain_init(a, sock) < 0)
            goto err;
    }
    return (PyObject *)a;
err:
    Py_DECREF(a);
    return NULL;
}

/* accept_plain() unless the loop has its own _make_socket_transport (its
 * type's, or one set on it): then the callback calls it, as asyncio would.
 * Looked up at each start. */
static int acceptor_check_plain(AcceptorObject *a)
{
    PyObject *make;

    a->plain = false;
    if (!a->make_default)
        return 0;
    make = PyObject_GetAttr((PyObject *)a->loop, a->str_make);
    if (!make)
        return -1;
    a->plain = PyMethod_Check(make) &&
               PyMethod_GET_FUNCTION(make) == a->make_default &&
               PyMethod_GET_SELF(make) == (PyObject *)a->loop;
    Py_DECREF(make);
    return 0;
}

static PyObject *acceptor_start(AcceptorObject *a, PyObject *unused)
{
    int ret;

    (void)unused;
    if (rlpy_loop_check_closed(a->loop) < 0)
        return NULL;
    if (a->active || a->closed)
        Py_RETURN_NONE;
    if (acceptor_check_plain(a) < 0)
        return NULL;
    a->active = true;
    if (rl_op_in_flight(&a->op))
        Py_RETURN_NONE; /* being cancelled: its final completion re-arms */
    ret = acceptor_arm(a);
    if (ret < 0) {
        a->active = false;
        errno = -ret;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *acceptor_stop(AcceptorObject *a, PyObject *unused)
{
    (void)unused;
    a->active = false;
    if (rl_op_in_flight(&a->op) && a->loop->rl)
        rl_op_cancel(a->loop->rl, &a->op);
    Py_RETURN_NONE;
}

static void acceptor_closed(rl_loop *rl, rl_op *op)
{
    (void)rl;
    Py_DECREF((AcceptorObject *)op->data);
}

/* close(stop_listening=True): stop and close the listening fd (the caller
 * detached it from its socket object) through the loop, after the accept op
 * is cancelled. */
static PyObject *acceptor_close(AcceptorObject *a, PyObject *args)
{
    int stop_listening = 1;

    if (!PyArg_ParseTuple(args, "|p:close", &stop_listening))
        return NULL;
    a->active = false;
    if (a->closed)
        Py_RETURN_NONE;
    a->closed = true;
    /* Stop listening now, as close(2) would (the accept op in flight keeps
     * the file open until it is cancelled): connects are refused at once.
     * Not for a socket the caller was given (create_server(sock=...)): it
     * may be a pre-fork server's listener that other processes share
     * (gunicorn, uvicorn --workers), which shutdown(2) would stop too; its
     * accept op is cancelled and the close waits for that. */
    if (stop_listening)
        shutdown(a->fd, SHUT_RDWR);
    else if (rl_op_in_flight(&a->op) && a->loop->rl)
        rl_op_cancel(a->loop->rl, &a->op);
    if (!a->loop->rl) {
        close(a->fd);
        Py_RETURN_NONE;
    }
    rl_prep_close(&a->cop, a->fd, acceptor_closed, a);
    if (rl_submit(a->loop->rl, &a->cop) == 0) {
        Py_INCREF(a);
    } else {
        if (rl_op_in_flight(&a->op))
            rl_op_cancel(a->loop->rl, &a->op);
        close(a->fd);
    }
    Py_RETURN_NONE;
}

static PyObject *acceptor_busy(AcceptorObject *a, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(rl_op_in_flight(&a->op));
}

static int acceptor_traverse(AcceptorObject *a, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(a));
    Py_VISIT(a->loop);
    Py_VISIT(a->callback);
    Py_VISIT(a->context);
    Py_VISIT(a->server);
    Py_VISIT(a->factory);
    Py_VISIT(a->transport_type);
    Py_VISIT(a->make_default);
    Py_VISIT(a->socket_type);
    return 0;
}

static int acceptor_clear(AcceptorObject *a)
{
    Py_CLEAR(a->callback);
    Py_CLEAR(a->context);
    Py_CLEAR(a->server);
    Py_CLEAR(a->factory);
    Py_CLEAR(a->transport_type);
    Py_CLEAR(a->make_default);
    Py_CLEAR(a->socket_type);
    a->plain = false;
    return 0;
}

static void acceptor_dealloc(AcceptorObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);

    PyObject_GC_UnTrack(a);
    acceptor_clear(a);
    Py_CLEAR(a->str_make);
    Py_CLEAR(a->str_io_refs);
    Py_CLEAR(a->str_closed);
    Py_CLEAR(a->str_connection_made);
    Py_CLEAR(a->str_start_reading);
    Py_CLEAR(a->zero);
    Py_CLEAR(a->loop);
    tp->tp_free(a);
    Py_DECREF(tp);
}

static PyMethodDef acceptor_methods[] = {
    {"start", (PyCFunction)acceptor_start, METH_NOARGS, NULL},
    {"stop", (PyCFunction)acceptor_stop, METH_NOARGS, NULL},
    {"close", (PyCFunction)acceptor_close, METH_VARARGS, NULL},
    {"busy", (PyCFunction)acceptor_busy, METH_NOARGS,
     "True while its accept op has not had its final completion."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot acceptor_slots[] = {
    {Py_tp_new, acceptor_new},           {Py_tp_dealloc, acceptor_dealloc},
    {Py_tp_traverse, acceptor_traverse}, {Py_tp_clear, acceptor_clear},
    {Py_tp_methods, acceptor_methods},   {0, NULL},
};

PyType_Spec rlpy_acceptor_spec = {
    .name = "ringloop._ext.Acceptor",
    .basicsize = sizeof(AcceptorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = acceptor_slots,
};
