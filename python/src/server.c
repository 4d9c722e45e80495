/*
 * ServerBase: the part of ringloop's Server (asyncio.Server's API) that
 * transports update, in C: _attach/_detach, the count of attached
 * transports (_active_count) and the set of them (_clients, a
 * weakref.WeakSet that close_clients()/abort_clients() iterate).
 *
 * A stream transport attaches itself to its server when it is made and
 * detaches after connection_lost(): once per connection each. Here they
 * cost no Python frame: the count is a C field, and a transport joins the
 * WeakSet as WeakSet.add() would put it there (a weak reference with the
 * set's _remove callback, in the set's data), found once when _clients is
 * assigned. A WeakSet that is being iterated (removals pending) or is not
 * a plain weakref.WeakSet gets add()/discard() called instead.
 */
#include "pyloop.h"

typedef struct {
    PyObject_HEAD
    Py_ssize_t active_count;
    PyObject *clients; /* the WeakSet, or NULL before it is set */
    PyObject *data;    /* clients.data (a set) if clients is a WeakSet */
    PyObject *remove;  /* clients._remove */
    PyObject *pending; /* clients._pending_removals (a list) */
} ServerBaseObject;

static void server_dealloc(ServerBaseObject *s);

/* A ServerBase (or a subclass), checked without the module state. */
static bool is_server(PyObject *o)
{
    PyTypeObject *tp;

    for (tp = Py_TYPE(o); tp; tp = tp->tp_base)
        if (tp->tp_dealloc == (destructor)server_dealloc)
            return true;
    return false;
}

/* What WeakSet.add(t) does, when nothing is pending: -1 if it cannot. */
static int clients_add(ServerBaseObject *s, PyObject *t)
{
    PyObject *ref;
    int ret;

    if (!s->data || PyList_GET_SIZE(s->pending) > 0)
        return -1;
    ref = PyWeakref_NewRef(t, s->remove);
    if (!ref)
        return -2;
    ret = PySet_Add(s->data, ref);
    Py_DECREF(ref);
    return ret < 0 ? -2 : 0;
}

/* What WeakSet.discard(t) does, when nothing is pending. */
static int clients_discard(ServerBaseObject *s, PyObject *t)
{
    PyObject *ref;
    int ret;

    if (!s->data || PyList_GET_SIZE(s->pending) > 0)
        return -1;
    ref = PyWeakref_NewRef(t, NULL);
    if (!ref)
        return -2;
    ret = PySet_Discard(s->data, ref);
    Py_DECREF(ref);
    return ret < 0 ? -2 : 0;
}

/* clients.<meth>(t), the slow way. */
static int clients_call(ServerBaseObject *s, const char *meth, PyObject *t)
{
    PyObject *r;

    if (!s->clients) {
        PyErr_SetString(PyExc_AttributeError, "_clients is not set");
        return -1;
    }
    r = PyObject_CallMethod(s->clients, meth, "O", t);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int rlpy_server_attach(PyObject *server, PyObject *transport)
{
    ServerBaseObject *s = (ServerBaseObject *)server;
    PyObject *r;
    int ret;

    if (!is_server(server)) {
        r = PyObject_CallMethod(server, "_attach", "O", transport);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    if (transport != Py_None) {
        ret = clients_add(s, transport);
        if (ret == -2 || (ret == -1 && clients_call(s, "add", transport) < 0))
            return -1;
    }
    s->active_count++;
    return 0;
}

int rlpy_server_detach(PyObject *server, PyObject *transport)
{
    ServerBaseObject *s = (ServerBaseObject *)server;
    PyObject *r;
    int ret;

    if (!is_server(server)) {
        r = PyObject_CallMethod(server, "_detach", "O", transport);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    s->active_count--;
    if (transport != Py_None) {
        ret = clients_discard(s, transport);
        if (ret == -2 ||
            (ret == -1 && clients_call(s, "discard", transport) < 0))
            return -1;
    }
    if (s->active_count != 0)
        return 0;
    /* The last one gone after close(): wake up wait_closed(). */
    r = PyObject_GetAttrString(server, "_sockets");
    if (!r)
        return -1;
    ret = r == Py_None;
    Py_DECREF(r);
    if (!ret)
        return 0;
    r = PyObject_CallMethod(server, "_wakeup", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *server_attach(PyObject *s, PyObject *const *args,
                               Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "_attach() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (rlpy_server_attach(s, nargs ? args[0] : Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *server_detach(PyObject *s, PyObject *const *args,
                               Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "_detach() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (rlpy_server_detach(s, nargs ? args[0] : Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *server_get_clients(ServerBaseObject *s, void *closure)
{
    (void)closure;
    if (!s->clients) {
        PyErr_SetString(PyExc_AttributeError, "_clients");
        return NULL;
    }
    return Py_NewRef(s->clients);
}

/* The parts of a weakref.WeakSet that add() and discard() use, or -1 if v
 * is not one (then its methods are called). */
static int find_weakset_parts(PyObject *v, PyObject **data, PyObject **remove,
                              PyObject **pending)
{
    PyObject *mod, *ws;
    bool plain;

    *data = *remove = *pending = NULL;
    mod = PyImport_ImportModule("weakref");
    if (!mod)
        return -2;
    ws = PyObject_GetAttrString(mod, "WeakSet");
    Py_DECREF(mod);
    if (!ws)
        return -2;
    plain = (PyObject *)Py_TYPE(v) == ws;
    Py_DECREF(ws);
    if (!plain)
        return -1;
    *data = PyObject_GetAttrString(v, "data");
    *remove = PyObject_GetAttrString(v, "_remove");
    *pending = PyObject_GetAttrString(v, "_pending_removals");
    if (*data && PyAnySet_CheckExact(*data) && *remove &&
        PyCallable_Check(*remove) && *pending && PyList_CheckExact(*pending))
        return 0;
    Py_CLEAR(*data);
    Py_CLEAR(*remove);
    Py_CLEAR(*pending);
    PyErr_Clear();
    return -1;
}

static int server_set_clients(ServerBaseObject *s, PyObject *v, void *closure)
{
    PyObject *data = NULL, *remove = NULL, *pending = NULL;

    (void)closure;
    if (v && find_weakset_parts(v, &data, &remove, &pending) == -2)
        return -1;
    Py_XSETREF(s->data, data);
    Py_XSETREF(s->remove, remove);
    Py_XSETREF(s->pending, pending);
    Py_XSETREF(s->clients, Py_XNewRef(v));
    return 0;
}

static int server_traverse(ServerBaseObject *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->clients);
    Py_VISIT(s->data);
    Py_VISIT(s->remove);
    Py_VISIT(s->pending);
    return 0;
}

static int server_clear(ServerBaseObject *s)
{
    Py_CLEAR(s->clients);
    Py_CLEAR(s->data);
    Py_CLEAR(s->remove);
    Py_CLEAR(s->pending);
    return 0;
}

static void server_dealloc(ServerBaseObject *s)
{
    PyTypeObject *tp = Py_TYPE(s);

    PyObject_GC_UnTrack(s);
    server_clear(s);
    tp->tp_free(s);
    Py_DECREF(tp);
}

static PyMethodDef server_methods[] = {
    {"_attach", (PyCFunction)(void (*)(void))server_attach, METH_FASTCALL,
     "A transport of this server was made."},
    {"_detach", (PyCFunction)(void (*)(void))server_detach, METH_FASTCALL,
     "A transport of this server is gone (after connection_lost)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef server_members[] = {
    {"_active_count", RLPY_T_PYSSIZET, offsetof(ServerBaseObject, active_count),
     0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef server_getset[] = {
    {"_clients", (getter)server_get_clients, (setter)server_set_clients,
     "The attached transports (a weakref.WeakSet).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot server_slots[] = {
    {Py_tp_dealloc, server_dealloc},
    {Py_tp_traverse, server_traverse},
    {Py_tp_clear, server_clear},
    {Py_tp_methods, server_methods},
    {Py_tp_members, server_members},
    {Py_tp_getset, server_getset},
    {0, NULL},
};

PyType_Spec rlpy_server_spec = {
    .name = "ringloop._ext.ServerBase",
    .basicsize = sizeof(ServerBaseObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = server_slots,
};
