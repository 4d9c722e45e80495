/*
 * Socket addresses between C and Python, as the socket module converts
 * them (makesockaddr() and getsockaddrarg()), for the families the loop
 * supports: sock_*() calls and datagram transports use them. Names are
 * not resolved here; the Python side resolves what is not numeric.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pyloop.h"

/*
 * inet_ntop(AF_INET) as a str. glibc's formats with sprintf(), which costs
 * more than the rest of a datagram's delivery to the protocol; this writes
 * the same digits.
 */
static PyObject *ipv4_str(const struct in_addr *in)
{
    const unsigned char *b = (const unsigned char *)&in->s_addr;
    char buf[sizeof("255.255.255.255")], *p = buf;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned v = b[i];

        if (i)
            *p++ = '.';
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
    }
    return PyUnicode_DecodeASCII(buf, p - buf, NULL);
}

/* socket module's makesockaddr() for the families the loop supports. */
PyObject *rlpy_sockaddr_to_py(const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (len == 0)
        Py_RETURN_NONE;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const void *)sa;
        PyObject *t = PyTuple_New(2), *v;

        if (!t)
            return NULL;
        if (!(v = ipv4_str(&a->sin_addr))) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 0, v);
        if (!(v = PyLong_FromLong(ntohs(a->sin_port)))) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 1, v);
        return t;
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
        /* the socket module's: bytes-like as they are (an abstract name
         * starts with a NUL), str encoded for the file system */
        struct sockaddr_un *a = (void *)ss;
        PyObject *b = PyUnicode_Check(addr) ? PyUnicode_EncodeFSDefault(addr)
                                            : Py_NewRef(addr);
        Py_buffer v;
        bool abstract;

        if (!b)
            return -1;
        if (PyObject_GetBuffer(b, &v, PyBUF_SIMPLE) < 0) {
            Py_DECREF(b);
            return -1;
        }
        abstract = v.len > 0 && ((const char *)v.buf)[0] == '\0';
        if ((size_t)v.len > sizeof(a->sun_path) - (abstract ? 0 : 1)) {
            PyBuffer_Release(&v);
            Py_DECREF(b);
            PyErr_SetString(PyExc_OSError, "AF_UNIX path too long");
            return -1;
        }
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path, v.buf, (size_t)v.len);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                           (size_t)v.len + (abstract ? 0 : 1));
        PyBuffer_Release(&v);
        Py_DECREF(b);
        return 0;
    }
    /* the socket module's getsockaddrarg(): the wrong shape is a TypeError
     * (nothing to resolve) */
    if (family == AF_INET &&
        (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) != 2)) {
        PyErr_Format(PyExc_TypeError,
                     PyTuple_Check(addr)
                         ? "AF_INET address must be a pair (host, port)"
                         : "AF_INET address must be tuple, not %.200s",
                     Py_TYPE(addr)->tp_name);
        return -1;
    }
    if (family == AF_INET6 &&
        (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2 ||
         PyTuple_GET_SIZE(addr) > 4)) {
        PyErr_Format(PyExc_TypeError,
                     PyTuple_Check(addr)
                         ? "AF_INET6 address must be a tuple (host, port[, "
                           "flowinfo[, scopeid]])"
                         : "AF_INET6 address must be tuple, not %.200s",
                     Py_TYPE(addr)->tp_name);
        return -1;
    }
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
        PyErr_SetString(PyExc_ValueError, "not a numeric address");
        return -1;
    }
    host = PyUnicode_Check(PyTuple_GET_ITEM(addr, 0))
               ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0))
               : NULL;
    if (host && PyLong_Check(PyTuple_GET_ITEM(addr, 1))) {
        long p = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
        if ((p == -1 && PyErr_Occurred()) || p < 0 || p > 65535) {
            /* as the socket module: not a name to resolve, a bad port */
            PyErr_Clear();
            PyErr_SetString(PyExc_OverflowError, "port must be 0-65535.");
            return -1;
        }
        port = (int)p;
    } else if (host) {
        /* the socket module's "i": no name to resolve for a port */
        PyErr_Format(PyExc_TypeError,
                     "'%.200s' object cannot be interpreted as an integer",
                     Py_TYPE(PyTuple_GET_ITEM(addr, 1))->tp_name);
        return -1;
    } else {
        port = -1;
    }
    if (!host || port < 0) {
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
        if (PyTuple_GET_SIZE(addr) >= 3) {
            unsigned long fi = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2));
            if (PyErr_Occurred())
                return -1;
            if (fi > 0xfffff) {
                PyErr_SetString(PyExc_OverflowError,
                                "flowinfo must be 0-1048575.");
                return -1;
            }
            a->sin6_flowinfo = htonl((uint32_t)fi);
        }
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
