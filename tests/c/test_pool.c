/*
 * The worker pool (loop/pool.c) on both backends: io_uring is told by the
 * test hook RINGLOOP_TEST_NO_OPCODES that its kernel lacks every file
 * opcode, so that it sends them to the pool as epoll does.
 *
 * The op that blocks: openat() of a FIFO for reading sleeps until a writer
 * opens it, which the test decides (an O_RDWR open never blocks and counts
 * as a writer). Whether a worker is inside that openat is read from
 * /proc/self/task/TID/syscall of the pool's threads ("ringloop-pool").
 *
 * Lazy start and join (threads counted), a blocked op does not stall the
 * loop (a timer fires first: ordering, no timing), cancel before start
 * (-ECANCELED, the call never made) and while running (the real result),
 * rl_cancel_fd() and RL_OP_CLOSE on queued ops, one thread with many ops
 * queued (FIFO order), rl_loop_free() with ops queued and running, fork
 * with ops queued and running, and RINGLOOP_POOL_THREADS validation.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"

#define FILE_OPS "openat,fsync,fallocate,ftruncate,statx,rename,unlink,mkdir"

struct fop {
    rl_op op;
    int calls;
    int res;
    int order; /* when it completed, by the shared counter */
    int *seq;
};

static void fop_cb(rl_loop *loop, rl_op *op)
{
    struct fop *f = op->data;

    (void)loop;
    f->calls++;
    f->res = op->res;
    if (f->seq)
        f->order = ++*f->seq;
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("a pool op completed with RL_CQE_MORE");
}

static rl_loop *pool_loop(unsigned threads)
{
    struct rl_loop_config cfg;

    rl_loop_config_init(&cfg);
    cfg.pool_threads = threads;
    return rlt_loop_new(&cfg);
}

/* Number of the pool's threads in this process; if nr >= 0, only those
 * inside syscall nr. */
static int pool_threads_in(long nr)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    char path[300], buf[64];
    int n = 0;
    FILE *f;

    if (!d)
        fail_msg("opendir(/proc/self/task): %s", strerror(errno));
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        buf[0] = '\0';
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        if (strcmp(buf, "ringloop-pool\n") != 0)
            continue;
        if (nr >= 0) {
            snprintf(path, sizeof(path), "/proc/self/task/%s/syscall",
                     e->d_name);
            f = fopen(path, "r");
            if (!f)
                continue;
            if (!fgets(buf, sizeof(buf), f))
                buf[0] = '\0';
            fclose(f);
            if (strtol(buf, NULL, 10) != nr || buf[0] < '0' || buf[0] > '9')
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

static int pool_threads(void)
{
    return pool_threads_in(-1);
}

/* Wait (bounded, sleeping 1 ms at a time) until a pool thread sleeps in
 * openat: the FIFO op is running. */
static void wait_running_openat(void)
{
    struct timespec ms = {0, 1000000};

    for (int i = 0; i < 10000; i++) {
        if (pool_threads_in(SYS_openat) > 0)
            return;
        nanosleep(&ms, NULL);
    }
    fail_msg("no pool thread entered openat within 10 s");
}

struct fifo {
    char dir[256];
    char path[300];
};

static void fifo_make(struct fifo *ff)
{
    const char *dir = getenv("TMPDIR");

    snprintf(ff->dir, sizeof(ff->dir), "%s/ringloop-pool-XXXXXX",
             dir && *dir ? dir : "/tmp");
    if (!mkdtemp(ff->dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(ff->path, sizeof(ff->path), "%s/fifo", ff->dir);
    if (mkfifo(ff->path, 0600) < 0)
        fail_msg("mkfifo: %s", strerror(errno));
}

/* Let every reader blocked in (or about to enter) open() through: an
 * O_RDWR open of a FIFO never blocks and is a writer. Returns the fd. */
static int fifo_release(struct fifo *ff)
{
    int fd = open(ff->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        rlt_fail("open(fifo, O_RDWR): %s", strerror(errno));
    return fd;
}

static void fifo_remove(struct fifo *ff)
{
    unlink(ff->path);
    rmdir(ff->dir);
}

/* ---- lazy start, join ---------------------------------------------------- */

static void test_lazy_start_and_join(void **state)
{
    rl_loop *loop = pool_loop(2);
    struct fop f[8];
    struct statx stx[8];
    int i;

    (void)state;
    memset(f, 0, sizeof(f));
    assert_int_equal(pool_threads(), 0); /* none before the first op */
    rl_prep_statx(&f[0].op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx[0],
                  fop_cb, &f[0]);
    assert_int_equal(rl_submit(loop, &f[0].op), 0);
    assert_true(rlt_run_until_count(loop, &f[0].calls, 1, RLT_GUARD_MS));
    assert_int_equal(f[0].res, 0);
    assert_int_equal(pool_threads(), 1); /* one op, one thread */
    /* many at once: never more threads than configured */
    for (i = 0; i < 8; i++) {
        f[i].calls = 0;
        rl_prep_statx(&f[i].op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx[i],
                      fop_cb, &f[i]);
        assert_int_equal(rl_submit(loop, &f[i].op), 0);
    }
    for (i = 0; i < 8; i++)
        assert_true(rlt_run_until_count(loop, &f[i].calls, 1, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    for (i = 0; i < 8; i++)
        assert_int_equal(f[i].res, 0);
    assert_true(pool_threads() >= 1 && pool_threads() <= 2);
    rl_loop_free(loop);
    assert_int_equal(pool_threads(), 0); /* joined */
}

/* RL_RUN_DEFAULT with nothing but pool ops: the loop sleeps with no timeout
 * until a worker's completion wakes it, and returns once they are done. */
static void test_run_default(void **state)
{
    rl_loop *loop = pool_loop(0);
    struct fop f[3];
    struct statx stx[3];
    int i;

    (void)state;
    memset(f, 0, sizeof(f));
    for (i = 0; i < 3; i++) {
        rl_prep_statx(&f[i].op, AT_FDCWD, i == 1 ? "/nonexistent-rl" : "/", 0,
                      STATX_BASIC_STATS, &stx[i], fop_cb, &f[i]);
        assert_int_equal(rl_submit(loop, &f[i].op), 0);
    }
    assert_int_equal(rl_loop_run(loop, RL_RUN_DEFAULT), 0);
    RLT_ASSERT_OK();
    for (i = 0; i < 3; i++)
        assert_int_equal(f[i].calls, 1);
    assert_int_equal(f[0].res, 0);
    assert_int_equal(f[1].res, -ENOENT);
    assert_int_equal(rl_loop_pending(loop), 0);
    rl_loop_free(loop);
}

/* ---- a blocked op does not stall the loop -------------------------------- */

struct stall {
    struct fifo ff;
    int seq;
    int timer_order;
    int wfd;
};

static void release_timer(rl_loop *loop, rl_timer *t)
{
    struct stall *s = t->data;

    (void)loop;
    s->timer_order = ++s->seq;
    s->wfd = fifo_release(&s->ff);
}

static void test_blocked_op_does_not_stall(void **state)
{
    rl_loop *loop = pool_loop(0);
    struct stall s = {.wfd = -1};
    struct fop f = {0};
    rl_timer t;

    (void)state;
    fifo_make(&s.ff);
    f.seq = &s.seq;
    rl_prep_openat(&f.op, AT_FDCWD, s.ff.path, O_RDONLY, 0, fop_cb, &f);
    assert_int_equal(rl_submit(loop, &f.op), 0);
    /* The openat can only end after this timer ran: the loop kept going
     * while a worker slept in it. */
    rl_timer_init(&t, release_timer, &s);
    assert_int_equal(rl_timer_start(loop, &t, 2 * RLT_MS), 0);
    if (!rlt_run_until_count(loop, &f.calls, 1, RLT_GUARD_MS))
        fail_msg("the FIFO openat never completed");
    RLT_ASSERT_OK();
    assert_int_equal(s.timer_order, 1);
    assert_int_equal(f.order, 2);
    assert_true(f.res >= 0);
    assert_true(fcntl(f.res, F_GETFD) & FD_CLOEXEC);
    close(f.res);
    close(s.wfd);
    fifo_remove(&s.ff);
    rl_loop_free(loop);
}

/* ---- cancel -------------------------------------------------------------- */

static void test_cancel(void **state)
{
    rl_loop *loop = pool_loop(1);
    struct fifo ff;
    struct fop a = {0}, b = {0}, c = {0}, d = {0}, cl = {0};
    struct statx stx, pristine;
    struct rl_loop_stats s0, s1;
    int seq = 0, wfd, fd;
    char tmp[] = "/tmp/ringloop-pool-cancel-XXXXXX";

    (void)state;
    fifo_make(&ff);
    a.seq = b.seq = &seq;
    rl_loop_stats(loop, &s0);
    /* a occupies the one worker; b waits behind it */
    rl_prep_openat(&a.op, AT_FDCWD, ff.path, O_RDONLY, 0, fop_cb, &a);
    assert_int_equal(rl_submit(loop, &a.op), 0);
    memset(&stx, 0x5a, sizeof(stx));
    pristine = stx;
    rl_prep_statx(&b.op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx, fop_cb, &b);
    assert_int_equal(rl_submit(loop, &b.op), 0);
    rlt_run_for(loop, 1);
    wait_running_openat();

    /* running: the cancel changes nothing; queued: -ECANCELED, no call */
    assert_int_equal(rl_op_cancel(loop, &a.op), 0);
    assert_int_equal(rl_op_cancel(loop, &a.op), 0); /* asked twice */
    assert_int_equal(rl_op_cancel(loop, &b.op), 0);
    assert_true(rlt_run_until_count(loop, &b.calls, 1, RLT_GUARD_MS));
    assert_int_equal(b.res, -ECANCELED);
    assert_memory_equal(&stx, &pristine, sizeof(stx));
    assert_int_equal(a.calls, 0);
    assert_true(rl_op_in_flight(&a.op));
    assert_int_equal(rl_op_cancel(loop, &b.op), -ENOENT); /* done */
    wfd = fifo_release(&ff);
    assert_true(rlt_run_until_count(loop, &a.calls, 1, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    assert_true(a.res >= 0); /* the real result, never half */
    assert_int_equal(b.order, 1);
    assert_int_equal(a.order, 2);
    rl_loop_stats(loop, &s1);
    assert_int_equal(s1.pool_ops - s0.pool_ops, 1); /* b never ran */
    close(a.res);

    /* rl_cancel_fd() and RL_OP_CLOSE reach the queued ops of their fd */
    fd = mkostemp(tmp, O_CLOEXEC);
    assert_true(fd >= 0);
    unlink(tmp);
    close(wfd);
    a.calls = 0;
    rl_prep_openat(&a.op, AT_FDCWD, ff.path, O_RDONLY, 0, fop_cb, &a);
    assert_int_equal(rl_submit(loop, &a.op), 0);
    rl_prep_fsync(&c.op, fd, 0, fop_cb, &c);
    assert_int_equal(rl_submit(loop, &c.op), 0);
    rl_prep_ftruncate(&d.op, fd, 100, fop_cb, &d);
    assert_int_equal(rl_submit(loop, &d.op), 0);
    rlt_run_for(loop, 1);
    assert_int_equal(rl_cancel_fd(loop, fd), 0);
    assert_true(rlt_run_until_count(loop, &c.calls, 1, RLT_GUARD_MS));
    assert_int_equal(c.res, -ECANCELED);
    rl_prep_close(&cl.op, fd, fop_cb, &cl);
    assert_int_equal(rl_submit(loop, &cl.op), 0);
    assert_true(rlt_run_until_count(loop, &cl.calls, 1, RLT_GUARD_MS));
    assert_int_equal(cl.res, 0);
    assert_true(rlt_run_until_count(loop, &d.calls, 1, RLT_GUARD_MS));
    assert_int_equal(d.res, -ECANCELED);
    wfd = fifo_release(&ff);
    assert_true(rlt_run_until_count(loop, &a.calls, 1, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    assert_true(a.res >= 0);
    close(a.res);
    close(wfd);
    fifo_remove(&ff);
    rl_loop_free(loop);
}

/* ---- one thread, many ops ------------------------------------------------ */

static void test_one_thread_many_queued(void **state)
{
    enum { N = 200 };
    rl_loop *loop = pool_loop(1);
    struct fop *f = calloc(N, sizeof(*f));
    struct statx *stx = calloc(N, sizeof(*stx));
    int seq = 0, i;

    (void)state;
    for (i = 0; i < N; i++) {
        f[i].seq = &seq;
        rl_prep_statx(&f[i].op, AT_FDCWD, i % 2 ? "/" : "/nonexistent-rl", 0,
                      STATX_BASIC_STATS, &stx[i], fop_cb, &f[i]);
        assert_int_equal(rl_submit(loop, &f[i].op), 0);
    }
    assert_true(rlt_run_until_count(loop, &seq, N, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    for (i = 0; i < N; i++) {
        assert_int_equal(f[i].calls, 1);
        assert_int_equal(f[i].res, i % 2 ? 0 : -ENOENT);
        assert_int_equal(f[i].order, i + 1); /* one worker: FIFO */
    }
    assert_int_equal(pool_threads(), 1);
    assert_int_equal(rl_loop_pending(loop), 0);
    free(f);
    free(stx);
    rl_loop_free(loop);
}

/* ---- rl_loop_free with ops in flight ------------------------------------- */

/* What an rl_submit() from a final callback run by rl_loop_free() said. */
static int resubmit_res = 1;

static void submit_from_final(rl_loop *loop, rl_op *op)
{
    struct fop *f = op->data;

    fop_cb(loop, op);
    if (f->calls == 1)
        resubmit_res = rl_submit(loop, op);
}

static void *open_writer(void *arg)
{
    struct fifo *ff = arg;
    int fd = open(ff->path, O_WRONLY | O_CLOEXEC); /* blocks for a reader */

    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_free_in_flight(void **state)
{
    enum { N = 20 };
    rl_loop *loop = pool_loop(1);
    struct fop a = {0}, f[N];
    struct statx stx[N];
    struct fifo ff;
    pthread_t th;
    int i, fd;

    (void)state;
    memset(f, 0, sizeof(f));
    fifo_make(&ff);
    rl_prep_openat(&a.op, AT_FDCWD, ff.path, O_RDONLY, 0, fop_cb, &a);
    assert_int_equal(rl_submit(loop, &a.op), 0);
    for (i = 0; i < N; i++) {
        rl_prep_statx(&f[i].op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx[i],
                      i == 0 ? submit_from_final : fop_cb, &f[i]);
        assert_int_equal(rl_submit(loop, &f[i].op), 0);
    }
    rlt_run_for(loop, 1);
    wait_running_openat();
    /* a writer that pairs with the running openat whenever it opens */
    assert_int_equal(pthread_create(&th, NULL, open_writer, &ff), 0);
    rl_loop_free(loop); /* runs every final callback, joins the worker */
    assert_int_equal(a.calls, 1);
    assert_true(a.res >= 0); /* it was running: the real result */
    close(a.res);
    for (i = 0; i < N; i++) {
        assert_int_equal(f[i].calls, 1);
        assert_true(f[i].res == 0 || f[i].res == -ECANCELED);
    }
    assert_int_equal(resubmit_res, -ECANCELED);
    assert_int_equal(pool_threads(), 0);
    /* the writer may still wait if the openat paired with nothing */
    fd = open(ff.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    pthread_join(th, NULL);
    if (fd >= 0)
        close(fd);
    fifo_remove(&ff);

    /* and a loop freed with ops only queued (none started yet) */
    loop = pool_loop(1);
    for (i = 0; i < N; i++) {
        f[i].calls = 0;
        rl_prep_statx(&f[i].op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx[i],
                      fop_cb, &f[i]);
        assert_int_equal(rl_submit(loop, &f[i].op), 0);
    }
    rl_loop_free(loop);
    for (i = 0; i < N; i++) {
        assert_int_equal(f[i].calls, 1);
        assert_true(f[i].res == 0 || f[i].res == -ECANCELED);
    }
    RLT_ASSERT_OK();
}

/* ---- fork ---------------------------------------------------------------- */

/* In the child: the parent's pool ops end with -ECANCELED, a new pool
 * starts for new ones. Returns the exit status (0: fine). */
static int child_side(rl_loop *loop, struct fop *a, struct fop *b)
{
    struct fop c = {0};
    struct statx stx;

    if (!rlt_run_until_count(loop, &b->calls, 1, 10000) ||
        !rlt_run_until_count(loop, &a->calls, 1, 10000))
        return 10;
    if (a->res != -ECANCELED || b->res != -ECANCELED)
        return 11;
    if (pool_threads() != 0)
        return 12;
    rl_prep_statx(&c.op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx, fop_cb, &c);
    if (rl_submit(loop, &c.op) < 0)
        return 13;
    if (!rlt_run_until_count(loop, &c.calls, 1, 10000) || c.res != 0)
        return 14;
    if (pool_threads() != 1)
        return 15;
    rl_loop_free(loop);
    return pool_threads() == 0 && !rlt_failed() ? 0 : 16;
}

static void test_fork(void **state)
{
    rl_loop *loop = pool_loop(1);
    struct fop a = {0}, b = {0};
    struct statx stx;
    struct fifo ff;
    int status, wfd;
    pid_t pid;

    (void)state;
    fifo_make(&ff);
    rl_prep_openat(&a.op, AT_FDCWD, ff.path, O_RDONLY, 0, fop_cb, &a);
    assert_int_equal(rl_submit(loop, &a.op), 0);
    rl_prep_statx(&b.op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx, fop_cb, &b);
    assert_int_equal(rl_submit(loop, &b.op), 0);
    rlt_run_for(loop, 1);
    wait_running_openat();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_side(loop, &a, &b));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child failed: status 0x%x (exit %d)", status,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* the parent's ops go on undisturbed */
    assert_int_equal(a.calls, 0);
    wfd = fifo_release(&ff);
    assert_true(rlt_run_until_count(loop, &b.calls, 1, RLT_GUARD_MS));
    RLT_ASSERT_OK();
    assert_int_equal(a.calls, 1);
    assert_true(a.res >= 0);
    assert_int_equal(b.res, 0);
    close(a.res);
    close(wfd);
    fifo_remove(&ff);
    rl_loop_free(loop);
}

/* ---- configuration ------------------------------------------------------- */

static void test_config(void **state)
{
    static const char *const bad[] = {
        "0", "-1", "abc", "4x", "+4", " 4", "1025", "99999999999999999999"};
    struct rl_loop_config cfg;
    rl_loop *loop = NULL;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RINGLOOP_POOL_THREADS", bad[i], 1);
        if (rl_loop_new(&loop, NULL) != -EINVAL)
            fail_msg("RINGLOOP_POOL_THREADS=\"%s\" was accepted", bad[i]);
    }
    /* an explicit count wins over the environment */
    rl_loop_config_init(&cfg);
    cfg.pool_threads = 3;
    assert_int_equal(rl_loop_new(&loop, &cfg), 0);
    rl_loop_free(loop);
    setenv("RINGLOOP_POOL_THREADS", "1", 1);
    assert_int_equal(rl_loop_new(&loop, NULL), 0);
    rl_loop_free(loop);
    setenv("RINGLOOP_POOL_THREADS", "", 1); /* empty: the default */
    assert_int_equal(rl_loop_new(&loop, NULL), 0);
    rl_loop_free(loop);
    unsetenv("RINGLOOP_POOL_THREADS");
    cfg.pool_threads = 1025;
    assert_int_equal(rl_loop_new(&loop, &cfg), -EINVAL);
    cfg.pool_threads = 1024;
    assert_int_equal(rl_loop_new(&loop, &cfg), 0);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_lazy_start_and_join),
        RLT_TEST(test_run_default),
        RLT_TEST(test_blocked_op_does_not_stall),
        RLT_TEST(test_cancel),
        RLT_TEST(test_one_thread_many_queued),
        RLT_TEST(test_free_in_flight),
        RLT_TEST(test_fork),
        RLT_TEST(test_config),
    };
    int r = rlt_init();

    if (r)
        return r;
    /* io_uring: every file op on the pool, as on epoll */
    setenv("RINGLOOP_TEST_NO_OPCODES", FILE_OPS, 1);
    unsetenv("RINGLOOP_POOL_THREADS");
    return rlt_run_tests(tests);
}
