/*
 * Handle and TimerHandle: asyncio's callback handles, in C.
 *
 * A Handle embeds the rl_callback node the core queues, a TimerHandle the
 * rl_timer it arms: scheduling allocates nothing but the handle, and a
 * handle's memory is reused once the last reference to it goes
 * (LoopObject.free_handles, filled by handle_dealloc). Running one is
 * asyncio's Handle._run: the callback runs in its contextvars Context, and
 * what it raises goes to loop.call_exception_handler(), except
 * KeyboardInterrupt and SystemExit, which leave run_forever().
 */
#include <math.h>

#include "transport.h"

/* ---- the loop's list of scheduled handles ------------------------------ */

/*
 * The contextvars.Context copied for a handle (context=None) is private to
 * the handle until someone asks for it (get_context(), _context): the
 * handle keeps it untracked by the garbage collector and reports its
 * references as its own (handle_traverse), so collections do not walk one
 * Context per scheduled callback, nor promote them to older generations
 * (which brings full collections sooner). It is tracked again when it is
 * exposed, and always before the handle drops it.
 */
static void hide_context(HandleObject *h)
{
    if (PyObject_GC_IsTracked(h->context)) {
        PyObject_GC_UnTrack(h->context);
        h->ctx_hidden = true;
    }
}

static void expose_context(HandleObject *h)
{
    if (h->ctx_hidden) {
        h->ctx_hidden = false;
        PyObject_GC_Track(h->context);
    }
}

/*
 * A scheduled handle that only the loop holds (the caller of call_soon()
 * dropped what it returned, as most do) cannot be reached by anyone until
 * it runs: the loop untracks it and reports its references as its own
 * (rlpy_sched_traverse), so a burst of callbacks does not fill the young
 * generation and get promoted (which brings full collections sooner). It
 * is checked when the next handle is scheduled, the cheapest moment after
 * its caller let go; it is tracked again when it leaves the list.
 */
static void maybe_untrack(HandleObject *h)
{
    if (h && h->where != RLPY_IDLE && Py_REFCNT(h) == 1 && !h->weakreflist &&
        PyObject_GC_IsTracked((PyObject *)h))
        PyObject_GC_UnTrack(h);
}

static void sched_link(LoopObject *loop, HandleObject *h)
{
    h->sched_prev = NULL;
    h->sched_next = loop->sched;
    if (loop->sched)
        loop->sched->sched_prev = h;
    loop->sched = h;
    maybe_untrack(loop->last_new);
    loop->last_new = h;
}

static void sched_unlink(LoopObject *loop, HandleObject *h)
{
    if (h->sched_prev)
        h->sched_prev->sched_next = h->sched_next;
    else
        loop->sched = h->sched_next;
    if (h->sched_next)
        h->sched_next->sched_prev = h->sched_prev;
    h->sched_prev = h->sched_next = NULL;
    if (!PyObject_GC_IsTracked((PyObject *)h))
        PyObject_GC_Track(h);
}

static int handle_traverse(HandleObject *h, visitproc visit, void *arg);

int rlpy_sched_traverse(LoopObject *loop, visitproc visit, void *arg)
{
    HandleObject *h;
    int r;

    for (h = loop->sched; h; h = h->sched_next) {
        if (PyObject_GC_IsTracked((PyObject *)h))
            Py_VISIT(h);
        else if ((r = handle_traverse(h, visit, arg)) != 0)
            return r;
    }
    return 0;
}

/* ---- creation and reuse ------------------------------------------------ */

/* Debug mode: where the handle was created (asyncio's _source_traceback). */
static int record_source(HandleObject *h)
{
    PyObject *fn = rlpy_support(h->loop->st, "extract_stack");

    if (!fn)
        return -1;
    h->source_tb = PyObject_CallNoArgs(fn);
    Py_DECREF(fn);
    return h->source_tb ? 0 : -1;
}

static int handle_fill(HandleObject *h, LoopObject *loop, PyObject *callback,
                       PyObject *args, PyObject *context)
{
    h->loop = (LoopObject *)Py_NewRef(loop);
    h->callback = Py_NewRef(callback);
    h->args = Py_NewRef(args);
    h->context = context ? Py_NewRef(context) : PyContext_CopyCurrent();
    h->ctx_hidden = false;
    h->cancelled = false;
    h->where = RLPY_IDLE;
    if (!h->context)
        return -1;
    if (!context)
        hide_context(h);
    if (loop->debug && record_source(h) < 0)
        return -1;
    return 0;
}

/* Bring a dead handle of fl back to life as a new object of type tp. */
static PyObject *revive(rlpy_freelist *fl, PyTypeObject *tp)
{
    PyObject *o = fl->items[--fl->n];

    PyObject_Init(o, tp);
    Py_DECREF(tp); /* the free list's reference is the object's now */
    PyObject_GC_Track(o);
    return o;
}

HandleObject *rlpy_handle_new(LoopObject *loop, PyObject *callback,
                              PyObject *args, PyObject *context)
{
    PyTypeObject *tp = loop->st->HandleType;
    HandleObject *h;

    if (loop->free_handles.n > 0)
        h = (HandleObject *)revive(&loop->free_handles, tp);
    else if (!(h = (HandleObject *)tp->tp_alloc(tp, 0)))
        return NULL;
    else
        rl_callback_init(&h->cb, NULL, h);
    if (handle_fill(h, loop, callback, args, context) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return h;
}

static void timer_fired(rl_loop *rl, rl_timer *t);

TimerHandleObject *rlpy_timer_handle_new(LoopObject *loop, double when,
                                         PyObject *callback, PyObject *args,
                                         PyObject *context)
{
    PyTypeObject *tp = loop->st->TimerHandleType;
    TimerHandleObject *t;

    if (loop->free_timers.n > 0) {
        t = (TimerHandleObject *)revive(&loop->free_timers, tp);
    } else {
        t = (TimerHandleObject *)tp->tp_alloc(tp, 0);
        if (!t)
            return NULL;
        rl_callback_init(&t->h.cb, NULL, t);
        rl_timer_init(&t->timer, timer_fired, t);
    }
    t->when = when;
    if (handle_fill(&t->h, loop, callback, args, context) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* Drop what a handle refers to; finalizers may run from here. */
static void handle_clear_fields(HandleObject *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    expose_context(h);
    Py_CLEAR(h->context);
    Py_CLEAR(h->source_tb);
    Py_CLEAR(h->repr);
    Py_CLEAR(h->loop);
}

/* Room for one more handle in fl, or false (at the bound, or no memory). */
static bool freelist_reserve(rlpy_freelist *fl)
{
    PyObject **items;
    int cap;

    if (fl->n < fl->cap)
        return true;
    if (fl->cap >= RLPY_FREE_HANDLES_MAX)
        return false;
    cap = fl->cap ? fl->cap * 2 : 64;
    items = PyMem_Realloc(fl->items, (size_t)cap * sizeof(*items));
    if (!items)
        return false; /* not an error: the handle is simply freed */
    fl->items = items;
    fl->cap = cap;
    return true;
}

/* The handles in a free list are dead: no references to them, not
 * tracked by the garbage collector, fields cleared; each keeps a reference
 * to its type (PyObject_GC_Del reads the type). */
void rlpy_freelist_clear(rlpy_freelist *fl)
{
    while (fl->n > 0) {
        PyObject *o = fl->items[--fl->n];
        PyTypeObject *tp = Py_TYPE(o);

        PyObject_GC_Del(o);
        Py_DECREF(tp);
    }
    PyMem_Free(fl->items);
    fl->items = NULL;
    fl->cap = 0;
}

/* ---- scheduling -------------------------------------------------------- */

static void handle_ready(rl_loop *rl, rl_callback *cb);

int rlpy_handle_schedule(HandleObject *h, bool threadsafe)
{
    LoopObject *loop = h->loop;
    int ret;

    h->cb.fn = handle_ready;
    h->cb.data = h;
    if (threadsafe) {
        h->where = RLPY_THREADSAFE;
        ret = rl_call_threadsafe(loop->rl, &h->cb);
    } else {
        h->where = RLPY_READY;
        ret = rl_call_soon(loop->rl, &h->cb);
    }
    if (ret < 0) {
        h->where = RLPY_IDLE;
        errno = -ret;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    Py_INCREF(h);
    sched_link(loop, h);
    return 0;
}

/* when (loop.time() seconds) as a core deadline in ns, rounded up so that
 * the callback never sees loop.time() < when. */
static uint64_t deadline_ns(double when)
{
    double ns;

    if (!(when > 0)) /* also NaN */
        return 0;
    ns = ceil(when * 1e9);
    if (ns >= 18446744073709549568.0) /* largest double below 2^64 */
        return UINT64_MAX;
    return (uint64_t)ns;
}

int rlpy_timer_handle_schedule(TimerHandleObject *t)
{
    LoopObject *loop = t->h.loop;
    int ret = rl_timer_start_at(loop->rl, &t->timer, deadline_ns(t->when));

    if (ret < 0) {
        errno = -ret;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    t->h.where = RLPY_TIMER;
    Py_INCREF(t);
    sched_link(loop, &t->h);
    return 0;
}

void rlpy_handle_unschedule(HandleObject *h)
{
    LoopObject *loop = h->loop;

    switch (h->where) {
    case RLPY_READY:
        rl_callback_cancel(loop->rl, &h->cb);
        break;
    case RLPY_TIMER:
        rl_timer_stop(loop->rl, &((TimerHandleObject *)h)->timer);
        break;
    case RLPY_THREADSAFE:
        /* Still on the core's lock-free stack: it runs (as a no-op, being
         * cancelled) and is released then, or the stack is dropped with
         * the loop at close(). Only close() gets here. */
        if (!loop->closed)
            return;
        break;
    default:
        return;
    }
    h->where = RLPY_IDLE;
    sched_unlink(loop, h);
    Py_DECREF(h);
}

/* ---- running ----------------------------------------------------------- */

/* asyncio's Handle._run error path. Steals exc. */
static int report_exception(HandleObject *h, PyObject *callback, PyObject *args,
                            PyObject *exc)
{
    LoopObject *loop = h->loop;
    rlpy_state *st = loop->st;
    PyObject *fmt, *src = NULL, *msg = NULL, *ctx = NULL, *r = NULL;

    if (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
        PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)) {
        rlpy_exc_restore(exc);
        return -1;
    }
    fmt = rlpy_support(st, "format_callback_source");
    if (!fmt)
        goto out;
    src = PyObject_CallFunction(fmt, "OOO", callback, args,
                                loop->debug ? Py_True : Py_False);
    Py_DECREF(fmt);
    if (!src)
        goto out;
    msg = PyUnicode_FromFormat("Exception in callback %U", src);
    ctx = msg ? PyDict_New() : NULL;
    if (!ctx || PyDict_SetItem(ctx, st->str_message, msg) < 0 ||
        PyDict_SetItem(ctx, st->str_exception, exc) < 0 ||
        PyDict_SetItem(ctx, st->str_handle, (PyObject *)h) < 0)
        goto out;
    if (h->source_tb && PyObject_IsTrue(h->source_tb) == 1 &&
        PyDict_SetItem(ctx, st->str_source_traceback, h->source_tb) < 0)
        goto out;
    r = PyObject_CallMethodOneArg((PyObject *)loop,
                                  st->str_call_exception_handler, ctx);
out:
    Py_DECREF(exc);
    Py_XDECREF(src);
    Py_XDECREF(msg);
    Py_XDECREF(ctx);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int log_slow(HandleObject *h, double dt)
{
    PyObject *fn = rlpy_support(h->loop->st, "log_slow_callback"), *r;

    if (!fn)
        return -1;
    r = PyObject_CallFunction(fn, "Od", (PyObject *)h, dt);
    Py_DECREF(fn);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Debug mode: h's callback took dt >= slow_callback_duration; count it
 * for loop.stats() and keep the slowest one's repr. No exception set on
 * return. */
static void note_slow(LoopObject *loop, HandleObject *h, double dt)
{
    loop->slow_count++;
    if (dt > loop->slow_worst || !loop->slow_desc) {
        PyObject *desc = PyObject_Repr((PyObject *)h);

        if (!desc) {
            PyErr_Clear();
            return;
        }
        Py_XSETREF(loop->slow_desc, desc);
        loop->slow_worst = dt;
    }
}

int rlpy_handle_invoke(HandleObject *h)
{
    LoopObject *loop = h->loop;
    PyObject *callback = h->callback, *args = h->args, *ctx = h->context;
    PyObject *res = NULL, *exc = NULL;
    int debug, ret = 0;
    double t0 = 0;

    if (h->cancelled || !callback || !loop)
        return 0;
    debug = loop->debug;
    /* The callback may cancel its own handle, which drops these. */
    Py_INCREF(callback);
    Py_INCREF(args);
    Py_INCREF(ctx);
    Py_INCREF(loop);
    if (debug) {
        Py_XSETREF(loop->current_handle, Py_NewRef((PyObject *)h));
        t0 = rlpy_monotonic();
    }
    if (PyContext_Enter(ctx) == 0) {
        /* What the callback writes to stream transports leaves when it
         * returns, in one sendmsg per transport (cork.c): a task step that
         * writes a response's head and body makes one system call. The
         * flush runs in the callback's context, as the writes would. */
        rlpy_cork_begin(loop);
        res = PyObject_Vectorcall(callback, ((PyTupleObject *)args)->ob_item,
                                  PyTuple_GET_SIZE(args), NULL);
        if (!res)
            exc = rlpy_exc_take();
        rlpy_cork_end(loop);
        if (PyContext_Exit(ctx) < 0 && !exc)
            exc = rlpy_exc_take();
        PyErr_Clear();
        Py_XDECREF(res);
    } else {
        exc = rlpy_exc_take();
    }
    if (exc)
        ret = report_exception(h, callback, args, exc);
    if (debug) {
        double dt = rlpy_monotonic() - t0;
        if (ret == 0 && dt >= loop->slow_callback_duration) {
            note_slow(loop, h, dt);
            ret = log_slow(h, dt);
        }
        Py_CLEAR(loop->current_handle);
    }
    Py_DECREF(callback);
    Py_DECREF(args);
    Py_DECREF(ctx);
    Py_DECREF(loop);
    return ret;
}

/* The core runs a call_soon / call_soon_threadsafe handle. */
static void handle_ready(rl_loop *rl, rl_callback *cb)
{
    HandleObject *h = cb->data;
    LoopObject *loop = h->loop;

    (void)rl;
    h->where = RLPY_IDLE;
    sched_unlink(loop, h);
    Py_INCREF(loop);
    if (rlpy_handle_invoke(h) < 0)
        rlpy_loop_stash_exc(loop, rlpy_exc_take());
    Py_DECREF(h);
    Py_DECREF(loop);
}

static void timer_fired(rl_loop *rl, rl_timer *timer)
{
    TimerHandleObject *t = timer->data;

    (void)rl;
    handle_ready(NULL, &t->h.cb);
}

/* ---- Python API -------------------------------------------------------- */

int rlpy_handle_mark_cancelled(HandleObject *h)
{
    if (h->cancelled)
        return 0;
    h->cancelled = true;
    if (h->loop && h->loop->debug && !h->repr) {
        /* Keep the repr for "Executing <Handle...> took 2.5 seconds". */
        h->repr = PyObject_Repr((PyObject *)h);
        if (!h->repr)
            return -1;
    }
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    return 0;
}

static PyObject *handle_cancel(HandleObject *h, PyObject *unused)
{
    (void)unused;
    if (h->cancelled)
        Py_RETURN_NONE;
    if (rlpy_handle_mark_cancelled(h) < 0)
        return NULL;
    if (h->loop)
        rlpy_handle_unschedule(h);
    Py_RETURN_NONE;
}

static PyObject *handle_cancelled(HandleObject *h, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(h->cancelled);
}

static PyObject *handle_get_context(HandleObject *h, PyObject *unused)
{
    (void)unused;
    expose_context(h);
    return Py_NewRef(h->context ? h->context : Py_None);
}

static PyObject *handle_run(HandleObject *h, PyObject *unused)
{
    (void)unused;
    if (rlpy_handle_invoke(h) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *handle_repr(HandleObject *h)
{
    PyObject *fn, *r;

    if (h->repr)
        return Py_NewRef(h->repr);
    if (!h->loop)
        return PyUnicode_FromFormat("<%s>", Py_TYPE(h)->tp_name);
    fn = rlpy_support(h->loop->st, "handle_repr");
    if (!fn)
        return NULL;
    r = PyObject_CallOneArg(fn, (PyObject *)h);
    Py_DECREF(fn);
    return r;
}

#define GETTER(name, expr)                                                     \
    static PyObject *get_##name(HandleObject *h, void *c)                      \
    {                                                                          \
        PyObject *v = (expr);                                                  \
        (void)c;                                                               \
        return Py_NewRef(v ? v : Py_None);                                     \
    }
GETTER(callback, h->callback)
GETTER(args, h->args)
GETTER(context, (expose_context(h), h->context))
GETTER(loop, (PyObject *)h->loop)
GETTER(source_tb, h->source_tb)
GETTER(repr, h->repr)
#undef GETTER

static PyObject *get_cancelled(HandleObject *h, void *c)
{
    (void)c;
    return PyBool_FromLong(h->cancelled);
}

static int handle_traverse(HandleObject *h, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(h));
    Py_VISIT(h->loop);
    Py_VISIT(h->callback);
    Py_VISIT(h->args);
    if (h->ctx_hidden) {
        int r = Py_TYPE(h->context)->tp_traverse(h->context, visit, arg);
        if (r)
            return r;
    } else {
        Py_VISIT(h->context);
    }
    Py_VISIT(h->source_tb);
    Py_VISIT(h->repr);
    return 0;
}

static int handle_clear(HandleObject *h)
{
    /* A scheduled handle is owned by its loop and only cleared together
     * with it; the loop unlinks it from the core first. */
    if (h->where != RLPY_IDLE)
        return 0;
    handle_clear_fields(h);
    return 0;
}

/* A dead handle's memory stays with its loop for the next handle of the
 * same type, unless the loop is closed or keeps enough already. */
static bool keep_for_reuse(LoopObject *loop, HandleObject *h)
{
    rlpy_freelist *fl;

    if (loop->closed)
        return false;
    if (Py_IS_TYPE(h, loop->st->HandleType))
        fl = &loop->free_handles;
    else if (Py_IS_TYPE(h, loop->st->TimerHandleType))
        fl = &loop->free_timers;
    else
        return false; /* a subclass */
    if (!freelist_reserve(fl))
        return false;
    fl->items[fl->n++] = (PyObject *)h;
    return true;
}

static void handle_dealloc(HandleObject *h)
{
    PyTypeObject *tp = Py_TYPE(h);
    LoopObject *loop = h->loop;

    PyObject_GC_UnTrack(h);
    if (loop && loop->last_new == h)
        loop->last_new = NULL;
    if (h->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)h);
    /* Hold the loop until h is stored: clearing the fields runs
     * finalizers, which may even close the loop. */
    h->loop = NULL;
    handle_clear_fields(h);
    if (!loop || !keep_for_reuse(loop, h)) {
        tp->tp_free(h);
        Py_DECREF(tp);
    } /* else the free list keeps h's reference to tp */
    Py_XDECREF(loop);
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS,
     "Cancel the call. No-op if it already ran or was cancelled."},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS,
     "Return True if the callback was cancelled."},
    {"get_context", (PyCFunction)handle_get_context, METH_NOARGS,
     "Return the contextvars.Context the callback runs in."},
    {"_run", (PyCFunction)handle_run, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"_callback", (getter)get_callback, NULL, NULL, NULL},
    {"_args", (getter)get_args, NULL, NULL, NULL},
    {"_context", (getter)get_context, NULL, NULL, NULL},
    {"_loop", (getter)get_loop, NULL, NULL, NULL},
    {"_source_traceback", (getter)get_source_tb, NULL, NULL, NULL},
    {"_repr", (getter)get_repr, NULL, NULL, NULL},
    {"_cancelled", (getter)get_cancelled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef handle_members[] = {
    {"__weaklistoffset__", RLPY_T_PYSSIZET, offsetof(HandleObject, weakreflist),
     RLPY_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_doc, "Object returned by callback registration methods."},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, handle_repr},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_members, handle_members},
    {0, NULL},
};

PyType_Spec rlpy_handle_spec = {
    .name = "ringloop.Handle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = handle_slots,
};

/* ---- TimerHandle ------------------------------------------------------- */

static PyObject *timer_when(TimerHandleObject *t, PyObject *unused)
{
    (void)unused;
    return PyFloat_FromDouble(t->when);
}

static PyObject *get_when(TimerHandleObject *t, void *c)
{
    (void)c;
    return PyFloat_FromDouble(t->when);
}

static PyObject *get_scheduled(TimerHandleObject *t, void *c)
{
    (void)c;
    return PyBool_FromLong(t->h.where == RLPY_TIMER);
}

static Py_hash_t timer_hash(TimerHandleObject *t)
{
    PyObject *w = PyFloat_FromDouble(t->when);
    Py_hash_t hash;

    if (!w)
        return -1;
    hash = PyObject_Hash(w);
    Py_DECREF(w);
    return hash;
}

/* asyncio's TimerHandle.__eq__. -1 on error. */
static int timer_eq(TimerHandleObject *a, TimerHandleObject *b)
{
    int r;

    if (a->when != b->when || a->h.cancelled != b->h.cancelled)
        return 0;
    r = PyObject_RichCompareBool(a->h.callback ? a->h.callback : Py_None,
                                 b->h.callback ? b->h.callback : Py_None,
                                 Py_EQ);
    if (r != 1)
        return r;
    return PyObject_RichCompareBool(a->h.args ? a->h.args : Py_None,
                                    b->h.args ? b->h.args : Py_None, Py_EQ);
}

static PyObject *timer_richcompare(PyObject *self, PyObject *other, int op)
{
    TimerHandleObject *a = (TimerHandleObject *)self, *b;
    rlpy_state *st = a->h.loop ? a->h.loop->st : NULL;
    int eq = 0;

    if (!st || !PyObject_TypeCheck(other, st->TimerHandleType))
        Py_RETURN_NOTIMPLEMENTED;
    b = (TimerHandleObject *)other;
    if (op == Py_LT)
        return PyBool_FromLong(a->when < b->when);
    if (op == Py_GT)
        return PyBool_FromLong(a->when > b->when);
    if ((op == Py_LE && a->when < b->when) ||
        (op == Py_GE && a->when > b->when))
        Py_RETURN_TRUE;
    eq = timer_eq(a, b);
    if (eq < 0)
        return NULL;
    if (op == Py_NE)
        eq = !eq;
    return PyBool_FromLong(eq);
}

static PyMethodDef timer_methods[] = {
    {"when", (PyCFunction)timer_when, METH_NOARGS,
     "Return the scheduled time, on the loop.time() clock."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef timer_getset[] = {
    {"_when", (getter)get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)get_scheduled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot timer_slots[] = {
    {Py_tp_doc, "Object returned by timed callback registration methods."},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_hash, timer_hash},
    {Py_tp_richcompare, timer_richcompare},
    {Py_tp_methods, timer_methods},
    {Py_tp_getset, timer_getset},
    {0, NULL},
};

PyType_Spec rlpy_timer_handle_spec = {
    .name = "ringloop.TimerHandle",
    .basicsize = sizeof(TimerHandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = timer_slots,
};
