/*
 * The write queue of the stream transports (sockets and pipes): bytes
 * objects kept by reference, offset into the first, leaving in one
 * vectored sendmsg or writev. The iovecs point into the queued objects,
 * which are released only once no write is in flight.
 */
#include <string.h>

#include "transport.h"

int rlpy_wq_push(rlpy_wqueue *wq, PyObject *data, Py_ssize_t off, bool moveable)
{
    struct rlpy_wentry *v;
    size_t cap;

    if (wq->tail == wq->cap && wq->head > 0 && moveable) {
        memmove(wq->q, wq->q + wq->head, (wq->tail - wq->head) * sizeof(*v));
        wq->tail -= wq->head;
        wq->head = 0;
    }
    if (wq->tail == wq->cap) {
        cap = wq->cap ? wq->cap * 2 : 16;
        v = PyMem_Realloc(wq->q, cap * sizeof(*v));
        if (!v) {
            Py_DECREF(data);
            PyErr_NoMemory();
            return -1;
        }
        wq->q = v;
        wq->cap = cap;
    }
    wq->q[wq->tail].data = data;
    wq->q[wq->tail].off = off;
    wq->tail++;
    wq->size += PyBytes_GET_SIZE(data) - off;
    return 0;
}

size_t rlpy_wq_iov(rlpy_wqueue *wq)
{
    size_t i, n = 0;

    for (i = wq->head; i < wq->tail && n < RLPY_WQ_IOV; i++, n++) {
        struct rlpy_wentry *e = &wq->q[i];
        wq->iov[n].iov_base = PyBytes_AS_STRING(e->data) + e->off;
        wq->iov[n].iov_len = (size_t)(PyBytes_GET_SIZE(e->data) - e->off);
    }
    memset(&wq->msg, 0, sizeof(wq->msg));
    wq->msg.msg_iov = wq->iov;
    wq->msg.msg_iovlen = n;
    return n;
}

void rlpy_wq_consume(rlpy_wqueue *wq, Py_ssize_t n)
{
    wq->size -= n;
    while (n > 0 && wq->head < wq->tail) {
        struct rlpy_wentry *e = &wq->q[wq->head];
        Py_ssize_t left = PyBytes_GET_SIZE(e->data) - e->off;
        if (n < left) {
            e->off += n;
            return;
        }
        n -= left;
        Py_CLEAR(e->data);
        wq->head++;
    }
    if (wq->head == wq->tail)
        wq->head = wq->tail = 0;
}

void rlpy_wq_clear(rlpy_wqueue *wq)
{
    while (wq->head < wq->tail)
        Py_CLEAR(wq->q[wq->head++].data);
    wq->head = wq->tail = 0;
    wq->size = 0;
}

void rlpy_wq_free(rlpy_wqueue *wq)
{
    rlpy_wq_clear(wq);
    PyMem_Free(wq->q);
    wq->q = NULL;
    wq->cap = 0;
}
