/*
 * Shared helpers for the cmocka tests (static inline, test-only).
 *
 * Every wait on the loop goes through rlt_run_until(), which arms a guard
 * timer, so a bug fails the test instead of hanging; each test also runs
 * under alarm() (see rlt_setup) in case the loop itself never returns.
 *
 * Callbacks never use cmocka asserts: a longjmp out of rl_loop_run() would
 * leave the loop half-way through an iteration. They record the first
 * problem with rlt_fail(), rlt_run_until() stops at once, and the test body
 * reports it with RLT_ASSERT_OK().
 */
#ifndef RLT_HELPERS_H
#define RLT_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringloop.h"

#define RLT_MS 1000000ull   /* nanoseconds per millisecond */
#define RLT_GUARD_MS 20000u /* default bound for one wait */
#define RLT_ALARM_S 60u     /* per test; ctest kills a program at 120 s */

/* ---- recording failures from callbacks --------------------------------- */

static char rlt_err_msg[1024];
static int rlt_err_count;

__attribute__((format(printf, 3, 4))) static inline void
rlt_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rlt_err_count < 10)
        fprintf(stderr, "%s:%d: %s\n", file, line, msg);
    if (rlt_err_count++ == 0)
        snprintf(rlt_err_msg, sizeof(rlt_err_msg), "%s:%d: %s", file, line,
                 msg);
}

/* Record a problem seen inside a callback (first one wins). */
#define rlt_fail(...) rlt_fail_at(__FILE__, __LINE__, __VA_ARGS__)

static inline bool rlt_failed(void)
{
    return rlt_err_count > 0;
}

/* In a test body: fail the test if any callback recorded a problem. */
#define RLT_ASSERT_OK()                                                        \
    do {                                                                       \
        if (rlt_err_count > 0) {                                               \
            int n_ = rlt_err_count;                                            \
            rlt_err_count = 0;                                                 \
            fail_msg("%s (%d problem(s) recorded)", rlt_err_msg, n_);          \
        }                                                                      \
    } while (0)

/* Readable form of an op result: "-104 (Connection reset by peer)". */
static inline const char *rlt_res_str(int res)
{
    static char s[4][96];
    static unsigned i;
    char *p = s[i++ % 4];

    if (res >= 0)
        snprintf(p, 96, "%d", res);
    else
        snprintf(p, 96, "%d (%s)", res, strerror(-res));
    return p;
}

/* ---- per-test setup and program entry ---------------------------------- */

static inline void rlt_on_alarm(int sig)
{
    static const char msg[] =
        "\nrlt: test did not finish within the alarm: a wait was not "
        "bounded (the loop blocked past its guard timer?)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(3);
    _exit(3);
}

static inline int rlt_setup(void **state)
{
    (void)state;
    rlt_err_count = 0;
    rlt_err_msg[0] = '\0';
    alarm(RLT_ALARM_S);
    return 0;
}

static inline int rlt_teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

#define RLT_TEST(f) cmocka_unit_test_setup_teardown(f, rlt_setup, rlt_teardown)

/* Can this process set up an io_uring at all? 0 or -errno. */
static inline int rlt_uring_probe(void)
{
    struct io_uring_params p;
    long fd;

    memset(&p, 0, sizeof(p));
    fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0)
        return -errno;
    close((int)fd);
    return 0;
}

static inline const char *rlt_env_backend(void)
{
    const char *be = getenv("RINGLOOP_BACKEND");

    return be && *be ? be : NULL;
}

/*
 * Call first in main(). Returns 0 to go on, or 77 (skip) when the test is
 * meant for io_uring (RINGLOOP_BACKEND=uring) and this system truly cannot
 * set up a ring.
 */
static inline int rlt_init(void)
{
    const char *be = rlt_env_backend();
    int err;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, rlt_on_alarm);
    if (be && strcmp(be, "uring") == 0) {
        err = rlt_uring_probe();
        if (err < 0) {
            fprintf(stderr, "skip: io_uring unavailable here: %s\n",
                    strerror(-err));
            return 77;
        }
    }
    return 0;
}

/* Run a cmocka group; any failure exits 1 (never 77, which means skip). */
#define rlt_run_tests(tests)                                                   \
    (cmocka_run_group_tests(tests, NULL, NULL) == 0 ? 0 : 1)

/* ---- loops --------------------------------------------------------------- */

/*
 * Create a loop (cfg may be NULL) and check it is what the environment
 * asked for: the RINGLOOP_BACKEND backend unless cfg picks one, and none of
 * the RINGLOOP_DISABLE fast paths active.
 */
static inline rl_loop *rlt_loop_new(const struct rl_loop_config *cfg)
{
    const char *be = rlt_env_backend();
    const char *dis = getenv("RINGLOOP_DISABLE");
    rl_loop *loop = NULL;
    unsigned bits = 0;
    int r;

    r = rl_loop_new(&loop, cfg);
    if (r < 0)
        fail_msg("rl_loop_new: %s (RINGLOOP_BACKEND=%s RINGLOOP_DISABLE=%s)",
                 rlt_res_str(r), be ? be : "", dis ? dis : "");
    assert_non_null(loop);
    if (be && (!cfg || cfg->backend == RL_BACKEND_AUTO) &&
        strcmp(rl_loop_backend_name(loop), be) != 0)
        fail_msg("RINGLOOP_BACKEND=%s but the loop runs on %s", be,
                 rl_loop_backend_name(loop));
    if (dis && *dis && rl_feature_parse(dis, &bits) >= 0 &&
        (rl_loop_features(loop) & bits) != 0)
        fail_msg("RINGLOOP_DISABLE=%s but features 0x%x are still active", dis,
                 rl_loop_features(loop) & bits);
    return loop;
}

static inline bool rlt_on_uring(const rl_loop *loop)
{
    return strcmp(rl_loop_backend_name(loop), "uring") == 0;
}

typedef bool (*rlt_pred_fn)(void *arg);

static inline void rlt_guard_fired(rl_loop *loop, rl_timer *t)
{
    (void)loop;
    *(bool *)t->data = true;
}

static inline bool rlt_never(void *arg)
{
    (void)arg;
    return false;
}

/*
 * Run the loop one iteration at a time until pred(arg) holds, a callback
 * recorded a failure, or timeout_ms pass on a guard timer. Returns whether
 * pred holds. Never asserts: the caller says what it was waiting for.
 */
static inline bool rlt_run_until(rl_loop *loop, rlt_pred_fn pred, void *arg,
                                 unsigned timeout_ms)
{
    rl_timer guard;
    bool fired = false;
    int r;

    rl_timer_init(&guard, rlt_guard_fired, &fired);
    rl_loop_update_time(loop);
    r = rl_timer_start(loop, &guard, timeout_ms * RLT_MS);
    if (r < 0) {
        rlt_fail("rl_timer_start(guard): %s", rlt_res_str(r));
        return false;
    }
    while (!pred(arg) && !fired && !rlt_failed()) {
        r = rl_loop_run(loop, RL_RUN_ONCE);
        if (r < 0) {
            rlt_fail("rl_loop_run: %s", rlt_res_str(r));
            break;
        }
    }
    rl_timer_stop(loop, &guard);
    if (fired && !pred(arg) && pred != rlt_never)
        fprintf(stderr, "rlt: guard timer (%u ms) fired first\n", timeout_ms);
    else if (fired && pred != rlt_never)
        fprintf(stderr,
                "rlt: warning: the guard timer (%u ms) fired although "
                "the awaited event happened: did the loop sleep "
                "after it?\n",
                timeout_ms);
    return pred(arg);
}

struct rlt_count_arg {
    const int *counter;
    int target;
};

static inline bool rlt_count_reached(void *arg)
{
    struct rlt_count_arg *a = arg;

    return *a->counter >= a->target;
}

/* rlt_run_until(*counter >= target). */
static inline bool rlt_run_until_count(rl_loop *loop, const int *counter,
                                       int target, unsigned timeout_ms)
{
    struct rlt_count_arg a = {counter, target};

    return rlt_run_until(loop, rlt_count_reached, &a, timeout_ms);
}

static inline void rlt_nop_cb(rl_loop *loop, rl_op *op)
{
    (void)loop;
    *(int *)op->data = op->res == 0 ? 1 : -1;
}

/* The loop does real work: a NOP goes through it (under a guard timer). */
static inline bool rlt_loop_works(rl_loop *loop)
{
    rl_op op;
    int done = 0;

    rl_prep_nop(&op, rlt_nop_cb, &done);
    if (rl_submit(loop, &op) != 0)
        return false;
    rlt_run_until_count(loop, &done, 1, RLT_GUARD_MS);
    return done == 1;
}

/*
 * Keep the loop running for ms milliseconds (for "nothing else happens"
 * checks; these never assert on how long anything took).
 */
static inline void rlt_run_for(rl_loop *loop, unsigned ms)
{
    rlt_run_until(loop, rlt_never, NULL, ms);
}

/* ---- file descriptors ---------------------------------------------------- */

static inline void rlt_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A TCP listener on 127.0.0.1, ephemeral port, non-blocking. */
static inline int rlt_listener(struct sockaddr_in *addr, int backlog)
{
    socklen_t len = sizeof(*addr);
    int one = 1;
    int fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0)
        fail_msg("bind 127.0.0.1:0: %s", strerror(errno));
    if (listen(fd, backlog) < 0)
        fail_msg("listen: %s", strerror(errno));
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* A non-blocking TCP socket, not yet connected. */
static inline int rlt_tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    return fd;
}

/* Connect with a blocking connect(2); the result is non-blocking. */
static inline int rlt_connect_blocking(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
        fail_msg("connect: %s", strerror(errno));
    rlt_set_nonblock(fd);
    return fd;
}

/* Accept one pending connection without the loop (bounded poll). */
static inline int rlt_accept_blocking(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int fd;

    if (poll(&p, 1, 10000) != 1)
        fail_msg("listener not readable after 10 s");
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        fail_msg("accept4: %s", strerror(errno));
    return fd;
}

/* A connected TCP pair over loopback, both ends non-blocking. */
static inline void rlt_tcp_pair(int *client, int *server)
{
    struct sockaddr_in addr;
    int lfd = rlt_listener(&addr, 4);

    *client = rlt_connect_blocking(&addr);
    *server = rlt_accept_blocking(lfd);
    close(lfd);
}

/* An AF_UNIX stream socketpair, both ends non-blocking. */
static inline void rlt_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0)
        fail_msg("socketpair: %s", strerror(errno));
}

/* A non-blocking pipe: p[0] read end, p[1] write end. */
static inline void rlt_pipe(int p[2])
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        fail_msg("pipe2: %s", strerror(errno));
}

/* Close fd behind the loop's back, announcing it first. */
static inline void rlt_close(rl_loop *loop, int fd)
{
    int r = rl_loop_fd_closed(loop, fd);

    if (r < 0)
        fail_msg("rl_loop_fd_closed(%d): %s", fd, rlt_res_str(r));
    close(fd);
}

/* ---- byte patterns --------------------------------------------------------
 * A different byte sequence per seed, non-periodic in the offset, so lost,
 * duplicated, reordered or crossed bytes all show as a mismatch.
 */
static inline uint8_t rlt_pattern_byte(uint32_t seed, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ (seed + 1ull) << 32;

    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return (uint8_t)x;
}

static inline void rlt_pattern_fill(uint8_t *buf, size_t len, uint32_t seed,
                                    uint64_t start)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = rlt_pattern_byte(seed, start + i);
}

/* Index of the first byte that differs from the pattern, or SIZE_MAX. */
static inline size_t rlt_pattern_check(const uint8_t *buf, size_t len,
                                       uint32_t seed, uint64_t start)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != rlt_pattern_byte(seed, start + i))
            return i;
    return SIZE_MAX;
}

/* ---- send-all: resubmit the rest after a short send ------------------------
 * Sends len bytes of buf on fd with RL_OP_SEND (or RL_OP_WRITE for pipes)
 * until all are out or an error; then calls on_done (may be NULL).
 */
struct rlt_sender {
    rl_op op;
    int fd;
    bool use_write;
    const uint8_t *buf;
    size_t len;
    size_t off;
    unsigned calls; /* completions seen */
    bool done;
    int err; /* first error, -errno */
    void (*on_done)(rl_loop *loop, struct rlt_sender *s);
    void *data;
};

static inline void rlt_sender_cb(rl_loop *loop, rl_op *op);

static inline int rlt_sender_submit(rl_loop *loop, struct rlt_sender *s)
{
    const uint8_t *p = s->buf + s->off;
    size_t n = s->len - s->off;

    if (s->use_write)
        rl_prep_write(&s->op, s->fd, p, n, -1, rlt_sender_cb, s);
    else
        rl_prep_send(&s->op, s->fd, p, n, MSG_NOSIGNAL, rlt_sender_cb, s);
    return rl_submit(loop, &s->op);
}

static inline void rlt_sender_finish(rl_loop *loop, struct rlt_sender *s,
                                     int err)
{
    s->done = true;
    s->err = err;
    if (s->on_done)
        s->on_done(loop, s);
}

static inline void rlt_sender_cb(rl_loop *loop, rl_op *op)
{
    struct rlt_sender *s = op->data;
    int r;

    s->calls++;
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("send on fd %d completed with RL_CQE_MORE", s->fd);
    if (op->res <= 0) {
        if (op->res == 0)
            rlt_fail("send of %zu bytes on fd %d returned 0", s->len - s->off,
                     s->fd);
        rlt_sender_finish(loop, s, op->res < 0 ? op->res : -EIO);
        return;
    }
    if ((size_t)op->res > s->len - s->off) {
        rlt_fail("send on fd %d returned %d for %zu bytes", s->fd, op->res,
                 s->len - s->off);
        rlt_sender_finish(loop, s, -EIO);
        return;
    }
    s->off += (size_t)op->res;
    if (s->off == s->len) {
        rlt_sender_finish(loop, s, 0);
        return;
    }
    r = rlt_sender_submit(loop, s);
    if (r < 0) {
        rlt_fail("resubmitting a short send on fd %d: %s", s->fd,
                 rlt_res_str(r));
        rlt_sender_finish(loop, s, r);
    }
}

/* Start sending; a zero-length buffer is done at once. 0 or -errno. */
static inline int rlt_sender_start(rl_loop *loop, struct rlt_sender *s, int fd,
                                   const void *buf, size_t len)
{
    s->fd = fd;
    s->buf = buf;
    s->len = len;
    s->off = 0;
    s->calls = 0;
    s->done = false;
    s->err = 0;
    if (len == 0) {
        s->done = true;
        return 0;
    }
    return rlt_sender_submit(loop, s);
}

#endif /* RLT_HELPERS_H */
