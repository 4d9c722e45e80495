// TCP ping-pong over loopback through the C API: the echo server of
// rl_echo.c and the clients run on the same loop, in one thread (so both
// sides' loop overhead is in the numbers, and no cross-CPU wakeup is).
// Each client sends a message with a send op, receives the echo with
// single-shot recv ops into its own buffer, checks it, and sends the next.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench_common.h"
#include "rl_echo.h"

namespace
{

struct PingPong;

struct Client {
    PingPong *pp;
    int fd = -1;
    size_t sent = 0, got = 0;
    bool sending = false, receiving = false;
    std::vector<unsigned char> tx, rx;
    rl_op send_op, recv_op;
};

struct PingPong {
    rl_loop *loop;
    size_t size;
    uint64_t round_trips = 0;
    uint64_t stop_at = 0;
    uint64_t errors = 0;
    uint64_t mismatches = 0;
    std::vector<Client> clients;
};

void client_start(Client *c);

void client_fail(Client *c)
{
    c->pp->errors++;
    rl_loop_stop(c->pp->loop);
}

void on_client_send(rl_loop *loop, rl_op *op)
{
    auto *c = static_cast<Client *>(op->data);
    if (op->res <= 0)
        return client_fail(c);
    c->sent += static_cast<size_t>(op->res);
    if (c->sent < c->pp->size) {
        rl_prep_send(op, c->fd, c->tx.data() + c->sent, c->pp->size - c->sent,
                     MSG_NOSIGNAL, on_client_send, c);
        if (rl_submit(loop, op) < 0)
            client_fail(c);
        return;
    }
    c->sending = false;
    if (!c->receiving)
        client_start(c);
}

void on_client_recv(rl_loop *loop, rl_op *op)
{
    auto *c = static_cast<Client *>(op->data);
    PingPong *pp = c->pp;
    if (op->res <= 0)
        return client_fail(c);
    c->got += static_cast<size_t>(op->res);
    if (c->got < pp->size) {
        rl_prep_recv(op, c->fd, c->rx.data() + c->got, pp->size - c->got, 0,
                     on_client_recv, c);
        if (rl_submit(loop, op) < 0)
            client_fail(c);
        return;
    }
    c->receiving = false;
    if (memcmp(c->rx.data(), c->tx.data(), pp->size) != 0)
        pp->mismatches++;
    if (++pp->round_trips == pp->stop_at)
        rl_loop_stop(loop);
    if (!c->sending)
        client_start(c);
}

// Send the next message (its first byte changes every time) and wait for
// its echo.
void client_start(Client *c)
{
    PingPong *pp = c->pp;
    c->tx[0]++;
    c->sent = c->got = 0;
    c->sending = c->receiving = true;
    rl_prep_send(&c->send_op, c->fd, c->tx.data(), pp->size, MSG_NOSIGNAL,
                 on_client_send, c);
    rl_prep_recv(&c->recv_op, c->fd, c->rx.data(), pp->size, 0, on_client_recv,
                 c);
    if (rl_submit(pp->loop, &c->send_op) < 0 ||
        rl_submit(pp->loop, &c->recv_op) < 0)
        client_fail(c);
}

int listen_loopback(uint16_t *port)
{
    sockaddr_in sa{};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0 ||
        listen(fd, 1024) < 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

// A connected, non-blocking client socket (the kernel completes the
// handshake before the server's accept runs).
int dial_loopback(uint16_t port)
{
    sockaddr_in sa{};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

// One iteration: one round trip on every connection (`conns` round trips;
// with one connection, the time per iteration is the round-trip time).
// items_per_second counts round trips.
void BM_PingPong(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    const size_t conns = static_cast<size_t>(state.range(0));
    PingPong pp;
    pp.loop = loop;
    pp.size = static_cast<size_t>(state.range(1));
    pp.clients.resize(conns);

    uint16_t port = 0;
    rl_echo_server *srv = nullptr;
    int lfd = listen_loopback(&port);
    int ret = lfd < 0 ? lfd : rl_echo_server_start(loop, lfd, &srv);
    for (size_t i = 0; ret == 0 && i < conns; i++) {
        Client &c = pp.clients[i];
        c.pp = &pp;
        c.tx.assign(pp.size, static_cast<unsigned char>(i));
        for (size_t j = 0; j < pp.size; j++)
            c.tx[j] = static_cast<unsigned char>(i * 31 + j);
        c.rx.assign(pp.size, 0);
        c.fd = dial_loopback(port);
        if (c.fd < 0)
            ret = c.fd;
    }
    if (ret < 0) {
        state.SkipWithError((std::string("setup: ") + strerror(-ret)).c_str());
    } else {
        for (auto &c : pp.clients)
            client_start(&c);
        for (auto _ : state) {
            pp.stop_at = pp.round_trips + conns;
            while (pp.round_trips < pp.stop_at && !pp.errors)
                rl_loop_run(loop, RL_RUN_DEFAULT);
            if (pp.errors)
                break;
        }
        if (pp.errors)
            state.SkipWithError("a client failed (send/recv error or EOF)");
        else if (pp.mismatches)
            state.SkipWithError("an echo differed from what was sent");
        state.SetItemsProcessed(state.iterations() *
                                static_cast<int64_t>(conns));
    }

    // Close the clients with close ops (they cancel the clients' ops), stop
    // the server, and let every final completion run.
    std::vector<rl_op> closes(conns);
    for (size_t i = 0; i < conns; i++) {
        if (pp.clients[i].fd < 0)
            continue;
        rl_prep_close(
            &closes[i], pp.clients[i].fd, [](rl_loop *, rl_op *) {}, nullptr);
        rl_submit(loop, &closes[i]);
    }
    if (srv)
        rl_echo_server_stop(srv);
    for (int i = 0; i < 1000 && rl_loop_pending(loop); i++)
        rl_loop_run(loop, RL_RUN_ONCE);
    if (lfd >= 0)
        close(lfd);
    rl_loop_free(loop);
}
BENCHMARK(BM_PingPong)
    ->ArgNames({"conns", "bytes"})
    ->Args({1, 1024})
    ->Args({100, 1024})
    ->UseRealTime();

} // namespace
