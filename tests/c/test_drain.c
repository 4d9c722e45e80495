/*
 * A recv that comes back short: on a TCP socket the epoll backend takes it
 * as "drained" and waits for the next edge instead of trying again (one
 * EAGAIN saved per read). Every case where that would lose data must still
 * read on: more data arriving later, EOF right behind the data (in the same
 * edge or after reading stopped), urgent data (the read stops at its mark),
 * datagrams (one per read), AF_UNIX streams (a read stops after passed
 * descriptors) and packet pipes. Both backends; the syscall counts are
 * checked on epoll only.
 */
#include <netinet/tcp.h>
#include <sys/uio.h>

#include "helpers.h"

#define MSG 100 /* bytes per message, far below every buffer */
#define ROUNDS 20

/* Collects what a recv (single-shot or multishot) or read delivers. */
struct rx {
    rl_op op;
    int fd;
    bool multi;
    bool use_read;
    bool hold; /* single-shot: do not resubmit after data */
    uint8_t buf[4096];
    uint8_t got[8192];
    size_t len;
    int reads; /* completions with data */
    bool eof;
    int err;
    bool done; /* final completion seen (single-shot: each one) */
};

static void rx_cb(rl_loop *loop, rl_op *op);

static void rx_submit(rl_loop *loop, struct rx *x)
{
    int r;

    if (x->multi)
        rl_prep_recv_multishot(&x->op, x->fd, rx_cb, x);
    else if (x->use_read)
        rl_prep_read(&x->op, x->fd, x->buf, sizeof(x->buf), -1, rx_cb, x);
    else
        rl_prep_recv(&x->op, x->fd, x->buf, sizeof(x->buf), 0, rx_cb, x);
    x->done = false;
    r = rl_submit(loop, &x->op);
    if (r < 0)
        rlt_fail("submit recv on fd %d: %s", x->fd, rlt_res_str(r));
}

static void rx_cb(rl_loop *loop, rl_op *op)
{
    struct rx *x = op->data;
    const void *src = op->cflags & RL_CQE_BUFFER ? op->buf : x->buf;

    if (!(op->cflags & RL_CQE_MORE))
        x->done = true;
    if (op->res < 0) {
        if (op->res != -ECANCELED) {
            x->err = op->res;
            rlt_fail("recv on fd %d: %s", x->fd, rlt_res_str(op->res));
        }
        return;
    }
    if (op->res == 0) {
        x->eof = true;
        return;
    }
    if (x->len + (size_t)op->res > sizeof(x->got)) {
        rlt_fail("recv on fd %d: more data than sent", x->fd);
        return;
    }
    memcpy(x->got + x->len, src, (size_t)op->res);
    x->len += (size_t)op->res;
    x->reads++;
    if (x->multi && !(op->cflags & RL_CQE_MORE))
        rx_submit(loop, x); /* the kernel ended it (io_uring): re-arm */
    else if (!x->multi && !x->hold)
        rx_submit(loop, x);
}

struct rx_want {
    struct rx *x;
    size_t len;
    bool eof;
};

static bool rx_has(void *arg)
{
    struct rx_want *w = arg;

    return w->x->len >= w->len && (!w->eof || w->x->eof);
}

/* Run until x holds len bytes (and EOF if eof); fail the test if not. */
static void rx_wait(rl_loop *loop, struct rx *x, size_t len, bool eof,
                    const char *what)
{
    struct rx_want w = {x, len, eof};

    if (!rlt_run_until(loop, rx_has, &w, 5000))
        fail_msg("%s: %zu of %zu bytes%s arrived", what, x->len, len,
                 eof && !x->eof ? ", no EOF" : "");
    RLT_ASSERT_OK();
}

static bool op_idle(void *arg)
{
    return !rl_op_in_flight(arg);
}

static void rx_cancel(rl_loop *loop, struct rx *x)
{
    if (!rl_op_in_flight(&x->op))
        return;
    assert_int_equal(rl_op_cancel(loop, &x->op), 0);
    if (!rlt_run_until(loop, op_idle, &x->op, 5000))
        fail_msg("cancelled recv still in flight");
}

static uint64_t recv_calls(rl_loop *loop)
{
    struct rl_loop_stats s;

    rl_loop_stats(loop, &s);
    return s.recv_calls;
}

static bool on_epoll(rl_loop *loop)
{
    return !rlt_on_uring(loop);
}

/*
 * Messages that arrive one at a time, each after the previous was read:
 * every one is delivered, and on epoll with one recv each (the short read
 * drained the socket; no try that says EAGAIN).
 */
static void more_data_later(bool multi)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    uint8_t msg[MSG];
    uint64_t calls;
    int a, b, i;

    assert_non_null(x);
    rlt_tcp_pair(&a, &b);
    x->fd = b;
    x->multi = multi;
    /* The first message is there before the first try. */
    rlt_pattern_fill(msg, MSG, 1, 0);
    assert_int_equal(send(a, msg, MSG, 0), MSG);
    usleep(1000);
    rl_loop_stats_reset(loop);
    rx_submit(loop, x);
    for (i = 0; i < ROUNDS; i++) {
        if (i > 0) {
            rlt_pattern_fill(msg, MSG, 1, (uint64_t)i * MSG);
            assert_int_equal(send(a, msg, MSG, 0), MSG);
        }
        rx_wait(loop, x, (size_t)(i + 1) * MSG, false, "message");
    }
    calls = recv_calls(loop);
    assert_int_equal(x->len, ROUNDS * MSG);
    if (rlt_pattern_check(x->got, x->len, 1, 0) != SIZE_MAX)
        fail_msg("data differs at byte %zu",
                 rlt_pattern_check(x->got, x->len, 1, 0));
    if (on_epoll(loop) && calls != ROUNDS)
        fail_msg("epoll: %d messages took %llu recv calls (want one each)",
                 ROUNDS, (unsigned long long)calls);
    /* And the end still comes through. */
    shutdown(a, SHUT_WR);
    rx_wait(loop, x, ROUNDS * MSG, true, "EOF after the messages");
    rx_cancel(loop, x);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(x);
    rl_loop_free(loop);
}

static void test_tcp_later_multishot(void **state)
{
    (void)state;
    more_data_later(true);
}

static void test_tcp_later_single(void **state)
{
    (void)state;
    more_data_later(false);
}

/* Data and the FIN behind it, both there before the first try: the short
 * read is not the end, EOF must follow. */
static void eof_with_data(bool multi)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    uint8_t msg[MSG];
    int a, b;

    assert_non_null(x);
    rlt_tcp_pair(&a, &b);
    x->fd = b;
    x->multi = multi;
    rlt_pattern_fill(msg, MSG, 2, 0);
    assert_int_equal(send(a, msg, MSG, 0), MSG);
    shutdown(a, SHUT_WR);
    usleep(1000);
    rx_submit(loop, x);
    rx_wait(loop, x, MSG, true, "data then EOF, queued together");
    assert_int_equal(x->len, MSG);
    rx_cancel(loop, x);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(x);
    rl_loop_free(loop);
}

static void test_tcp_eof_with_data_multishot(void **state)
{
    (void)state;
    eof_with_data(true);
}

static void test_tcp_eof_with_data_single(void **state)
{
    (void)state;
    eof_with_data(false);
}

/*
 * A short read, then nobody reads while more data and the FIN arrive (the
 * loop sees their edge with no recv waiting); then the reads resume: the
 * data, and EOF after it, without any new edge.
 */
static void test_tcp_eof_while_not_reading(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    uint8_t msg[MSG];
    int a, b;

    (void)state;
    assert_non_null(x);
    rlt_tcp_pair(&a, &b);
    x->fd = b;
    x->hold = true;
    rlt_pattern_fill(msg, MSG, 3, 0);
    rx_submit(loop, x);
    assert_int_equal(send(a, msg, MSG / 2, 0), MSG / 2);
    rx_wait(loop, x, MSG / 2, false, "first half");
    assert_true(x->done);
    assert_int_equal(send(a, msg + MSG / 2, MSG / 2, 0), MSG / 2);
    shutdown(a, SHUT_WR);
    rlt_run_for(loop, 20); /* the edge comes and goes, nobody reads */
    x->hold = false;
    rx_submit(loop, x);
    rx_wait(loop, x, MSG, true, "second half and EOF after a pause");
    if (rlt_pattern_check(x->got, x->len, 3, 0) != SIZE_MAX)
        fail_msg("data differs");
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(x);
    rl_loop_free(loop);
}

/* Urgent data: a read stops before the mark (SO_OOBINLINE off), the rest
 * follows the urgent byte and must still be delivered. Both with the
 * socket known to be drained (a message read before) and fresh. */
static void urgent(bool warm)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    const size_t first = warm ? 3 : 0;
    int a, b;

    assert_non_null(x);
    rlt_tcp_pair(&a, &b);
    x->fd = b;
    x->multi = true;
    /* Each send its own segment, at once. */
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (warm) {
        rx_submit(loop, x);
        assert_int_equal(send(a, "xyz", 3, 0), 3);
        rx_wait(loop, x, 3, false, "the first message");
    }
    assert_int_equal(send(a, "abc", 3, 0), 3);
    assert_int_equal(send(a, "!", 1, MSG_OOB), 1);
    assert_int_equal(send(a, "def", 3, 0), 3);
    usleep(1000);
    if (!warm)
        rx_submit(loop, x);
    rx_wait(loop, x, first + 6, false, "the data around urgent data");
    if (memcmp(x->got + first, "abcdef", 6) != 0)
        fail_msg("got '%.*s', want 'abcdef'", (int)(x->len - first),
                 x->got + first);
    rx_cancel(loop, x);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(x);
    rl_loop_free(loop);
}

static void test_tcp_urgent_warm(void **state)
{
    (void)state;
    urgent(true);
}

static void test_tcp_urgent_fresh(void **state)
{
    (void)state;
    urgent(false);
}

/* Two datagrams queued: a short read takes one, the other is still there
 * (no new edge will come for it). */
static void datagrams(bool multi)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int a, b;

    assert_non_null(x);
    b = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(a >= 0 && b >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(b, (struct sockaddr *)&addr, &alen), 0);
    assert_int_equal(connect(a, (struct sockaddr *)&addr, sizeof(addr)), 0);
    x->fd = b;
    x->multi = multi;
    /* One read first, so that the socket is registered and "warm". */
    rx_submit(loop, x);
    assert_int_equal(send(a, "0123456789", 10, 0), 10);
    rx_wait(loop, x, 10, false, "the first datagram");
    assert_int_equal(send(a, "abcdefghij", 10, 0), 10);
    assert_int_equal(send(a, "ABCDEFGHIJ", 10, 0), 10);
    rx_wait(loop, x, 30, false, "two queued datagrams");
    assert_memory_equal(x->got, "0123456789abcdefghijABCDEFGHIJ", 30);
    rx_cancel(loop, x);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(x);
    rl_loop_free(loop);
}

static void test_udp_multishot(void **state)
{
    (void)state;
    datagrams(true);
}

static void test_udp_single(void **state)
{
    (void)state;
    datagrams(false);
}

/* AF_UNIX stream: a read stops after a message that passed descriptors;
 * the data behind it is still there. */
static void unix_fds(bool multi)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = "abc", .iov_len = 3};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = cbuf,
                       .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *c;
    int sv[2], passed = STDERR_FILENO;

    assert_non_null(x);
    rlt_socketpair(sv);
    x->fd = sv[1];
    x->multi = multi;
    rx_submit(loop, x);
    assert_int_equal(send(sv[0], "xyz", 3, 0), 3);
    rx_wait(loop, x, 3, false, "the first message");
    memset(cbuf, 0, sizeof(cbuf));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof(int));
    assert_int_equal(sendmsg(sv[0], &m, 0), 3);
    assert_int_equal(send(sv[0], "def", 3, 0), 3);
    rx_wait(loop, x, 9, false, "the data behind passed descriptors");
    assert_memory_equal(x->got, "xyzabcdef", 9);
    rx_cancel(loop, x);
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    free(x);
    rl_loop_free(loop);
}

static void test_unix_fds_multishot(void **state)
{
    (void)state;
    unix_fds(true);
}

static void test_unix_fds_single(void **state)
{
    (void)state;
    unix_fds(false);
}

/* A packet pipe (O_DIRECT): a read takes one write's packet. */
static void test_packet_pipe(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rx *x = calloc(1, sizeof(*x));
    int p[2];

    (void)state;
    assert_non_null(x);
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC | O_DIRECT) < 0) {
        fprintf(stderr, "pipe2(O_DIRECT): %s: skipped\n", strerror(errno));
        free(x);
        rl_loop_free(loop);
        skip();
    }
    x->fd = p[0];
    x->use_read = true;
    rx_submit(loop, x);
    assert_int_equal(write(p[1], "xyz", 3), 3);
    rx_wait(loop, x, 3, false, "the first packet");
    assert_int_equal(write(p[1], "abc", 3), 3);
    assert_int_equal(write(p[1], "def", 3), 3);
    rx_wait(loop, x, 9, false, "two queued packets");
    assert_memory_equal(x->got, "xyzabcdef", 9);
    rx_cancel(loop, x);
    rlt_close(loop, p[1]);
    rlt_close(loop, p[0]);
    free(x);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_tcp_later_multishot),
        RLT_TEST(test_tcp_later_single),
        RLT_TEST(test_tcp_eof_with_data_multishot),
        RLT_TEST(test_tcp_eof_with_data_single),
        RLT_TEST(test_tcp_eof_while_not_reading),
        RLT_TEST(test_tcp_urgent_warm),
        RLT_TEST(test_tcp_urgent_fresh),
        RLT_TEST(test_udp_multishot),
        RLT_TEST(test_udp_single),
        RLT_TEST(test_unix_fds_multishot),
        RLT_TEST(test_unix_fds_single),
        RLT_TEST(test_packet_pipe),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
