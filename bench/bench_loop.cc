// Microbenchmarks of the loop itself: call_soon, timers and thread-safe
// calls. Each names what one iteration is; items_per_second counts
// callbacks (or timer operations) per second.
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <mutex>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "bench_common.h"

namespace
{

constexpr uint64_t kMs = 1000 * 1000;
constexpr uint64_t kSec = 1000 * kMs;

// xorshift64: deterministic "random" timeouts without a table.
struct Rng {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    // A timeout in [1 s, 2 s): far enough that nothing expires meanwhile.
    uint64_t timeout()
    {
        return kSec + next() % kSec;
    }
};

struct Counter {
    uint64_t n = 0;
};

void count_cb(rl_loop *, rl_callback *cb)
{
    static_cast<Counter *>(cb->data)->n++;
}

void count_timer(rl_loop *, rl_timer *t)
{
    static_cast<Counter *>(t->data)->n++;
}

// ---- call_soon ----------------------------------------------------------

// One iteration: queue N callbacks, then one loop iteration runs them all
// (one backend poll per N callbacks).
void BM_CallSoonBatch(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    const size_t n = static_cast<size_t>(state.range(0));
    std::vector<rl_callback> cbs(n);
    Counter c;
    for (auto &cb : cbs)
        rl_callback_init(&cb, count_cb, &c);
    for (auto _ : state) {
        for (auto &cb : cbs)
            rl_call_soon(loop, &cb);
        rl_loop_run(loop, RL_RUN_NOWAIT);
    }
    if (c.n != n * state.iterations())
        state.SkipWithError("a callback did not run");
    state.SetItemsProcessed(static_cast<int64_t>(c.n));
    rl_loop_free(loop);
}
BENCHMARK(BM_CallSoonBatch)->Arg(1024);

// One iteration: one callback that queues the next, as a chain of
// call_soon from callbacks does in asyncio: every callback costs a whole
// loop iteration, backend poll included (timeout 0: work is ready).
void BM_CallSoonChain(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    rl_callback cb;
    Counter c;
    rl_callback_init(&cb, count_cb, &c);
    for (auto _ : state) {
        rl_call_soon(loop, &cb);
        rl_loop_run(loop, RL_RUN_NOWAIT);
    }
    state.SetItemsProcessed(static_cast<int64_t>(c.n));
    rl_loop_free(loop);
}
BENCHMARK(BM_CallSoonChain);

// ---- timers -------------------------------------------------------------

struct Timers {
    std::vector<rl_timer> t;
    Counter fired;
    explicit Timers(size_t n) : t(n)
    {
        for (auto &x : t)
            rl_timer_init(&x, count_timer, &fired);
    }
};

// One iteration: start N timers with random timeouts (1-2 s) into an
// empty heap. Stopping them again is not timed.
void BM_TimerStart(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    Timers ts(static_cast<size_t>(state.range(0)));
    Rng rng;
    for (auto _ : state) {
        for (auto &t : ts.t)
            rl_timer_start(loop, &t, rng.timeout());
        state.PauseTiming();
        for (auto &t : ts.t)
            rl_timer_stop(loop, &t);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    rl_loop_free(loop);
}
BENCHMARK(BM_TimerStart)->Arg(1000000)->Unit(benchmark::kMillisecond);

// One iteration: cancel N armed timers (random deadlines), in the order
// they were started, until the heap is empty. Starting them is not timed.
void BM_TimerCancel(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    Timers ts(static_cast<size_t>(state.range(0)));
    Rng rng;
    for (auto _ : state) {
        state.PauseTiming();
        for (auto &t : ts.t)
            rl_timer_start(loop, &t, rng.timeout());
        state.ResumeTiming();
        for (auto &t : ts.t)
            rl_timer_stop(loop, &t);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    rl_loop_free(loop);
}
BENCHMARK(BM_TimerCancel)->Arg(1000000)->Unit(benchmark::kMillisecond);

// One iteration: one loop iteration in which N due timers (random
// deadlines in the past) expire and their callbacks run: heap pops, the
// ready queue and the calls. Arming them is not timed.
void BM_TimerExpire(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    Timers ts(static_cast<size_t>(state.range(0)));
    Rng rng;
    for (auto _ : state) {
        state.PauseTiming();
        uint64_t now = rl_loop_update_time(loop);
        for (auto &t : ts.t)
            rl_timer_start_at(loop, &t, now - rng.timeout());
        state.ResumeTiming();
        rl_loop_run(loop, RL_RUN_NOWAIT);
    }
    if (ts.fired.n != ts.t.size() * state.iterations())
        state.SkipWithError("not every timer fired");
    state.SetItemsProcessed(static_cast<int64_t>(ts.fired.n));
    rl_loop_free(loop);
}
BENCHMARK(BM_TimerExpire)->Arg(1000000)->Unit(benchmark::kMillisecond);

// One iteration: cancel one timer and start it again with a new random
// timeout, among W armed timers (the oldest is the one cancelled): the
// call_later + cancel pattern of timeouts that rarely fire.
void BM_TimerChurn(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    Timers ts(static_cast<size_t>(state.range(0)));
    Rng rng;
    for (auto &t : ts.t)
        rl_timer_start(loop, &t, rng.timeout());
    size_t i = 0, n = ts.t.size();
    for (auto _ : state) {
        rl_timer_stop(loop, &ts.t[i]);
        rl_timer_start(loop, &ts.t[i], rng.timeout());
        if (++i == n)
            i = 0;
    }
    state.SetItemsProcessed(state.iterations());
    rl_loop_free(loop);
}
BENCHMARK(BM_TimerChurn)->ArgName("armed")->Arg(1)->Arg(1000)->Arg(100000);

// ---- thread-safe calls --------------------------------------------------

// P producer threads, each posting M callbacks per round with
// rl_call_threadsafe; the loop thread (the benchmark's) runs the loop,
// sleeping when the queue is empty, until all P*M have run.
class Producers
{
  public:
    Producers(rl_loop *loop, int threads, size_t per_round, Counter *c)
        : loop_(loop), nodes_(static_cast<size_t>(threads))
    {
        for (auto &v : nodes_) {
            v.resize(per_round);
            for (auto &cb : v)
                rl_callback_init(&cb, count_cb, c);
        }
        for (int i = 0; i < threads; i++)
            threads_.emplace_back([this, i] { run(i); });
    }
    ~Producers()
    {
        {
            std::lock_guard<std::mutex> g(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        for (auto &t : threads_)
            t.join();
    }
    // Let every producer post its M callbacks once.
    void round()
    {
        {
            std::lock_guard<std::mutex> g(mu_);
            gen_++;
        }
        cv_.notify_all();
    }

  private:
    void run(int i)
    {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> l(mu_);
                cv_.wait(l, [&] { return quit_ || gen_ != seen; });
                if (quit_)
                    return;
                seen = gen_;
            }
            for (auto &cb : nodes_[static_cast<size_t>(i)])
                rl_call_threadsafe(loop_, &cb);
        }
    }

    rl_loop *loop_;
    std::vector<std::vector<rl_callback>> nodes_;
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_;
    uint64_t gen_ = 0;
    bool quit_ = false;
};

// One iteration: P producers post 10000 callbacks each; the loop runs them
// all, waking up from its backend wait whenever it ran out.
void BM_Threadsafe(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    const int threads = static_cast<int>(state.range(0));
    const size_t per_round = 10000;
    Counter c;
    {
        Producers p(loop, threads, per_round, &c);
        uint64_t want = 0;
        uint64_t iterations = 0;
        for (auto _ : state) {
            want += per_round * static_cast<uint64_t>(threads);
            p.round();
            while (c.n < want) {
                rl_loop_run(loop, RL_RUN_ONCE);
                iterations++;
            }
        }
        state.counters["loop_iterations_per_call"] =
            static_cast<double>(iterations) / static_cast<double>(want);
    }
    state.SetItemsProcessed(static_cast<int64_t>(c.n));
    rl_loop_free(loop);
}
BENCHMARK(BM_Threadsafe)
    ->ArgName("producers")
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// One iteration: a round trip to the loop thread. The benchmark thread
// posts one callback and spins until the loop thread has run it. The loop
// thread is usually asleep in its backend wait (or about to be) when the
// callback arrives, so this is mostly the cost of a wakeup.
void BM_ThreadsafeWakeup(benchmark::State &state)
{
    rl_loop *loop = rl_bench_loop(state);
    if (!loop)
        return;
    struct Ctx {
        std::atomic<uint64_t> ran{0};
        std::atomic<bool> quit{false};
    } ctx;
    rl_callback ping, stop;
    rl_timer keepalive; // keeps RL_RUN_DEFAULT from returning when idle
    rl_callback_init(
        &ping,
        [](rl_loop *, rl_callback *cb) {
            static_cast<Ctx *>(cb->data)->ran.fetch_add(1);
        },
        &ctx);
    rl_callback_init(
        &stop, [](rl_loop *l, rl_callback *) { rl_loop_stop(l); }, nullptr);
    rl_timer_init(
        &keepalive, [](rl_loop *, rl_timer *) {}, nullptr);
    rl_timer_start(loop, &keepalive, 3600 * kSec);
    std::thread t([&] { rl_loop_run(loop, RL_RUN_DEFAULT); });
    uint64_t sent = 0;
    for (auto _ : state) {
        rl_call_threadsafe(loop, &ping);
        sent++;
        while (ctx.ran.load(std::memory_order_acquire) != sent)
            ;
    }
    rl_call_threadsafe(loop, &stop);
    t.join();
    rl_timer_stop(loop, &keepalive);
    state.SetItemsProcessed(state.iterations());
    rl_loop_free(loop);
}
BENCHMARK(BM_ThreadsafeWakeup)->UseRealTime();

// ---- loop to loop (msg_ring) ---------------------------------------------

double thread_cpu_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 +
           static_cast<double>(ts.tv_nsec);
}

double process_cpu_ns()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

// Two loops on the benchmark's backend, with or without msg_ring; false
// (the benchmark marked skipped) if either cannot be made.
static bool two_loops(benchmark::State &state, bool msg_ring, rl_loop **a,
                      rl_loop **b)
{
    rl_loop_config cfg;

    rl_loop_config_init(&cfg);
    cfg.backend = rl_bench_backend;
    cfg.disable = msg_ring ? 0 : RL_FEAT_MSG_RING;
    if (rl_loop_new(a, &cfg) < 0 || rl_loop_new(b, &cfg) < 0) {
        if (*a)
            rl_loop_free(*a);
        state.SkipWithError("rl_loop_new failed");
        return false;
    }
    return true;
}

// One iteration: a round trip between two loops on two threads, each hop an
// rl_call_threadsafe() made from a callback of the sending loop (as
// loop.call_soon_threadsafe between two ringloop loops). The target sleeps
// in its backend wait at every hop, so each hop is a wake: with msg_ring
// (arg 1, io_uring) an IORING_OP_MSG_RING submitted by the sender, else an
// eventfd write and the target's eventfd read. cpu_ns_per_rt is the
// process's CPU time (both threads, user + system) per round trip.
void BM_CrossLoopRoundTrip(benchmark::State &state)
{
    rl_loop *a = nullptr, *b = nullptr;

    if (!two_loops(state, state.range(0) != 0, &a, &b))
        return;
    state.SetLabel(
        std::string(rl_loop_backend_name(a)) +
        (rl_loop_features(a) & RL_FEAT_MSG_RING ? " msg_ring" : " eventfd"));
    struct Ctx {
        rl_loop *a, *b;
        rl_callback kick, ping, pong, stop;
        bool back = false; // loop a's thread only
    } ctx;
    ctx.a = a;
    ctx.b = b;
    rl_callback_init(
        &ctx.kick,
        [](rl_loop *, rl_callback *cb) {
            Ctx *c = static_cast<Ctx *>(cb->data);
            rl_call_threadsafe(c->b, &c->ping);
        },
        &ctx);
    rl_callback_init(
        &ctx.ping,
        [](rl_loop *, rl_callback *cb) {
            Ctx *c = static_cast<Ctx *>(cb->data);
            rl_call_threadsafe(c->a, &c->pong);
        },
        &ctx);
    rl_callback_init(
        &ctx.pong,
        [](rl_loop *, rl_callback *cb) {
            static_cast<Ctx *>(cb->data)->back = true;
        },
        &ctx);
    rl_callback_init(
        &ctx.stop, [](rl_loop *l, rl_callback *) { rl_loop_stop(l); }, nullptr);
    rl_timer keepalive;
    rl_timer_init(
        &keepalive, [](rl_loop *, rl_timer *) {}, nullptr);
    rl_timer_start(b, &keepalive, 3600 * kSec);
    std::thread t([&] { rl_loop_run(b, RL_RUN_DEFAULT); });
    // let b fall asleep once (its ring is enabled then)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    struct rl_loop_stats st0, st1;
    rl_loop_stats(a, &st0);
    double cpu0 = process_cpu_ns();
    for (auto _ : state) {
        ctx.back = false;
        rl_call_soon(a, &ctx.kick);
        while (!ctx.back)
            rl_loop_run(a, RL_RUN_ONCE);
    }
    double cpu = process_cpu_ns() - cpu0;
    rl_loop_stats(a, &st1);
    rl_call_threadsafe(b, &ctx.stop);
    t.join();
    rl_timer_stop(b, &keepalive);
    state.SetItemsProcessed(state.iterations());
    state.counters["cpu_ns_per_rt"] =
        benchmark::Counter(cpu / static_cast<double>(state.iterations()));
    state.counters["a_msgs_per_rt"] = benchmark::Counter(
        static_cast<double>(st1.msg_ring_sent - st0.msg_ring_sent) /
        static_cast<double>(state.iterations()));
    rl_loop_free(a);
    rl_loop_free(b);
}
BENCHMARK(BM_CrossLoopRoundTrip)
    ->ArgName("msg_ring")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime();

// One iteration: one TCP connection over loopback, accepted by loop A
// (multishot accept) and then either closed there (handoff:0) or handed to
// loop B on another thread with rl_loop_send_fd() and closed there
// (handoff:1), the wake a ring message (msg_ring:1) or an eventfd write.
// The benchmark thread is the client: connect(), and close() once the
// server has aborted the connection (SO_LINGER 0: no TIME_WAIT on either
// side), at most kWindow connections ahead of the server. cpu_us_per_conn
// is the whole process's CPU (client included) per connection,
// server_us_per_conn the two loop threads' own CPU (the kernel's loopback
// work is mostly charged to the client's connect): compare the rows, the
// difference is the hand-off.
void BM_AcceptHandoff(benchmark::State &state)
{
    constexpr long kWindow = 32;
    const bool handoff = state.range(0) != 0;
    rl_loop *a = nullptr, *b = nullptr;

    if (!two_loops(state, state.range(1) != 0, &a, &b))
        return;
    state.SetLabel(
        std::string(rl_loop_backend_name(a)) +
        (handoff ? (rl_loop_features(a) & RL_FEAT_MSG_RING ? " handoff msg_ring"
                                                           : " handoff eventfd")
                 : " no handoff"));
    sockaddr_in sa{};
    socklen_t salen = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, 4096) < 0 || getsockname(lfd, (sockaddr *)&sa, &salen)) {
        state.SkipWithError("listen failed");
        rl_loop_free(a);
        rl_loop_free(b);
        return;
    }
    struct Ctx {
        rl_loop *b;
        bool handoff;
        bool stopping = false; // loop a's thread
        std::atomic<long> done{0};
        rl_op accept;
        rl_callback stop_a, stop_b;
    } ctx;
    ctx.b = b;
    ctx.handoff = handoff;
    // abort: RST, no TIME_WAIT
    static auto abort_close = [](int fd) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    };
    static rl_op_fn on_accept = [](rl_loop *l, rl_op *op) {
        Ctx *c = static_cast<Ctx *>(op->data);
        if (op->res >= 0 && c->handoff) {
            rl_fd_msg *m = static_cast<rl_fd_msg *>(malloc(sizeof(*m)));
            rl_loop_send_fd(
                c->b, m, op->res,
                [](rl_loop *, rl_fd_msg *m, int fd) {
                    Ctx *c = static_cast<Ctx *>(m->data);
                    if (fd >= 0)
                        abort_close(fd);
                    free(m);
                    c->done.fetch_add(1, std::memory_order_release);
                },
                c);
        } else if (op->res >= 0) {
            abort_close(op->res);
            c->done.fetch_add(1, std::memory_order_release);
        }
        if (!(op->cflags & RL_CQE_MORE) && !c->stopping) {
            rl_prep_accept_multishot(op, op->fd, SOCK_CLOEXEC, on_accept, c);
            rl_submit(l, op);
        }
    };
    rl_prep_accept_multishot(&ctx.accept, lfd, SOCK_CLOEXEC, on_accept, &ctx);
    rl_submit(a, &ctx.accept);
    rl_callback_init(
        &ctx.stop_a,
        [](rl_loop *l, rl_callback *cb) {
            Ctx *c = static_cast<Ctx *>(cb->data);
            c->stopping = true;
            rl_op_cancel(l, &c->accept);
        },
        &ctx);
    rl_callback_init(
        &ctx.stop_b, [](rl_loop *l, rl_callback *) { rl_loop_stop(l); },
        nullptr);
    rl_timer keepalive;
    rl_timer_init(
        &keepalive, [](rl_loop *, rl_timer *) {}, nullptr);
    rl_timer_start(b, &keepalive, 3600 * kSec);
    // each server thread's own CPU time, read when its loop returns
    double cpu_a = 0, cpu_b = 0;
    std::thread ta([&] {
        rl_loop_run(a, RL_RUN_DEFAULT);
        cpu_a = thread_cpu_ns();
    });
    std::thread tb([&] {
        rl_loop_run(b, RL_RUN_DEFAULT);
        cpu_b = thread_cpu_ns();
    });
    std::vector<int> open_fds; // connected, not yet closed, in order
    long connected = 0, closed = 0, connect_errors = 0;
    double cpu0 = process_cpu_ns();
    for (auto _ : state) {
        while (connected - ctx.done.load(std::memory_order_acquire) >= kWindow)
            std::this_thread::yield();
        long d = ctx.done.load(std::memory_order_acquire);
        while (closed < d && closed < connected) // the server is done
            close(open_fds[static_cast<size_t>(closed++)]);
        int fd = -1;
        // A shared machine may run short of ephemeral ports (other jobs'
        // TIME_WAITs): retry a failed connect a few times.
        for (int tries = 0; fd < 0 && tries < 100; tries++) {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, (sockaddr *)&sa, sizeof(sa)) < 0) {
                connect_errors++;
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0) {
            state.SkipWithError(
                (std::string("connect: ") + strerror(errno)).c_str());
            break;
        }
        open_fds.push_back(fd);
        connected++;
    }
    // (a connect that failed may still have been accepted: done counts it)
    while (ctx.done.load(std::memory_order_acquire) < connected)
        std::this_thread::yield();
    double cpu = process_cpu_ns() - cpu0;
    while (closed < connected)
        close(open_fds[static_cast<size_t>(closed++)]);
    rl_call_threadsafe(a, &ctx.stop_a);
    ta.join();
    rl_call_threadsafe(b, &ctx.stop_b);
    tb.join();
    rl_timer_stop(b, &keepalive);
    close(lfd);
    state.SetItemsProcessed(connected);
    state.counters["connect_retries"] =
        benchmark::Counter(static_cast<double>(connect_errors));
    state.counters["server_us_per_conn"] = benchmark::Counter(
        (cpu_a + cpu_b) / 1e3 / static_cast<double>(connected ? connected : 1));
    state.counters["cpu_us_per_conn"] = benchmark::Counter(
        cpu / 1e3 / static_cast<double>(connected ? connected : 1));
    rl_loop_free(a);
    rl_loop_free(b);
}
BENCHMARK(BM_AcceptHandoff)
    ->ArgNames({"handoff", "msg_ring"})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->UseRealTime();

} // namespace
