/*
 * The echo server on ringloop's C API; see rl_echo.h.
 *
 * A buffer delivered by a multishot recv is the loop's only until the
 * callback returns, so the data is copied: into `out` when no send is in
 * flight (and sent from there), else appended to `pend`, which becomes the
 * next send. `out` is never touched while the kernel owns it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "echo_common.h"
#include "rl_echo.h"

struct echo_buf {
    char *p;
    size_t len;
    size_t cap;
};

struct echo_conn {
    struct rl_echo_server *srv;
    struct echo_conn *prev, *next;
    int fd;
    bool closing;
    bool closed; /* the close op has completed */
    size_t sent; /* of out.len */
    struct echo_buf out, pend;
    rl_op recv, send, close;
};

struct rl_echo_server {
    rl_loop *loop;
    int lfd;
    bool stopping;
    unsigned nconns;
    unsigned long long bytes;
    struct echo_conn *conns;
    rl_op accept;
};

static void on_recv(rl_loop *loop, rl_op *op);
static void on_send(rl_loop *loop, rl_op *op);

static void server_maybe_free(struct rl_echo_server *s)
{
    if (s->stopping && !s->conns && !rl_op_in_flight(&s->accept))
        free(s);
}

static void conn_maybe_free(struct echo_conn *c)
{
    struct rl_echo_server *s = c->srv;

    if (!c->closed || rl_op_in_flight(&c->recv) || rl_op_in_flight(&c->send))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->out.p);
    free(c->pend.p);
    free(c);
    server_maybe_free(s);
}

static void on_close(rl_loop *loop, rl_op *op)
{
    struct echo_conn *c = op->data;

    (void)loop;
    c->closed = true;
    conn_maybe_free(c);
}

/* Close c's socket; the close op also cancels its recv and send. */
static void conn_close(struct echo_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    rl_prep_close(&c->close, c->fd, on_close, c);
    if (rl_submit(c->srv->loop, &c->close) < 0) {
        /* cannot happen with a valid fd; do not leak the socket */
        rl_cancel_fd(c->srv->loop, c->fd);
        c->closed = true;
    }
}

static int buf_append(struct echo_buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        char *p;
        while (cap < b->len + len)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static void send_rest(struct echo_conn *c)
{
    rl_prep_send(&c->send, c->fd, c->out.p + c->sent, c->out.len - c->sent,
                 MSG_NOSIGNAL, on_send, c);
    if (rl_submit(c->srv->loop, &c->send) < 0)
        conn_close(c);
}

static void on_send(rl_loop *loop, rl_op *op)
{
    struct echo_conn *c = op->data;
    struct echo_buf t;

    (void)loop;
    if (op->res < 0 || c->closing) {
        conn_close(c);
        conn_maybe_free(c);
        return;
    }
    c->sent += (size_t)op->res;
    c->srv->bytes += (size_t)op->res;
    if (c->sent < c->out.len) {
        send_rest(c);
        return;
    }
    c->sent = c->out.len = 0;
    if (c->pend.len) { /* what arrived during the send goes next */
        t = c->out;
        c->out = c->pend;
        c->pend = t;
        send_rest(c);
    }
}

static void on_recv(rl_loop *loop, rl_op *op)
{
    struct echo_conn *c = op->data;
    bool more = op->cflags & RL_CQE_MORE;
    struct echo_buf *b;

    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (op->res > 0) {
        b = rl_op_in_flight(&c->send) ? &c->pend : &c->out;
        if (buf_append(b, op->buf, (size_t)op->res) < 0) {
            conn_close(c);
            return;
        }
        if (b == &c->out)
            send_rest(c);
    }
    if (more)
        return;
    /* final: EOF, an error, or a multishot recv the kernel ended */
    if (op->res > 0 || op->res == -ENOBUFS) {
        rl_prep_recv_multishot(&c->recv, c->fd, on_recv, c);
        if (rl_submit(loop, &c->recv) == 0)
            return;
    }
    conn_close(c);
}

int rl_echo_server_adopt(struct rl_echo_server *s, int fd)
{
    struct echo_conn *c;

    if (s->stopping) {
        close(fd);
        return -ECANCELED;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->srv = s;
    c->fd = fd;
    echo_nodelay(c->fd);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    rl_prep_recv_multishot(&c->recv, c->fd, on_recv, c);
    if (rl_submit(s->loop, &c->recv) < 0)
        conn_close(c);
    return 0;
}

static void on_accept(rl_loop *loop, rl_op *op)
{
    struct rl_echo_server *s = op->data;

    if (op->res >= 0)
        rl_echo_server_adopt(s, op->res);

    if (op->cflags & RL_CQE_MORE)
        return;
    /* -EMFILE and the like are transient; a cancel or a bad fd is not */
    if (!s->stopping && op->res != -ECANCELED && op->res != -EBADF &&
        op->res != -EINVAL) {
        rl_prep_accept_multishot(&s->accept, s->lfd,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC, on_accept, s);
        if (rl_submit(loop, &s->accept) == 0)
            return;
    }
    server_maybe_free(s);
}

int rl_echo_server_start(rl_loop *loop, int lfd, struct rl_echo_server **out)
{
    struct rl_echo_server *s = calloc(1, sizeof(*s));
    int ret;

    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->lfd = lfd;
    if (lfd < 0) { /* connections come by rl_echo_server_adopt() only */
        *out = s;
        return 0;
    }
    rl_prep_accept_multishot(&s->accept, lfd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                             on_accept, s);
    ret = rl_submit(loop, &s->accept);
    if (ret < 0) {
        free(s);
        return ret;
    }
    *out = s;
    return 0;
}

void rl_echo_server_stop(struct rl_echo_server *s)
{
    struct echo_conn *c;

    if (s->stopping)
        return;
    s->stopping = true;
    if (rl_op_in_flight(&s->accept))
        rl_op_cancel(s->loop, &s->accept);
    for (c = s->conns; c; c = c->next)
        conn_close(c);
    server_maybe_free(s);
}

unsigned rl_echo_server_conns(const struct rl_echo_server *s)
{
    return s->nconns;
}

unsigned long long rl_echo_server_bytes(const struct rl_echo_server *s)
{
    return s->bytes;
}
