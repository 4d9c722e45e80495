/*
 * ringloop._ext: the CPython extension's shared declarations.
 *
 * One file per asyncio concept:
 *   util.c     what every type calls, below the types: the module state,
 *              exceptions, the clock, the loop's closed check and stash
 *   module.c   module state and Py_mod_exec: registers the types
 *   loop.c     ringloop._ext.Loop: scheduling, the run loop, close
 *   handle.c   Handle and TimerHandle, and running a callback
 *   fdwatch.c  add_reader/add_writer: level-triggered fd watches
 *   addr.c     socket addresses between C and Python
 *   transport.c, streamio.c, stream.c, pipe.c, datagram.c, wqueue.c,
 *   cork.c     the transports, declared in transport.h
 *   sock.c     sock_* methods (tried at once, else after a readiness poll)
 *   file.c     the _file_* methods ringloop.files awaits (core file ops)
 *   acceptor.c the server Acceptor (multishot accept), which sets up
 *              plain connections (socket, protocol, transport) in C
 *   server.c   ServerBase: Server's transport count and client set
 * Transports and sock_* operations hold their own rl_op structs and find
 * the loop's rl_loop in LoopObject.rl. sock_* ops count themselves in the
 * fd table (struct rlpy_fdslot.nops) so that the backend forgets an fd once
 * nothing of it is in flight: asyncio lets callers close(2) such sockets.
 * Transports close their sockets through RL_OP_CLOSE instead (pipe
 * transports: the pipe object closes its fd once the backend forgot it).
 *
 * Reference ownership, written down once:
 *   - A scheduled handle (queued in the core's ready queue, its timer armed,
 *     or pushed to the thread-safe queue) is owned by the loop: one strong
 *     reference, and the handle is on the loop's `sched` list so that
 *     traverse, clear and close can find it. It is released just after its
 *     callback ran or when it is cancelled.
 *   - A handle holds a strong reference to its loop (asyncio's h._loop).
 *   - An add_reader/add_writer watch (struct rlpy_io) is malloc'd, owns its
 *     Handle, and lives until it was removed and its poll op had its final
 *     completion.
 *   - A transport, SockOp or Acceptor holds one reference to itself per op
 *     in flight (taken at rl_submit, dropped in the final completion), so
 *     the buffers and sockaddrs the op points into outlive it.
 */
#ifndef RINGLOOP_PYLOOP_H
#define RINGLOOP_PYLOOP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringloop.h"

#if PY_VERSION_HEX < 0x030A0000
#error "ringloop needs CPython 3.10 or newer"
#endif

/* PyMemberDef type codes: structmember.h before 3.12, Python.h since. */
#if PY_VERSION_HEX >= 0x030C0000
#define RLPY_T_PYSSIZET Py_T_PYSSIZET
#define RLPY_T_DOUBLE Py_T_DOUBLE
#define RLPY_READONLY Py_READONLY
#else
#include <structmember.h>
#define RLPY_T_PYSSIZET T_PYSSIZET
#define RLPY_T_DOUBLE T_DOUBLE
#define RLPY_READONLY READONLY
#endif

#define rlpy_container_of(ptr, type, member)                                   \
    ((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * The memory of dead handles, kept for reuse per loop and type. A reused
 * handle costs neither an allocation nor a tick of the garbage collector's
 * allocation count (a new one brings the next gen-0 collection closer).
 * The list grows to the largest number of handles freed between two
 * allocations (call_soon_threadsafe from a producer thread makes thousands
 * per GIL switch; call_later in a loop keeps as many), up to this bound.
 */
#define RLPY_FREE_HANDLES_MAX 16384

typedef struct {
    PyObject **items;
    int n, cap;
} rlpy_freelist;

typedef struct LoopObject LoopObject;
typedef struct HandleObject HandleObject;

/* The interned names the transports call or look up (str_<name>). */
/* clang-format off */
#define RLPY_TRANSPORT_NAMES(X)                                                \
    X(__name__) X(_attach) X(_detach) X(buffer_updated) X(close)               \
    X(connection_lost) X(datagram_received) X(detach) X(done)                  \
    X(eof_received) X(error_received) X(family) X(fileno) X(get_buffer)        \
    X(getpeername) X(getsockname) X(pause_writing) X(peername) X(pipe)         \
    X(proto) X(resume_writing) X(set_exception) X(set_result) X(socket)        \
    X(sockname) X(type)
/* clang-format on */

typedef struct rlpy_state {
    PyTypeObject *LoopType;
    PyTypeObject *HandleType;
    PyTypeObject *TimerHandleType;
    PyTypeObject *StreamType;
    PyTypeObject *SockOpType;
    PyTypeObject *AcceptorType;
    PyTypeObject *ServerBaseType;
    PyTypeObject *DgramType;
    PyObject *Future;      /* asyncio.Future */
    PyObject *Task;        /* asyncio.Task */
    PyObject *kw_task;     /* ("loop", "name"[, "context"]): Task(coro, ...) */
    PyObject *kw_task_ctx; /* ("context",): a task factory's keyword */
    PyObject *str_set_name;
    PyObject *support; /* ringloop._support, imported on first use */
    PyObject *kw_loop; /* ("loop",): keyword names for Future(loop=...) */
    PyObject *str_call_exception_handler;
    PyObject *str_message;
    PyObject *str_exception;
    PyObject *str_handle;
    PyObject *str_source_traceback;
    PyObject *str_data_received;     /* called once per received chunk */
    PyObject *str_create_future;     /* sock_*: once per waiting call */
    PyObject *str_add_done_callback; /* sock_*: once per call */
    /* transport.h: the transport types, what they are made with, and the
     * names they call */
    PyTypeObject *TransportType;
    PyTypeObject *PipeType;
    PyObject *BufferedProtocol;     /* asyncio.BufferedProtocol */
    PyTypeObject *TransportSocket;  /* asyncio.trsock.TransportSocket */
    PyObject *TransportSocket_sock; /* its _sock slot's descriptor */
    PyTypeObject *SocketType;       /* _socket.socket */
    PyTypeObject *PySocketType;     /* socket.socket */
    PyObject *SocketFamily;         /* its family and type descriptors */
    PyObject *SocketKind;
#define RLPY_TRANSPORT_NAME(name) PyObject *str_##name;
    RLPY_TRANSPORT_NAMES(RLPY_TRANSPORT_NAME)
#undef RLPY_TRANSPORT_NAME
} rlpy_state;

/* Where a handle is while the loop owns it. */
enum rlpy_where {
    RLPY_IDLE = 0,   /* not scheduled */
    RLPY_READY,      /* in the core's ready queue (cb) */
    RLPY_TIMER,      /* its rl_timer is armed or expired */
    RLPY_THREADSAFE, /* pushed with rl_call_threadsafe, not yet run */
    RLPY_IO,         /* owned by an add_reader/add_writer watch */
};

struct HandleObject {
    PyObject_HEAD
    rl_callback cb;   /* node in the core's ready/thread-safe queues */
    LoopObject *loop; /* strong; NULL once cleared */
    PyObject *callback;
    PyObject *args;      /* a tuple */
    PyObject *context;   /* a contextvars.Context */
    PyObject *source_tb; /* debug mode: where it was created */
    PyObject *repr;      /* debug mode: the repr kept by cancel() */
    PyObject *weakreflist;
    HandleObject *sched_prev, *sched_next; /* the loop's scheduled list */
    uint8_t where;                         /* enum rlpy_where */
    bool cancelled;
    bool ctx_hidden; /* context is this handle's own copy, kept untracked */
};

typedef struct {
    HandleObject h;
    rl_timer timer;
    double when;
} TimerHandleObject;

struct rlpy_io; /* fdwatch.c */

/* What the loop knows about one fd number. */
struct rlpy_fdslot {
    struct rlpy_io *io[2]; /* add_reader, add_writer */
    unsigned nops;         /* sock_* ops in flight */
    PyObject *transport;   /* borrowed: the transport using the fd */
};

struct LoopObject {
    PyObject_HEAD
    rl_loop *rl; /* NULL before __init__ and after close() */
    rlpy_state *st;
    HandleObject *sched;    /* scheduled handles (doubly linked) */
    HandleObject *last_new; /* borrowed: the handle scheduled last */
    rlpy_freelist free_handles, free_timers;
    struct rlpy_fdslot *fds;
    size_t nfds;
    PyObject *backend;         /* "uring" or "epoll" */
    PyObject *fallback_reason; /* why auto did not pick io_uring, or None */
    PyObject *features;        /* frozenset of active fast-path names */
    int fallback_errno;
    PyObject *pending_exc; /* raised by a callback: leave run_forever */
    PyObject *current_handle;
    PyObject *task_factory; /* _task_factory: NULL for None */
    PyObject *weakreflist;
    PyThreadState *tstate; /* saved while the backend sleeps */
    /* cork.c: while a protocol takes received data, what it writes to
     * stream transports waits on this list (strong references) and leaves
     * in one sendmsg per transport when the callback returns. */
    PyObject *corked;
    int cork_depth;
    unsigned long thread_id;
    double slow_callback_duration;
    /* stats(): callbacks slower than slow_callback_duration (debug mode
     * only) and the slowest one (seconds, repr). */
    unsigned long slow_count;
    double slow_worst;
    PyObject *slow_desc; /* a str, or NULL */
    int debug;
    bool closed;
    bool stopping;
    bool running;
};

/*
 * contextvars, as asyncio: a transport runs its protocol's callbacks from
 * completions in the context its asyncio counterpart's reader (or writer)
 * Handle would have copied, and the Acceptor runs each connection's set-up
 * in a copy of the context that started serving. Entering one costs two
 * pointer swaps (no Python-level wrapper per call).
 *
 * rlpy_ctx_enter(ctx) makes ctx current and returns a new reference to it,
 * for the caller to keep in a local variable and pass to rlpy_ctx_exit():
 * a transport may drop the context it entered meanwhile (resume_reading(),
 * a write from resume_writing()), and PyContext_Exit() still writes to the
 * context after releasing the thread state's reference. NULL (and nothing
 * to undo) when ctx is NULL, or already entered: a completion that runs
 * synchronously inside a callback of the same transport, which then
 * already runs in it. No exception may be set when called.
 */
static inline PyObject *rlpy_ctx_enter(PyObject *ctx)
{
    if (!ctx)
        return NULL;
    if (PyContext_Enter(ctx) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return Py_NewRef(ctx);
}

static inline void rlpy_ctx_exit(PyObject *entered)
{
    if (!entered)
        return;
    if (PyContext_Exit(entered) < 0)
        PyErr_Clear();
    Py_DECREF(entered);
}

/* ---- module.c ---------------------------------------------------------- */
extern PyModuleDef rlpy_module;

/* ---- util.c ------------------------------------------------------------ */
rlpy_state *rlpy_state_of_type(PyTypeObject *tp);
/* A new reference to ringloop._support.<name>, or NULL. */
PyObject *rlpy_support(rlpy_state *st, const char *name);
/* Take the raised exception (normalized, with its traceback) / raise it. */
PyObject *rlpy_exc_take(void);
void rlpy_exc_restore(PyObject *exc);
/* asyncio's transport classes, our transports' bases, have the layout we
 * expect: the object header and one slot (_extra). -1 with ImportError. */
int rlpy_transport_layout_check(PyObject *base);
/* CLOCK_MONOTONIC in seconds: the core's clock. */
double rlpy_monotonic(void);
/* RuntimeError("Event loop is closed") and -1 when it is. */
int rlpy_loop_check_closed(LoopObject *loop);
/* Keep exc (stolen) to re-raise from run_forever and stop the ready phase:
 * what KeyboardInterrupt or SystemExit in a callback does. */
void rlpy_loop_stash_exc(LoopObject *loop, PyObject *exc);

/* ---- loop.c ------------------------------------------------------------ */
extern PyType_Spec rlpy_loop_spec;

/* ---- handle.c ---------------------------------------------------------- */
extern PyType_Spec rlpy_handle_spec;
extern PyType_Spec rlpy_timer_handle_spec;
/* A new handle for callback(*args) in context (NULL: a copy of the current
 * one). args is a tuple. In debug mode it records where it was created. */
HandleObject *rlpy_handle_new(LoopObject *loop, PyObject *callback,
                              PyObject *args, PyObject *context);
TimerHandleObject *rlpy_timer_handle_new(LoopObject *loop, double when,
                                         PyObject *callback, PyObject *args,
                                         PyObject *context);
/* Schedule h (owned by the caller) to run in the next ready phase; the
 * loop takes its own reference. Loop thread, or any thread with ts. */
int rlpy_handle_schedule(HandleObject *h, bool threadsafe);
int rlpy_timer_handle_schedule(TimerHandleObject *t);
/* Undo the loop's ownership of a scheduled handle without running it. */
void rlpy_handle_unschedule(HandleObject *h);
/* Run h's callback in its context, as asyncio's Handle._run: exceptions go
 * to loop.call_exception_handler. Returns -1 with an exception set only for
 * KeyboardInterrupt, SystemExit, or a failing exception handler. */
int rlpy_handle_invoke(HandleObject *h);
/* Free the dead handles kept in fl for reuse (the loop is torn down). */
void rlpy_freelist_clear(rlpy_freelist *fl);
/* Visit the scheduled handles, or what they refer to for those the loop
 * owns alone and keeps untracked (see handle.c). */
int rlpy_sched_traverse(LoopObject *loop, visitproc visit, void *arg);

/* Mark h cancelled as Handle.cancel() does (no unscheduling). */
int rlpy_handle_mark_cancelled(HandleObject *h);

/* ---- addr.c ------------------------------------------------------------ */
/* The address the socket module would return for sa (None when len is 0:
 * an unnamed peer). */
PyObject *rlpy_sockaddr_to_py(const struct sockaddr *sa, socklen_t len);
/* A numeric address of family into *ss and *len, as the socket module
 * parses one: TypeError/OverflowError/OSError for what it refuses, -1
 * with ValueError when addr needs resolution (a name: the caller's Python
 * side resolves it). */
int rlpy_sockaddr_from_py(int family, PyObject *addr,
                          struct sockaddr_storage *ss, socklen_t *len);

/* ---- fdwatch.c --------------------------------------------------------- */
PyObject *rlpy_loop_add_reader(LoopObject *self, PyObject *const *args,
                               Py_ssize_t nargs);
PyObject *rlpy_loop_add_writer(LoopObject *self, PyObject *const *args,
                               Py_ssize_t nargs);
PyObject *rlpy_loop_remove_reader(LoopObject *self, PyObject *fileobj);
PyObject *rlpy_loop_remove_writer(LoopObject *self, PyObject *fileobj);
/* close(): drop every watch; their ops finish inside rl_loop_free(). */
void rlpy_fdwatch_close_all(LoopObject *self);
int rlpy_fdwatch_traverse(LoopObject *self, visitproc visit, void *arg);
/* A sock_* op on fd starts / had its final completion. When the last one
 * ends and fd has no watch, the backend forgets fd: the caller may close(2)
 * it behind the loop's back, as asyncio allows. */
int rlpy_fd_ref(LoopObject *self, int fd);
void rlpy_fd_unref(LoopObject *self, int fd);
/* A transport owns fd from creation until its socket is closed: add_reader
 * and friends refuse it then, as asyncio does. The pointer is borrowed and
 * must be cleared (with the same t) before t goes away. */
int rlpy_fd_set_transport(LoopObject *self, int fd, PyObject *t);
void rlpy_fd_clear_transport(LoopObject *self, int fd, PyObject *t);

/* ---- transport.h: the transport types ---------------------------------- */
extern PyType_Spec rlpy_transport_spec;
extern PyType_Spec rlpy_stream_spec;
extern PyType_Spec rlpy_pipe_spec;
extern PyType_Spec rlpy_dgram_spec;

/* ---- sock.c ------------------------------------------------------------ */
extern PyType_Spec rlpy_sockop_spec;
/* sock.fileno() as an int; -1 with an exception (OSError for a closed
 * socket). */
int rlpy_sock_fd(PyObject *sock);
PyObject *rlpy_sock_recv(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_recv_into(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_recvfrom(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_recvfrom_into(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_sendall(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_sendto(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_connect(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *rlpy_sock_accept(LoopObject *, PyObject *sock);
PyObject *rlpy_sock_wait_writable(LoopObject *, PyObject *sock);

/* ---- file.c: the FileOp type and the loop's _file_* methods ---------- */
int rlpy_file_init(PyObject *mod, rlpy_state *st);

/* ---- acceptor.c -------------------------------------------------------- */
extern PyType_Spec rlpy_acceptor_spec;

/* ---- server.c ---------------------------------------------------------- */
extern PyType_Spec rlpy_server_spec;
/* server._attach(transport) / server._detach(transport), with no Python
 * frame for a ServerBase (ringloop's Server): a transport calls the first
 * when it is made for a server, the second after its connection_lost().
 * transport may be Py_None (counted only). 0, or -1 with an exception. */
int rlpy_server_attach(PyObject *server, PyObject *transport);
int rlpy_server_detach(PyObject *server, PyObject *transport);

#endif /* RINGLOOP_PYLOOP_H */
