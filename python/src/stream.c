/*
 * Stream transports on TCP and Unix stream sockets: asyncio's
 * _SelectorSocketTransport on completions. The machinery is streamio.c's;
 * here is what a socket does its own way: a Protocol's data comes from one
 * multishot recv from the loop's buffer pool (each completion copied once
 * into a bytes object), writes are sendmsg/send, what a protocol writes
 * while it takes data is corked (cork.c) and leaves in one sendmsg when
 * the delivery returns, eof_received() may keep the transport open,
 * write_eof() shuts the socket's write side down, and a TCP socket gets
 * TCP_NODELAY. The socket is closed with an RL_OP_CLOSE op after
 * connection_lost() (transport.c), which also cancels the ops still in
 * flight on it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "transport.h"

static rlpy_state *state(StreamObject *s)
{
    return s->t.loop->st;
}

/* Protocol: one multishot recv, unless one is in flight. */
static void read_arm(StreamObject *s)
{
    if (!rlpy_stream_can_read(s) || rl_op_in_flight(&s->t.rop))
        return;
    rl_prep_recv_multishot(&s->t.rop, s->t.fd, rlpy_stream_recv_done, s);
    rlpy_stream_submitted(s, rl_submit(s->t.loop->rl, &s->t.rop),
                          "Fatal read error on socket transport");
}

/* asyncio's _read_ready__on_eof(). */
static void socket_on_eof(StreamObject *s)
{
    const char *msg = "Fatal error: protocol.eof_received() call failed.";
    PyObject *r;
    int keep;

    s->read_done = true;
    if (!s->t.protocol)
        return;
    r = PyObject_CallMethodNoArgs(s->t.protocol, state(s)->str_eof_received);
    keep = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (keep < 0) {
        rlpy_tr_fatal_error(&s->t, rlpy_exc_take(), msg);
        return;
    }
    if (!keep)
        Py_XDECREF(
            PyObject_CallMethodNoArgs((PyObject *)s, state(s)->str_close));
}

/* The flush hook: send what s queued while corked, at once, as write()
 * would have, in one sendmsg; what the socket does not take goes on as
 * any queued data. */
static void socket_flush(TransportObject *t)
{
    StreamObject *s = (StreamObject *)t;
    ssize_t sent;

    if (!s->corked)
        return;
    s->corked = false;
    if (t->conn_lost || rl_op_in_flight(&t->wop) || rlpy_wq_empty(&s->wq))
        return;
    rlpy_wq_iov(&s->wq);
    sent = sendmsg(t->fd, &s->wq.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    rl_loop_stats_count(t->loop->rl, RL_STATS_SEND, sent); /* stats */
    if (sent < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            rlpy_wq_clear(&s->wq);
            rlpy_tr_fatal_error(t, rlpy_oserror(errno),
                                "Fatal write error on socket transport");
            return;
        }
        sent = 0;
    }
    rlpy_wq_consume(&s->wq, sent);
    if (!rlpy_wq_empty(&s->wq)) {
        rlpy_stream_write_start(s);
        rlpy_tr_maybe_pause(t);
    } else if (t->closing || s->eof_req) {
        rlpy_stream_write_drained(s);
    }
}

static void socket_start_read(StreamObject *s)
{
    if (s->t.buffered)
        rlpy_stream_read_buffered(s);
    else
        read_arm(s);
}

static void socket_prep_read(rl_op *op, int fd, void *buf, size_t len,
                             rl_op_fn cb, void *data)
{
    rl_prep_recv(op, fd, buf, len, 0, cb, data);
}

static void socket_prep_write(StreamObject *s, rl_op_fn cb)
{
    rlpy_wq_iov(&s->wq);
    rl_prep_sendmsg(&s->t.wop, s->t.fd, &s->wq.msg, MSG_NOSIGNAL, cb, s);
}

static ssize_t socket_read_now(int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, MSG_DONTWAIT);
}

static ssize_t socket_write_now(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* read=polling|idle write=<bufsize=N>, as asyncio's socket transports. */
static int socket_repr_info(TransportObject *t, PyObject *words)
{
    PyObject *w;
    int r;

    socket_flush(t);
    w = PyUnicode_FromFormat("read=%s",
                             !t->paused && !t->closing ? "polling" : "idle");
    r = w ? PyList_Append(words, w) : -1;
    Py_XDECREF(w);
    if (r < 0)
        return -1;
    w = PyUnicode_FromFormat("write=<bufsize=%zd>",
                             ((StreamObject *)t)->wq.size);
    r = w ? PyList_Append(words, w) : -1;
    Py_XDECREF(w);
    return r;
}

/* A socket's family, type and proto as Python sees them (socket.socket's
 * family and type are properties: read _socket.socket's). */
static long sock_attr(rlpy_state *st, PyObject *sock, PyObject *descr,
                      PyObject *name)
{
    PyObject *r;
    long v;

    if (descr && PyObject_TypeCheck(sock, st->SocketType))
        r = Py_TYPE(descr)->tp_descr_get(descr, sock,
                                         (PyObject *)Py_TYPE(sock));
    else
        r = PyObject_GetAttr(sock, name);
    v = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    return v;
}

/* asyncio's _set_nodelay(): TCP sockets send small writes at once. */
static int set_nodelay(rlpy_state *st, PyObject *sock, int fd)
{
    long family, type, proto;
    int one = 1;

    family = sock_attr(st, sock, st->SocketFamily, st->str_family);
    type = family < 0 ? -1 : sock_attr(st, sock, st->SocketKind, st->str_type);
    proto = type < 0 ? -1 : sock_attr(st, sock, NULL, st->str_proto);
    if (PyErr_Occurred())
        return -1;
    if ((family != AF_INET && family != AF_INET6) || type != SOCK_STREAM ||
        proto != IPPROTO_TCP)
        return 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static const struct rlpy_stream_ops socket_ops = {
    .base =
        {
            RLPY_STREAM_HOOKS,
            .flush = socket_flush,
            .close_fd = rlpy_tr_close_socket,
            .close_fd_now = rlpy_tr_close_socket_now,
            .repr_info = socket_repr_info,
        },
    .start_read = socket_start_read,
    .prep_read = socket_prep_read,
    .prep_write = socket_prep_write,
    .read_now = socket_read_now,
    .write_now = socket_write_now,
    .on_eof = socket_on_eof,
    .cork = true,
    .proto_errors_close = true,
};

/* StreamTransport(loop, sock, protocol, buffered=None, server=None,
 * extra=None): buffered None asks isinstance(protocol, BufferedProtocol). */
static PyObject *stream_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop",   "sock",  "protocol", "buffered",
                             "server", "extra", NULL};
    PyObject *loop, *sock, *protocol, *buffered = NULL, *server = NULL;
    PyObject *extra = NULL;
    StreamObject *s;
    int fd;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OOO:StreamTransport",
                                     kwlist, &loop, &sock, &protocol, &buffered,
                                     &server, &extra))
        return NULL;
    fd = rlpy_tr_check(tp, loop, sock);
    if (fd < 0 || set_nodelay(((LoopObject *)loop)->st, sock, fd) < 0)
        return NULL;
    s = (StreamObject *)tp->tp_alloc(tp, 0);
    if (!s)
        return NULL;
    if (rlpy_tr_init(&s->t, &socket_ops.base, loop, sock, fd, protocol,
                     buffered, server, extra) < 0 ||
        rlpy_tr_extra_socket(&s->t) < 0 || rlpy_tr_init_done(&s->t) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* ---- Python API -------------------------------------------------------- */

static PyObject *socket_write_eof(StreamObject *s, PyObject *unused)
{
    (void)unused;
    if (s->t.closing || s->eof_req)
        Py_RETURN_NONE;
    socket_flush(&s->t);
    if (s->t.closing) /* the send failed: that closed it */
        Py_RETURN_NONE;
    s->eof_req = true;
    if (rlpy_stream_write_idle(&s->t) && shutdown(s->t.fd, SHUT_WR) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *socket_can_write_eof(StreamObject *s, PyObject *unused)
{
    (void)s;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyMethodDef stream_methods[] = {
    {"write", (PyCFunction)rlpy_stream_write, METH_O,
     "Queue data to send; send at once when nothing is queued."},
    {"writelines", (PyCFunction)rlpy_stream_writelines, METH_O,
     "Write each buffer of an iterable."},
    {"write_eof", (PyCFunction)socket_write_eof, METH_NOARGS,
     "Shut the write side down once the queue drained."},
    {"can_write_eof", (PyCFunction)socket_can_write_eof, METH_NOARGS, NULL},
    {"_make_empty_waiter", (PyCFunction)rlpy_stream_make_empty_waiter,
     METH_NOARGS, NULL},
    {"_reset_empty_waiter", (PyCFunction)rlpy_stream_reset_empty_waiter,
     METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot stream_slots[] = {
    {Py_tp_doc, "The C core of ringloop's TCP/Unix stream transport."},
    {Py_tp_new, stream_new},
    {Py_tp_dealloc, rlpy_stream_dealloc},
    {Py_tp_traverse, rlpy_stream_traverse},
    {Py_tp_clear, rlpy_stream_clear},
    {Py_tp_methods, stream_methods},
    {0, NULL},
};

PyType_Spec rlpy_stream_spec = {
    .name = "ringloop._ext.StreamTransport",
    .basicsize = sizeof(StreamObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = stream_slots,
};
