/*
 * The loop-wide cork. While a protocol takes received data (a delivery,
 * between rlpy_cork_begin() and rlpy_cork_end(), nested ones counted in
 * LoopObject.cork_depth), what it writes to a corking stream transport
 * whose queue was idle is queued instead of sent, and the transport goes
 * on the loop's corked list (LoopObject.corked, linked through
 * TransportObject.cork_next, one strong reference each). When the
 * outermost delivery returns, each listed transport sends what it queued
 * in one sendmsg (its flush hook): a reply, or many to pipelined requests,
 * costs one system call.
 */
#include "transport.h"

void rlpy_cork_begin(LoopObject *loop)
{
    loop->cork_depth++;
}

/* A transport stays listed (and referenced) until here, even when
 * something flushed it earlier. */
void rlpy_cork_end(LoopObject *loop)
{
    if (--loop->cork_depth > 0)
        return;
    while (loop->corked) {
        TransportObject *t = (TransportObject *)loop->corked;
        loop->corked = t->cork_next;
        t->cork_next = NULL;
        t->cork_listed = false;
        t->ops->flush(t);
        Py_DECREF(t);
    }
}

int rlpy_cork_write(StreamObject *s, const Py_buffer *v, PyObject *data)
{
    TransportObject *t = &s->t;
    PyObject *keep = PyBytes_CheckExact(data)
                         ? Py_NewRef(data)
                         : PyBytes_FromStringAndSize(v->buf, v->len);

    if (!keep || rlpy_wq_push(&s->wq, keep, 0, !rl_op_in_flight(&t->wop)) < 0)
        return -1;
    s->corked = true;
    /* Flushed early (get_write_buffer_size(), ...), s is still listed. */
    if (!t->cork_listed) {
        t->cork_listed = true;
        t->cork_next = t->loop->corked;
        t->loop->corked = Py_NewRef((PyObject *)t);
    }
    /* Past the high-water mark asyncio would have sent, then paused. */
    if (s->wq.size > t->high)
        t->ops->flush(t);
    return 0;
}
