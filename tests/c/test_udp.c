/*
 * Datagrams through RL_OP_RECVMSG / RL_OP_SENDMSG: a vectored round trip
 * with addresses, truncation, zero-length datagrams, many in flight.
 */
#include "helpers.h"

struct msg_op {
    rl_op op;
    struct msghdr msg;
    struct iovec iov[4];
    struct sockaddr_in name;
    uint8_t buf[2048];
    int calls;
    int res;
    unsigned cflags;
};

static void msg_cb(rl_loop *loop, rl_op *op)
{
    struct msg_op *m = op->data;

    (void)loop;
    m->calls++;
    m->res = op->res;
    m->cflags = op->cflags;
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("datagram op completed with RL_CQE_MORE");
}

static int udp_socket(struct sockaddr_in *addr)
{
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        fail_msg("socket(AF_INET, SOCK_DGRAM): %s", strerror(errno));
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

static void prep_recv(rl_loop *loop, struct msg_op *m, int fd, size_t len)
{
    memset(&m->msg, 0, sizeof(m->msg));
    memset(&m->name, 0, sizeof(m->name));
    m->iov[0].iov_base = m->buf;
    m->iov[0].iov_len = len;
    m->msg.msg_name = &m->name;
    m->msg.msg_namelen = sizeof(m->name);
    m->msg.msg_iov = m->iov;
    m->msg.msg_iovlen = 1;
    m->calls = 0;
    rl_prep_recvmsg(&m->op, fd, &m->msg, 0, msg_cb, m);
    assert_int_equal(rl_submit(loop, &m->op), 0);
}

static void wait_calls(rl_loop *loop, struct msg_op *m, const char *what)
{
    if (!rlt_run_until_count(loop, &m->calls, 1, RLT_GUARD_MS))
        fail_msg("%s did not complete", what);
    RLT_ASSERT_OK();
}

static void test_roundtrip(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in aaddr, baddr;
    struct msg_op rx, tx;
    uint8_t want[1005];
    int a = udp_socket(&aaddr), b = udp_socket(&baddr);

    (void)state;
    /* b waits first, so the datagram finds a parked recvmsg. */
    prep_recv(loop, &rx, b, sizeof(rx.buf));
    rlt_run_for(loop, 2);
    assert_int_equal(rx.calls, 0);

    /* a -> b in three pieces: one datagram, gathered. */
    memset(&tx, 0, sizeof(tx));
    rlt_pattern_fill(tx.buf, 1000, 5, 0);
    tx.iov[0] = (struct iovec){(void *)"ab", 2};
    tx.iov[1] = (struct iovec){(void *)"cde", 3};
    tx.iov[2] = (struct iovec){tx.buf, 1000};
    tx.msg.msg_name = &baddr;
    tx.msg.msg_namelen = sizeof(baddr);
    tx.msg.msg_iov = tx.iov;
    tx.msg.msg_iovlen = 3;
    rl_prep_sendmsg(&tx.op, a, &tx.msg, 0, msg_cb, &tx);
    assert_int_equal(rl_submit(loop, &tx.op), 0);
    wait_calls(loop, &tx, "sendmsg a->b");
    assert_int_equal(tx.res, 1005);
    wait_calls(loop, &rx, "recvmsg on b");
    if (rx.res != 1005)
        fail_msg("recvmsg got %s, expected 1005 bytes", rlt_res_str(rx.res));
    memcpy(want, "abcde", 5);
    memcpy(want + 5, tx.buf, 1000);
    assert_memory_equal(rx.buf, want, 1005);
    assert_int_equal(rx.msg.msg_namelen, sizeof(struct sockaddr_in));
    assert_int_equal(rx.name.sin_family, AF_INET);
    if (rx.name.sin_port != aaddr.sin_port ||
        rx.name.sin_addr.s_addr != aaddr.sin_addr.s_addr)
        fail_msg("recvmsg source %s:%u, the sender is on port %u",
                 inet_ntoa(rx.name.sin_addr), ntohs(rx.name.sin_port),
                 ntohs(aaddr.sin_port));

    /* b replies to the address it received from. */
    struct msg_op rx2, tx2;
    prep_recv(loop, &rx2, a, sizeof(rx2.buf));
    memset(&tx2, 0, sizeof(tx2));
    tx2.iov[0] = (struct iovec){(void *)"pong", 4};
    tx2.msg.msg_name = &rx.name;
    tx2.msg.msg_namelen = rx.msg.msg_namelen;
    tx2.msg.msg_iov = tx2.iov;
    tx2.msg.msg_iovlen = 1;
    rl_prep_sendmsg(&tx2.op, b, &tx2.msg, 0, msg_cb, &tx2);
    assert_int_equal(rl_submit(loop, &tx2.op), 0);
    wait_calls(loop, &tx2, "sendmsg b->a");
    assert_int_equal(tx2.res, 4);
    wait_calls(loop, &rx2, "recvmsg on a");
    assert_int_equal(rx2.res, 4);
    assert_memory_equal(rx2.buf, "pong", 4);
    assert_int_equal(rx2.name.sin_port, baddr.sin_port);

    rlt_close(loop, a);
    rlt_close(loop, b);
    rl_loop_free(loop);
}

static void test_truncation_and_empty(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in aaddr, baddr;
    struct msg_op rx, tx;
    int a = udp_socket(&aaddr), b = udp_socket(&baddr);

    (void)state;
    assert_int_equal(connect(a, (struct sockaddr *)&baddr, sizeof(baddr)), 0);

    /* 100 bytes into a 10-byte buffer: 10 bytes and MSG_TRUNC. */
    memset(&tx, 0, sizeof(tx));
    memset(tx.buf, 'z', 100);
    tx.iov[0] = (struct iovec){tx.buf, 100};
    tx.msg.msg_iov = tx.iov;
    tx.msg.msg_iovlen = 1;
    rl_prep_sendmsg(&tx.op, a, &tx.msg, 0, msg_cb, &tx);
    assert_int_equal(rl_submit(loop, &tx.op), 0);
    wait_calls(loop, &tx, "sendmsg on a connected socket");
    assert_int_equal(tx.res, 100);
    prep_recv(loop, &rx, b, 10);
    wait_calls(loop, &rx, "recvmsg into a short buffer");
    assert_int_equal(rx.res, 10);
    if (!(rx.msg.msg_flags & MSG_TRUNC))
        fail_msg("recvmsg of 100 bytes into 10: msg_flags 0x%x lacks "
                 "MSG_TRUNC",
                 rx.msg.msg_flags);

    /* A zero-length datagram is a datagram, not an EOF. */
    tx.iov[0].iov_len = 0;
    tx.calls = 0;
    rl_prep_sendmsg(&tx.op, a, &tx.msg, 0, msg_cb, &tx);
    assert_int_equal(rl_submit(loop, &tx.op), 0);
    wait_calls(loop, &tx, "zero-length sendmsg");
    assert_int_equal(tx.res, 0);
    prep_recv(loop, &rx, b, sizeof(rx.buf));
    wait_calls(loop, &rx, "recvmsg of an empty datagram");
    assert_int_equal(rx.res, 0);
    assert_int_equal(rx.name.sin_port, aaddr.sin_port);

    /* And the socket still works afterwards. */
    tx.iov[0].iov_len = 3;
    tx.calls = 0;
    rl_prep_sendmsg(&tx.op, a, &tx.msg, 0, msg_cb, &tx);
    assert_int_equal(rl_submit(loop, &tx.op), 0);
    wait_calls(loop, &tx, "sendmsg after the empty datagram");
    prep_recv(loop, &rx, b, sizeof(rx.buf));
    wait_calls(loop, &rx, "recvmsg after the empty datagram");
    assert_int_equal(rx.res, 3);

    rlt_close(loop, a);
    rlt_close(loop, b);
    rl_loop_free(loop);
}

enum { NDGRAM = 64 };

struct many {
    struct msg_op rx;
    int fd;
    int got;
    bool seen[NDGRAM];
};

static void many_rx_cb(rl_loop *loop, rl_op *op)
{
    struct many *mn = op->data;
    uint32_t seq;
    int r;

    if (op->res != 8) {
        rlt_fail("recvmsg #%d: %s, expected 8 bytes", mn->got,
                 rlt_res_str(op->res));
        return;
    }
    memcpy(&seq, mn->rx.buf, 4);
    if (seq >= NDGRAM || mn->seen[seq] ||
        rlt_pattern_check(mn->rx.buf + 4, 4, seq, 0) != SIZE_MAX) {
        rlt_fail("datagram %u duplicated or corrupted", seq);
        return;
    }
    mn->seen[seq] = true;
    mn->got++;
    if (mn->got == NDGRAM)
        return;
    mn->rx.msg.msg_namelen = sizeof(mn->rx.name);
    rl_prep_recvmsg(op, mn->fd, &mn->rx.msg, 0, many_rx_cb, mn);
    r = rl_submit(loop, op);
    if (r < 0)
        rlt_fail("resubmit recvmsg: %s", rlt_res_str(r));
}

static void test_many_in_flight(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct sockaddr_in aaddr, baddr;
    struct msg_op *tx = calloc(NDGRAM, sizeof(*tx));
    struct many mn;
    int a = udp_socket(&aaddr), b = udp_socket(&baddr), sent = 0;

    (void)state;
    assert_non_null(tx);
    memset(&mn, 0, sizeof(mn));
    mn.fd = b;
    mn.rx.iov[0] = (struct iovec){mn.rx.buf, sizeof(mn.rx.buf)};
    mn.rx.msg.msg_name = &mn.rx.name;
    mn.rx.msg.msg_namelen = sizeof(mn.rx.name);
    mn.rx.msg.msg_iov = mn.rx.iov;
    mn.rx.msg.msg_iovlen = 1;
    rl_prep_recvmsg(&mn.rx.op, b, &mn.rx.msg, 0, many_rx_cb, &mn);
    assert_int_equal(rl_submit(loop, &mn.rx.op), 0);

    for (uint32_t i = 0; i < NDGRAM; i++) {
        memcpy(tx[i].buf, &i, 4);
        rlt_pattern_fill(tx[i].buf + 4, 4, i, 0);
        tx[i].iov[0] = (struct iovec){tx[i].buf, 8};
        tx[i].msg.msg_name = &baddr;
        tx[i].msg.msg_namelen = sizeof(baddr);
        tx[i].msg.msg_iov = tx[i].iov;
        tx[i].msg.msg_iovlen = 1;
        rl_prep_sendmsg(&tx[i].op, a, &tx[i].msg, 0, msg_cb, &tx[i]);
        assert_int_equal(rl_submit(loop, &tx[i].op), 0);
    }
    if (!rlt_run_until_count(loop, &mn.got, NDGRAM, RLT_GUARD_MS))
        fail_msg("%d of %d datagrams arrived", mn.got, NDGRAM);
    for (int i = 0; i < NDGRAM; i++) {
        if (tx[i].calls != 1 || tx[i].res != 8)
            fail_msg("sendmsg #%d: %d completion(s), res %s", i, tx[i].calls,
                     rlt_res_str(tx[i].res));
        sent++;
    }
    assert_int_equal(sent, NDGRAM);
    RLT_ASSERT_OK();
    assert_int_equal(rl_loop_pending(loop), 0);
    rlt_close(loop, a);
    rlt_close(loop, b);
    free(tx);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_roundtrip),
        RLT_TEST(test_truncation_and_empty),
        RLT_TEST(test_many_in_flight),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
