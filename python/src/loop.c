/*
 * ringloop._ext.Loop: the C half of ringloop.Loop.
 *
 * Here are the hot paths: call_soon, call_soon_threadsafe, call_later,
 * call_at, time, create_future, and the run loop, which drives the core one
 * asyncio iteration at a time (rl_loop_run(RL_RUN_ONCE)) until stop(). The
 * cold paths (run_until_complete, executors, signals, the exception handler
 * API, ...) are Python, in ringloop/_loop.py, on top of these.
 *
 * The GIL is released only while the backend sleeps (the block hooks).
 * Python signal handlers run right after such a sleep, so Ctrl-C leaves
 * run_forever() with KeyboardInterrupt as it does in asyncio.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pyloop.h"

/* ---- checks asyncio makes ---------------------------------------------- */

static int check_thread(LoopObject *loop)
{
    if (loop->thread_id && loop->thread_id != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop "
                        "other than the current one");
        return -1;
    }
    return 0;
}

/* Debug mode: asyncio's BaseEventLoop._check_callback. */
static int check_callback(LoopObject *loop, PyObject *callback,
                          const char *method)
{
    PyObject *fn = rlpy_support(loop->st, "check_callback"), *r;

    if (!fn)
        return -1;
    r = PyObject_CallFunction(fn, "Os", callback, method);
    Py_DECREF(fn);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* ---- the GIL around the backend's sleep -------------------------------- */

static void block_before(rl_loop *rl, void *arg)
{
    LoopObject *self = arg;

    (void)rl;
    self->tstate = PyEval_SaveThread();
}

static void block_after(rl_loop *rl, void *arg)
{
    LoopObject *self = arg;

    (void)rl;
    PyEval_RestoreThread(self->tstate);
    self->tstate = NULL;
    /* A signal woke us (EINTR) or came while we slept: run the Python
     * handlers now, as select() does in asyncio. */
    if (self->running && !self->pending_exc && PyErr_CheckSignals() < 0)
        rlpy_loop_stash_exc(self, rlpy_exc_take());
}

/* ---- creation and teardown --------------------------------------------- */

static PyObject *loop_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    rlpy_state *st = rlpy_state_of_type(tp);
    LoopObject *self;

    (void)args;
    (void)kw;
    if (!st)
        return NULL;
    self = (LoopObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->st = st;
    self->closed = true; /* until __init__ made a core loop */
    self->slow_callback_duration = 0.1;
    return (PyObject *)self;
}

static int parse_backend(PyObject *backend, int *kind)
{
    const char *s;

    if (backend == Py_None) {
        *kind = RL_BACKEND_AUTO;
        return 0;
    }
    if (!PyUnicode_Check(backend)) {
        PyErr_Format(PyExc_TypeError,
                     "backend must be None or a str, not %.100s",
                     Py_TYPE(backend)->tp_name);
        return -1;
    }
    s = PyUnicode_AsUTF8(backend);
    if (!s)
        return -1;
    if (!strcmp(s, "auto"))
        *kind = RL_BACKEND_AUTO;
    else if (!strcmp(s, "uring") || !strcmp(s, "io_uring"))
        *kind = RL_BACKEND_URING;
    else if (!strcmp(s, "epoll"))
        *kind = RL_BACKEND_EPOLL;
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown backend %R: expected 'uring', 'epoll' or None",
                     backend);
        return -1;
    }
    return 0;
}

static PyObject *features_set(unsigned bits)
{
    PyObject *set = PyFrozenSet_New(NULL), *name;
    unsigned bit;

    for (bit = 1; set && bit && bit <= RL_FEAT_ALL; bit <<= 1) {
        if (!(bits & bit) || !rl_feature_name(bit))
            continue;
        name = PyUnicode_FromString(rl_feature_name(bit));
        if (!name || PySet_Add(set, name) < 0)
            Py_CLEAR(set);
        Py_XDECREF(name);
    }
    return set;
}

/* Record what the backend is while the core loop exists: it stays readable
 * after close(). */
static int record_backend(LoopObject *self)
{
    const char *why = rl_loop_fallback_reason(self->rl);

    self->backend = PyUnicode_FromString(rl_loop_backend_name(self->rl));
    self->fallback_errno = -rl_loop_fallback_errno(self->rl);
    self->fallback_reason =
        why && *why ? PyUnicode_FromString(why) : Py_NewRef(Py_None);
    self->features = features_set(rl_loop_features(self->rl));
    return self->backend && self->fallback_reason && self->features ? 0 : -1;
}

/* OSError(err, "what: strerror"), as its errno subclass. Returns -1. */
static int raise_errno(int err, const char *what)
{
    char buf[256];
    PyObject *e;

    snprintf(buf, sizeof(buf), "%s: %s", what, strerror(err));
    e = PyObject_CallFunction(PyExc_OSError, "is", err, buf);

    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return -1;
}

static int loop_init(LoopObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"backend", NULL};
    PyObject *backend = Py_None;
    struct rl_loop_config cfg;
    int kind, ret;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:Loop", kwlist, &backend))
        return -1;
    if (self->rl || self->backend) {
        PyErr_SetString(PyExc_RuntimeError, "Loop.__init__() called twice");
        return -1;
    }
    if (parse_backend(backend, &kind) < 0)
        return -1;
    rl_loop_config_init(&cfg);
    cfg.backend = kind;
    ret = rl_loop_new(&self->rl, &cfg);
    if (ret == -EINVAL) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot create a ringloop loop: invalid "
                        "RINGLOOP_BACKEND, RINGLOOP_DISABLE or "
                        "RINGLOOP_ENABLE in the environment");
        return -1;
    }
    if (ret < 0) {
        self->rl = NULL;
        return raise_errno(-ret, kind == RL_BACKEND_URING
                                     ? "cannot set up io_uring"
                                     : "cannot create a ringloop loop");
    }
    rl_loop_set_data(self->rl, self);
    rl_loop_set_block_hooks(self->rl, block_before, block_after, self);
    if (record_backend(self) < 0)
        return -1;
    self->closed = false;
    return 0;
}

/* Drop everything the loop owns and free the core loop. */
static void loop_teardown(LoopObject *self)
{
    self->closed = true;
    while (self->sched)
        rlpy_handle_unschedule(self->sched);
    rlpy_fdwatch_close_all(self);
    if (self->rl) {
        /* The final completions of cancelled ops run inside; keep the GIL
         * (we may be in a GC pass). */
        rl_loop_set_block_hooks(self->rl, NULL, NULL, NULL);
        rl_loop_free(self->rl);
        self->rl = NULL;
    }
    PyMem_Free(self->fds);
    self->fds = NULL;
    self->nfds = 0;
    rlpy_freelist_clear(&self->free_handles);
    rlpy_freelist_clear(&self->free_timers);
}

static int loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    int r;

    Py_VISIT(Py_TYPE(self));
    if ((r = rlpy_sched_traverse(self, visit, arg)) != 0)
        return r;
    Py_VISIT(self->pending_exc);
    Py_VISIT(self->current_handle);
    Py_VISIT(self->task_factory);
    return rlpy_fdwatch_traverse(self, visit, arg);
}

static int loop_clear(LoopObject *self)
{
    if (!self->running)
        loop_teardown(self);
    Py_CLEAR(self->pending_exc);
    Py_CLEAR(self->current_handle);
    Py_CLEAR(self->task_factory);
    return 0;
}

static void loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    loop_teardown(self);
    Py_CLEAR(self->pending_exc);
    Py_CLEAR(self->current_handle);
    Py_CLEAR(self->slow_desc);
    Py_CLEAR(self->task_factory);
    Py_CLEAR(self->backend);
    Py_CLEAR(self->fallback_reason);
    Py_CLEAR(self->features);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---- scheduling -------------------------------------------------------- */

/* (fixed..., callback, *args, context=None): the positional arguments after
 * the first nfixed as a tuple, and the context. */
static int parse_call(const char *meth, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, Py_ssize_t nfixed, PyObject **cbargs,
                      PyObject **context)
{
    Py_ssize_t i, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

    *context = NULL;
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_Check(name) ||
            PyUnicode_CompareWithASCIIString(name, "context") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%S'", meth,
                         name);
            return -1;
        }
        *context = args[nargs + i];
    }
    if (*context == Py_None)
        *context = NULL;
    if (nargs <= nfixed) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required positional argument%s", meth,
                     nfixed ? "s" : "");
        return -1;
    }
    *cbargs = PyTuple_New(nargs - nfixed - 1);
    if (!*cbargs)
        return -1;
    for (i = nfixed + 1; i < nargs; i++)
        PyTuple_SET_ITEM(*cbargs, i - nfixed - 1, Py_NewRef(args[i]));
    return 0;
}

static PyObject *call_soon(LoopObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames, bool threadsafe)
{
    const char *meth = threadsafe ? "call_soon_threadsafe" : "call_soon";
    PyObject *cbargs, *context;
    HandleObject *h;
    bool direct;

    if (parse_call(meth, args, nargs, kwnames, 0, &cbargs, &context) < 0)
        return NULL;
    if (rlpy_loop_check_closed(self) < 0 ||
        (self->debug && !threadsafe && check_thread(self) < 0) ||
        (self->debug && check_callback(self, args[0], meth) < 0)) {
        Py_DECREF(cbargs);
        return NULL;
    }
    h = rlpy_handle_new(self, args[0], cbargs, context);
    Py_DECREF(cbargs);
    if (!h)
        return NULL;
    /* The loop thread, or any thread while the loop is not running, may
     * use the ready queue directly: the GIL serializes them, and the core
     * touches that queue only with the GIL held. */
    direct = !threadsafe || !self->running ||
             self->thread_id == PyThread_get_thread_ident();
    if (rlpy_handle_schedule(h, !direct) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

static PyObject *loop_call_soon(LoopObject *self, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    return call_soon(self, args, nargs, kwnames, false);
}

static PyObject *loop_call_soon_threadsafe(LoopObject *self,
                                           PyObject *const *args,
                                           Py_ssize_t nargs, PyObject *kwnames)
{
    return call_soon(self, args, nargs, kwnames, true);
}

/* call_at(when, callback, *args, context=None): the arguments after when,
 * and the checks asyncio's call_at() makes before it makes the handle. */
static int call_at_begin(LoopObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames, PyObject **cbargs,
                         PyObject **context)
{
    if (parse_call("call_at", args, nargs, kwnames, 1, cbargs, context) < 0)
        return -1;
    if (rlpy_loop_check_closed(self) < 0 ||
        (self->debug && (check_thread(self) < 0 ||
                         check_callback(self, args[1], "call_at") < 0))) {
        Py_DECREF(*cbargs);
        return -1;
    }
    return 0;
}

static PyObject *call_at(LoopObject *self, double when, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *cbargs, *context;
    TimerHandleObject *t;

    if (call_at_begin(self, args, nargs, kwnames, &cbargs, &context) < 0)
        return NULL;
    t = rlpy_timer_handle_new(self, when, args[1], cbargs, context);
    Py_DECREF(cbargs);
    if (!t)
        return NULL;
    if (rlpy_timer_handle_schedule(t) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyObject *loop_call_at(LoopObject *self, PyObject *const *args,
                              Py_ssize_t nargs, PyObject *kwnames)
{
    double when;

    if (nargs >= 1 && args[0] == Py_None) {
#if PY_VERSION_HEX < 0x030B0000
        /* 3.10: call_at() makes its checks, then TimerHandle() asserts
         * `when is not None`. */
        PyObject *cbargs, *context;

        if (call_at_begin(self, args, nargs, kwnames, &cbargs, &context) < 0)
            return NULL;
        Py_DECREF(cbargs);
        PyErr_SetNone(PyExc_AssertionError);
#else
        PyErr_SetString(PyExc_TypeError, "when cannot be None");
#endif
        return NULL;
    }
    when = nargs >= 1 ? PyFloat_AsDouble(args[0]) : 0;
    if (when == -1 && PyErr_Occurred())
        return NULL;
    return call_at(self, when, args, nargs, kwnames);
}

/* asyncio computes `self.time() + delay`, which refuses what float + delay
 * refuses (a Decimal, a str) and takes what defines __radd__. */
static PyObject *call_later_slow(LoopObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *now = PyFloat_FromDouble(rlpy_monotonic()), *when;
    double w;

    if (!now)
        return NULL;
    when = PyNumber_Add(now, args[0]);
    Py_DECREF(now);
    if (!when)
        return NULL;
    w = PyFloat_AsDouble(when);
    Py_DECREF(when);
    if (w == -1 && PyErr_Occurred())
        return NULL;
    return call_at(self, w, args, nargs, kwnames);
}

static PyObject *loop_call_later(LoopObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    double delay;

    if (nargs >= 1 && args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "delay must not be None");
        return NULL;
    }
    if (nargs < 1 || PyFloat_CheckExact(args[0]) ||
        PyLong_CheckExact(args[0])) {
        delay = nargs >= 1 ? PyFloat_AsDouble(args[0]) : 0;
        if (delay == -1 && PyErr_Occurred())
            return NULL;
        return call_at(self, rlpy_monotonic() + delay, args, nargs, kwnames);
    }
    return call_later_slow(self, args, nargs, kwnames);
}

static PyObject *loop_time(LoopObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(rlpy_monotonic());
}

static PyObject *loop_create_future(LoopObject *self, PyObject *unused)
{
    PyObject *args[1] = {(PyObject *)self};

    (void)unused;
    return PyObject_Vectorcall(self->st->Future, args, 0, self->st->kw_loop);
}

/* ---- tasks ------------------------------------------------------------- */

/* create_task(coro, *, name=None, context=None): asyncio's, in C because
 * servers call it once per request (context: 3.11+). The task factory
 * path is asyncio's too: factory(loop, coro[, context=]) then set_name().
 * No frame of ours is in a debug-mode task's _source_traceback, so there
 * is none to drop. */
static PyObject *loop_create_task(LoopObject *self, PyObject *const *args,
                                  Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *coro = nargs > 0 ? args[0] : NULL, *name = Py_None;
    PyObject *context = Py_None, *task, *r;
    Py_ssize_t i, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "create_task() takes 1 positional argument but %zd "
                     "were given",
                     nargs);
        return NULL;
    }
    for (i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i), *v = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "name") == 0) {
            name = v;
#if PY_VERSION_HEX >= 0x030B0000
        } else if (PyUnicode_CompareWithASCIIString(key, "context") == 0) {
            context = v;
#endif
        } else if (!coro &&
                   PyUnicode_CompareWithASCIIString(key, "coro") == 0) {
            coro = v;
        } else {
            PyErr_Format(PyExc_TypeError,
                         "create_task() got an unexpected keyword argument "
                         "'%S'",
                         key);
            return NULL;
        }
    }
    if (!coro) {
        PyErr_SetString(PyExc_TypeError, "create_task() missing 1 required "
                                         "positional argument: 'coro'");
        return NULL;
    }
    if (rlpy_loop_check_closed(self) < 0)
        return NULL;
    if (!self->task_factory) {
        PyObject *targs[4] = {coro, (PyObject *)self, name, context};
        return PyObject_Vectorcall(self->st->Task, targs, 1, self->st->kw_task);
    }
    {
        PyObject *fargs[3] = {(PyObject *)self, coro, context};
        PyObject *f = Py_NewRef(self->task_factory);
        if (context == Py_None)
            task = PyObject_Vectorcall(f, fargs, 2, NULL);
        else
            task = PyObject_Vectorcall(f, fargs, 2, self->st->kw_task_ctx);
        Py_DECREF(f);
    }
    if (!task || name == Py_None)
        return task;
    r = PyObject_CallMethodOneArg(task, self->st->str_set_name, name);
    if (!r)
        Py_CLEAR(task);
    Py_XDECREF(r);
    return task;
}

static PyObject *get_task_factory(LoopObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->task_factory ? self->task_factory : Py_None);
}

/* set_task_factory() (Python) checks that it is callable. */
static int set_task_factory(LoopObject *self, PyObject *v, void *c)
{
    (void)c;
    Py_XSETREF(self->task_factory, v && v != Py_None ? Py_NewRef(v) : NULL);
    return 0;
}

/* ---- running ----------------------------------------------------------- */

/*
 * RINGLOOP_STATS_SOCKET=path: ringloop.stats serves the loop's stats() on
 * a Unix socket (set up once per loop; see ringloop/stats.py). Looked up
 * once per run_forever(), never per iteration. A failure is reported, and
 * the loop runs anyway.
 */
static void maybe_serve_stats(LoopObject *self)
{
    const char *path = getenv("RINGLOOP_STATS_SOCKET");
    PyObject *mod, *r = NULL;

    if (!path || !*path)
        return;
    mod = PyImport_ImportModule("ringloop.stats");
    if (mod)
        r = PyObject_CallMethod(mod, "_serve", "Os", (PyObject *)self, path);
    if (!r)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XDECREF(mod);
}

/*
 * The loop of run_forever(): one asyncio iteration per rl_loop_run() until
 * stop(). The Python side (ringloop/_loop.py) does the set-up around it:
 * the running-loop slot, asyncgen hooks, origin tracking.
 */
static PyObject *loop_run_forever_impl(LoopObject *self, PyObject *unused)
{
    PyObject *exc;
    int ret = 0;

    (void)unused;
    if (rlpy_loop_check_closed(self) < 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "This event loop is already running");
        return NULL;
    }
    maybe_serve_stats(self);
    Py_INCREF(self);
    self->running = true;
    self->thread_id = PyThread_get_thread_ident();
    for (;;) {
        /* stop() before run_forever(): poll once without blocking. */
        ret =
            rl_loop_run(self->rl, self->stopping ? RL_RUN_NOWAIT : RL_RUN_ONCE);
        if (ret < 0 || self->pending_exc || self->stopping)
            break;
        if (PyErr_CheckSignals() < 0) {
            rlpy_loop_stash_exc(self, rlpy_exc_take());
            break;
        }
    }
    /* What the last callbacks started (a transport's close, a cancel)
     * reaches the kernel now, as it would have in asyncio's loop, not when
     * the loop next runs. A failure shows again in the next iteration. */
    if (ret >= 0)
        (void)rl_loop_flush(self->rl);
    self->running = false;
    self->stopping = false;
    self->thread_id = 0;
    exc = self->pending_exc;
    self->pending_exc = NULL;
    Py_DECREF(self);
    if (exc) {
        rlpy_exc_restore(exc);
        return NULL;
    }
    if (ret < 0) {
        errno = -ret;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *loop_stop(LoopObject *self, PyObject *unused)
{
    (void)unused;
    self->stopping = true;
    Py_RETURN_NONE;
}

static PyObject *loop_is_running(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->running);
}

static PyObject *loop_is_closed(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->closed);
}

static PyObject *loop_get_debug(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->debug);
}

/* The C part of close(): drop pending callbacks, timers and fd watches and
 * free the core loop. ringloop.Loop.close() does the rest. */
static PyObject *loop_close_impl(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot close a running event loop");
        return NULL;
    }
    if (!self->closed)
        loop_teardown(self);
    Py_RETURN_NONE;
}

static PyObject *loop_check_closed(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (rlpy_loop_check_closed(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_check_thread(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (check_thread(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- stats() ------------------------------------------------------------ */

static int put(PyObject *d, const char *key, PyObject *v)
{
    int r;

    if (!v)
        return -1;
    r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

#define PUT_U64(d, k, v) put(d, k, PyLong_FromUnsignedLongLong(v))

static PyObject *loop_stats(LoopObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"reset", NULL};
    struct rl_loop_stats st;
    PyObject *d = NULL, *sys = NULL, *inflight = NULL;
    bool uring;
    int reset = 0, fail = 0;
    double busy, wait;
    unsigned i;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$p:stats", kwlist, &reset))
        return NULL;
    if (rlpy_loop_check_closed(self) < 0)
        return NULL;
    rl_loop_stats(self->rl, &st);
    uring = rl_loop_backend(self->rl) == RL_BACKEND_URING;
    busy = (double)st.busy_ns / 1e9;
    wait = (double)st.wait_ns / 1e9;
    if (!(d = PyDict_New()) || !(sys = PyDict_New()) ||
        !(inflight = PyDict_New()))
        goto err;
    fail |= put(d, "backend", Py_NewRef(self->backend));
    fail |= PUT_U64(d, "iterations", st.iterations);
    fail |= put(d, "busy_seconds", PyFloat_FromDouble(busy));
    fail |= put(d, "wait_seconds", PyFloat_FromDouble(wait));
    fail |= put(d, "utilization",
                PyFloat_FromDouble(busy + wait > 0 ? busy / (busy + wait) : 0));
    fail |= PUT_U64(d, "callbacks", st.callbacks);
    fail |= PUT_U64(d, "completions", st.completions);
    fail |= PUT_U64(d, "ops_submitted", st.ops_submitted);
    fail |= PUT_U64(d, "threadsafe_calls", st.threadsafe_calls);
    fail |= PUT_U64(d, "timers_started", st.timers_started);
    fail |= PUT_U64(d, "timers_fired", st.timers_fired);
    fail |= PUT_U64(d, "timers_armed", st.timers_armed);
    fail |= PUT_U64(d, "bytes_received", st.bytes_received);
    fail |= PUT_U64(d, "bytes_sent", st.bytes_sent);
    fail |= PUT_U64(d, "pending", st.pending);
    fail |= PUT_U64(d, "pool_ops", st.pool_ops);
    fail |= PUT_U64(d, "nowait_hits", st.nowait_hits);
    for (i = 0; i < RL_OP__COUNT; i++)
        fail |= PUT_U64(inflight, rl_opcode_name(i), st.inflight[i]);
    fail |= put(d, "inflight", Py_NewRef(inflight));
    if (uring) {
        fail |= PUT_U64(sys, "io_uring_enter", st.io_uring_enter);
    } else {
        fail |= PUT_U64(sys, "epoll_wait", st.epoll_wait);
        fail |= PUT_U64(sys, "epoll_ctl", st.epoll_ctl);
    }
    fail |= PUT_U64(sys, "recv", st.recv_calls);
    fail |= PUT_U64(sys, "send", st.send_calls);
    fail |= PUT_U64(sys, "other", st.other_calls);
    fail |= put(d, "syscalls", Py_NewRef(sys));
    fail |= PUT_U64(d, "syscalls_total",
                    st.io_uring_enter + st.epoll_wait + st.epoll_ctl +
                        st.recv_calls + st.send_calls + st.other_calls);
    if (uring) {
        fail |= PUT_U64(d, "sqes_submitted", st.sqes_submitted);
        fail |= PUT_U64(d, "cqes_reaped", st.cqes_reaped);
        fail |= PUT_U64(d, "cq_overflows", st.cq_overflows);
        fail |= PUT_U64(d, "cq_dropped", st.cq_dropped);
        fail |= PUT_U64(d, "recv_enobufs", st.recv_enobufs);
        fail |= PUT_U64(d, "multishot_rearms", st.multishot_rearms);
        fail |= PUT_U64(d, "msg_ring_sent", st.msg_ring_sent);
        fail |= PUT_U64(d, "recv_to_readiness", st.recv_to_readiness);
        fail |= PUT_U64(d, "recv_to_ring", st.recv_to_ring);
    }
    fail |= put(d, "slow_callbacks", PyLong_FromUnsignedLong(self->slow_count));
    fail |= put(d, "slowest_callback_seconds",
                PyFloat_FromDouble(self->slow_worst));
    fail |= put(d, "slowest_callback",
                Py_NewRef(self->slow_desc ? self->slow_desc : Py_None));
    if (fail)
        goto err;
    if (reset) {
        rl_loop_stats_reset(self->rl);
        self->slow_count = 0;
        self->slow_worst = 0;
        Py_CLEAR(self->slow_desc);
    }
    Py_DECREF(sys);
    Py_DECREF(inflight);
    return d;

err:
    Py_XDECREF(d);
    Py_XDECREF(sys);
    Py_XDECREF(inflight);
    return NULL;
}

static PyObject *loop_add_reader(LoopObject *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    return rlpy_loop_add_reader(self, args, nargs);
}

static PyObject *loop_add_writer(LoopObject *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    return rlpy_loop_add_writer(self, args, nargs);
}

/* ---- attributes -------------------------------------------------------- */

static PyObject *get_debug_attr(LoopObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->debug);
}

static int set_debug_attr(LoopObject *self, PyObject *v, void *c)
{
    int b;

    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _debug");
        return -1;
    }
    b = PyObject_IsTrue(v);
    if (b < 0)
        return -1;
    self->debug = b;
    return 0;
}

static PyObject *get_closed(LoopObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->closed);
}

static PyObject *get_stopping(LoopObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->stopping);
}

static PyObject *get_thread_id(LoopObject *self, void *c)
{
    (void)c;
    if (!self->thread_id)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->thread_id);
}

static PyObject *get_current_handle(LoopObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->current_handle ? self->current_handle : Py_None);
}

#define INFO_GETTER(name, field)                                               \
    static PyObject *get_##name(LoopObject *self, void *c)                     \
    {                                                                          \
        (void)c;                                                               \
        if (!self->field) {                                                    \
            PyErr_SetString(PyExc_AttributeError,                              \
                            "the loop was not initialized");                   \
            return NULL;                                                       \
        }                                                                      \
        return Py_NewRef(self->field);                                         \
    }
INFO_GETTER(backend, backend)
INFO_GETTER(fallback_reason, fallback_reason)
INFO_GETTER(features, features)
#undef INFO_GETTER

static PyObject *get_fallback_errno(LoopObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->fallback_errno);
}

static PyMethodDef loop_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))loop_call_soon,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon(callback, *args, context=None)\n--\n\n"
     "Arrange for callback(*args) to be called in the next iteration."},
    {"call_soon_threadsafe",
     (PyCFunction)(void (*)(void))loop_call_soon_threadsafe,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe(callback, *args, context=None)\n--\n\n"
     "Like call_soon(), but callable from any thread."},
    {"call_later", (PyCFunction)(void (*)(void))loop_call_later,
     METH_FASTCALL | METH_KEYWORDS,
     "call_later(delay, callback, *args, context=None)\n--\n\n"
     "Arrange for callback(*args) to be called after delay seconds."},
    {"call_at", (PyCFunction)(void (*)(void))loop_call_at,
     METH_FASTCALL | METH_KEYWORDS,
     "call_at(when, callback, *args, context=None)\n--\n\n"
     "Arrange for callback(*args) to be called at loop.time() == when."},
    {"time", (PyCFunction)loop_time, METH_NOARGS,
     "Return the time on the loop's monotonic clock, in seconds."},
    {"create_future", (PyCFunction)loop_create_future, METH_NOARGS,
     "Create an asyncio.Future attached to the loop."},
    {"create_task", (PyCFunction)(void (*)(void))loop_create_task,
     METH_FASTCALL | METH_KEYWORDS,
#if PY_VERSION_HEX >= 0x030B0000
     "create_task(coro, *, name=None, context=None)\n--\n\n"
#else
     "create_task(coro, *, name=None)\n--\n\n"
#endif
     "Schedule a coroutine object; return a Task."},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS,
     "Stop the loop after the current batch of callbacks."},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS,
     "Return True if the loop is running."},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS,
     "Return True if the loop was closed."},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS,
     "Return the debug mode of the loop."},
    {"add_reader", (PyCFunction)(void (*)(void))loop_add_reader, METH_FASTCALL,
     "add_reader(fd, callback, *args)\n--\n\n"
     "Call callback(*args) whenever fd is readable."},
    {"add_writer", (PyCFunction)(void (*)(void))loop_add_writer, METH_FASTCALL,
     "add_writer(fd, callback, *args)\n--\n\n"
     "Call callback(*args) whenever fd is writable."},
    {"remove_reader", (PyCFunction)rlpy_loop_remove_reader, METH_O,
     "Stop watching fd for reading. Return True if it was watched."},
    {"remove_writer", (PyCFunction)rlpy_loop_remove_writer, METH_O,
     "Stop watching fd for writing. Return True if it was watched."},
    {"_sock_recv", (PyCFunction)(void (*)(void))rlpy_sock_recv, METH_FASTCALL,
     NULL},
    {"_sock_recv_into", (PyCFunction)(void (*)(void))rlpy_sock_recv_into,
     METH_FASTCALL, NULL},
    {"_sock_recvfrom", (PyCFunction)(void (*)(void))rlpy_sock_recvfrom,
     METH_FASTCALL, NULL},
    {"_sock_recvfrom_into",
     (PyCFunction)(void (*)(void))rlpy_sock_recvfrom_into, METH_FASTCALL, NULL},
    {"_sock_sendall", (PyCFunction)(void (*)(void))rlpy_sock_sendall,
     METH_FASTCALL, NULL},
    {"_sock_sendto", (PyCFunction)(void (*)(void))rlpy_sock_sendto,
     METH_FASTCALL, NULL},
    {"_sock_connect", (PyCFunction)(void (*)(void))rlpy_sock_connect,
     METH_FASTCALL, NULL},
    {"_sock_accept", (PyCFunction)rlpy_sock_accept, METH_O, NULL},
    {"_sock_wait_writable", (PyCFunction)rlpy_sock_wait_writable, METH_O, NULL},
    {"_run_forever_impl", (PyCFunction)loop_run_forever_impl, METH_NOARGS,
     NULL},
    {"_close_impl", (PyCFunction)loop_close_impl, METH_NOARGS, NULL},
    {"stats", (PyCFunction)(void (*)(void))loop_stats,
     METH_VARARGS | METH_KEYWORDS,
     "stats(*, reset=False)\n--\n\n"
     "What the loop has been doing: a dict of counters (see the README's\n"
     "'Loop statistics'). reset=True zeroes the counters after reading."},
    {"_check_closed", (PyCFunction)loop_check_closed, METH_NOARGS, NULL},
    {"_check_thread", (PyCFunction)loop_check_thread, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef loop_getset[] = {
    {"_debug", (getter)get_debug_attr, (setter)set_debug_attr, NULL, NULL},
    {"_closed", (getter)get_closed, NULL, NULL, NULL},
    {"_stopping", (getter)get_stopping, NULL, NULL, NULL},
    {"_thread_id", (getter)get_thread_id, NULL, NULL, NULL},
    {"_current_handle", (getter)get_current_handle, NULL, NULL, NULL},
    {"_task_factory", (getter)get_task_factory, (setter)set_task_factory, NULL,
     NULL},
    {"backend", (getter)get_backend, NULL,
     "The backend this loop runs on: 'uring' or 'epoll'.", NULL},
    {"backend_fallback_reason", (getter)get_fallback_reason, NULL,
     "Why automatic selection did not pick io_uring, or None.", NULL},
    {"backend_fallback_errno", (getter)get_fallback_errno, NULL,
     "The errno behind backend_fallback_reason (0 if none).", NULL},
    {"backend_features", (getter)get_features, NULL,
     "The io_uring fast paths in use (a frozenset of names).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef loop_members[] = {
    {"slow_callback_duration", RLPY_T_DOUBLE,
     offsetof(LoopObject, slow_callback_duration), 0,
     "Debug mode: callbacks slower than this (seconds) are logged."},
    {"__weaklistoffset__", RLPY_T_PYSSIZET, offsetof(LoopObject, weakreflist),
     RLPY_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot loop_slots[] = {
    {Py_tp_doc, "The C core of ringloop.Loop; use ringloop.Loop."},
    {Py_tp_new, loop_new},
    {Py_tp_init, loop_init},
    {Py_tp_dealloc, loop_dealloc},
    {Py_tp_traverse, loop_traverse},
    {Py_tp_clear, loop_clear},
    {Py_tp_methods, loop_methods},
    {Py_tp_getset, loop_getset},
    {Py_tp_members, loop_members},
    {0, NULL},
};

PyType_Spec rlpy_loop_spec = {
    .name = "ringloop._ext.Loop",
    .basicsize = sizeof(LoopObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = loop_slots,
};
