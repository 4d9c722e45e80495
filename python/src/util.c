/*
 * What every type of the extension calls, below the types: the module
 * state from a type, ringloop._support, exceptions taken and restored,
 * the core's clock, and the loop checks and exception stash the types
 * share. Nothing here names a type other than LoopObject.
 */
#include <time.h>

#include "pyloop.h"

rlpy_state *rlpy_state_of_type(PyTypeObject *tp)
{
    PyObject *mro = tp->tp_mro;
    Py_ssize_t i, n;

    /* A Python subclass of Loop has no module: walk to our base type. */
    n = mro ? PyTuple_GET_SIZE(mro) : 0;
    for (i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        PyObject *mod;

        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
            continue;
        mod = PyType_GetModule(t);
        if (!mod) {
            PyErr_Clear();
            continue;
        }
        if (PyModule_GetDef(mod) == &rlpy_module)
            return PyModule_GetState(mod);
    }
    PyErr_SetString(PyExc_TypeError, "not a ringloop type");
    return NULL;
}

PyObject *rlpy_support(rlpy_state *st, const char *name)
{
    if (!st->support) {
        st->support = PyImport_ImportModule("ringloop._support");
        if (!st->support)
            return NULL;
    }
    return PyObject_GetAttrString(st->support, name);
}

PyObject *rlpy_exc_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) {
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
#endif
}

void rlpy_exc_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

int rlpy_transport_layout_check(PyObject *base)
{
    /* asyncio.BaseTransport has __slots__ = ('_extra',): one object slot
     * right after the object header, which our structs start with. */
    if (!PyType_Check(base) ||
        ((PyTypeObject *)base)->tp_basicsize !=
            (Py_ssize_t)(sizeof(PyObject) + sizeof(PyObject *))) {
        PyErr_Format(PyExc_ImportError,
                     "unexpected layout of asyncio transport type %R", base);
        return -1;
    }
    return 0;
}

double rlpy_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the loop, as every type sees it ----------------------------------- */

int rlpy_loop_check_closed(LoopObject *loop)
{
    if (loop->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

void rlpy_loop_stash_exc(LoopObject *loop, PyObject *exc)
{
    if (!exc)
        return;
    if (loop->pending_exc)
        Py_DECREF(exc); /* the first one wins, as it would in asyncio */
    else
        loop->pending_exc = exc;
    if (loop->rl && loop->running)
        rl_loop_break(loop->rl);
}
