/*
 * The io_uring features of issue 16 set up with the ring, each with it on
 * and with it off: the registered ring fd (ring_fd, on by default; its
 * registration lives in one thread's table, so loops that move between
 * threads, two loops whose indexes collide in two threads, and a forked
 * child), SQPOLL and NAPI (opt-in, rl_loop_config.enable or
 * RINGLOOP_ENABLE), and the reason kept when a feature is not used
 * (rl_loop_feature_errno/_reason; the registrations are refused by a
 * seccomp filter in a forked child). Registered once: it sets the environment
 * itself (RINGLOOP_BACKEND, _DISABLE and _ENABLE are cleared at start).
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "helpers.h"
#include "seccomp.h"

static bool have_uring;

static rl_loop *new_loop(int backend, unsigned enable, unsigned disable)
{
    struct rl_loop_config cfg;
    rl_loop *loop = NULL;
    int r;

    rl_loop_config_init(&cfg);
    cfg.backend = backend;
    cfg.enable = enable;
    cfg.disable = disable;
    r = rl_loop_new(&loop, &cfg);
    if (r != 0)
        fail_msg("rl_loop_new(enable 0x%x, disable 0x%x): %s", enable, disable,
                 rlt_res_str(r));
    return loop;
}

static void count_cb(rl_loop *loop, rl_op *op)
{
    (void)loop;
    *(int *)op->data += op->res >= 0 ? 1 : 1000;
}

/* Echo: n messages of rising size each way over a socketpair, checked byte
 * for byte, then an RL_OP_CLOSE of both ends. */
static void echo(rl_loop *loop)
{
    uint8_t out[4096], in[4096], back[4096];
    int sv[2], done;
    rl_op s, r;

    rlt_socketpair(sv);
    for (size_t len = 1; len <= sizeof(out); len *= 4) {
        rlt_pattern_fill(out, len, (uint32_t)len, 0);
        done = 0;
        rl_prep_recv(&r, sv[1], in, sizeof(in), 0, count_cb, &done);
        rl_prep_send(&s, sv[0], out, len, 0, count_cb, &done);
        assert_int_equal(rl_submit(loop, &r), 0);
        assert_int_equal(rl_submit(loop, &s), 0);
        rlt_run_until_count(loop, &done, 2, RLT_GUARD_MS);
        RLT_ASSERT_OK();
        assert_int_equal(done, 2);
        assert_int_equal(s.res, (int)len);
        assert_int_equal(r.res, (int)len);
        assert_memory_equal(in, out, len);
        /* and back */
        done = 0;
        rl_prep_recv(&r, sv[0], back, sizeof(back), 0, count_cb, &done);
        rl_prep_send(&s, sv[1], in, len, 0, count_cb, &done);
        assert_int_equal(rl_submit(loop, &r), 0);
        assert_int_equal(rl_submit(loop, &s), 0);
        rlt_run_until_count(loop, &done, 2, RLT_GUARD_MS);
        RLT_ASSERT_OK();
        assert_int_equal(r.res, (int)len);
        assert_memory_equal(back, out, len);
    }
    /* rl_loop_flush carries a queued close out at once. */
    done = 0;
    rl_prep_close(&s, sv[0], count_cb, &done);
    assert_int_equal(rl_submit(loop, &s), 0);
    assert_int_equal(rl_loop_flush(loop), 0);
    errno = 0;
    if (fcntl(sv[0], F_GETFD) != -1 || errno != EBADF)
        fail_msg("fd %d still open after rl_loop_flush", sv[0]);
    rlt_run_until_count(loop, &done, 1, RLT_GUARD_MS);
    assert_int_equal(done, 1);
    rlt_close(loop, sv[1]);
    assert_int_equal(rl_loop_pending(loop), 0);
}

static bool kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

#define SKIP_WITHOUT_URING()                                                   \
    do {                                                                       \
        if (!have_uring) {                                                     \
            fprintf(stderr, "io_uring unavailable here\n");                    \
            skip();                                                            \
        }                                                                      \
    } while (0)

/* The reason of a feature in use, or not asked for, is empty. */
static void assert_no_reason(rl_loop *loop, unsigned bit)
{
    if (rl_loop_feature_errno(loop, bit) != 0 ||
        rl_loop_feature_reason(loop, bit)[0])
        fail_msg("%s: unexpected reason %d \"%s\"", rl_feature_name(bit),
                 rl_loop_feature_errno(loop, bit),
                 rl_loop_feature_reason(loop, bit));
}

/* ---- ring_fd ------------------------------------------------------------- */

static void test_ring_fd_on(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    if (kernel_at_least(5, 18) && !(rl_loop_features(loop) & RL_FEAT_RING_FD))
        fail_msg("ring_fd not in use by default on Linux >= 5.18: %s",
                 rl_loop_feature_reason(loop, RL_FEAT_RING_FD));
    echo(loop);
    /* Registered at the first enter: still in use, no reason. */
    if (kernel_at_least(5, 18)) {
        assert_true(rl_loop_features(loop) & RL_FEAT_RING_FD);
        assert_no_reason(loop, RL_FEAT_RING_FD);
    }
    rl_loop_free(loop);
}

static void test_ring_fd_off(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, 0, RL_FEAT_RING_FD);
    assert_false(rl_loop_features(loop) & RL_FEAT_RING_FD);
    echo(loop);
    assert_no_reason(loop, RL_FEAT_RING_FD);
    rl_loop_free(loop);
    /* "ring_fd" in the enable list is harmless; disable wins. */
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_RING_FD, RL_FEAT_RING_FD);
    assert_false(rl_loop_features(loop) & RL_FEAT_RING_FD);
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
}

struct in_thread {
    rl_loop *loop;
    bool ok;
};

static void *nop_thread(void *arg)
{
    struct in_thread *t = arg;

    t->ok = rlt_loop_works(t->loop);
    return NULL;
}

static bool nop_in_thread(rl_loop *loop)
{
    struct in_thread t = {loop, false};
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, nop_thread, &t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    return t.ok;
}

/* A loop run from one thread, then another, then the first again (possible
 * without defer_taskrun): the registration is only the first thread's. */
static void test_ring_fd_threads(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, 0, RL_FEAT_DEFER_TASKRUN);
    assert_true(nop_in_thread(loop));  /* registers there; thread exits */
    assert_true(rlt_loop_works(loop)); /* main thread: by the plain fd */
    assert_true(nop_in_thread(loop));  /* a third thread */
    assert_true(rlt_loop_works(loop));
    echo(loop);
    rl_loop_free(loop);

    /* Registered by this thread, run by others, freed here. */
    loop = new_loop(RL_BACKEND_URING, 0, RL_FEAT_DEFER_TASKRUN);
    assert_true(rlt_loop_works(loop));
    assert_true(nop_in_thread(loop));
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
}

/* Two loops registered by two threads get the same index (the first free
 * slot of each thread's table); running each in the other thread must still
 * enter its own ring. */
struct pair_thread {
    rl_loop *mine, *other;
    pthread_barrier_t *bar;
    bool ok1, ok2;
};

static void *pair_thread_fn(void *arg)
{
    struct pair_thread *p = arg;

    p->ok1 = rlt_loop_works(p->mine); /* registers mine in this thread */
    pthread_barrier_wait(p->bar);
    p->ok2 =
        rlt_loop_works(p->other); /* the other one, whose index is the same */
    pthread_barrier_wait(p->bar);
    return NULL;
}

static void test_ring_fd_index_collision(void **state)
{
    pthread_barrier_t bar;
    struct pair_thread p[2];
    pthread_t th[2];
    rl_loop *a, *b;

    (void)state;
    SKIP_WITHOUT_URING();
    a = new_loop(RL_BACKEND_URING, 0, RL_FEAT_DEFER_TASKRUN);
    b = new_loop(RL_BACKEND_URING, 0, RL_FEAT_DEFER_TASKRUN);
    pthread_barrier_init(&bar, NULL, 2);
    p[0] = (struct pair_thread){a, b, &bar, false, false};
    p[1] = (struct pair_thread){b, a, &bar, false, false};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pair_thread_fn, &p[i]),
                         0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < 2; i++)
        if (!p[i].ok1 || !p[i].ok2)
            fail_msg("thread %d: own loop %s, the other's %s", i,
                     p[i].ok1 ? "ok" : "FAILED", p[i].ok2 ? "ok" : "FAILED");
    echo(a);
    echo(b);
    rl_loop_free(a);
    rl_loop_free(b);
}

/* After fork the child gets a new ring and registers it in its own table. */
static void test_ring_fd_fork(void **state)
{
    rl_loop *loop;
    pid_t pid;
    int status;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    assert_true(rlt_loop_works(loop)); /* registered in the parent */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bool ok = rl_loop_fork(loop) == 0 && rlt_loop_works(loop) &&
                  rlt_loop_works(loop) && !rlt_failed();
        if (ok && kernel_at_least(5, 18) &&
            !(rl_loop_features(loop) & RL_FEAT_RING_FD))
            ok = false;
        rl_loop_free(loop);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the forked child's loop failed (status 0x%x)", status);
    assert_true(rlt_loop_works(loop)); /* the parent's ring is untouched */
    echo(loop);
    rl_loop_free(loop);
}

/* ---- sqpoll -------------------------------------------------------------- */

static void test_sqpoll_on(void **state)
{
    struct rl_loop_stats st;
    rl_loop *loop;
    unsigned f;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_SQPOLL, 0);
    f = rl_loop_features(loop);
    if (f & RL_FEAT_SQPOLL) {
        assert_no_reason(loop, RL_FEAT_SQPOLL);
        /* The kernel refuses the TASKRUN modes with SQPOLL; the reason
         * says so. */
        assert_false(f & (RL_FEAT_DEFER_TASKRUN | RL_FEAT_COOP_TASKRUN));
        if (kernel_at_least(6, 1) &&
            !strstr(rl_loop_feature_reason(loop, RL_FEAT_DEFER_TASKRUN),
                    "sqpoll"))
            fail_msg("defer_taskrun reason: \"%s\"",
                     rl_loop_feature_reason(loop, RL_FEAT_DEFER_TASKRUN));
    } else {
        /* Refused (e.g. EPERM before Linux 5.11): the reason is kept and
         * the loop works without it. */
        fprintf(stderr, "sqpoll refused: %d %s\n",
                rl_loop_feature_errno(loop, RL_FEAT_SQPOLL),
                rl_loop_feature_reason(loop, RL_FEAT_SQPOLL));
        assert_true(rl_loop_feature_errno(loop, RL_FEAT_SQPOLL) < 0);
        assert_true(rl_loop_feature_reason(loop, RL_FEAT_SQPOLL)[0]);
    }
    assert_int_equal(rl_loop_stats(loop, &st), 0);
    echo(loop);
    for (int i = 0; i < 50; i++)
        assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
}

static void test_sqpoll_off(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    /* Not asked for */
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    assert_false(rl_loop_features(loop) & RL_FEAT_SQPOLL);
    assert_no_reason(loop, RL_FEAT_SQPOLL);
    assert_no_reason(loop, RL_FEAT_DEFER_TASKRUN);
    rl_loop_free(loop);
    /* Asked for and switched off: disable wins */
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_SQPOLL, RL_FEAT_SQPOLL);
    assert_false(rl_loop_features(loop) & RL_FEAT_SQPOLL);
    assert_no_reason(loop, RL_FEAT_SQPOLL);
    echo(loop);
    rl_loop_free(loop);
}

/* ---- napi ---------------------------------------------------------------- */

static void test_napi_on(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_NAPI, 0);
    if (rl_loop_features(loop) & RL_FEAT_NAPI) {
        assert_no_reason(loop, RL_FEAT_NAPI);
    } else {
        fprintf(stderr, "napi refused: %d %s\n",
                rl_loop_feature_errno(loop, RL_FEAT_NAPI),
                rl_loop_feature_reason(loop, RL_FEAT_NAPI));
        assert_true(rl_loop_feature_errno(loop, RL_FEAT_NAPI) < 0);
        assert_true(rl_loop_feature_reason(loop, RL_FEAT_NAPI)[0]);
        if (kernel_at_least(6, 9))
            fail_msg("napi refused on Linux >= 6.9");
    }
    echo(loop); /* loopback has no NAPI ids: nothing is busy-polled */
    rl_loop_free(loop);
    /* Both opt-ins together */
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_NAPI | RL_FEAT_SQPOLL, 0);
    echo(loop);
    rl_loop_free(loop);
}

static void test_napi_off(void **state)
{
    rl_loop *loop;

    (void)state;
    SKIP_WITHOUT_URING();
    loop = new_loop(RL_BACKEND_URING, RL_FEAT_NAPI, RL_FEAT_NAPI);
    assert_false(rl_loop_features(loop) & RL_FEAT_NAPI);
    assert_no_reason(loop, RL_FEAT_NAPI);
    echo(loop);
    rl_loop_free(loop);
}

/* ---- refused by the kernel ----------------------------------------------- */

#ifdef RLT_AUDIT_ARCH
/* io_uring_register(2) fails with EINVAL for IORING_REGISTER_NAPI and with
 * EBUSY for IORING_REGISTER_RING_FDS, as a kernel without NAPI and a thread
 * whose 16 ring slots are taken would answer. */
static int refuse_registrations(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 27 /* IORING_REGISTER_NAPI */, 0,
                 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IORING_REGISTER_RING_FDS, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EBUSY),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };

    return rlt_seccomp_install(f, sizeof(f) / sizeof(f[0]));
}

#define CHILD_CHECK(cond, ...)                                                 \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "child: " __VA_ARGS__);                            \
            fputc('\n', stderr);                                               \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

static void refused_child(void)
{
    struct rl_loop_config cfg;
    rl_loop *loop;
    int r;

    alarm(30);
    r = refuse_registrations();
    CHILD_CHECK(r == 0, "seccomp filter: %s", strerror(-r));
    rl_loop_config_init(&cfg);
    cfg.backend = RL_BACKEND_URING;
    cfg.enable = RL_FEAT_NAPI;
    r = rl_loop_new(&loop, &cfg);
    CHILD_CHECK(r == 0, "rl_loop_new: %s", strerror(-r));
    /* napi: refused at setup, reason kept, the loop goes on without */
    CHILD_CHECK(!(rl_loop_features(loop) & RL_FEAT_NAPI), "napi in use");
    CHILD_CHECK(rl_loop_feature_errno(loop, RL_FEAT_NAPI) == -EINVAL,
                "napi errno %d", rl_loop_feature_errno(loop, RL_FEAT_NAPI));
    CHILD_CHECK(strstr(rl_loop_feature_reason(loop, RL_FEAT_NAPI),
                       "IORING_REGISTER_NAPI") != NULL,
                "napi reason \"%s\"",
                rl_loop_feature_reason(loop, RL_FEAT_NAPI));
    /* ring_fd: refused at the first enter */
    CHILD_CHECK(rlt_loop_works(loop) && rlt_loop_works(loop),
                "the loop does not work");
    CHILD_CHECK(!(rl_loop_features(loop) & RL_FEAT_RING_FD), "ring_fd in use");
    CHILD_CHECK(rl_loop_feature_errno(loop, RL_FEAT_RING_FD) == -EBUSY,
                "ring_fd errno %d",
                rl_loop_feature_errno(loop, RL_FEAT_RING_FD));
    CHILD_CHECK(strstr(rl_loop_feature_reason(loop, RL_FEAT_RING_FD),
                       "IORING_REGISTER_RING_FDS") != NULL,
                "ring_fd reason \"%s\"",
                rl_loop_feature_reason(loop, RL_FEAT_RING_FD));
    fprintf(stderr, "refused: %s; %s\n",
            rl_loop_feature_reason(loop, RL_FEAT_NAPI),
            rl_loop_feature_reason(loop, RL_FEAT_RING_FD));
    echo(loop);
    CHILD_CHECK(!rlt_failed(), "echo failed");
    rl_loop_free(loop);
    _exit(0);
}
#endif

static void test_refused_registrations(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    SKIP_WITHOUT_URING();
#ifndef RLT_AUDIT_ARCH
    skip();
#else
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        refused_child();
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("with the registrations refused the child failed (status "
                 "0x%x; see its message above)",
                 status);
#endif
}

/* ---- the switches -------------------------------------------------------- */

static void test_env_enable(void **state)
{
    rl_loop *loop = NULL;

    (void)state;
    /* An unknown word is refused, as in RINGLOOP_DISABLE, on any backend */
    setenv("RINGLOOP_ENABLE", "sqpoll,bogus", 1);
    assert_int_equal(rl_loop_new(&loop, NULL), -EINVAL);
    setenv("RINGLOOP_BACKEND", "epoll", 1);
    assert_int_equal(rl_loop_new(&loop, NULL), -EINVAL);
    unsetenv("RINGLOOP_BACKEND");

    /* The epoll backend ignores the opt-ins */
    setenv("RINGLOOP_ENABLE", "sqpoll,napi", 1);
    loop = new_loop(RL_BACKEND_EPOLL, 0, 0);
    assert_int_equal(rl_loop_features(loop), 0);
    assert_no_reason(loop, RL_FEAT_SQPOLL);
    echo(loop);
    rl_loop_free(loop);
    if (!have_uring) {
        unsetenv("RINGLOOP_ENABLE");
        return;
    }

    /* By the environment; a default-on word is harmless */
    setenv("RINGLOOP_ENABLE", "sqpoll,ring_fd", 1);
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    if (!(rl_loop_features(loop) & RL_FEAT_SQPOLL))
        assert_true(rl_loop_feature_errno(loop, RL_FEAT_SQPOLL) < 0);
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
    /* RINGLOOP_DISABLE wins */
    setenv("RINGLOOP_DISABLE", "sqpoll", 1);
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    assert_false(rl_loop_features(loop) & RL_FEAT_SQPOLL);
    rl_loop_free(loop);
    /* So does the config's disable */
    unsetenv("RINGLOOP_DISABLE");
    loop = new_loop(RL_BACKEND_URING, 0, RL_FEAT_SQPOLL);
    assert_false(rl_loop_features(loop) & RL_FEAT_SQPOLL);
    rl_loop_free(loop);
    unsetenv("RINGLOOP_ENABLE");

    /* Not a single bit: no reason */
    loop = new_loop(RL_BACKEND_URING, 0, 0);
    assert_string_equal(
        rl_loop_feature_reason(loop, RL_FEAT_SQPOLL | RL_FEAT_NAPI), "");
    assert_int_equal(rl_loop_feature_errno(loop, 0), 0);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_ring_fd_on),      RLT_TEST(test_ring_fd_off),
        RLT_TEST(test_ring_fd_threads), RLT_TEST(test_ring_fd_index_collision),
        RLT_TEST(test_ring_fd_fork),    RLT_TEST(test_sqpoll_on),
        RLT_TEST(test_sqpoll_off),      RLT_TEST(test_napi_on),
        RLT_TEST(test_napi_off),        RLT_TEST(test_refused_registrations),
        RLT_TEST(test_env_enable),
    };
    int r;

    /* This program picks backends and switches itself. */
    unsetenv("RINGLOOP_BACKEND");
    unsetenv("RINGLOOP_DISABLE");
    unsetenv("RINGLOOP_ENABLE");
    r = rlt_init();
    if (r)
        return r;
    have_uring = rlt_uring_probe() == 0;
    return rlt_run_tests(tests);
}
