/*
 * loadgen: a closed-loop TCP echo load generator for loopback benchmarks.
 *
 * N connections each send one fixed-size message, wait for the complete
 * echo, check every byte, and send the next. The warmup lasts -w seconds
 * and until every connection has had one echo back (at most READY_NS more:
 * a busy server may take a while to accept 500 connections, and a run that
 * starts before then measures fewer connections than it says). Then the
 * counters and the latency histogram are reset, and the run lasts a fixed
 * duration and stops by itself: a dead connection counts as an error, and
 * one still waiting for its echo after a second when the run ends as
 * stalled. warmup_s in the report is the warmup's real length.
 *
 * One thread, driven by io_uring (one io_uring_enter per batch of events)
 * or, where io_uring is unavailable, by epoll. It only talks to 127.0.0.1
 * or ::1. Latency is kept in a log-linear histogram (about 1.6% relative
 * precision), not in an array of samples.
 *
 *   loadgen --port 9000 [--host 127.0.0.1|::1] [-c CONNS] [-s BYTES]
 *           [-d SECONDS] [-w SECONDS] [--engine auto|uring|epoll]
 *           [--server-pid PID] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SPAN 256 /* messages start at one of 256 offsets */
#define MAX_CONNS 10000
#define MAX_SIZE (16u << 20)
#define STALL_NS 1000000000ull
#define READY_NS 10000000000ull

/* ---- latency histogram ------------------------------------------------- */

/*
 * Values below 2^SUB_BITS have a bucket each; above, every power of two is
 * split into 2^(SUB_BITS-1) buckets.
 */
#define SUB_BITS 7
#define HALF (1u << (SUB_BITS - 1))
#define NBUCKETS ((64 - SUB_BITS + 1) * HALF + HALF)

struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t b[NBUCKETS];
};

static unsigned hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < (1u << SUB_BITS))
        return (unsigned)v;
    msb = 63 - (unsigned)__builtin_clzll(v);
    shift = msb - (SUB_BITS - 1);
    return shift * HALF + (unsigned)(v >> shift);
}

/* Highest value that falls into bucket i. */
static uint64_t hist_upper(unsigned i)
{
    unsigned shift;

    if (i < (1u << SUB_BITS))
        return i;
    shift = i / HALF - 1;
    return (((uint64_t)(i % HALF + HALF) + 1) << shift) - 1;
}

static void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_percentile(const struct hist *h, double p)
{
    uint64_t rank, seen = 0;
    unsigned i;

    if (!h->count)
        return 0;
    rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank)
            return hist_upper(i) < h->max ? hist_upper(i) : h->max;
    }
    return h->max;
}

/* ---- options and shared state ------------------------------------------ */

struct opts {
    const char *host;
    int port;
    int conns;
    size_t size;
    double duration;
    double warmup;
    double connect_timeout;
    const char *engine;
    int server_pid;
    bool json;
};

struct conn {
    int fd;
    bool dead;
    bool sending;   /* a send of the current message is still in flight */
    bool receiving; /* the echo of the current message is not complete */
    bool want_out;  /* epoll: EPOLLOUT is registered */
    uint32_t seq;
    size_t sent;
    size_t got;
    uint64_t t0;
    const unsigned char *tx;
    unsigned char *rx;
};

struct stats {
    uint64_t requests;
    uint64_t all; /* echoes from the first on, warmup included */
    uint64_t mismatches;
    uint64_t errors;
    uint64_t stalled; /* connections waiting > STALL_NS at the end */
    uint64_t ready;   /* connections that had at least one echo back */
    struct hist lat;
};

static struct opts opt = {
    .host = "127.0.0.1",
    .conns = 1,
    .size = 1024,
    .duration = 5.0,
    .warmup = 1.0,
    .connect_timeout = 3.0,
    .engine = "auto",
    .server_pid = 0,
};
static struct conn *conns;
static unsigned char *pattern;
static struct stats st;
static bool measuring;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prepare the next message of c: its bytes depend on the connection and on
 * the sequence number, so a mixed-up or stale echo does not compare equal. */
static void conn_next(struct conn *c, int idx)
{
    c->tx = pattern + ((uint32_t)idx * 7u + c->seq) % PATTERN_SPAN;
    c->sent = 0;
    c->got = 0;
    c->sending = true;
    c->receiving = true;
    c->t0 = now_ns();
}

/* The echo of c's message is complete: check it and account for it. */
static void conn_done(struct conn *c)
{
    if (memcmp(c->rx, c->tx, opt.size) != 0)
        st.mismatches++;
    if (c->seq == 0)
        st.ready++;
    st.all++;
    if (measuring) {
        st.requests++;
        hist_add(&st.lat, now_ns() - c->t0);
    }
    c->seq++;
}

static void conn_fail(struct conn *c)
{
    if (!c->dead) {
        c->dead = true;
        st.errors++;
    }
}

/* ---- io_uring engine --------------------------------------------------- */

enum { K_SEND = 0, K_RECV = 1 };

static struct io_uring ring;

static int uring_setup(unsigned entries)
{
    struct io_uring_params p;
    int ret;

    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ret = io_uring_queue_init_params(entries, &ring, &p);
    if (ret == -EINVAL) {
        memset(&p, 0, sizeof(p));
        ret = io_uring_queue_init_params(entries, &ring, &p);
    }
    return ret;
}

static struct io_uring_sqe *uring_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void uring_queue(struct conn *c, int idx, int kind)
{
    struct io_uring_sqe *sqe = uring_sqe();

    if (!sqe) {
        conn_fail(c);
        return;
    }
    if (kind == K_SEND)
        io_uring_prep_send(sqe, c->fd, c->tx + c->sent, opt.size - c->sent,
                           MSG_NOSIGNAL);
    else
        io_uring_prep_recv(sqe, c->fd, c->rx + c->got, opt.size - c->got, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)idx << 1 | (uint64_t)kind);
}

static void uring_start(int idx)
{
    struct conn *c = &conns[idx];

    if (c->dead)
        return;
    conn_next(c, idx);
    uring_queue(c, idx, K_SEND);
    uring_queue(c, idx, K_RECV);
}

static void uring_complete(struct io_uring_cqe *cqe)
{
    int idx = (int)(cqe->user_data >> 1), kind = cqe->user_data & 1;
    struct conn *c = &conns[idx];

    if (c->dead)
        return;
    if (cqe->res <= 0) { /* error, or EOF where an echo was due */
        conn_fail(c);
        return;
    }
    if (kind == K_SEND) {
        c->sent += (size_t)cqe->res;
        if (c->sent < opt.size) {
            uring_queue(c, idx, K_SEND);
            return;
        }
        c->sending = false;
    } else {
        c->got += (size_t)cqe->res;
        if (c->got < opt.size) {
            uring_queue(c, idx, K_RECV);
            return;
        }
        c->receiving = false;
        conn_done(c);
    }
    if (!c->sending && !c->receiving)
        uring_start(idx);
}

/* Run until `until`; returns -errno on a ring failure. */
static int uring_run(uint64_t until)
{
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
    struct io_uring_cqe *cqe;
    unsigned head, n;
    int ret;

    while (now_ns() < until) {
        ret = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        if (ret < 0 && ret != -ETIME && ret != -EINTR)
            return ret;
        n = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uring_complete(cqe);
            n++;
        }
        io_uring_cq_advance(&ring, n);
    }
    return 0;
}

static int uring_begin(void)
{
    unsigned entries = 64;
    int i, ret;

    while (entries < (unsigned)opt.conns * 2 && entries < 32768)
        entries <<= 1;
    ret = uring_setup(entries);
    if (ret < 0)
        return ret;
    for (i = 0; i < opt.conns; i++)
        uring_start(i);
    return 0;
}

/* ---- epoll engine ------------------------------------------------------ */

static int epfd = -1;

static void epoll_want_out(struct conn *c, int idx, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)idx};

    if (c->want_out == on)
        return;
    c->want_out = on;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_fail(c);
}

static void epoll_send(struct conn *c, int idx)
{
    while (c->sent < opt.size) {
        ssize_t n =
            send(c->fd, c->tx + c->sent, opt.size - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            epoll_want_out(c, idx, true);
            return;
        }
        if (n <= 0) {
            conn_fail(c);
            return;
        }
        c->sent += (size_t)n;
    }
    c->sending = false;
    epoll_want_out(c, idx, false);
}

static void epoll_recv(struct conn *c)
{
    while (c->got < opt.size) {
        ssize_t n = recv(c->fd, c->rx + c->got, opt.size - c->got, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_fail(c);
            return;
        }
        c->got += (size_t)n;
    }
    c->receiving = false;
    conn_done(c);
}

static void epoll_event(const struct epoll_event *ev)
{
    int idx = (int)ev->data.u32;
    struct conn *c = &conns[idx];

    if (!c->dead && c->sending && (ev->events & (EPOLLOUT | EPOLLERR)))
        epoll_send(c, idx);
    if (!c->dead && c->receiving &&
        (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        epoll_recv(c);
    /* No recv right after the send: the echo cannot be there yet, and
     * level-triggered EPOLLIN reports it when it is. */
    if (!c->dead && !c->sending && !c->receiving) {
        conn_next(c, idx);
        epoll_send(c, idx);
    }
}

static int epoll_begin(void)
{
    int i;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    for (i = 0; i < opt.conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        struct conn *c = &conns[i];

        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            return -errno;
        conn_next(c, i);
        epoll_send(c, i);
    }
    return 0;
}

static int epoll_run(uint64_t until)
{
    struct epoll_event evs[256];
    int i, n;

    while (now_ns() < until) {
        n = epoll_wait(epfd, evs, 256, 50);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (i = 0; i < n; i++)
            epoll_event(&evs[i]);
    }
    return 0;
}

/* ---- setup, measurement, report ---------------------------------------- */

static bool host_allowed(const char *h)
{
    return !strcmp(h, "127.0.0.1") || !strcmp(h, "::1") ||
           !strcmp(h, "localhost");
}

static int dial(const struct sockaddr *sa, socklen_t len, uint64_t deadline)
{
    int one = 1, fd;

    for (;;) {
        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (connect(fd, sa, len) == 0)
            break;
        close(fd);
        if (errno != ECONNREFUSED || now_ns() >= deadline)
            return -errno;
        usleep(10000); /* the server may still be starting */
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int connect_all(void)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    uint64_t deadline = now_ns() + (uint64_t)(opt.connect_timeout * 1e9);
    int i, fd;

    memset(&ss, 0, sizeof(ss));
    if (!strcmp(opt.host, "::1")) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)opt.port);
        in6->sin6_addr = in6addr_loopback;
        len = sizeof(*in6);
    } else {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)opt.port);
        in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*in4);
    }
    for (i = 0; i < opt.conns; i++) {
        fd = dial((struct sockaddr *)&ss, len, deadline);
        if (fd < 0) {
            fprintf(stderr, "loadgen: connect %s:%d: %s\n", opt.host, opt.port,
                    strerror(-fd));
            return fd;
        }
        conns[i].fd = fd;
    }
    return 0;
}

/*
 * Call after the engine has started every connection: run opt.warmup
 * seconds, then on until every connection has had an echo back or died,
 * for at most READY_NS more. Returns -errno on an engine failure.
 */
static int warm_up(bool uring)
{
    uint64_t t = now_ns() + (uint64_t)(opt.warmup * 1e9);
    uint64_t cap = t + READY_NS;
    int ret = uring ? uring_run(t) : epoll_run(t);

    while (ret == 0 && st.ready + st.errors < (uint64_t)opt.conns &&
           (t = now_ns()) < cap) {
        t += 10000000; /* look again in 10 ms */
        ret = uring ? uring_run(t) : epoll_run(t);
    }
    return ret;
}

/* CPU time (user + system) of process pid in microseconds, or -1. */
static double proc_cpu_us(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

struct result {
    const char *engine;
    double warmup;
    double seconds;
    double client_cpu_us;
    double server_cpu_us; /* < 0: unknown */
    uint64_t alive;
};

static void report(const struct result *r)
{
    double rps = r->seconds > 0 ? (double)st.requests / r->seconds : 0;
    double mean = st.lat.count ? (double)st.lat.sum / st.lat.count / 1e3 : 0;
    double p50 = hist_percentile(&st.lat, 50) / 1e3;
    double p90 = hist_percentile(&st.lat, 90) / 1e3;
    double p99 = hist_percentile(&st.lat, 99) / 1e3;
    double p999 = hist_percentile(&st.lat, 99.9) / 1e3;
    double lmax = st.lat.max / 1e3;
    double lmin = st.lat.count ? st.lat.min / 1e3 : 0;
    double srv = -1, srv_util = -1;
    double cli_util = r->client_cpu_us / (r->seconds * 1e6);

    if (r->server_cpu_us >= 0 && st.requests) {
        srv = r->server_cpu_us / (double)st.requests;
        srv_util = r->server_cpu_us / (r->seconds * 1e6);
    }
    if (opt.json) {
        printf("{\"engine\": \"%s\", \"host\": \"%s\", \"port\": %d, "
               "\"conns\": %d, \"alive\": %llu, \"size\": %zu, "
               "\"warmup_s\": %.3f, \"duration_s\": %.3f, "
               "\"requests\": %llu, \"requests_all\": %llu, "
               "\"rps\": %.1f, \"errors\": %llu, "
               "\"mismatches\": %llu, \"stalled\": %llu, \"latency_us\": "
               "{\"min\": %.2f, "
               "\"mean\": %.2f, \"p50\": %.2f, \"p90\": %.2f, "
               "\"p99\": %.2f, \"p99.9\": %.2f, \"max\": %.2f}, "
               "\"client_cpu_util\": %.3f",
               r->engine, opt.host, opt.port, opt.conns,
               (unsigned long long)r->alive, opt.size, r->warmup, r->seconds,
               (unsigned long long)st.requests, (unsigned long long)st.all, rps,
               (unsigned long long)st.errors, (unsigned long long)st.mismatches,
               (unsigned long long)st.stalled, lmin, mean, p50, p90, p99, p999,
               lmax, cli_util);
        if (srv >= 0)
            printf(", \"server_cpu_us_per_req\": %.3f, "
                   "\"server_cpu_util\": %.3f",
                   srv, srv_util);
        printf("}\n");
        return;
    }
    printf("loadgen: %s:%d, %d connections (%llu alive), %zu-byte "
           "messages, %.2f s after %.2f s warmup, %s engine\n",
           opt.host, opt.port, opt.conns, (unsigned long long)r->alive,
           opt.size, r->seconds, r->warmup, r->engine);
    printf("  requests    %llu (%.0f/s), errors %llu, mismatches %llu, "
           "stalled %llu\n",
           (unsigned long long)st.requests, rps, (unsigned long long)st.errors,
           (unsigned long long)st.mismatches, (unsigned long long)st.stalled);
    printf("  latency us  min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  "
           "p99.9 %.1f  max %.1f\n",
           lmin, mean, p50, p90, p99, p999, lmax);
    printf("  client cpu  %.0f%%\n", cli_util * 100);
    if (srv >= 0)
        printf("  server cpu  %.0f%%, %.2f us/request\n", srv_util * 100, srv);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: loadgen --port PORT [--host 127.0.0.1|::1] [-c CONNS]\n"
               "               [-s BYTES] [-d SECONDS] [-w SECONDS]\n"
               "               [--engine auto|uring|epoll] [--server-pid PID]\n"
               "               [--connect-timeout SECONDS] [--json]\n");
}

static int parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"conns", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},
        {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},
        {"engine", required_argument, 0, 'e'},
        {"server-pid", required_argument, 0, 'P'},
        {"connect-timeout", required_argument, 0, 'T'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "p:H:c:s:d:w:e:P:T:jh", lo, NULL)) !=
           -1) {
        switch (c) {
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 'c':
            opt.conns = atoi(optarg);
            break;
        case 's':
            opt.size = strtoul(optarg, NULL, 0);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'e':
            opt.engine = optarg;
            break;
        case 'P':
            opt.server_pid = atoi(optarg);
            break;
        case 'T':
            opt.connect_timeout = atof(optarg);
            break;
        case 'j':
            opt.json = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -EINVAL;
        }
    }
    if (opt.port <= 0 || opt.port > 65535) {
        fprintf(stderr, "loadgen: --port 1..65535 is required\n");
        return -EINVAL;
    }
    if (!host_allowed(opt.host)) {
        fprintf(stderr, "loadgen: only 127.0.0.1 and ::1 are allowed\n");
        return -EINVAL;
    }
    if (opt.conns < 1 || opt.conns > MAX_CONNS || opt.size < 1 ||
        opt.size > MAX_SIZE || !(opt.duration > 0) || opt.duration > 3600 ||
        !(opt.warmup >= 0) || opt.warmup > 600 || !(opt.connect_timeout >= 0) ||
        opt.connect_timeout > 60) {
        fprintf(stderr,
                "loadgen: an option is out of range (conns 1..%d, "
                "size 1..%u, duration 0..3600 s, warmup 0..600 s)\n",
                MAX_CONNS, MAX_SIZE);
        return -EINVAL;
    }
    if (strcmp(opt.engine, "auto") && strcmp(opt.engine, "uring") &&
        strcmp(opt.engine, "epoll")) {
        fprintf(stderr, "loadgen: --engine auto|uring|epoll\n");
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct result r = {.server_cpu_us = -1};
    bool uring = false;
    uint64_t t_measure, t_end;
    double cpu0, srv0 = -1, srv1;
    int i, ret;

    if (parse_args(argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    hist_reset(&st.lat);
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    pattern = malloc(opt.size + PATTERN_SPAN);
    if (!conns || !pattern)
        return 1;
    for (i = 0; i < (int)opt.size + PATTERN_SPAN; i++)
        pattern[i] = (unsigned char)(i * 131 + (i >> 8) * 7 + 1);
    for (i = 0; i < opt.conns; i++) {
        conns[i].fd = -1;
        conns[i].rx = malloc(opt.size);
        if (!conns[i].rx)
            return 1;
    }
    if (connect_all() < 0)
        return 1;

    if (strcmp(opt.engine, "epoll")) {
        ret = uring_begin();
        uring = ret == 0;
        if (ret < 0 && !strcmp(opt.engine, "uring")) {
            fprintf(stderr, "loadgen: io_uring: %s\n", strerror(-ret));
            return 1;
        }
    }
    if (!uring && (ret = epoll_begin()) < 0) {
        fprintf(stderr, "loadgen: epoll: %s\n", strerror(-ret));
        return 1;
    }
    r.engine = uring ? "uring" : "epoll";

    t_measure = now_ns();
    ret = warm_up(uring);
    if (ret < 0)
        goto out_fail;
    r.warmup = (double)(now_ns() - t_measure) / 1e9;
    /* Measurement starts now: forget the warmup. Errors are kept. */
    st.requests = 0;
    hist_reset(&st.lat);
    measuring = true;
    cpu0 = self_cpu_us();
    if (opt.server_pid > 0)
        srv0 = proc_cpu_us(opt.server_pid);
    t_measure = now_ns();
    t_end = t_measure + (uint64_t)(opt.duration * 1e9);
    ret = uring ? uring_run(t_end) : epoll_run(t_end);
    if (ret < 0)
        goto out_fail;
    r.seconds = (double)(now_ns() - t_measure) / 1e9;
    r.client_cpu_us = self_cpu_us() - cpu0;
    if (srv0 >= 0 && (srv1 = proc_cpu_us(opt.server_pid)) >= 0)
        r.server_cpu_us = srv1 - srv0;
    measuring = false;
    for (i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        r.alive += !c->dead;
        if (!c->dead && (c->sending || c->receiving) &&
            now_ns() - c->t0 > STALL_NS)
            st.stalled++;
        close(c->fd);
    }
    if (uring)
        io_uring_queue_exit(&ring);
    report(&r);
    return st.errors || st.mismatches || st.stalled || !st.requests ? 1 : 0;

out_fail:
    fprintf(stderr, "loadgen: %s: %s\n", r.engine, strerror(-ret));
    return 1;
}
