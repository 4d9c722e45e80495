/*
 * policy/select.c: explicit backend > RINGLOOP_BACKEND > auto; the fallback
 * to epoll when io_uring is refused at setup (simulated with a seccomp
 * filter in a forked child, for EPERM and ENOSYS) and the reason it keeps;
 * rl_feature_name/rl_feature_parse; RINGLOOP_DISABLE as rl_loop_features()
 * shows it. Registered once: it sets the environment itself.
 */
#include <stdnoreturn.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "helpers.h"
#include "seccomp.h"

/* The words, in bit order, that tests.cmake registers RINGLOOP_DISABLE
 * variants for, in bit order, and the opt-ins; checked against the
 * library here. */
static const char *const feature_words[] = {
    "multishot_accept", "multishot_recv", "bufring",     "defer_taskrun",
    "coop_taskrun",     "multishot_poll", "cancel_fd",   "ext_arg",
    "bufring_inc",      "ring_fd",        "sqpoll",      "napi",
    "send_zc",          "recv_bundle",    "fixed_files", "msg_ring",
};
#define NWORDS ((int)(sizeof(feature_words) / sizeof(feature_words[0])))

/* Save/restore one environment variable around a test. */
struct saved_env {
    const char *name;
    char *value;
};

static struct saved_env env_save(const char *name)
{
    const char *v = getenv(name);
    struct saved_env s = {name, v ? strdup(v) : NULL};

    return s;
}

static void env_restore(struct saved_env *s)
{
    if (s->value)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
    s->value = NULL;
}

static int new_loop(rl_loop **loop, int backend, unsigned disable)
{
    struct rl_loop_config cfg;

    rl_loop_config_init(&cfg);
    cfg.backend = backend;
    cfg.disable = disable;
    *loop = NULL;
    return rl_loop_new(loop, &cfg);
}

static void test_explicit_backend(void **state)
{
    struct saved_env be = env_save("RINGLOOP_BACKEND");
    int probe = rlt_uring_probe();
    rl_loop *loop;
    int r;

    (void)state;
    unsetenv("RINGLOOP_BACKEND");
    assert_int_equal(new_loop(&loop, RL_BACKEND_EPOLL, 0), 0);
    assert_string_equal(rl_loop_backend_name(loop), "epoll");
    assert_int_equal(rl_loop_backend(loop), RL_BACKEND_EPOLL);
    assert_int_equal(rl_loop_fallback_errno(loop), 0);
    if (rl_loop_features(loop) != 0)
        fail_msg("epoll loop reports io_uring fast paths 0x%x",
                 rl_loop_features(loop));
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);

    r = new_loop(&loop, RL_BACKEND_URING, 0);
    if (probe < 0) {
        if (r != probe)
            fail_msg("explicit uring without io_uring: %s, expected %s",
                     rlt_res_str(r), rlt_res_str(probe));
    } else {
        if (r != 0)
            fail_msg("explicit uring: %s", rlt_res_str(r));
        assert_string_equal(rl_loop_backend_name(loop), "uring");
        assert_int_equal(rl_loop_backend(loop), RL_BACKEND_URING);
        assert_int_equal(rl_loop_fallback_errno(loop), 0);
        /* RINGLOOP_DISABLE (the feature matrix) may switch all of them off */
        if (rl_loop_features(loop) == 0 && !getenv("RINGLOOP_DISABLE"))
            fail_msg("uring loop reports no fast path at all");
        assert_true(rlt_loop_works(loop));
        rl_loop_free(loop);
    }

    /* The config beats the environment. */
    setenv("RINGLOOP_BACKEND", "uring", 1);
    assert_int_equal(new_loop(&loop, RL_BACKEND_EPOLL, 0), 0);
    assert_string_equal(rl_loop_backend_name(loop), "epoll");
    rl_loop_free(loop);
    if (probe == 0) {
        setenv("RINGLOOP_BACKEND", "epoll", 1);
        assert_int_equal(new_loop(&loop, RL_BACKEND_URING, 0), 0);
        assert_string_equal(rl_loop_backend_name(loop), "uring");
        rl_loop_free(loop);
    }

    /* Not a backend at all. */
    r = new_loop(&loop, 7, 0);
    env_restore(&be);
    if (r == 0)
        rl_loop_free(loop);
    if (r != -EINVAL)
        fail_msg("rl_loop_config.backend = 7: %s, expected -EINVAL",
                 rlt_res_str(r));
}

static void test_env_and_auto(void **state)
{
    struct saved_env be = env_save("RINGLOOP_BACKEND");
    int probe = rlt_uring_probe();
    rl_loop *loop;

    (void)state;
    setenv("RINGLOOP_BACKEND", "epoll", 1);
    assert_int_equal(new_loop(&loop, RL_BACKEND_AUTO, 0), 0);
    assert_string_equal(rl_loop_backend_name(loop), "epoll");
    rl_loop_free(loop);
    if (probe == 0) {
        setenv("RINGLOOP_BACKEND", "uring", 1);
        assert_int_equal(new_loop(&loop, RL_BACKEND_AUTO, 0), 0);
        assert_string_equal(rl_loop_backend_name(loop), "uring");
        rl_loop_free(loop);
    }

    /* Auto: io_uring when it can be set up, else epoll and why. */
    unsetenv("RINGLOOP_BACKEND");
    assert_int_equal(new_loop(&loop, RL_BACKEND_AUTO, 0), 0);
    env_restore(&be);
    if (probe == 0) {
        if (strcmp(rl_loop_backend_name(loop), "uring") != 0)
            fail_msg("auto picked %s although io_uring works (reason: %s)",
                     rl_loop_backend_name(loop), rl_loop_fallback_reason(loop));
        assert_int_equal(rl_loop_fallback_errno(loop), 0);
    } else {
        assert_string_equal(rl_loop_backend_name(loop), "epoll");
        assert_int_equal(rl_loop_fallback_errno(loop), probe);
        assert_non_null(rl_loop_fallback_reason(loop));
    }
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
}

/* ---- io_uring refused at setup ------------------------------------------ */

noreturn static void child_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "child: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(1);
}

static int refuse_io_uring_setup(int err)
{
#ifdef RLT_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };

    return rlt_seccomp_install(f, sizeof(f) / sizeof(f[0]));
#else
    (void)err;
    return -ENOTSUP;
#endif
}

static void refused_child(int err, const char *errname)
{
    const char *reason;
    rl_loop *loop;
    int r;

    alarm(30);
    r = refuse_io_uring_setup(err);
    if (r < 0)
        child_fail("installing the seccomp filter: %s", strerror(-r));
    r = rlt_uring_probe();
    if (r != -err)
        child_fail("the filter does not work: io_uring_setup gave %s",
                   rlt_res_str(r));

    /* Auto falls back to epoll and says why. */
    unsetenv("RINGLOOP_BACKEND");
    unsetenv("RINGLOOP_DISABLE");
    r = new_loop(&loop, RL_BACKEND_AUTO, 0);
    if (r != 0)
        child_fail("auto with io_uring refused (%s): rl_loop_new gave %s",
                   errname, rlt_res_str(r));
    if (rl_loop_backend(loop) != RL_BACKEND_EPOLL ||
        strcmp(rl_loop_backend_name(loop), "epoll") != 0)
        child_fail("auto picked %s with io_uring refused",
                   rl_loop_backend_name(loop));
    if (rl_loop_fallback_errno(loop) != -err)
        child_fail("rl_loop_fallback_errno = %s, expected -%s",
                   rlt_res_str(rl_loop_fallback_errno(loop)), errname);
    reason = rl_loop_fallback_reason(loop);
    if (!reason || (!strstr(reason, strerror(err)) && !strstr(reason, errname)))
        child_fail("rl_loop_fallback_reason \"%s\" mentions neither \"%s\" "
                   "nor %s",
                   reason ? reason : "(null)", strerror(err), errname);
    fprintf(stderr, "fallback reason (%s): %s\n", errname, reason);
    if (rl_loop_features(loop) != 0)
        child_fail("fallback loop reports fast paths 0x%x",
                   rl_loop_features(loop));
    if (!rlt_loop_works(loop))
        child_fail("the fallback epoll loop does not run a nop");
    rl_loop_free(loop);

    /* An explicit io_uring request fails with the setup error. */
    loop = NULL;
    r = new_loop(&loop, RL_BACKEND_URING, 0);
    if (r != -err)
        child_fail("explicit uring with io_uring refused: %s, expected -%s",
                   rlt_res_str(r), errname);
    _exit(0);
}

static void run_refused(int err, const char *errname)
{
    pid_t pid;
    int status;

#ifndef RLT_AUDIT_ARCH
    skip();
#endif
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        refused_child(err, errname);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("io_uring refused with %s: the child failed (status 0x%x; "
                 "see its message above)",
                 errname, status);
}

static void test_refused_eperm(void **state)
{
    (void)state;
    run_refused(EPERM, "EPERM");
}

static void test_refused_enosys(void **state)
{
    (void)state;
    run_refused(ENOSYS, "ENOSYS");
}

/* ---- features ------------------------------------------------------------ */

static void test_feature_names(void **state)
{
    char all[512] = "";
    unsigned bits, mask = 0;
    int r;

    (void)state;
    for (int i = 0; i < NWORDS; i++) {
        const char *name = rl_feature_name(1u << i);

        if (!feature_words[i]) { /* a bit another branch assigns */
            assert_null(name);
            continue;
        }
        mask |= 1u << i;

        if (!name || strcmp(name, feature_words[i]) != 0)
            fail_msg("rl_feature_name(1<<%d) = %s, tests.cmake expects %s", i,
                     name ? name : "(null)", feature_words[i]);
        bits = 0xdead;
        r = rl_feature_parse(name, &bits);
        if (r < 0 || bits != 1u << i)
            fail_msg("rl_feature_parse(\"%s\") = %s, bits 0x%x", name,
                     rlt_res_str(r), bits);
        if (all[0])
            strcat(all, ",");
        strcat(all, name);
    }
    assert_true(mask == RL_FEAT_ALL);
    assert_null(rl_feature_name(0));
    assert_null(rl_feature_name(1u << NWORDS));
    assert_null(rl_feature_name(RL_FEAT_MULTISHOT_RECV | RL_FEAT_BUFRING));

    r = rl_feature_parse("multishot_recv,bufring", &bits);
    assert_true(r >= 0);
    assert_int_equal(bits, RL_FEAT_MULTISHOT_RECV | RL_FEAT_BUFRING);
    r = rl_feature_parse(all, &bits);
    assert_true(r >= 0);
    assert_int_equal(bits, RL_FEAT_ALL);
    r = rl_feature_parse("", &bits);
    if (r < 0 || bits != 0)
        fail_msg("rl_feature_parse(\"\") = %s, bits 0x%x; expected none",
                 rlt_res_str(r), bits);

    static const char *const bad[] = {
        "bogus",         "multishot_recv,bogus",
        "bogus,bufring", "multishot",
        "bufring_",      "BUFRING_X",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = rl_feature_parse(bad[i], &bits);
        if (r != -EINVAL)
            fail_msg("rl_feature_parse(\"%s\") = %s, expected -EINVAL", bad[i],
                     rlt_res_str(r));
    }
}

static bool kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

static void test_disable(void **state)
{
    struct saved_env be = env_save("RINGLOOP_BACKEND");
    struct saved_env dis = env_save("RINGLOOP_DISABLE");
    struct saved_env ena = env_save("RINGLOOP_ENABLE");
    unsigned base, f, want;
    rl_loop *loop;
    int r;

    (void)state;
    if (rlt_uring_probe() < 0) {
        fprintf(stderr, "io_uring unavailable: RINGLOOP_DISABLE not tested\n");
        env_restore(&be);
        env_restore(&dis);
        env_restore(&ena);
        skip();
    }
    unsetenv("RINGLOOP_BACKEND");
    unsetenv("RINGLOOP_DISABLE");
    unsetenv("RINGLOOP_ENABLE"); /* the baseline: opt-ins off */
    assert_int_equal(new_loop(&loop, RL_BACKEND_URING, 0), 0);
    base = rl_loop_features(loop);
    rl_loop_free(loop);
    fprintf(stderr, "fast paths on this kernel: 0x%x\n", base);
    if (kernel_at_least(6, 1)) {
        /* Every one of these exists on 6.1+; only one TASKRUN mode is on. */
        want = RL_FEAT_MULTISHOT_ACCEPT | RL_FEAT_MULTISHOT_RECV |
               RL_FEAT_BUFRING | RL_FEAT_MULTISHOT_POLL | RL_FEAT_CANCEL_FD |
               RL_FEAT_EXT_ARG;
        if ((base & want) != want ||
            !(base & (RL_FEAT_DEFER_TASKRUN | RL_FEAT_COOP_TASKRUN)))
            fail_msg("kernel >= 6.1 but fast paths 0x%x lack 0x%x or a "
                     "TASKRUN mode",
                     base, want & ~base);
    }

    for (int i = 0; i < NWORDS; i++) {
        unsigned bit = 1u << i;
        int j = (i + 3) % NWORDS;

        if (!feature_words[i])
            continue;
        while (!feature_words[j])
            j = (j + 1) % NWORDS;

        /* By the environment ... */
        setenv("RINGLOOP_DISABLE", feature_words[i], 1);
        r = new_loop(&loop, RL_BACKEND_URING, 0);
        if (r != 0)
            fail_msg("RINGLOOP_DISABLE=%s: rl_loop_new gave %s",
                     feature_words[i], rlt_res_str(r));
        f = rl_loop_features(loop);
        /* Without DEFER_TASKRUN the ring steps down to COOP_TASKRUN. */
        if ((f & bit) || (f & ~base & ~RL_FEAT_COOP_TASKRUN))
            fail_msg("RINGLOOP_DISABLE=%s: features 0x%x (baseline 0x%x)",
                     feature_words[i], f, base);
        if (!rlt_loop_works(loop))
            fail_msg("RINGLOOP_DISABLE=%s: the loop does not run a nop",
                     feature_words[i]);
        rl_loop_free(loop);

        /* ... by the config, and both ORed together. */
        unsetenv("RINGLOOP_DISABLE");
        assert_int_equal(new_loop(&loop, RL_BACKEND_URING, bit), 0);
        f = rl_loop_features(loop);
        if (f & bit)
            fail_msg("rl_loop_config.disable = %s: features 0x%x",
                     feature_words[i], f);
        rl_loop_free(loop);
        unsigned other = 1u << j;
        setenv("RINGLOOP_DISABLE", feature_words[j], 1);
        assert_int_equal(new_loop(&loop, RL_BACKEND_URING, bit), 0);
        f = rl_loop_features(loop);
        if (f & (bit | other))
            fail_msg("disable = %s with RINGLOOP_DISABLE=%s: features 0x%x",
                     feature_words[i], feature_words[j], f);
        rl_loop_free(loop);
    }

    /* Everything off at once still gives a working io_uring loop. */
    setenv("RINGLOOP_DISABLE",
           "multishot_accept,multishot_recv,bufring,"
           "defer_taskrun,coop_taskrun,multishot_poll,"
           "cancel_fd,ext_arg,bufring_inc,ring_fd,recv_bundle,msg_ring",
           1);
    r = new_loop(&loop, RL_BACKEND_URING, 0);
    env_restore(&be);
    env_restore(&dis);
    env_restore(&ena);
    if (r != 0)
        fail_msg("every fast path disabled: rl_loop_new gave %s",
                 rlt_res_str(r));
    assert_int_equal(rl_loop_features(loop), 0);
    assert_true(rlt_loop_works(loop));
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_explicit_backend), RLT_TEST(test_env_and_auto),
        RLT_TEST(test_refused_eperm),    RLT_TEST(test_refused_enosys),
        RLT_TEST(test_feature_names),    RLT_TEST(test_disable),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
