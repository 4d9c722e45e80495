/*
 * TCP through rl_ops (loop/op.c and each backend's socket paths): an echo
 * server on multishot accept + multishot recv, clients on connect, send
 * (short sends resubmitted) and single-shot recv; 1 and 100 connections,
 * 1 B .. 1 MiB verified byte for byte; half-close; peer reset; refused
 * connect; EMFILE on accept and recovery.
 */
#include <netinet/tcp.h>
#include <sys/resource.h>

#include "helpers.h"

/* ---- echo server ----------------------------------------------------------
 * Received bytes are appended to `pend`; `fly` is the buffer a send op owns
 * until its final completion. When a send finishes the two are swapped, so
 * nothing the loop owns is ever moved or reallocated.
 */
struct server {
    rl_loop *loop;
    int lfd;
    struct sockaddr_in addr;
    rl_op accept_op;
    bool stopping;
    bool accept_done;
    int accepted;
    int closed;
};

struct sconn {
    struct server *srv;
    int fd;
    rl_op recv_op, send_op, close_op;
    uint8_t *pend, *fly;
    size_t pend_len, pend_cap, fly_len, fly_off, fly_cap;
    bool sending, eof, closing;
};

static void srv_recv_cb(rl_loop *loop, rl_op *op);
static void srv_send_cb(rl_loop *loop, rl_op *op);

static void srv_close_cb(rl_loop *loop, rl_op *op)
{
    struct sconn *c = op->data;

    (void)loop;
    if (op->res != 0)
        rlt_fail("server close(fd %d): %s", c->fd, rlt_res_str(op->res));
    c->srv->closed++;
    free(c->pend);
    free(c->fly);
    free(c);
}

static void srv_maybe_close(rl_loop *loop, struct sconn *c)
{
    int r;

    if (!c->eof || c->sending || c->pend_len || c->closing)
        return;
    c->closing = true;
    rl_prep_close(&c->close_op, c->fd, srv_close_cb, c);
    r = rl_submit(loop, &c->close_op);
    if (r < 0)
        rlt_fail("submit close: %s", rlt_res_str(r));
}

static void srv_send_fly(rl_loop *loop, struct sconn *c)
{
    int r;

    rl_prep_send(&c->send_op, c->fd, c->fly + c->fly_off,
                 c->fly_len - c->fly_off, MSG_NOSIGNAL, srv_send_cb, c);
    r = rl_submit(loop, &c->send_op);
    if (r < 0)
        rlt_fail("server submit send: %s", rlt_res_str(r));
}

static void srv_kick(rl_loop *loop, struct sconn *c)
{
    uint8_t *b;
    size_t cap;

    if (c->sending || c->pend_len == 0)
        return;
    b = c->fly;
    cap = c->fly_cap;
    c->fly = c->pend;
    c->fly_cap = c->pend_cap;
    c->fly_len = c->pend_len;
    c->fly_off = 0;
    c->pend = b;
    c->pend_cap = cap;
    c->pend_len = 0;
    c->sending = true;
    srv_send_fly(loop, c);
}

static void srv_send_cb(rl_loop *loop, rl_op *op)
{
    struct sconn *c = op->data;

    if (op->res <= 0) {
        rlt_fail("server send on fd %d: %s", c->fd, rlt_res_str(op->res));
        c->sending = false;
        c->pend_len = 0;
        c->eof = true;
        srv_maybe_close(loop, c);
        return;
    }
    c->fly_off += (size_t)op->res;
    if (c->fly_off < c->fly_len) {
        srv_send_fly(loop, c); /* short send: the rest */
        return;
    }
    c->sending = false;
    srv_kick(loop, c);
    srv_maybe_close(loop, c);
}

static void srv_append(struct sconn *c, const void *p, size_t n)
{
    if (c->pend_len + n > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 65536;

        while (cap < c->pend_len + n)
            cap *= 2;
        c->pend = realloc(c->pend, cap);
        if (!c->pend)
            abort();
        c->pend_cap = cap;
    }
    memcpy(c->pend + c->pend_len, p, n);
    c->pend_len += n;
}

static void srv_arm_recv(rl_loop *loop, struct sconn *c)
{
    int r;

    rl_prep_recv_multishot(&c->recv_op, c->fd, srv_recv_cb, c);
    r = rl_submit(loop, &c->recv_op);
    if (r < 0)
        rlt_fail("submit multishot recv: %s", rlt_res_str(r));
}

static void srv_recv_cb(rl_loop *loop, rl_op *op)
{
    struct sconn *c = op->data;
    bool more = op->cflags & RL_CQE_MORE;

    if (op->res > 0) {
        if (!(op->cflags & RL_CQE_BUFFER) || !op->buf) {
            rlt_fail("multishot recv data without RL_CQE_BUFFER/op->buf");
            return;
        }
        srv_append(c, op->buf, (size_t)op->res);
        srv_kick(loop, c);
        if (!more)
            srv_arm_recv(loop, c); /* the multishot ended: arm again */
        return;
    }
    if (more)
        rlt_fail("recv result %s came with RL_CQE_MORE", rlt_res_str(op->res));
    if (op->res < 0)
        rlt_fail("server recv on fd %d: %s", c->fd, rlt_res_str(op->res));
    c->eof = true;
    srv_maybe_close(loop, c);
}

static void srv_accept_cb(rl_loop *loop, rl_op *op);

static void srv_arm_accept(struct server *srv)
{
    int r;

    rl_prep_accept_multishot(&srv->accept_op, srv->lfd,
                             SOCK_NONBLOCK | SOCK_CLOEXEC, srv_accept_cb, srv);
    r = rl_submit(srv->loop, &srv->accept_op);
    if (r < 0)
        rlt_fail("submit multishot accept: %s", rlt_res_str(r));
}

static void srv_accept_cb(rl_loop *loop, rl_op *op)
{
    struct server *srv = op->data;
    bool more = op->cflags & RL_CQE_MORE;
    struct sconn *c;

    if (op->res >= 0) {
        int fl = fcntl(op->res, F_GETFL), fdfl = fcntl(op->res, F_GETFD);

        if (fl < 0 || !(fl & O_NONBLOCK) || fdfl < 0 || !(fdfl & FD_CLOEXEC))
            rlt_fail("accepted fd %d lacks O_NONBLOCK/FD_CLOEXEC "
                     "(flags 0x%x, fd flags 0x%x)",
                     op->res, fl, fdfl);
        srv->accepted++;
        c = calloc(1, sizeof(*c));
        if (!c)
            abort();
        c->srv = srv;
        c->fd = op->res;
        srv_arm_recv(loop, c);
    } else if (!(srv->stopping && op->res == -ECANCELED)) {
        rlt_fail("accept: %s", rlt_res_str(op->res));
    }
    if (more)
        return;
    if (op->res < 0 || srv->stopping)
        srv->accept_done = true;
    else
        srv_arm_accept(srv); /* the multishot ended: arm again */
}

static void server_start(struct server *srv, rl_loop *loop)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->lfd = rlt_listener(&srv->addr, 512);
    srv_arm_accept(srv);
}

static bool accept_done_pred(void *arg)
{
    return ((struct server *)arg)->accept_done;
}

static void server_stop(struct server *srv)
{
    int r;

    srv->stopping = true;
    r = rl_op_cancel(srv->loop, &srv->accept_op);
    if (r != 0)
        fail_msg("cancel of the armed multishot accept: %s", rlt_res_str(r));
    if (!rlt_run_until(srv->loop, accept_done_pred, srv, RLT_GUARD_MS))
        fail_msg("cancelled accept got no final completion");
    RLT_ASSERT_OK();
    rlt_close(srv->loop, srv->lfd);
}

/* ---- echo client ------------------------------------------------------- */

struct client {
    rl_loop *loop;
    uint32_t seed;
    size_t len;
    int fd;
    uint8_t *tx, *rx;
    size_t rx_off;
    rl_op connect_op, recv_op, shut_op, close_op;
    struct rlt_sender snd;
    bool shut_done, eof, closing;
    int *done;
};

static void cli_close_cb(rl_loop *loop, rl_op *op)
{
    struct client *c = op->data;

    (void)loop;
    if (op->res != 0)
        rlt_fail("client %u close: %s", c->seed, rlt_res_str(op->res));
    (*c->done)++;
}

static void cli_maybe_close(rl_loop *loop, struct client *c)
{
    int r;

    if (!c->eof || !c->shut_done || c->closing)
        return;
    c->closing = true;
    rl_prep_close(&c->close_op, c->fd, cli_close_cb, c);
    r = rl_submit(loop, &c->close_op);
    if (r < 0)
        rlt_fail("submit close: %s", rlt_res_str(r));
}

static void cli_shut_cb(rl_loop *loop, rl_op *op)
{
    struct client *c = op->data;

    if (op->res != 0)
        rlt_fail("client %u shutdown(SHUT_WR): %s", c->seed,
                 rlt_res_str(op->res));
    c->shut_done = true;
    cli_maybe_close(loop, c);
}

static void cli_sent(rl_loop *loop, struct rlt_sender *s)
{
    struct client *c = s->data;
    int r;

    if (s->err) {
        rlt_fail("client %u send at %zu of %zu: %s", c->seed, s->off, s->len,
                 rlt_res_str(s->err));
        return;
    }
    rl_prep_shutdown(&c->shut_op, c->fd, SHUT_WR, cli_shut_cb, c);
    r = rl_submit(loop, &c->shut_op);
    if (r < 0)
        rlt_fail("submit shutdown: %s", rlt_res_str(r));
}

static void cli_recv_cb(rl_loop *loop, rl_op *op);

static void cli_arm_recv(rl_loop *loop, struct client *c)
{
    int r;

    /* One spare byte: anything past len is caught as extra data. */
    rl_prep_recv(&c->recv_op, c->fd, c->rx + c->rx_off, c->len + 1 - c->rx_off,
                 0, cli_recv_cb, c);
    r = rl_submit(loop, &c->recv_op);
    if (r < 0)
        rlt_fail("submit recv: %s", rlt_res_str(r));
}

static void cli_recv_cb(rl_loop *loop, rl_op *op)
{
    struct client *c = op->data;
    size_t bad;

    if (op->cflags & (RL_CQE_MORE | RL_CQE_BUFFER))
        rlt_fail("single-shot recv completed with cflags 0x%x", op->cflags);
    if (op->res < 0) {
        rlt_fail("client %u recv after %zu of %zu bytes: %s", c->seed,
                 c->rx_off, c->len, rlt_res_str(op->res));
        return;
    }
    if (op->res == 0) {
        if (c->rx_off != c->len)
            rlt_fail("client %u: EOF after %zu of %zu echoed bytes", c->seed,
                     c->rx_off, c->len);
        c->eof = true;
        cli_maybe_close(loop, c);
        return;
    }
    if (c->rx_off + (size_t)op->res > c->len) {
        rlt_fail("client %u: %zu bytes echoed for %zu sent", c->seed,
                 c->rx_off + (size_t)op->res, c->len);
        return;
    }
    bad = rlt_pattern_check(c->rx + c->rx_off, (size_t)op->res, c->seed,
                            c->rx_off);
    if (bad != SIZE_MAX) {
        rlt_fail("client %u (%zu bytes): echoed byte %zu differs", c->seed,
                 c->len, c->rx_off + bad);
        return;
    }
    c->rx_off += (size_t)op->res;
    cli_arm_recv(loop, c);
}

static void cli_connect_cb(rl_loop *loop, rl_op *op)
{
    struct client *c = op->data;
    int r;

    if (op->res != 0) {
        rlt_fail("client %u connect: %s", c->seed, rlt_res_str(op->res));
        return;
    }
    cli_arm_recv(loop, c);
    c->snd.on_done = cli_sent;
    c->snd.data = c;
    r = rlt_sender_start(loop, &c->snd, c->fd, c->tx, c->len);
    if (r < 0)
        rlt_fail("submit send: %s", rlt_res_str(r));
    else if (c->len == 0)
        cli_sent(loop, &c->snd);
}

static void client_start(struct client *c, rl_loop *loop,
                         const struct sockaddr_in *addr, uint32_t seed,
                         size_t len, int *done)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->seed = seed;
    c->len = len;
    c->done = done;
    c->tx = malloc(len ? len : 1);
    c->rx = malloc(len + 1);
    assert_non_null(c->tx);
    assert_non_null(c->rx);
    rlt_pattern_fill(c->tx, len, seed, 0);
    c->fd = rlt_tcp_socket();
    rl_prep_connect(&c->connect_op, c->fd, (const struct sockaddr *)addr,
                    sizeof(*addr), cli_connect_cb, c);
    assert_int_equal(rl_submit(loop, &c->connect_op), 0);
}

static void client_free(struct client *c)
{
    free(c->tx);
    free(c->rx);
}

static void run_echo(struct server *srv, const size_t *sizes, int nsizes,
                     int nclients)
{
    struct client *cl = calloc((size_t)nclients, sizeof(*cl));
    int done = 0, closed0 = srv->closed;

    assert_non_null(cl);
    for (int i = 0; i < nclients; i++)
        client_start(&cl[i], srv->loop, &srv->addr, (uint32_t)i,
                     sizes[i % nsizes], &done);
    if (!rlt_run_until_count(srv->loop, &done, nclients, 30000))
        fprintf(stderr, "%d of %d echo clients finished\n", done, nclients);
    RLT_ASSERT_OK();
    assert_int_equal(done, nclients);
    for (int i = 0; i < nclients; i++)
        if (cl[i].rx_off != cl[i].len)
            fail_msg("client %d: %zu of %zu bytes", i, cl[i].rx_off, cl[i].len);
    /* Server side closes after echoing the EOF; wait for all of them. */
    if (!rlt_run_until_count(srv->loop, &srv->closed, closed0 + nclients,
                             RLT_GUARD_MS))
        fail_msg("server closed %d of %d connections", srv->closed - closed0,
                 nclients);
    RLT_ASSERT_OK();
    size_t total = 0;
    for (int i = 0; i < nclients; i++) {
        total += cl[i].rx_off;
        client_free(&cl[i]);
    }
    if (nclients > 1 || sizes[0] == 1u << 20)
        fprintf(stderr, "echoed and verified %zu bytes on %d connection(s)\n",
                total, nclients);
    free(cl);
}

static void test_echo_one_connection(void **state)
{
    static const size_t sizes[] = {1,     2,     3,      100,    1460,
                                   4096,  16383, 16384,  16385,  65535,
                                   65536, 65537, 262144, 999983, 1 << 20};
    rl_loop *loop = rlt_loop_new(NULL);
    struct server srv;
    int n = (int)(sizeof(sizes) / sizeof(sizes[0]));

    (void)state;
    server_start(&srv, loop);
    for (int i = 0; i < n; i++)
        run_echo(&srv, &sizes[i], 1, 1);
    assert_int_equal(srv.accepted, n);
    server_stop(&srv);
    assert_int_equal(rl_loop_pending(loop), 0);
    rl_loop_free(loop);
}

static void test_echo_100_connections(void **state)
{
    static const size_t sizes[] = {1,     7,      100,   1000,   4096,
                                   16384, 16385,  40000, 65536,  131072,
                                   1,     200000, 12345, 262144, 1 << 20};
    rl_loop *loop = rlt_loop_new(NULL);
    struct server srv;

    (void)state;
    server_start(&srv, loop);
    run_echo(&srv, sizes, (int)(sizeof(sizes) / sizeof(sizes[0])), 100);
    assert_int_equal(srv.accepted, 100);
    server_stop(&srv);
    assert_int_equal(rl_loop_pending(loop), 0);
    rl_loop_free(loop);
}

/* ---- half-close, reset, refused, EMFILE ------------------------------ */

struct one_op {
    rl_op op;
    int calls;
    int finals;
    int res;
    unsigned cflags;
    size_t got;
    uint8_t buf[4096];
};

static void one_op_cb(rl_loop *loop, rl_op *op)
{
    struct one_op *o = op->data;

    (void)loop;
    o->calls++;
    o->res = op->res;
    o->cflags = op->cflags;
    if (!(op->cflags & RL_CQE_MORE))
        o->finals++;
    if (op->res > 0 && (op->cflags & RL_CQE_BUFFER) &&
        o->got + (size_t)op->res <= sizeof(o->buf)) {
        memcpy(o->buf + o->got, op->buf, (size_t)op->res);
        o->got += (size_t)op->res;
    }
}

static int wait_final(rl_loop *loop, struct one_op *o, const char *what)
{
    if (!rlt_run_until_count(loop, &o->finals, 1, RLT_GUARD_MS))
        fail_msg("%s: no final completion", what);
    RLT_ASSERT_OK();
    return o->res;
}

/* Collects a stream with a multishot recv until EOF. */
struct sink {
    rl_op op;
    uint8_t *data;
    size_t len, cap;
    bool eof;
    int err;
};

static void sink_cb(rl_loop *loop, rl_op *op)
{
    struct sink *s = op->data;
    int r;

    if (op->res > 0) {
        if (s->len + (size_t)op->res > s->cap) {
            rlt_fail("sink overflow");
            return;
        }
        memcpy(s->data + s->len, op->buf, (size_t)op->res);
        s->len += (size_t)op->res;
        if (!(op->cflags & RL_CQE_MORE)) {
            rl_prep_recv_multishot(op, op->fd, sink_cb, s);
            r = rl_submit(loop, op);
            if (r < 0)
                rlt_fail("re-arm multishot recv: %s", rlt_res_str(r));
        }
        return;
    }
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("recv result %s came with RL_CQE_MORE", rlt_res_str(op->res));
    if (op->res < 0)
        s->err = op->res;
    s->eof = true;
}

static bool sink_eof(void *arg)
{
    return ((struct sink *)arg)->eof;
}

/* Reads exactly len bytes with single-shot recvs into buf. */
struct reader {
    rl_op op;
    uint8_t *buf;
    size_t want, got;
    int err;
    bool eof;
};

static void reader_cb(rl_loop *loop, rl_op *op)
{
    struct reader *rd = op->data;
    int r;

    if (op->res < 0) {
        rd->err = op->res;
        return;
    }
    if (op->res == 0) {
        rd->eof = true;
        return;
    }
    rd->got += (size_t)op->res;
    if (rd->got > rd->want) {
        rlt_fail("read %zu bytes, wanted %zu", rd->got, rd->want);
        return;
    }
    /* Keep reading: past `want` this waits for EOF. */
    rl_prep_recv(op, op->fd, rd->buf + rd->got, rd->want + 1 - rd->got, 0,
                 reader_cb, rd);
    r = rl_submit(loop, op);
    if (r < 0)
        rlt_fail("resubmit recv: %s", rlt_res_str(r));
}

static bool reader_full(void *arg)
{
    struct reader *rd = arg;

    return rd->got >= rd->want || rd->err || rd->eof;
}

static bool reader_eof(void *arg)
{
    struct reader *rd = arg;

    return rd->eof || rd->err;
}

static bool sender_done(void *arg)
{
    return ((struct rlt_sender *)arg)->done;
}

static void test_half_close(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    static const char hello[] = "hello, half-closed world";
    enum { BACK = 256 * 1024 };
    struct rlt_sender snd = {0}, back = {0};
    struct sink sink = {0};
    struct reader rd = {0};
    struct one_op shut = {0};
    uint8_t *backbuf = malloc(BACK), *rxbuf = malloc(BACK + 1);
    int a, b;

    (void)state;
    assert_non_null(backbuf);
    assert_non_null(rxbuf);
    rlt_tcp_pair(&a, &b);

    /* b listens with multishot recv, a reads with single-shot recv. */
    sink.cap = sizeof(hello);
    sink.data = malloc(sink.cap);
    rl_prep_recv_multishot(&sink.op, b, sink_cb, &sink);
    assert_int_equal(rl_submit(loop, &sink.op), 0);
    rd.buf = rxbuf;
    rd.want = BACK;
    rl_prep_recv(&rd.op, a, rd.buf, BACK + 1, 0, reader_cb, &rd);
    assert_int_equal(rl_submit(loop, &rd.op), 0);

    /* a -> b, then a shuts down its sending side. */
    assert_int_equal(rlt_sender_start(loop, &snd, a, hello, sizeof(hello)), 0);
    if (!rlt_run_until(loop, sender_done, &snd, RLT_GUARD_MS))
        fail_msg("send a->b did not complete");
    assert_int_equal(snd.err, 0);
    rl_prep_shutdown(&shut.op, a, SHUT_WR, one_op_cb, &shut);
    assert_int_equal(rl_submit(loop, &shut.op), 0);
    assert_int_equal(wait_final(loop, &shut, "shutdown(SHUT_WR)"), 0);

    /* b sees the data, then EOF (res 0). */
    if (!rlt_run_until(loop, sink_eof, &sink, RLT_GUARD_MS))
        fail_msg("b saw no EOF after a's shutdown(SHUT_WR) (%zu bytes in)",
                 sink.len);
    assert_int_equal(sink.err, 0);
    assert_int_equal(sink.len, sizeof(hello));
    assert_memory_equal(sink.data, hello, sizeof(hello));

    /* The other direction still works: b -> a, 256 KiB, then EOF. */
    rlt_pattern_fill(backbuf, BACK, 77, 0);
    assert_int_equal(rlt_sender_start(loop, &back, b, backbuf, BACK), 0);
    if (!rlt_run_until(loop, reader_full, &rd, RLT_GUARD_MS))
        fail_msg("a received %zu of %d bytes after half-close", rd.got, BACK);
    assert_int_equal(rd.err, 0);
    assert_false(rd.eof);
    if (!rlt_run_until(loop, sender_done, &back, RLT_GUARD_MS))
        fail_msg("send b->a did not complete");
    assert_int_equal(back.err, 0);
    assert_int_equal(rd.got, BACK);
    if (rlt_pattern_check(rxbuf, BACK, 77, 0) != SIZE_MAX)
        fail_msg("data b->a after half-close differs at byte %zu",
                 rlt_pattern_check(rxbuf, BACK, 77, 0));
    memset(&shut, 0, sizeof(shut));
    rl_prep_shutdown(&shut.op, b, SHUT_WR, one_op_cb, &shut);
    assert_int_equal(rl_submit(loop, &shut.op), 0);
    assert_int_equal(wait_final(loop, &shut, "shutdown(SHUT_WR) of b"), 0);
    if (!rlt_run_until(loop, reader_eof, &rd, RLT_GUARD_MS))
        fail_msg("a saw no EOF after b's shutdown");
    assert_int_equal(rd.err, 0);
    RLT_ASSERT_OK();
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(sink.data);
    free(backbuf);
    free(rxbuf);
    rl_loop_free(loop);
}

/* ---- vectored sendmsg, resumed after short sends ----------------------- */

enum { NIOV = 64 };

struct vsender {
    rl_op op;
    struct msghdr msg;
    struct iovec iov[NIOV];
    int fd;
    size_t first; /* first iovec not fully sent */
    size_t sent, total;
    int err;
    bool done;
};

static void vsend_cb(rl_loop *loop, rl_op *op);

static void vsend_submit(rl_loop *loop, struct vsender *v)
{
    int r;

    memset(&v->msg, 0, sizeof(v->msg));
    v->msg.msg_iov = &v->iov[v->first];
    v->msg.msg_iovlen = NIOV - v->first;
    rl_prep_sendmsg(&v->op, v->fd, &v->msg, MSG_NOSIGNAL, vsend_cb, v);
    r = rl_submit(loop, &v->op);
    if (r < 0)
        rlt_fail("submit sendmsg: %s", rlt_res_str(r));
}

static void vsend_cb(rl_loop *loop, rl_op *op)
{
    struct vsender *v = op->data;
    size_t n;

    if (op->res <= 0) {
        v->err = op->res ? op->res : -EIO;
        v->done = true;
        rlt_fail("sendmsg after %zu of %zu bytes: %s", v->sent, v->total,
                 rlt_res_str(op->res));
        return;
    }
    n = (size_t)op->res;
    v->sent += n;
    /* Skip what went out; the op is ours again, so are the iovecs. */
    while (n > 0 && v->first < NIOV) {
        size_t take =
            n < v->iov[v->first].iov_len ? n : v->iov[v->first].iov_len;

        v->iov[v->first].iov_base = (uint8_t *)v->iov[v->first].iov_base + take;
        v->iov[v->first].iov_len -= take;
        n -= take;
        if (v->iov[v->first].iov_len == 0)
            v->first++;
    }
    if (v->sent == v->total) {
        v->done = true;
        return;
    }
    vsend_submit(loop, v);
}

static bool vsend_all_in(void *arg)
{
    void **pair = arg;
    struct vsender *v = pair[0];
    struct sink *s = pair[1];

    return (v->done && s->len >= v->total) || s->eof || rlt_failed();
}

static void test_sendmsg_vectored(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct vsender v = {0};
    struct sink sink = {0};
    uint8_t *data;
    size_t off = 0, bad;
    void *pair[2] = {&v, &sink};
    int a, b;

    (void)state;
    /* 64 pieces of 1 B .. 128 KiB, about 4 MiB, one contiguous pattern. */
    for (int i = 0; i < NIOV; i++)
        v.total += (size_t)1 << (i % 18);
    data = malloc(v.total);
    sink.cap = v.total;
    sink.data = malloc(v.total);
    assert_non_null(data);
    assert_non_null(sink.data);
    rlt_pattern_fill(data, v.total, 4242, 0);
    for (int i = 0; i < NIOV; i++) {
        v.iov[i].iov_base = data + off;
        v.iov[i].iov_len = (size_t)1 << (i % 18);
        off += v.iov[i].iov_len;
    }
    rlt_tcp_pair(&a, &b);
    v.fd = a;
    rl_prep_recv_multishot(&sink.op, b, sink_cb, &sink);
    assert_int_equal(rl_submit(loop, &sink.op), 0);
    vsend_submit(loop, &v);
    if (!rlt_run_until(loop, vsend_all_in, pair, RLT_GUARD_MS))
        fail_msg("vectored send: %zu sent, %zu received of %zu", v.sent,
                 sink.len, v.total);
    RLT_ASSERT_OK();
    assert_int_equal(v.err, 0);
    assert_int_equal(sink.len, v.total);
    bad = rlt_pattern_check(sink.data, v.total, 4242, 0);
    if (bad != SIZE_MAX)
        fail_msg("vectored data differs at byte %zu of %zu", bad, v.total);
    assert_int_equal(rl_op_cancel(loop, &sink.op), 0);
    if (!rlt_run_until(loop, sink_eof, &sink, RLT_GUARD_MS))
        fail_msg("cancelled multishot recv: no final completion");
    RLT_ASSERT_OK();
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(sink.data);
    free(data);
    rl_loop_free(loop);
}

static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd); /* never used by the loop: sends RST */
}

static void test_reset_recv(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);

    (void)state;
    for (int multishot = 0; multishot < 2; multishot++) {
        struct one_op o = {0};
        int a, b;

        rlt_tcp_pair(&a, &b);
        if (multishot)
            rl_prep_recv_multishot(&o.op, b, one_op_cb, &o);
        else
            rl_prep_recv(&o.op, b, o.buf, sizeof(o.buf), 0, one_op_cb, &o);
        assert_int_equal(rl_submit(loop, &o.op), 0);
        rlt_run_for(loop, 2); /* let it park */
        assert_int_equal(o.calls, 0);
        reset_close(a);
        if (wait_final(loop, &o, "recv on a reset connection") != -ECONNRESET)
            fail_msg("%s recv on a reset connection: %s, expected "
                     "-ECONNRESET",
                     multishot ? "multishot" : "single-shot",
                     rlt_res_str(o.res));
        assert_int_equal(o.calls, 1);
        assert_false(rl_op_in_flight(&o.op));
        rlt_close(loop, b);
    }
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

static void test_reset_send(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct one_op o = {0};
    struct pollfd p;
    int a, b;

    (void)state;
    rlt_tcp_pair(&a, &b);
    reset_close(a);
    p.fd = b;
    p.events = POLLIN;
    if (poll(&p, 1, 10000) != 1 || !(p.revents & (POLLERR | POLLHUP)))
        fail_msg("the RST did not reach the peer (revents 0x%x)", p.revents);
    memset(o.buf, 'x', sizeof(o.buf));
    rl_prep_send(&o.op, b, o.buf, sizeof(o.buf), MSG_NOSIGNAL, one_op_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    if (wait_final(loop, &o, "send on a reset connection") != -ECONNRESET)
        fail_msg("send on a reset connection: %s, expected -ECONNRESET",
                 rlt_res_str(o.res));
    rlt_close(loop, b);
    RLT_ASSERT_OK();
    rl_loop_free(loop);
}

static void test_connect_refused(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    struct one_op o = {0};
    int fd, s;

    (void)state;
    /* A port held by a socket that is bound but never listens: connecting
     * there is refused, and no other test can take the port meanwhile. */
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&addr, &alen), 0);

    fd = rlt_tcp_socket();
    rl_prep_connect(&o.op, fd, (struct sockaddr *)&addr, sizeof(addr),
                    one_op_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    if (wait_final(loop, &o, "connect to a closed port") != -ECONNREFUSED)
        fail_msg("connect to a closed port: %s, expected -ECONNREFUSED",
                 rlt_res_str(o.res));
    assert_int_equal(o.calls, 1);
    rlt_close(loop, fd);
    close(s);
    rl_loop_free(loop);
}

/* Lower RLIMIT_NOFILE so that no new descriptor can be allocated. */
static void fd_limit_exhaust(struct rlimit *saved)
{
    struct rlimit rl;
    int lowest = fcntl(2, F_DUPFD, 0);

    assert_true(lowest >= 0);
    close(lowest);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, saved), 0);
    rl = *saved;
    rl.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void fd_limit_restore(const struct rlimit *saved)
{
    if (setrlimit(RLIMIT_NOFILE, saved) != 0)
        abort();
}

static void test_emfile_accept(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in addr, peer, local;
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    struct rlimit saved;
    struct one_op o = {0};
    int lfd, cfd, res;

    (void)state;
    lfd = rlt_listener(&addr, 8);
    cfd = rlt_connect_blocking(&addr); /* waits in the backlog */

    fd_limit_exhaust(&saved);
    rl_prep_accept(&o.op, lfd, (struct sockaddr *)&peer, &plen,
                   SOCK_NONBLOCK | SOCK_CLOEXEC, one_op_cb, &o);
    res = rl_submit(loop, &o.op);
    if (res == 0)
        rlt_run_until_count(loop, &o.finals, 1, RLT_GUARD_MS);
    fd_limit_restore(&saved);
    assert_int_equal(res, 0);
    RLT_ASSERT_OK();
    if (o.finals != 1 || o.res != -EMFILE)
        fail_msg("accept with no descriptor left: %d final(s), res %s; "
                 "expected one with -EMFILE",
                 o.finals, rlt_res_str(o.res));

    /* With the limit back, a new accept gets the waiting connection. */
    memset(&o, 0, sizeof(o));
    plen = sizeof(peer);
    rl_prep_accept(&o.op, lfd, (struct sockaddr *)&peer, &plen,
                   SOCK_NONBLOCK | SOCK_CLOEXEC, one_op_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    if (wait_final(loop, &o, "accept after EMFILE") < 0)
        fail_msg("accept after raising the limit: %s", rlt_res_str(o.res));
    assert_int_equal(getsockname(cfd, (struct sockaddr *)&local, &llen), 0);
    assert_int_equal(plen, sizeof(peer));
    if (peer.sin_port != local.sin_port)
        fail_msg("accept reported peer port %u, the client is on %u",
                 ntohs(peer.sin_port), ntohs(local.sin_port));
    rlt_close(loop, o.res);
    rlt_close(loop, lfd);
    close(cfd);
    rl_loop_free(loop);
}

static void test_emfile_accept_multishot(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in addr;
    struct rlimit saved;
    struct one_op o = {0};
    int lfd, cfd, res;

    (void)state;
    lfd = rlt_listener(&addr, 8);
    cfd = rlt_connect_blocking(&addr);

    fd_limit_exhaust(&saved);
    rl_prep_accept_multishot(&o.op, lfd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                             one_op_cb, &o);
    res = rl_submit(loop, &o.op);
    if (res == 0)
        rlt_run_until_count(loop, &o.calls, 1, RLT_GUARD_MS);
    fd_limit_restore(&saved);
    assert_int_equal(res, 0);
    RLT_ASSERT_OK();
    if (o.calls != 1 || o.res != -EMFILE)
        fail_msg("multishot accept with no descriptor left: %d call(s), "
                 "res %s; expected -EMFILE",
                 o.calls, rlt_res_str(o.res));
    if (o.cflags & RL_CQE_MORE)
        fail_msg("multishot accept error -EMFILE came with RL_CQE_MORE: an "
                 "error must end the multishot (as io_uring does)");

    /* Re-armed with the limit back: the waiting connection arrives. */
    memset(&o, 0, sizeof(o));
    rl_prep_accept_multishot(&o.op, lfd, SOCK_NONBLOCK | SOCK_CLOEXEC,
                             one_op_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    if (!rlt_run_until_count(loop, &o.calls, 1, RLT_GUARD_MS))
        fail_msg("multishot accept after EMFILE: no connection");
    if (o.res < 0)
        fail_msg("multishot accept after EMFILE: %s", rlt_res_str(o.res));
    res = o.res;
    if (o.cflags & RL_CQE_MORE) {
        assert_int_equal(rl_op_cancel(loop, &o.op), 0);
        if (wait_final(loop, &o, "cancel multishot accept") != -ECANCELED)
            fail_msg("cancelled multishot accept: %s", rlt_res_str(o.res));
    }
    RLT_ASSERT_OK();
    rlt_close(loop, res);
    rlt_close(loop, lfd);
    close(cfd);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_echo_one_connection),
        RLT_TEST(test_echo_100_connections),
        RLT_TEST(test_half_close),
        RLT_TEST(test_sendmsg_vectored),
        RLT_TEST(test_reset_recv),
        RLT_TEST(test_reset_send),
        RLT_TEST(test_connect_refused),
        RLT_TEST(test_emfile_accept),
        RLT_TEST(test_emfile_accept_multishot),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
