/*
 * The transports of ringloop._ext, one layer per file:
 *
 *   transport.c  Transport: what every transport does the same way, as
 *                asyncio's _SelectorTransport (and uvloop's
 *                UVBaseTransport): the life cycle (close, abort,
 *                connection_lost once, closing the fd), flow control
 *                (write buffer limits, pause/resume_writing), reading
 *                paused or not, the protocol, extra info, repr and the
 *                finalizer. It knows its subtypes only through the hooks
 *                of struct rlpy_transport_ops.
 *   wqueue.c     the write queue of the stream transports: bytes objects
 *                leaving in one vectored sendmsg/writev.
 *   streamio.c   the byte-stream machinery: reading into a Protocol or
 *                BufferedProtocol, writing through the write queue, the
 *                methods of StreamTransport; its subtypes say how they
 *                read and write through struct rlpy_stream_ops.
 *   stream.c     StreamTransport: a TCP/Unix stream socket.
 *   pipe.c       PipeTransport (under StreamTransport): either end of a
 *                pipe, FIFO, character device, PTY or socket
 *                (connect_read/write_pipe).
 *   cork.c       the loop-wide cork: what protocols write while they take
 *                received data leaves when the delivery returns.
 *   datagram.c   DatagramTransport: UDP/Unix datagram sockets.
 */
#ifndef RINGLOOP_TRANSPORT_H
#define RINGLOOP_TRANSPORT_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "pyloop.h"

/* ---- transport.c ------------------------------------------------------- */

typedef struct TransportObject TransportObject;

/* What a subtype does its own way. NULL hooks do nothing (flags: false). */
struct rlpy_transport_ops {
    /* Send what was held back (corked) now, as asyncio's write() would
     * have: before close, abort and whatever reads the write buffer. */
    void (*flush)(TransportObject *t);
    /* Bytes waiting in the write queue. */
    Py_ssize_t (*write_size)(TransportObject *t);
    /* Nothing queued and no write in flight. */
    bool (*write_idle)(TransportObject *t);
    /* Drop the write queue (no write op is in flight). */
    void (*wq_clear)(TransportObject *t);
    /* abort() or a fatal error closes the transport (before the base
     * does): complete what waits on the queue. */
    void (*on_force_close)(TransportObject *t, PyObject *exc);
    /* resume_reading() made reading possible again (the reader context
     * is already the caller's copy). 0, or -1 with an exception. */
    int (*resume)(TransportObject *t);
    /* _start_reading(), scheduled once connection_made() was. */
    void (*start_reading)(TransportObject *t);
    /* set_protocol(): swap t->protocol (buffered: it is a
     * BufferedProtocol). NULL: just swap. */
    void (*set_protocol)(TransportObject *t, PyObject *protocol, bool buffered);
    /* Close the fd after connection_lost() (the ops in flight on it had
     * their cancellation requested), or now, from the finalizer, with
     * nothing in flight. rlpy_tr_close_socket{,_now} for sockets. */
    void (*close_fd)(TransportObject *t);
    PyObject *(*close_fd_now)(TransportObject *t);
    /* Append the repr's words after "fd=N" (fd >= 0). -1 on error. */
    int (*repr_info)(TransportObject *t, PyObject *words);
    /* repr: the state word of an open transport, or NULL for none. */
    const char *repr_open;
    /* The finalizer warns even when close() was called (pipes do). */
    bool warn_closing;
};

struct TransportObject {
    PyObject_HEAD
    PyObject *extra; /* asyncio.BaseTransport's _extra slot (or NULL) */
    const struct rlpy_transport_ops *ops;
    LoopObject *loop;
    PyObject *sock; /* the socket, or the pipe object */
    PyObject *protocol;
    PyObject *server;
    PyObject *context; /* the reader's: read completions run in it */
    PyObject *wctx;    /* the writer's: write completions run in it */
    PyObject *weakreflist;
    PyObject *cork_next; /* cork.c: the loop's corked list (strong) */
    rl_op rop, wop, cop; /* read, write, close (socket) */
    Py_ssize_t high, low;
    int fd;
    int conn_lost;
    bool buffered; /* protocol is a BufferedProtocol */
    bool paused;   /* pause_reading() */
    bool closing;  /* close() or a forced close */
    bool write_paused;
    bool lost_done;   /* connection_lost() was called */
    bool released;    /* the fd's owner took it back: no finalizer */
    bool cork_listed; /* cork.c: on the loop's corked list */
    /* A plain socket's extra info is made on first use (rlpy_tr_extra()):
     * until then _extra lacks socket, sockname and peername, which are
     * kept here as the kernel gave them at creation (len 0: None). */
    bool names_lazy;
    bool names_in_c; /* names[] are taken (else the socket's methods) */
    /* Where peername goes: the caller's extra had it; first (a server's
     * transport: asyncio passes extra={"peername": ...}); or last. */
    enum { RLPY_PEER_GIVEN, RLPY_PEER_FIRST, RLPY_PEER_LAST } peer;
    socklen_t name_len[2];
    struct sockaddr_storage names[2]; /* sockname, peername */
};

/* OSError(err, strerror(err)), a new reference (NULL on failure). */
PyObject *rlpy_oserror(int err);
/* KeyboardInterrupt or SystemExit: leave run_forever with it. */
bool rlpy_is_fatal_base(PyObject *exc);
/* loop.call_exception_handler({message, exception, transport, protocol}). */
void rlpy_tr_report(TransportObject *t, PyObject *exc, const char *msg);
/* A protocol callback raised (the exception is set): what a failing
 * asyncio callback does. */
void rlpy_tr_callback_failed(TransportObject *t, const char *msg);
/* asyncio's _force_close() / _fatal_error() (which steals exc). */
void rlpy_tr_force_close(TransportObject *t, PyObject *exc);
void rlpy_tr_fatal_error(TransportObject *t, PyObject *exc, const char *msg);
/* Call pause_writing() / resume_writing() when the queue crossed a
 * limit. */
void rlpy_tr_maybe_pause(TransportObject *t);
void rlpy_tr_maybe_resume(TransportObject *t);
/* The write queue drained after close(): connection_lost() now; msg says
 * what failed if it raises. */
void rlpy_tr_lost_now(TransportObject *t, const char *msg);
/* Run bound method def of t with arg (NULL: none) from a Handle in the
 * next ready phase, as loop.call_soon(). 0, or -1 with an exception. */
int rlpy_tr_soon(TransportObject *t, PyMethodDef *def, PyObject *arg);
/* The subtype's tp_new: t (just allocated) takes loop, sock, its fd,
 * protocol (buffered: NULL or Py_None to ask isinstance), server (NULL:
 * None) and extra (a mapping copied into _extra, or NULL/None/empty), and
 * the reader context. Then the subtype adds to t->extra and calls
 * rlpy_tr_init_done(): server._attach(t). Both: 0, or -1 with an
 * exception (t is then ready to be dropped, its socket left alone). */
int rlpy_tr_init(TransportObject *t, const struct rlpy_transport_ops *ops,
                 PyObject *loop, PyObject *sock, int fd, PyObject *protocol,
                 PyObject *buffered, PyObject *server, PyObject *extra);
int rlpy_tr_init_done(TransportObject *t);
/* Before the subtype's tp_new allocates: loop must be an open ringloop
 * loop; sock.fileno(), ValueError when it is closed. The fd, or -1 with
 * an exception. */
int rlpy_tr_check(PyTypeObject *tp, PyObject *loop, PyObject *sock);
/* _extra of a socket: socket (a TransportSocket), sockname, peername
 * (unless given), as asyncio takes them at creation. For a plain
 * socket.socket of a family addr.c converts, only the two addresses are
 * taken now (getsockname(2), getpeername(2)); the Python objects are made
 * when _extra is first used, which a connection served without asking for
 * them never does. -1 with an exception. */
int rlpy_tr_extra_socket(TransportObject *t);
/* _extra with its lazy entries made (NULL without an exception: none);
 * NULL with an exception on failure. Borrowed. */
PyObject *rlpy_tr_extra(TransportObject *t);
/* _extra[key] = value, making _extra when there is none. */
int rlpy_tr_extra_set(TransportObject *t, PyObject *key, PyObject *value);
/* Closing a socket's fd: detach it and close it through the loop, which
 * cancels the ops still in flight on it first; or now. */
void rlpy_tr_close_socket(TransportObject *t);
PyObject *rlpy_tr_close_socket_now(TransportObject *t);
/* The subtype's traverse / clear / dealloc call these for the base. */
int rlpy_tr_traverse(TransportObject *t, visitproc visit, void *arg);
void rlpy_tr_clear(TransportObject *t);
/* Returns false when the finalizer resurrected t: return at once. */
bool rlpy_tr_dealloc(TransportObject *t);

/* ---- wqueue.c ---------------------------------------------------------- */

#define RLPY_WQ_IOV 256 /* iovecs per sendmsg / writev */

struct rlpy_wentry {
    PyObject *data; /* bytes */
    Py_ssize_t off;
};

/* Queued bytes objects (kept by reference: the iovecs point into them
 * while a sendmsg or writev is in flight). */
typedef struct {
    struct rlpy_wentry *q;
    size_t head, tail, cap;
    Py_ssize_t size; /* bytes not yet sent */
    struct msghdr msg;
    struct iovec iov[RLPY_WQ_IOV];
} rlpy_wqueue;

/* Append data (stolen) from offset off. moveable: no write in flight (the
 * entries may move). -1 with an exception (data is then released). */
int rlpy_wq_push(rlpy_wqueue *wq, PyObject *data, Py_ssize_t off,
                 bool moveable);
/* Point wq->iov and wq->msg at the queued data; the number of iovecs. */
size_t rlpy_wq_iov(rlpy_wqueue *wq);
/* n bytes were sent. */
void rlpy_wq_consume(rlpy_wqueue *wq, Py_ssize_t n);
void rlpy_wq_clear(rlpy_wqueue *wq);
void rlpy_wq_free(rlpy_wqueue *wq);

static inline bool rlpy_wq_empty(const rlpy_wqueue *wq)
{
    return wq->head == wq->tail;
}

/* ---- streamio.c, stream.c ---------------------------------------------- */

/* A byte stream transport: a socket's (stream.c) or a pipe's (pipe.c). */
typedef struct {
    TransportObject t;
    PyObject *pending;      /* list of bytes received while paused, or NULL */
    PyObject *empty_waiter; /* loop.sendfile(): set when the queue drains */
    rlpy_wqueue wq;
    Py_buffer rbuf;   /* BufferedProtocol: get_buffer()'s buffer, in flight */
    char *ibuf;       /* a subtype's own read buffer (PyMem), or NULL */
    bool read_done;   /* EOF or read error: no more recv */
    bool pending_eof; /* EOF seen while paused */
    bool rbuf_held;
    bool rbuf_stale; /* set_protocol() replaced rbuf's protocol */
    bool read_large; /* BufferedProtocol: reads are large (RL_F_AT_READY) */
    bool eof_req;    /* write_eof() */
    bool corked;     /* cork.c: queued writes wait for the delivery's end */
} StreamObject;

/* How a stream subtype reads and writes its fd. */
struct rlpy_stream_ops {
    struct rlpy_transport_ops base;
    /* Arm the read op when it can (rlpy_stream_can_read, not in flight). */
    void (*start_read)(StreamObject *s);
    /* Prepare a single-shot read of len bytes into buf. */
    void (*prep_read)(rl_op *op, int fd, void *buf, size_t len, rl_op_fn cb,
                      void *data);
    /* Prepare the write of the queue's iovecs. */
    void (*prep_write)(StreamObject *s, rl_op_fn cb);
    /* Read now, without blocking: bytes read, or -1 with errno. NULL:
     * a BufferedProtocol's reads are all ops. */
    ssize_t (*read_now)(int fd, void *buf, size_t len);
    /* Write now, without blocking: bytes written, or -1 with errno. */
    ssize_t (*write_now)(int fd, const void *buf, size_t len);
    /* EOF from the reader: what the protocol is told. */
    void (*on_eof)(StreamObject *s);
    bool cork;               /* writes made during a delivery are corked */
    bool proto_errors_close; /* data_received() raising closes */
    bool drop_when_closing;  /* write() after close() is dropped */
};

static inline const struct rlpy_stream_ops *rlpy_stream_ops(StreamObject *s)
{
    return (const struct rlpy_stream_ops *)s->t.ops;
}

/* streamio.c, for the stream subtypes (stream.c, pipe.c). */
bool rlpy_stream_can_read(StreamObject *s);
/* BufferedProtocol: get_buffer(-1), then prep_read into it. */
void rlpy_stream_read_buffered(StreamObject *s);
/* A read op's completion, with op->buf the data (multishot or not). */
void rlpy_stream_recv_done(rl_loop *rl, rl_op *op);
/* protocol.data_received() / eof_received() failed (exc stolen). */
void rlpy_stream_proto_failed(StreamObject *s, PyObject *exc, const char *msg);
/* The base's hooks every stream subtype uses: its table's .base starts
 * with RLPY_STREAM_HOOKS. */
#define RLPY_STREAM_HOOKS                                                      \
    .write_size = rlpy_stream_write_size,                                      \
    .write_idle = rlpy_stream_write_idle, .wq_clear = rlpy_stream_wq_clear,    \
    .on_force_close = rlpy_stream_on_force_close,                              \
    .resume = rlpy_stream_resume, .start_reading = rlpy_stream_start_reading,  \
    .set_protocol = rlpy_stream_set_protocol
Py_ssize_t rlpy_stream_write_size(TransportObject *t);
bool rlpy_stream_write_idle(TransportObject *t);
void rlpy_stream_wq_clear(TransportObject *t);
void rlpy_stream_on_force_close(TransportObject *t, PyObject *exc);
int rlpy_stream_resume(TransportObject *t);
void rlpy_stream_start_reading(TransportObject *t);
void rlpy_stream_set_protocol(TransportObject *t, PyObject *protocol,
                              bool buffered);
/* A read or write op was submitted (ret: rl_submit's): it holds s, or the
 * error closes s. */
void rlpy_stream_submitted(StreamObject *s, int ret, const char *msg);
/* The queue, idle until now, waits for the fd: in the writer context (a
 * copy of the current one), submit its write. */
void rlpy_stream_write_start(StreamObject *s);
/* The queue drained: the sendfile waiter, connection_lost() after
 * close(), the shutdown after write_eof(). */
void rlpy_stream_write_drained(StreamObject *s);
/* StreamTransport's methods write, writelines, _make_empty_waiter and
 * _reset_empty_waiter. */
PyObject *rlpy_stream_write(StreamObject *s, PyObject *data);
PyObject *rlpy_stream_writelines(StreamObject *s, PyObject *lines);
PyObject *rlpy_stream_make_empty_waiter(StreamObject *s, PyObject *unused);
PyObject *rlpy_stream_reset_empty_waiter(StreamObject *s, PyObject *unused);
int rlpy_stream_traverse(StreamObject *s, visitproc visit, void *arg);
int rlpy_stream_clear(StreamObject *s);
void rlpy_stream_dealloc(StreamObject *s);

/* ---- cork.c ------------------------------------------------------------ */

/* A protocol takes received data: from cork_begin() to cork_end(), what it
 * writes to corking stream transports is queued, and leaves in one
 * sendmsg per transport (the flush hook) when the delivery returns. */
void rlpy_cork_begin(LoopObject *loop);
void rlpy_cork_end(LoopObject *loop);
/* write() while corked: queue v's bytes (data itself when it is bytes,
 * else a copy: write_one() corks only small ones) and list s on the loop.
 * -1 with an exception set. */
int rlpy_cork_write(StreamObject *s, const Py_buffer *v, PyObject *data);

/* (The type specs: pyloop.h.) */

#endif /* RINGLOOP_TRANSPORT_H */
