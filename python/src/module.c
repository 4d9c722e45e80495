/*
 * ringloop._ext: module state and Py_mod_exec (the helpers the types share
 * are in util.c).
 */
#include "pyloop.h"

/* ---- module ------------------------------------------------------------ */

static int add_type(PyObject *mod, PyType_Spec *spec, PyObject *base,
                    PyTypeObject **out)
{
    PyObject *t = PyType_FromModuleAndSpec(mod, spec, base);

    if (!t)
        return -1;
    *out = (PyTypeObject *)t;
    return PyModule_AddType(mod, *out);
}

static int intern(PyObject **out, const char *s)
{
    *out = PyUnicode_InternFromString(s);
    return *out ? 0 : -1;
}

/* Transport (on asyncio.BaseTransport, as its _extra slot is ours), and
 * under it StreamTransport and DatagramTransport (with asyncio's Transport
 * / DatagramTransport), and PipeTransport under StreamTransport. */
static int add_transport_types(PyObject *mod, rlpy_state *st,
                               PyObject *transport, PyObject *dtransport)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio"), *base, *bases;
    int ret;

    base = asyncio ? PyObject_GetAttrString(asyncio, "BaseTransport") : NULL;
    Py_XDECREF(asyncio);
    if (!base || rlpy_transport_layout_check(base) < 0) {
        Py_XDECREF(base);
        return -1;
    }
    ret = add_type(mod, &rlpy_transport_spec, base, &st->TransportType);
    Py_DECREF(base);
    if (ret < 0)
        return -1;
    bases = PyTuple_Pack(2, st->TransportType, transport);
    ret = !bases ||
          add_type(mod, &rlpy_stream_spec, bases, &st->StreamType) < 0 ||
          add_type(mod, &rlpy_pipe_spec, (PyObject *)st->StreamType,
                   &st->PipeType) < 0;
    Py_XDECREF(bases);
    if (ret)
        return -1;
    bases = PyTuple_Pack(3, st->TransportType, transport, dtransport);
    ret = !bases || add_type(mod, &rlpy_dgram_spec, bases, &st->DgramType) < 0;
    Py_XDECREF(bases);
    return ret ? -1 : 0;
}

static const struct {
    const char *s;
    size_t off;
} transport_names[] = {
#define RLPY_TRANSPORT_NAME(name) {#name, offsetof(rlpy_state, str_##name)},
    RLPY_TRANSPORT_NAMES(RLPY_TRANSPORT_NAME)
#undef RLPY_TRANSPORT_NAME
};

static PyObject **state_str(rlpy_state *st, size_t i)
{
    return (PyObject **)((char *)st + transport_names[i].off);
}

/* What the transports are made with: see rlpy_state. */
static int transport_state(rlpy_state *st)
{
    PyObject *m;
    size_t i;

    for (i = 0; i < sizeof(transport_names) / sizeof(*transport_names); i++)
        if (intern(state_str(st, i), transport_names[i].s) < 0)
            return -1;
    if (!(m = PyImport_ImportModule("asyncio")))
        return -1;
    st->BufferedProtocol = PyObject_GetAttrString(m, "BufferedProtocol");
    Py_DECREF(m);
    if (!st->BufferedProtocol || !(m = PyImport_ImportModule("asyncio.trsock")))
        return -1;
    st->TransportSocket =
        (PyTypeObject *)PyObject_GetAttrString(m, "TransportSocket");
    Py_DECREF(m);
    if (!st->TransportSocket || !PyType_Check(st->TransportSocket))
        goto err_layout;
    st->TransportSocket_sock =
        PyObject_GetAttrString((PyObject *)st->TransportSocket, "_sock");
    if (!st->TransportSocket_sock ||
        !Py_TYPE(st->TransportSocket_sock)->tp_descr_set)
        goto err_layout;
    if (!(m = PyImport_ImportModule("_socket")))
        return -1;
    st->SocketType = (PyTypeObject *)PyObject_GetAttrString(m, "socket");
    Py_DECREF(m);
    if (!st->SocketType || !PyType_Check(st->SocketType))
        goto err_layout;
    if (!(m = PyImport_ImportModule("socket")))
        return -1;
    st->PySocketType = (PyTypeObject *)PyObject_GetAttrString(m, "socket");
    Py_DECREF(m);
    if (!st->PySocketType || !PyType_Check(st->PySocketType))
        goto err_layout;
    st->SocketFamily =
        PyObject_GetAttrString((PyObject *)st->SocketType, "family");
    st->SocketKind = PyObject_GetAttrString((PyObject *)st->SocketType, "type");
    if (!st->SocketFamily || !st->SocketKind ||
        !Py_TYPE(st->SocketFamily)->tp_descr_get ||
        !Py_TYPE(st->SocketKind)->tp_descr_get)
        goto err_layout;
    return 0;
err_layout:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ImportError,
                        "unexpected asyncio.trsock or _socket layout");
    return -1;
}

static void transport_state_clear(rlpy_state *st)
{
    size_t i;

    for (i = 0; i < sizeof(transport_names) / sizeof(*transport_names); i++)
        Py_CLEAR(*state_str(st, i));
    Py_CLEAR(st->TransportType);
    Py_CLEAR(st->PipeType);
    Py_CLEAR(st->BufferedProtocol);
    Py_CLEAR(st->TransportSocket);
    Py_CLEAR(st->TransportSocket_sock);
    Py_CLEAR(st->SocketType);
    Py_CLEAR(st->PySocketType);
    Py_CLEAR(st->SocketFamily);
    Py_CLEAR(st->SocketKind);
}

static int rlpy_exec(PyObject *mod)
{
    rlpy_state *st = PyModule_GetState(mod);
    PyObject *asyncio, *transport = NULL, *dtransport = NULL;
    int ret;

    asyncio = PyImport_ImportModule("asyncio");
    if (!asyncio)
        return -1;
    st->Future = PyObject_GetAttrString(asyncio, "Future");
    st->Task = PyObject_GetAttrString(asyncio, "Task");
    transport = PyObject_GetAttrString(asyncio, "Transport");
    dtransport = PyObject_GetAttrString(asyncio, "DatagramTransport");
    Py_DECREF(asyncio);
    if (!st->Future || !st->Task || !transport || !dtransport ||
        rlpy_transport_layout_check(transport) < 0 ||
        rlpy_transport_layout_check(dtransport) < 0) {
        Py_XDECREF(transport);
        Py_XDECREF(dtransport);
        return -1;
    }
    /* The transports derive from asyncio's (isinstance() checks work); the
     * datagram one from Transport too, as asyncio's own does. */
    ret = add_type(mod, &rlpy_handle_spec, NULL, &st->HandleType) < 0 ||
          add_type(mod, &rlpy_timer_handle_spec, (PyObject *)st->HandleType,
                   &st->TimerHandleType) < 0 ||
          add_type(mod, &rlpy_loop_spec, NULL, &st->LoopType) < 0 ||
          add_type(mod, &rlpy_sockop_spec, NULL, &st->SockOpType) < 0 ||
          add_type(mod, &rlpy_acceptor_spec, NULL, &st->AcceptorType) < 0 ||
          add_type(mod, &rlpy_server_spec, NULL, &st->ServerBaseType) < 0 ||
          add_transport_types(mod, st, transport, dtransport) < 0 ||
          rlpy_file_init(mod, st) < 0;
    Py_DECREF(transport);
    Py_DECREF(dtransport);
    if (ret || transport_state(st) < 0)
        return -1;
    st->kw_loop = Py_BuildValue("(s)", "loop");
#if PY_VERSION_HEX >= 0x030B0000
    st->kw_task = Py_BuildValue("(sss)", "loop", "name", "context");
#else
    st->kw_task = Py_BuildValue("(ss)", "loop", "name");
#endif
    st->kw_task_ctx = Py_BuildValue("(s)", "context");
    if (!st->kw_loop || !st->kw_task || !st->kw_task_ctx ||
        intern(&st->str_set_name, "set_name") < 0 ||
        intern(&st->str_call_exception_handler, "call_exception_handler") < 0 ||
        intern(&st->str_message, "message") < 0 ||
        intern(&st->str_exception, "exception") < 0 ||
        intern(&st->str_handle, "handle") < 0 ||
        intern(&st->str_source_traceback, "source_traceback") < 0 ||
        intern(&st->str_data_received, "data_received") < 0 ||
        intern(&st->str_create_future, "create_future") < 0 ||
        intern(&st->str_add_done_callback, "add_done_callback") < 0)
        return -1;
    if (PyModule_AddStringConstant(mod, "CORE_VERSION", RINGLOOP_VERSION) < 0)
        return -1;
    return 0;
}

static int rlpy_traverse(PyObject *mod, visitproc visit, void *arg)
{
    rlpy_state *st = PyModule_GetState(mod);

    Py_VISIT(st->LoopType);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->TimerHandleType);
    Py_VISIT(st->StreamType);
    Py_VISIT(st->SockOpType);
    Py_VISIT(st->AcceptorType);
    Py_VISIT(st->ServerBaseType);
    Py_VISIT(st->DgramType);
    Py_VISIT(st->Future);
    Py_VISIT(st->Task);
    Py_VISIT(st->support);
    Py_VISIT(st->TransportType);
    Py_VISIT(st->PipeType);
    Py_VISIT(st->BufferedProtocol);
    Py_VISIT(st->TransportSocket);
    Py_VISIT(st->TransportSocket_sock);
    Py_VISIT(st->SocketType);
    Py_VISIT(st->PySocketType);
    Py_VISIT(st->SocketFamily);
    Py_VISIT(st->SocketKind);
    return 0;
}

static int rlpy_clear(PyObject *mod)
{
    rlpy_state *st = PyModule_GetState(mod);

    Py_CLEAR(st->LoopType);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->TimerHandleType);
    Py_CLEAR(st->StreamType);
    Py_CLEAR(st->SockOpType);
    Py_CLEAR(st->AcceptorType);
    Py_CLEAR(st->ServerBaseType);
    Py_CLEAR(st->DgramType);
    Py_CLEAR(st->Future);
    Py_CLEAR(st->Task);
    Py_CLEAR(st->kw_task);
    Py_CLEAR(st->kw_task_ctx);
    Py_CLEAR(st->str_set_name);
    Py_CLEAR(st->support);
    Py_CLEAR(st->kw_loop);
    Py_CLEAR(st->str_call_exception_handler);
    Py_CLEAR(st->str_message);
    Py_CLEAR(st->str_exception);
    Py_CLEAR(st->str_handle);
    Py_CLEAR(st->str_source_traceback);
    Py_CLEAR(st->str_data_received);
    Py_CLEAR(st->str_create_future);
    Py_CLEAR(st->str_add_done_callback);
    transport_state_clear(st);
    return 0;
}

static void rlpy_free(void *mod)
{
    rlpy_clear((PyObject *)mod);
}

static PyModuleDef_Slot rlpy_slots[] = {
    {Py_mod_exec, rlpy_exec},
    {0, NULL},
};

PyModuleDef rlpy_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ringloop._ext",
    .m_doc = "The C core of ringloop's asyncio event loop.",
    .m_size = sizeof(rlpy_state),
    .m_slots = rlpy_slots,
    .m_traverse = rlpy_traverse,
    .m_clear = rlpy_clear,
    .m_free = rlpy_free,
};

PyMODINIT_FUNC PyInit__ext(void)
{
    return PyModuleDef_Init(&rlpy_module);
}
