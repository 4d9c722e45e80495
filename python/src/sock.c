/*
 * The loop's sock_* methods (one op and one future each).
 *
 * A SockOp object owns the rl_op, the buffers and the sockaddr of one call;
 * it holds its future, and the future holds it as a done callback, so that
 * cancelling the future cancels the op. The op holds a reference to its
 * SockOp from rl_submit to its final completion.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pyloop.h"

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

typedef struct {
    PyObject_HEAD LoopObject *loop;
    PyObject *fut;
    PyObject *sock;
    PyObject *data; /* K_RECV*: bytes received into; else the buffer owner */
    Py_buffer view;
    rl_op op;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct msghdr msg;
    struct iovec iov;
    Py_ssize_t done; /* K_SENDALL: bytes sent so far */
    int kind;
    int family, type, proto;
    bool view_held;
} SockOpObject;

static PyObject *oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

/* ---- addresses --------------------------------------------------------- */

/* socket module's makesockaddr() for the families the loop supports. */
PyObject *rlpy_sockaddr_to_py(const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (len == 0)
        Py_RETURN_NONE;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port),
                             (unsigned)ntohl(a->sin6_flowinfo),
                             (unsigned)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const void *)sa;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
        if (n > 0 && a->sun_path[0] == '\0')
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
        n = strnlen(a->sun_path, n);
        return PyUnicode_DecodeFSDefaultAndSize(a->sun_path, (Py_ssize_t)n);
    }
    default:
        return Py_BuildValue("(iy#)", sa->sa_family, sa->sa_data,
                             (Py_ssize_t)sizeof(sa->sa_data));
    }
}

/* A numeric address for family into *ss. -1 with ValueError when the
 * address needs resolution (the Python side resolves it then). */
int rlpy_sockaddr_from_py(int family, PyObject *addr,
                          struct sockaddr_storage *ss, socklen_t *len)
{
    const char *host;
    int port;

    memset(ss, 0, sizeof(*ss));
    if (family == AF_UNIX) {
        struct sockaddr_un *a = (void *)ss;
        PyObject *b;
        Py_ssize_t n;

        if (!PyUnicode_FSConverter(addr, &b))
            return -1;
        n = PyBytes_GET_SIZE(b);
        if ((size_t)n >= sizeof(a->sun_path)) {
            Py_DECREF(b);
            PyErr_SetString(PyExc_OSError, "AF_UNIX path too long");
            return -1;
        }
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path, PyBytes_AS_STRING(b), (size_t)n);
        Py_DECREF(b);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                           (n > 0 && a->sun_path[0] == '\0' ? 0 : 1));
        return 0;
    }
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
        PyErr_SetString(PyExc_ValueError, "not a numeric address");
        return -1;
    }
    host = PyUnicode_Check(PyTuple_GET_ITEM(addr, 0))
               ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0))
               : NULL;
    port = PyLong_Check(PyTuple_GET_ITEM(addr, 1))
               ? (int)PyLong_AsLong(PyTuple_GET_ITEM(addr, 1))
               : -1;
    if (!host || port < 0 || port > 65535) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "not a numeric address");
        return -1;
    }
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
            *len = sizeof(*a);
            return 0;
        }
    } else if (family == AF_INET6 && !strchr(host, '%')) {
        struct sockaddr_in6 *a = (void *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (PyTuple_GET_SIZE(addr) >= 3)
            a->sin6_flowinfo = htonl(
                (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2)));
        if (PyTuple_GET_SIZE(addr) >= 4)
            a->sin6_scope_id =
                (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
        if (PyErr_Occurred())
            return -1;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1) {
            *len = sizeof(*a);
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "not a numeric address");
    return -1;
}

/* ---- SockOp ------------------------------------------------------------ */

static void op_release(SockOpObject *o)
{
    if (o->view_held) {
        PyBuffer_Release(&o->view);
        o->view_held = false;
    }
}

static void set_result(SockOpObject *o, PyObject *res)
{
    PyObject *r;

    if (!res) {
        PyObject *exc = rlpy_exc_take();
        PyObject *name = PyUnicode_FromString("set_exception");
        r = name && exc ? PyObject_CallMethodOneArg(o->fut, name, exc) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(exc);
    } else {
        PyObject *name = PyUnicode_FromString("set_result");
        r = name ? PyObject_CallMethodOneArg(o->fut, name, res) : NULL;
        Py_XDECREF(name);
        Py_DECREF(res);
    }
    if (!r)
        PyErr_WriteUnraisable(o->fut);
    Py_XDECREF(r);
}

static int submit(SockOpObject *o);

static PyObject *accepted(SockOpObject *o, int fd)
{
    PyObject *mod, *sock, *addr, *r;

    mod = PyImport_ImportModule("socket");
    sock = mod ? PyObject_CallMethod(mod, "socket", "iiii", o->family,
                                     o->type | SOCK_NONBLOCK, o->proto, fd)
               : NULL;
    Py_XDECREF(mod);
    if (!sock) {
        close(fd);
        return NULL;
    }
    addr = rlpy_sockaddr_to_py((struct sockaddr *)&o->addr, o->addrlen);
    if (!addr) {
        Py_DECREF(sock);
        return NULL;
    }
    r = PyTuple_Pack(2, sock, addr);
    Py_DECREF(sock);
    Py_DECREF(addr);
    return r;
}

static void sockop_done(rl_loop *rl, rl_op *op)
{
    SockOpObject *o = op->data;
    int res = op->res;
    PyObject *r = NULL, *done;
    int isdone;

    (void)rl;
    done = PyObject_CallMethod(o->fut, "done", NULL);
    isdone = done ? PyObject_IsTrue(done) : 1;
    Py_XDECREF(done);
    PyErr_Clear();
    if (isdone || o->loop->closed) {
        if (o->kind == K_ACCEPT && res >= 0)
            close(res);
        goto out;
    }
    if (res == -EAGAIN || res == -EINTR) {
        if (submit(o) == 0)
            goto out;
        res = -EIO;
    }
    if (res < 0) {
        PyObject *exc = oserror(-res);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        op_release(o);
        set_result(o, NULL);
        goto out;
    }
    switch (o->kind) {
    case K_RECV:
        r = res == PyBytes_GET_SIZE(o->data)
                ? Py_NewRef(o->data)
                : PyBytes_FromStringAndSize(PyBytes_AS_STRING(o->data), res);
        break;
    case K_RECV_INTO:
    case K_SENDTO:
        op_release(o);
        r = PyLong_FromLong(res);
        break;
    case K_RECVFROM:
    case K_RECVFROM_INTO: {
        PyObject *addr = rlpy_sockaddr_to_py((struct sockaddr *)&o->addr,
                                             o->msg.msg_namelen);
        PyObject *first =
            o->kind == K_RECVFROM
                ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(o->data), res)
                : PyLong_FromLong(res);
        op_release(o);
        r = addr && first ? PyTuple_Pack(2, first, addr) : NULL;
        Py_XDECREF(addr);
        Py_XDECREF(first);
        break;
    }
    case K_SENDALL:
        o->done += res;
        if (o->done < o->view.len) {
            if (submit(o) == 0)
                goto out;
            op_release(o);
            set_result(o, NULL);
            goto out;
        }
        op_release(o);
        r = Py_NewRef(Py_None);
        break;
    case K_CONNECT: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(o->op.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            PyObject *exc = oserror(err);
            if (exc) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            r = NULL;
        } else {
            r = Py_NewRef(Py_None);
        }
        break;
    }
    case K_ACCEPT:
        r = accepted(o, res);
        break;
    case K_WRITABLE:
        r = Py_NewRef(Py_None);
        break;
    }
    set_result(o, r);
out:
    if (!rl_op_in_flight(&o->op)) {
        op_release(o);
        if (!o->loop->closed)
            rlpy_fd_unref(o->loop, o->op.fd);
        Py_DECREF(o);
    }
}

static int submit(SockOpObject *o)
{
    int fd = o->op.fd, ret;
    rl_loop *rl = o->loop->rl;

    switch (o->kind) {
    case K_RECV:
    case K_RECV_INTO:
        rl_prep_recv(&o->op, fd, o->view.buf, (size_t)o->view.len, 0,
                     sockop_done, o);
        break;
    case K_RECVFROM:
    case K_RECVFROM_INTO:
    case K_SENDTO:
        memset(&o->msg, 0, sizeof(o->msg));
        o->iov.iov_base = o->view.buf;
        o->iov.iov_len = (size_t)o->view.len;
        o->msg.msg_iov = &o->iov;
        o->msg.msg_iovlen = 1;
        o->msg.msg_name = &o->addr;
        o->msg.msg_namelen =
            o->kind == K_SENDTO ? o->addrlen : (socklen_t)sizeof(o->addr);
        if (o->kind == K_SENDTO)
            rl_prep_sendmsg(&o->op, fd, &o->msg, MSG_NOSIGNAL, sockop_done, o);
        else
            rl_prep_recvmsg(&o->op, fd, &o->msg, 0, sockop_done, o);
        break;
    case K_SENDALL:
        rl_prep_send(&o->op, fd, (char *)o->view.buf + o->done,
                     (size_t)(o->view.len - o->done), MSG_NOSIGNAL, sockop_done,
                     o);
        break;
    case K_CONNECT:
    case K_WRITABLE:
        rl_prep_poll(&o->op, fd, POLLOUT, false, sockop_done, o);
        break;
    case K_ACCEPT:
        o->addrlen = sizeof(o->addr);
        rl_prep_accept(&o->op, fd, (struct sockaddr *)&o->addr, &o->addrlen,
                       SOCK_NONBLOCK | SOCK_CLOEXEC, sockop_done, o);
        break;
    }
    ret = rl_submit(rl, &o->op);
    return ret;
}

static PyObject *sockop_call(SockOpObject *o, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    /* The future is done (cancelled): stop the op. */
    if (rl_op_in_flight(&o->op) && o->loop->rl)
        rl_op_cancel(o->loop->rl, &o->op);
    Py_RETURN_NONE;
}

static int sockop_traverse(SockOpObject *o, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(o));
    Py_VISIT(o->loop);
    Py_VISIT(o->fut);
    Py_VISIT(o->sock);
    Py_VISIT(o->data);
    return 0;
}

static int sockop_clear(SockOpObject *o)
{
    if (rl_op_in_flight(&o->op))
        return 0; /* the op owns the buffers: keep them */
    op_release(o);
    Py_CLEAR(o->fut);
    Py_CLEAR(o->data);
    Py_CLEAR(o->sock);
    return 0;
}

static void sockop_dealloc(SockOpObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);

    PyObject_GC_UnTrack(o);
    op_release(o);
    Py_CLEAR(o->fut);
    Py_CLEAR(o->data);
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

/* ---- the loop's methods ------------------------------------------------ */

int rlpy_sock_fd(PyObject *sock)
{
    PyObject *r = PyObject_CallMethod(sock, "fileno", NULL);
    long fd;

    if (!r)
        return -1;
    fd = PyLong_AsLong(r);
    Py_DECREF(r);
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

/* A new SockOp on fd (sock's, the loop checked open) with its future. */
static SockOpObject *sockop_make(LoopObject *loop, PyObject *sock, int fd,
                                 int kind)
{
    SockOpObject *o = PyObject_GC_New(SockOpObject, loop->st->SockOpType);

    if (!o)
        return NULL;
    memset((char *)o + sizeof(PyObject), 0, sizeof(*o) - sizeof(PyObject));
    Py_INCREF(loop->st->SockOpType);
    o->loop = (LoopObject *)Py_NewRef(loop);
    o->sock = Py_NewRef(sock);
    o->kind = kind;
    o->op.fd = fd;
    PyObject_GC_Track(o);
    o->fut = PyObject_CallMethodNoArgs((PyObject *)loop,
                                       loop->st->str_create_future);
    if (!o->fut) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

/* A new SockOp with its future; the caller fills it and calls start(). */
static SockOpObject *sockop_new(LoopObject *loop, PyObject *sock, int kind)
{
    int fd;

    if (rlpy_loop_check_closed(loop) < 0)
        return NULL;
    fd = rlpy_sock_fd(sock);
    return fd < 0 ? NULL : sockop_make(loop, sock, fd, kind);
}

/* Submit o's op; returns its future. Consumes the caller's reference: the
 * op holds one until its final completion. */
static PyObject *start(SockOpObject *o)
{
    PyObject *r, *fut;
    int ret;

    if (rlpy_fd_ref(o->loop, o->op.fd) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    ret = submit(o);
    if (ret < 0) {
        PyObject *exc = oserror(-ret);
        rlpy_fd_unref(o->loop, o->op.fd);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        Py_DECREF(o);
        return NULL;
    }
    r = PyObject_CallMethodOneArg(o->fut, o->loop->st->str_add_done_callback,
                                  (PyObject *)o);
    Py_XDECREF(r);
    PyErr_Clear();
    fut = Py_NewRef(o->fut);
    return fut; /* o's reference now belongs to the op */
}

/* The syscall answered at once: complete the future now (res NULL: with
 * the exception set) and return it. Consumes the reference to o. */
static PyObject *finish_now(SockOpObject *o, PyObject *res)
{
    PyObject *fut = Py_NewRef(o->fut);

    set_result(o, res);
    op_release(o);
    Py_DECREF(o);
    return fut;
}

static PyObject *errno_exc(int err)
{
    PyObject *exc = oserror(err);

    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static int check_nonblocking(PyObject *sock)
{
    PyObject *r = PyObject_CallMethod(sock, "gettimeout", NULL);
    int bad;

    if (!r)
        return -1;
    bad = r != Py_None && PyFloat_Check(r) && PyFloat_AS_DOUBLE(r) != 0.0;
    bad = bad || r == Py_None;
    Py_DECREF(r);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "the socket must be non-blocking");
        return -1;
    }
    return 0;
}

static PyObject *recv_common(LoopObject *loop, PyObject *sock, PyObject *arg,
                             int kind)
{
    SockOpObject *o;
    Py_ssize_t n;
    bool into = kind == K_RECV_INTO || kind == K_RECVFROM_INTO;

    if (loop->debug && check_nonblocking(sock) < 0)
        return NULL;
    o = sockop_new(loop, sock, kind);
    if (!o)
        return NULL;
    if (into) {
        o->data = Py_NewRef(arg);
    } else {
        n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
        if (n == -1 && PyErr_Occurred())
            goto err;
        if (n < 0) {
            PyErr_SetString(PyExc_ValueError, "negative buffersize in recv");
            goto err;
        }
        o->data = PyBytes_FromStringAndSize(NULL, n);
    }
    if (!o->data)
        goto err;
    if (into) {
        if (PyObject_GetBuffer(o->data, &o->view, PyBUF_WRITABLE) < 0)
            goto err;
        o->view_held = true;
    } else {
        o->view.buf = PyBytes_AS_STRING(o->data);
        o->view.len = PyBytes_GET_SIZE(o->data);
    }
    return start(o);
err:
    Py_DECREF(o);
    return NULL;
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

/* None when all of data went at once (no future: the sock_sendall()
 * coroutine returns without waiting), else a future for the rest. */
PyObject *rlpy_sock_sendall(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    SockOpObject *o;
    Py_buffer view;
    ssize_t n = 0;
    int fd;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_sendall(sock, data)");
        return NULL;
    }
    if (rlpy_loop_check_closed(loop) < 0)
        return NULL;
    if (loop->debug && check_nonblocking(args[0]) < 0)
        return NULL;
    fd = rlpy_sock_fd(args[0]);
    if (fd < 0 || PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    /* As asyncio: send what fits now, wait only for the rest. */
    while (view.len > 0) {
        n = send(fd, view.buf, (size_t)view.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0 && errno != EAGAIN) {
        PyBuffer_Release(&view);
        return errno_exc(errno);
    }
    if (n == view.len) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    o = sockop_make(loop, args[0], fd, K_SENDALL);
    if (!o) {
        PyBuffer_Release(&view);
        return NULL;
    }
    o->view = view;
    o->view_held = true;
    o->done = n > 0 ? n : 0;
    return start(o);
}

PyObject *rlpy_sock_sendto(LoopObject *loop, PyObject *const *args,
                           Py_ssize_t nargs)
{
    SockOpObject *o;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sock_sendto(sock, data, address)");
        return NULL;
    }
    o = sockop_new(loop, args[0], K_SENDTO);
    if (!o)
        return NULL;
    o->family = sock_int(args[0], "family");
    if (rlpy_sockaddr_from_py(o->family, args[2], &o->addr, &o->addrlen) < 0 ||
        PyObject_GetBuffer(args[1], &o->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    o->view_held = true;
    return start(o);
}

/* _sock_connect(sock, address): address must be numeric (resolved). */
PyObject *rlpy_sock_connect(LoopObject *loop, PyObject *const *args,
                            Py_ssize_t nargs)
{
    SockOpObject *o;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sock_connect(sock, address)");
        return NULL;
    }
    o = sockop_new(loop, args[0], K_CONNECT);
    if (!o)
        return NULL;
    o->family = sock_int(args[0], "family");
    if (rlpy_sockaddr_from_py(o->family, args[1], &o->addr, &o->addrlen) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    /* As asyncio: connect at once (the peer sees the SYN before we
     * return), then wait for writability if it is in progress. */
    while (connect(o->op.fd, (struct sockaddr *)&o->addr, o->addrlen) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS)
            return start(o);
        return finish_now(o, errno_exc(errno));
    }
    return finish_now(o, Py_NewRef(Py_None));
}

PyObject *rlpy_sock_accept(LoopObject *loop, PyObject *sock)
{
    SockOpObject *o;

    if (loop->debug && check_nonblocking(sock) < 0)
        return NULL;
    o = sockop_new(loop, sock, K_ACCEPT);
    if (!o)
        return NULL;
    o->family = sock_int(sock, "family");
    o->type = sock_int(sock, "type");
    o->proto = sock_int(sock, "proto");
    if (PyErr_Occurred()) {
        Py_DECREF(o);
        return NULL;
    }
    return start(o);
}

/* _sock_wait_writable(sock): a future done when sock is writable. */
PyObject *rlpy_sock_wait_writable(LoopObject *loop, PyObject *sock)
{
    SockOpObject *o = sockop_new(loop, sock, K_WRITABLE);

    return o ? start(o) : NULL;
}
