/*
 * The Acceptor that servers use: one listening socket, multishot accept
 * where the kernel has it, callback(fd) per connection and callback(-errno)
 * on an error (the callback decides when to start again).
 *
 * Contexts, as asyncio's: its accept reader copies the context of whoever
 * starts serving (Server._start_serving, in create_server's caller or in
 * start_serving()'s), and each accepted connection is set up in a task,
 * which copies that context again. So the Acceptor copies the current
 * context when it is made, and runs each callback in a fresh copy of it:
 * the protocol factory, the transport (which copies it for its own
 * callbacks) and connection_made see what the task that started serving
 * had set, and nothing one connection sets leaks into the next.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloop.h"

typedef struct {
    PyObject_HEAD LoopObject *loop;
    PyObject *callback; /* callback(fd) per connection, callback(-errno) */
    PyObject *context;  /* copied at creation; each callback gets a copy */
    rl_op op;
    rl_op cop; /* close() */
    int fd;
    bool active;
    bool closed;
} AcceptorObject;

static void acceptor_done(rl_loop *rl, rl_op *op);

/* callback(res) in a fresh copy of the Acceptor's context. */
static PyObject *acceptor_call(AcceptorObject *a, int res)
{
    PyObject *ctx, *entered, *r;

    if (!a->callback || !a->context) {
        PyErr_SetString(PyExc_RuntimeError, "the Acceptor was cleared");
        return NULL;
    }
    ctx = PyContext_Copy(a->context);
    if (!ctx)
        return NULL;
    entered = rlpy_ctx_enter(ctx);
    r = PyObject_CallFunction(a->callback, "i", res);
    rlpy_ctx_exit(entered);
    Py_DECREF(ctx);
    return r;
}

static int acceptor_arm(AcceptorObject *a)
{
    int ret;

    if (rl_loop_features(a->loop->rl) & RL_FEAT_MULTISHOT_ACCEPT)
        rl_prep_accept_multishot(&a->op, a->fd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                                 acceptor_done, a);
    else
        rl_prep_accept(&a->op, a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC,
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
    PyObject *r;

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
    r = acceptor_call(a, res);
    if (!r) {
        PyObject *exc = rlpy_exc_take();
        if (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
            PyErr_GivenExceptionMatches(exc, PyExc_SystemExit))
            rlpy_loop_stash_exc(a->loop, exc);
        else {
            rlpy_exc_restore(exc);
            PyErr_WriteUnraisable(a->callback);
        }
    }
    Py_XDECREF(r);
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

static PyObject *acceptor_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    AcceptorObject *a;
    PyObject *loop, *sock, *cb;
    int fd;

    (void)kw;
    if (!PyArg_ParseTuple(args, "OOO:Acceptor", &loop, &sock, &cb))
        return NULL;
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
    if (!a->context) {
        Py_DECREF(a);
        return NULL;
    }
    return (PyObject *)a;
}

static PyObject *acceptor_start(AcceptorObject *a, PyObject *unused)
{
    int ret;

    (void)unused;
    if (rlpy_loop_check_closed(a->loop) < 0)
        return NULL;
    if (a->active || a->closed)
        Py_RETURN_NONE;
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
    return 0;
}

static int acceptor_clear(AcceptorObject *a)
{
    Py_CLEAR(a->callback);
    Py_CLEAR(a->context);
    return 0;
}

static void acceptor_dealloc(AcceptorObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);

    PyObject_GC_UnTrack(a);
    Py_CLEAR(a->callback);
    Py_CLEAR(a->context);
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
