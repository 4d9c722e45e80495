/*
 * The loop's sock_* methods, as asyncio's: try the call at once; if it
 * would block, wait for readiness (a one-shot RL_OP_POLL) and try again.
 *
 * The kernel never reads or writes for a call nobody waits for any more:
 * a completion only says the socket is ready, and the call is made then,
 * if its future is not done. So cancelling a sock_recv() or sock_accept()
 * loses no byte and no connection (they stay in the socket for the next
 * call), and a cancelled sock_sendall() sends nothing more.
 *
 * A call that answers at once returns its result without a future or a
 * SockOp. One that waits becomes a SockOp object, which owns the buffer,
 * the sockaddr and the poll op; it holds its future, and the future holds
 * it as a done callback, so that cancelling the future cancels the poll.
 * The op holds a reference to its SockOp from rl_submit to its final
 * completion.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloop.h"

/* The receiving kinds first, then the sending ones. */
enum sock_kind {
    K_RECV,
    K_RECV_INTO,
    K_RECVFROM,
    K_RECVFROM_INTO,
    K_SENDALL,
    K_SENDTO,
    K_CONNECT, /* connect(2) said EINPROGRESS: poll for POLLOUT */
    K_ACCEPT,
    K_WRITABLE, /* a poll for POLLOUT (sendfile) */
};

/* One call's arguments and state: on the C stack while it is tried at
 * once, moved into a SockOp when it has to wait. */
struct sockcall {
    PyObject *data; /* K_RECV(FROM): the bytes received into; K_CONNECT: the
                       address (for the error message); else the buffer's
                       owner */
    Py_buffer view;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    Py_ssize_t done;  /* K_SENDALL: bytes sent so far */
    LoopObject *loop; /* borrowed (a SockOp holds it): counts the call */
    int kind, fd;
    int family, type, proto; /* K_ACCEPT: the new socket's */
    bool view_held;
};

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *fut;
    PyObject *sock;
    rl_op op; /* the poll */
    struct sockcall c;
    bool fd_held; /* counted in the loop's fd table (rlpy_fd_ref) */
} SockOpObject;

static PyObject *oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

/* Raise OSError(err) (the subclass errno maps to); returns NULL. */
static PyObject *errno_exc(int err)
{
    PyObject *exc = oserror(err);

    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* ---- one attempt ------------------------------------------------------- */

static PyObject *socket_type; /* socket.socket, imported on first accept */

static void call_release(struct sockcall *c)
{
    if (c->view_held) {
        PyBuffer_Release(&c->view);
        c->view_held = false;
    }
    Py_CLEAR(c->data);
}

static PyObject *accepted(struct sockcall *c, int fd)
{
    PyObject *sock, *addr, *r;

    if (!socket_type) {
        PyObject *mod = PyImport_ImportModule("socket");
        socket_type = mod ? PyObject_GetAttrString(mod, "socket") : NULL;
        Py_XDECREF(mod);
    }
    sock = socket_type ? PyObject_CallFunction(socket_type, "iiii", c->family,
                                               c->type, c->proto, fd)
                       : NULL;
    if (!sock) {
        close(fd);
        return NULL;
    }
    addr = rlpy_sockaddr_to_py((struct sockaddr *)&c->addr, c->addrlen);
    if (!addr) {
        PyObject *exc = rlpy_exc_take();
        Py_XDECREF(PyObject_CallMethod(sock, "close", NULL));
        PyErr_Clear();
        rlpy_exc_restore(exc);
        Py_DECREF(sock);
        return NULL;
    }
    r = PyTuple_Pack(2, sock, addr);
    Py_DECREF(sock);
    Py_DECREF(addr);
    return r;
}

/* The system call of c, non-blocking: its return value, or -1 with errno
 * (EINTR retried). */
static ssize_t call_syscall(struct sockcall *c)
{
    struct sockaddr *sa = (struct sockaddr *)&c->addr;
    size_t len = (size_t)c->view.len;
    int err = 0;
    socklen_t elen = sizeof(err);
    ssize_t n;

    do {
        switch (c->kind) {
        case K_RECV:
        case K_RECV_INTO:
            n = recv(c->fd, c->view.buf, len, MSG_DONTWAIT);
            break;
        case K_RECVFROM:
        case K_RECVFROM_INTO:
            c->addrlen = sizeof(c->addr);
            n = recvfrom(c->fd, c->view.buf, len, MSG_DONTWAIT, sa,
                         &c->addrlen);
            break;
        case K_SENDALL:
            n = send(c->fd, (char *)c->view.buf + c->done,
                     len - (size_t)c->done, MSG_DONTWAIT | MSG_NOSIGNAL);
            break;
        case K_SENDTO:
            n = sendto(c->fd, c->view.buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, sa,
                       c->addrlen);
            break;
        case K_ACCEPT:
            c->addrlen = sizeof(c->addr);
            n = accept4(c->fd, sa, &c->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case K_CONNECT: /* the poll said writable: how did it end? */
            n = getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
            if (n == 0 && err) {
                errno = err;
                n = -1;
            }
            break;
        default: /* K_WRITABLE: the poll said writable */
            n = 0;
            break;
        }
        if (c->kind <= K_RECVFROM_INTO)
            rl_loop_stats_count(c->loop->rl, RL_STATS_RECV, n);
        else if (c->kind <= K_SENDTO)
            rl_loop_stats_count(c->loop->rl, RL_STATS_SEND, n);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Try c once. A new reference to its result; or NULL with an exception
 * set; or NULL with *again set when it has to wait (still has to, for a
 * sock_sendall that sent a part). */
static PyObject *call_attempt(struct sockcall *c, bool *again)
{
    ssize_t n = call_syscall(c);
    PyObject *addr, *first, *r;

    *again = false;
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS) {
            *again = true;
            return NULL;
        }
        if (c->kind == K_CONNECT) {
            /* asyncio's _sock_connect_cb */
            PyObject *msg =
                PyUnicode_FromFormat("Connect call failed %S", c->data);
            PyObject *exc =
                msg ? PyObject_CallFunction(PyExc_OSError, "iO", err, msg)
                    : NULL;
            Py_XDECREF(msg);
            if (exc) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            return NULL;
        }
        return errno_exc(err);
    }
    switch (c->kind) {
    case K_RECV:
        if (n == c->view.len)
            return Py_NewRef(c->data);
        return PyBytes_FromStringAndSize(c->view.buf, n);
    case K_RECV_INTO:
    case K_SENDTO:
        return PyLong_FromSsize_t(n);
    case K_RECVFROM:
    case K_RECVFROM_INTO:
        addr = rlpy_sockaddr_to_py((struct sockaddr *)&c->addr, c->addrlen);
        first = c->kind == K_RECVFROM
                    ? PyBytes_FromStringAndSize(c->view.buf, n)
                    : PyLong_FromSsize_t(n);
        r = addr && first ? PyTuple_Pack(2, first, addr) : NULL;
        Py_XDECREF(addr);
        Py_XDECREF(first);
        return r;
    case K_SENDALL:
        c->done += n;
        if (c->done < c->view.len) {
            *again = true;
            return NULL;
        }
        Py_RETURN_NONE;
    case K_ACCEPT:
        return accepted(c, (int)n);
    default:
        Py_RETURN_NONE;
    }
}

/* ---- SockOp: a call that waits for readiness --------------------------- */

static PyObject *str_done, *str_set_result, *str_set_exception, *str_fileno,
    *empty_args;

static int intern_names(void)
{
    if (empty_args)
        return 0;
    str_set_result = PyUnicode_InternFromString("set_result");
    str_set_exception = PyUnicode_InternFromString("set_exception");
    str_done = PyUnicode_InternFromString("done");
    str_fileno = PyUnicode_InternFromString("fileno");
    if (!str_done || !str_set_result || !str_set_exception || !str_fileno)
        return -1;
    empty_args = PyTuple_New(0);
    return empty_args ? 0 : -1;
}

/* sock.fileno(); -1 with an exception set. */
static long sock_fileno(PyObject *sock)
{
    PyObject *r =
        intern_names() < 0 ? NULL : PyObject_CallMethodNoArgs(sock, str_fileno);
    long fd;

    if (!r)
        return -1;
    fd = PyLong_AsLong(r);
    Py_DECREF(r);
    return fd;
}

/* Complete o's future with res (stolen), or with the raised exception when
 * res is NULL. */
static void set_result(SockOpObject *o, PyObject *res)
{
    PyObject *r;

    if (!res) {
        PyObject *exc = rlpy_exc_take();
        r = exc ? PyObject_CallMethodOneArg(o->fut, str_set_exception, exc)
                : NULL;
        Py_XDECREF(exc);
    } else {
        r = PyObject_CallMethodOneArg(o->fut, str_set_result, res);
        Py_DECREF(res);
    }
    if (!r)
        PyErr_WriteUnraisable(o->fut);
    Py_XDECREF(r);
}

static bool fut_done(SockOpObject *o)
{
    PyObject *r = PyObject_CallMethodNoArgs(o->fut, str_done);
    int done = r ? PyObject_IsTrue(r) : 1;

    Py_XDECREF(r);
    PyErr_Clear();
    return done != 0;
}

static void sockop_done(rl_loop *rl, rl_op *op);

static int poll_submit(SockOpObject *o)
{
    unsigned events = o->c.kind <= K_RECVFROM_INTO || o->c.kind == K_ACCEPT
                          ? POLLIN
                          : POLLOUT;
    int ret;

    rl_prep_poll(&o->op, o->c.fd, events, false, sockop_done, o);
    ret = rl_submit(o->loop->rl, &o->op);
    if (ret == 0)
        Py_INCREF(o); /* the poll's, until its final completion */
    return ret;
}

/* The call is over (answered, failed, or its future done): release what
 * it held. */
static void sockop_finish(SockOpObject *o)
{
    call_release(&o->c);
    if (o->fd_held) {
        o->fd_held = false;
        if (o->loop->rl && !o->loop->closed)
            rlpy_fd_unref(o->loop, o->c.fd);
    }
}

/* The poll completed: make the call in the ready phase (a handle whose
 * callback is o), after the callbacks already queued, as asyncio runs its
 * reader and writer callbacks; one of those may cancel the future. */
static void sockop_done(rl_loop *rl, rl_op *op)
{
    SockOpObject *o = op->data;
    HandleObject *h;

    (void)rl;
    if (o->loop->closed || !o->fut || (op->res < 0 && fut_done(o))) {
        sockop_finish(o); /* the step checks the future when it runs */
    } else if (op->res == -ECANCELED) {
        /* not ours (fork, the fd forgotten): wait again, call nothing (a
         * connect in progress has no SO_ERROR yet) */
        int ret = poll_submit(o);
        if (ret < 0) {
            set_result(o, errno_exc(-ret));
            sockop_finish(o);
        }
    } else if (op->res < 0) {
        set_result(o, errno_exc(-op->res));
        sockop_finish(o);
    } else {
        h = rlpy_handle_new(o->loop, (PyObject *)o, empty_args, NULL);
        if (!h || rlpy_handle_schedule(h, false) < 0) {
            set_result(o, NULL);
            sockop_finish(o);
        }
        Py_XDECREF(h);
    }
    Py_DECREF(o);
}

/* sock.fileno() is still fd. */
static bool sock_has_fd(PyObject *sock, int fd)
{
    long v = sock_fileno(sock);

    PyErr_Clear();
    return v == fd;
}

/* The ready phase after a poll completed: make the call, unless nobody
 * waits for it any more. Nothing is read, accepted or sent then: that is
 * what makes cancelling a call lose nothing. */
static void sockop_step(SockOpObject *o)
{
    PyObject *r;
    bool again;
    int ret;

    if (o->loop->closed || !o->fut || fut_done(o)) {
        sockop_finish(o);
        return;
    }
    if (!sock_has_fd(o->sock, o->c.fd)) {
        /* The socket was closed while the call waited (io_uring's poll
         * kept the old file): its fd number may be another socket's now.
         * Make no call; the future stays pending, as on asyncio's loop,
         * whose selector forgets a closed fd. */
        sockop_finish(o);
        return;
    }
    r = call_attempt(&o->c, &again);
    if (again) {
        ret = poll_submit(o);
        if (ret == 0)
            return;
        r = errno_exc(-ret);
    }
    set_result(o, r);
    sockop_finish(o);
}

/* o() from its handle: the step; o(fut) as the future's done callback:
 * the future is done (cancelled), stop the poll. */
static PyObject *sockop_call(SockOpObject *o, PyObject *args, PyObject *kw)
{
    (void)kw;
    if (PyTuple_GET_SIZE(args) == 0)
        sockop_step(o);
    else if (rl_op_in_flight(&o->op) && o->loop->rl)
        rl_op_cancel(o->loop->rl, &o->op);
    Py_RETURN_NONE;
}

static int sockop_traverse(SockOpObject *o, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(o));
    Py_VISIT(o->loop);
    Py_VISIT(o->fut);
    Py_VISIT(o->sock);
    Py_VISIT(o->c.data);
    if (o->c.view_held)
        Py_VISIT(o->c.view.obj);
    return 0;
}

static int sockop_clear(SockOpObject *o)
{
    if (rl_op_in_flight(&o->op))
        return 0; /* the poll owns o: keep what the call needs */
    sockop_finish(o);
    Py_CLEAR(o->fut);
    Py_CLEAR(o->sock);
    return 0;
}

static void sockop_dealloc(SockOpObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);

    PyObject_GC_UnTrack(o);
    sockop_finish(o);
    Py_CLEAR(o->fut);
    Py_CLEAR(o->sock);
    Py_CLEAR(o->loop);
    tp->tp_free(o);
    Py_DECREF(tp);
}

static PyType_Slot sockop_slots[] = {
    {Py_tp_call, sockop_call},
    {Py_tp_dealloc, sockop_dealloc},
    {Py_tp_traverse, sockop_traverse},
    {Py_tp_clear, sockop_clear},
    {0, NULL},
};

PyType_Spec rlpy_sockop_spec = {
    .name = "ringloop._ext._SockOp",
    .basicsize = sizeof(SockOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = sockop_slots,
};

/* asyncio's _ensure_fd_no_transport(): a socket that a transport uses is
 * not waited on by sock_* methods (a call that answers at once is let
 * through, as in asyncio). */
static int check_no_transport(LoopObject *loop, int fd)
{
    PyObject *t = (size_t)fd < loop->nfds ? loop->fds[fd].transport : NULL;
    PyObject *r;
    int closing;

    if (!t)
        return 0;
    Py_INCREF(t); /* the table's pointer is borrowed */
    r = PyObject_CallMethod(t, "is_closing", NULL);
    closing = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (closing == 0)
        PyErr_Format(PyExc_RuntimeError,
                     "File descriptor %d is used by transport %R", fd, t);
    Py_DECREF(t);
    return closing == 1 ? 0 : -1;
}

/* The call c on sock could not finish at once: move it into a SockOp that
 * waits for readiness, and return the SockOp's future. c is emptied (its
 * references move) whatever happens. */
static PyObject *call_wait(LoopObject *loop, PyObject *sock, struct sockcall *c)
{
    SockOpObject *o;
    PyObject *r;
    int ret;

    if (intern_names() < 0 ||
        (c->kind != K_WRITABLE && check_no_transport(loop, c->fd) < 0)) {
        call_release(c);
        return NULL;
    }
    o = PyObject_GC_New(SockOpObject, loop->st->SockOpType);
    if (!o) {
        call_release(c);
        return NULL;
    }
    memset((char *)o + sizeof(PyObject), 0, sizeof(*o) - sizeof(PyObject));
    o->loop = (LoopObject *)Py_NewRef(loop);
    o->sock = Py_NewRef(sock);
    o->c = *c;
    memset(c, 0, sizeof(*c));
    PyObject_GC_Track(o);
    o->fut = PyObject_CallMethodNoArgs((PyObject *)loop,
                                       loop->st->str_create_future);
    if (!o->fut || rlpy_fd_ref(loop, o->c.fd) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    o->fd_held = true;
    ret = poll_submit(o);
    r = ret < 0 ? errno_exc(-ret)
                : PyObject_CallMethodOneArg(
                      o->fut, loop->st->str_add_done_callback, (PyObject *)o);
    if (!r) {
        Py_CLEAR(o->fut); /* nobody waits: the poll's end makes no call */
        if (rl_op_in_flight(&o->op))
            rl_op_cancel(loop->rl, &o->op);
        else
            sockop_finish(o);
        Py_DECREF(o);
        return NULL;
    }
    Py_DECREF(r);
    r = Py_NewRef(o->fut);
    Py_DECREF(o);
    return r;
}

/* Try c at once: its result, or (it would block) a future for it. */
static PyObject *call_start(LoopObject *loop, PyObject *sock,
                            struct sockcall *c)
{
    bool again;
    PyObject *r = call_attempt(c, &again);

    if (again)
        return call_wait(loop, sock, c);
    call_release(c);
    return r;
}

/* ---- the loop's methods ------------------------------------------------ */

int rlpy_sock_fd(PyObject *sock)
{
    long fd = sock_fileno(sock);

    if (fd == -1 && PyErr_Occurred())
        return -1;
    if (fd < 0) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return (int)fd;
}

static int sock_int(PyObject *sock, const char *name)
{
    PyObject *r = PyObject_GetAttrString(sock, name);
    long v;

    if (!r)
        return -1;
    v = PyLong_AsLong(r);
    Py_DECREF(r);
    return (int)v;
}

static int check_nonblocking(PyObject *sock)
{
    PyObject *r = PyObject_CallMethod(sock, "gettimeout", NULL);
    int bad;

    if (!r)
        return -1;
    bad = r == Py_None || (PyFloat_Check(r) && PyFloat_AS_DOUBLE(r) != 0.0);
    Py_DECREF(r);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "the socket must be non-blocking");
        return -1;
    }
    return 0;
}

/* Fill c for a call of kind on sock (the loop open, the socket
 * non-blocking in debug mode). -1 with an exception. */
static int call_init(struct sockcall *c, LoopObject *loop, PyObject *sock,
                     int kind, bool check)
{
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    if (rlpy_loop_check_closed(loop) < 0)
        return -1;
    c->loop = loop;
    if (check && loop->debug && check_nonblocking(sock) < 0)
        return -1;
    c->fd = rlpy_sock_fd(sock);
    return c->fd < 0 ? -1 : 0;
}

/* The writable buffer of a *_into call, as the socket module asks for it. */
static int writable_buffer(struct sockcall *c, PyObject *buf, const char *fn)
{
    if (PyObject_GetBuffer(buf, &c->view, PyBUF_WRITABLE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_BufferError) &&
            !PyErr_ExceptionMatches(PyExc_TypeError))
            return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "%s() argument 'buffer' must be read-write bytes-like "
                     "object, not %.200s",
                     fn, Py_TYPE(buf)->tp_name);
        return -1;
    }
    c->view_held = true;
    return 0;
}

static PyObject *recv_common(LoopObject *loop, PyObject *sock, PyObject *arg,
                             int kind)
{
    struct sockcall c;
    Py_ssize_t n;

    if (call_init(&c, loop, sock, kind, true) < 0)
        return NULL;
    if (kind == K_RECV_INTO || kind == K_RECVFROM_INTO) {
        if (writable_buffer(&c, arg,
                            kind == K_RECV_INTO ? "recv_into"
                                                : "recvfrom_into") < 0)
            return NULL;
        c.data = Py_NewRef(arg);
    } else {
        n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (n < 0) {
            PyErr_SetString(PyExc_ValueError,
                            kind == K_RECV ? "negative buffersize in recv"
                                           : "negative buffersize in recvfrom");
            return NULL;
        }
        c.data = PyBytes_FromStringAndSize(NULL, n);
        if (!c.data)
            return NULL;
        c.view.buf = PyBytes_AS_STRING(c.data);
        c.view.len = n;
    }
    if (c.view.len == 0 && (kind == K_RECV || kind == K_RECV_INTO)) {
        /* as the socket module: no system call (the kernel would wait for
         * a byte) */
        PyObject *r = kind == K_RECV ? Py_NewRef(c.data) : PyLong_FromLong(0);
        call_release(&c);
        return r;
    }
    return call_start(loop, sock, &c);
}

PyObject *rlpy_sock_recv(LoopObject *loop, PyObject *const *args,
                         Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_recv(sock, n)");
        return NULL;
    }
    return recv_common(loop, args[0], args[1], K_RECV);
}

PyObject *rlpy_sock_recv_into(LoopObject *loop, PyObject *const *args,
                              Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_recv_into(sock, buf)");
        return NULL;
    }
    return recv_common(loop, args[0], args[1], K_RECV_INTO);
}

PyObject *rlpy_sock_recvfrom(LoopObject *loop, PyObject *const *args,
                             Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_recvfrom(sock, bufsize)");
        return NULL;
    }
    return recv_common(loop, args[0], args[1], K_RECVFROM);
}

/* nbytes is applied by the Python side (a memoryview slice). */
PyObject *rlpy_sock_recvfrom_into(LoopObject *loop, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_sock_recvfrom_into(sock, buf)");
        return NULL;
    }
    return recv_common(loop, args[0], args[1], K_RECVFROM_INTO);
}

/* None when all of data went at once (the common case), else a future for
 * the rest. */
PyObject *rlpy_sock_sendall(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    struct sockcall c;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_sendall(sock, data)");
        return NULL;
    }
    if (call_init(&c, loop, args[0], K_SENDALL, true) < 0 ||
        PyObject_GetBuffer(args[1], &c.view, PyBUF_SIMPLE) < 0)
        return NULL;
    c.view_held = true;
    return call_start(loop, args[0], &c);
}

PyObject *rlpy_sock_sendto(LoopObject *loop, PyObject *const *args,
                           Py_ssize_t nargs)
{
    struct sockcall c;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sock_sendto(sock, data, address)");
        return NULL;
    }
    if (call_init(&c, loop, args[0], K_SENDTO, true) < 0)
        return NULL;
    c.family = sock_int(args[0], "family");
    if (PyErr_Occurred() ||
        rlpy_sockaddr_from_py(c.family, args[2], &c.addr, &c.addrlen) < 0 ||
        PyObject_GetBuffer(args[1], &c.view, PyBUF_SIMPLE) < 0)
        return NULL;
    c.view_held = true;
    return call_start(loop, args[0], &c);
}

/* _sock_connect(sock, address): address must be numeric (resolved). */
PyObject *rlpy_sock_connect(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    struct sockcall c;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_connect(sock, address)");
        return NULL;
    }
    if (call_init(&c, loop, args[0], K_CONNECT, false) < 0)
        return NULL;
    c.family = sock_int(args[0], "family");
    if (PyErr_Occurred() ||
        rlpy_sockaddr_from_py(c.family, args[1], &c.addr, &c.addrlen) < 0)
        return NULL;
    /* As asyncio: connect at once (the peer sees the SYN before we
     * return), then wait for writability if it is in progress. */
    if (connect(c.fd, (struct sockaddr *)&c.addr, c.addrlen) == 0)
        Py_RETURN_NONE;
    /* asyncio waits on any BlockingIOError or InterruptedError (a Unix
     * socket's full backlog says EAGAIN) */
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
        return errno_exc(errno);
    c.data = Py_NewRef(args[1]);
    return call_wait(loop, args[0], &c);
}

PyObject *rlpy_sock_accept(LoopObject *loop, PyObject *sock)
{
    struct sockcall c;

    if (call_init(&c, loop, sock, K_ACCEPT, true) < 0)
        return NULL;
    c.family = sock_int(sock, "family");
    c.type = sock_int(sock, "type") | SOCK_NONBLOCK;
    c.proto = sock_int(sock, "proto");
    if (PyErr_Occurred())
        return NULL;
    return call_start(loop, sock, &c);
}

/* _sock_wait_writable(sock): a future done when sock is writable. */
PyObject *rlpy_sock_wait_writable(LoopObject *loop, PyObject *sock)
{
    struct sockcall c;

    if (call_init(&c, loop, sock, K_WRITABLE, false) < 0)
        return NULL;
    return call_wait(loop, sock, &c);
}
