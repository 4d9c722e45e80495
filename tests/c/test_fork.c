/*
 * Fork (rl_loop_fork, and rl_loop_run noticing a fork by itself): a loop
 * used in the parent works in the child (a timer, a pipe read), an op the
 * parent had in flight completes in the child with -ECANCELED, and the
 * parent's loop, ring/epoll instance and parked op are unaffected.
 */
#include <stdnoreturn.h>
#include <sys/wait.h>

#include "helpers.h"

struct rec {
    rl_op op;
    int calls;
    int res;
    char buf[16];
};

static void rec_cb(rl_loop *loop, rl_op *op)
{
    struct rec *r = op->data;

    (void)loop;
    r->calls++;
    r->res = op->res;
}

static void count_timer(rl_loop *loop, rl_timer *t)
{
    (void)loop;
    (*(int *)t->data)++;
}

/* A timer fires and a pipe read gets what was written. 0 or a message. */
static const char *timer_and_pipe_work(rl_loop *loop, int rfd, int wfd)
{
    struct rec rd = {0};
    rl_timer t;
    int fired = 0;

    rl_timer_init(&t, count_timer, &fired);
    if (rl_timer_start(loop, &t, 1 * RLT_MS) != 0)
        return "rl_timer_start failed";
    if (!rlt_run_until_count(loop, &fired, 1, RLT_GUARD_MS))
        return "the timer did not fire";
    rl_prep_read(&rd.op, rfd, rd.buf, sizeof(rd.buf), -1, rec_cb, &rd);
    if (rl_submit(loop, &rd.op) != 0)
        return "submitting a pipe read failed";
    rlt_run_for(loop, 1);
    if (rd.calls)
        return "the pipe read completed with nothing written";
    if (write(wfd, "fork", 4) != 4)
        return "write to the pipe failed";
    if (!rlt_run_until_count(loop, &rd.calls, 1, RLT_GUARD_MS))
        return "the pipe read did not complete";
    if (rd.res != 4 || memcmp(rd.buf, "fork", 4) != 0)
        return "the pipe read got the wrong data";
    return NULL;
}

/* RL_RUN_ONCE until parked's callback ran; false if the guard fired. */
static bool run_once_until_called(rl_loop *loop, struct rec *parked)
{
    rl_timer guard;
    bool fired = false;

    rl_timer_init(&guard, rlt_guard_fired, &fired);
    rl_timer_start(loop, &guard, 10000 * RLT_MS);
    while (parked->calls == 0 && !fired)
        if (rl_loop_run(loop, RL_RUN_ONCE) < 0)
            break;
    rl_timer_stop(loop, &guard);
    return parked->calls == 1 && !fired;
}

noreturn static void child_fail(const char *what, int res)
{
    fprintf(stderr, "child: %s (res %s)\n", what, rlt_res_str(res));
    _exit(1);
}

static void child_main(rl_loop *loop, struct rec *parked, int pipe_r,
                       int pipe_w, bool explicit_fork)
{
    const char *err;
    int r, p[2];

    alarm(30);
    if (explicit_fork) {
        r = rl_loop_fork(loop);
        if (r != 0)
            child_fail("rl_loop_fork failed", r);
    }
    /* The op the parent had in flight ends here with -ECANCELED; the loop
     * must not then go to sleep as if nothing had happened. */
    if (!explicit_fork && !run_once_until_called(loop, parked))
        child_fail("rl_loop_run slept until its guard timer although the "
                   "inherited op had already completed (or never did)",
                   parked->calls);
    if (!rlt_run_until_count(loop, &parked->calls, 1, RLT_GUARD_MS))
        child_fail("the inherited parked recv got no completion", 0);
    if (parked->res != -ECANCELED)
        child_fail("the inherited parked recv did not end with -ECANCELED",
                   parked->res);
    if (rl_loop_pending(loop) != 0)
        child_fail("ops still pending in the child",
                   (int)rl_loop_pending(loop));

    /* Inherited fds and new ones both work. */
    err = timer_and_pipe_work(loop, pipe_r, pipe_w);
    if (err)
        child_fail(err, 0);
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        child_fail("pipe2", -errno);
    err = timer_and_pipe_work(loop, p[0], p[1]);
    if (err)
        child_fail(err, 0);
    if (rlt_failed())
        child_fail(rlt_err_msg, 0);
    rl_loop_free(loop);
    _exit(0);
}

static void run_fork(bool explicit_fork)
{
    rl_loop *loop = rlt_loop_new(NULL);
    struct rec parked = {0};
    const char *err;
    int p[2], sv[2], status;
    pid_t pid;

    rlt_pipe(p);
    rlt_socketpair(sv);
    /* Use the loop in the parent first, so it has a live instance. */
    err = timer_and_pipe_work(loop, p[0], p[1]);
    if (err)
        fail_msg("parent before fork: %s", err);
    rl_prep_recv(&parked.op, sv[0], parked.buf, sizeof(parked.buf), 0, rec_cb,
                 &parked);
    assert_int_equal(rl_submit(loop, &parked.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(parked.calls, 0);

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_main(loop, &parked, p[0], p[1], explicit_fork);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child failed (status 0x%x; see its message above)",
                 status);

    /* The parent's op is still parked on the parent's instance. */
    rlt_run_for(loop, 2);
    if (parked.calls != 0)
        fail_msg("the child's fork handling ended the parent's op: %s",
                 rlt_res_str(parked.res));
    assert_true(rl_op_in_flight(&parked.op));
    assert_int_equal(send(sv[1], "hi", 2, 0), 2);
    if (!rlt_run_until_count(loop, &parked.calls, 1, RLT_GUARD_MS))
        fail_msg("after the child ran, the parent's parked recv never "
                 "completed (its instance was disturbed)");
    assert_int_equal(parked.res, 2);
    assert_memory_equal(parked.buf, "hi", 2);
    err = timer_and_pipe_work(loop, p[0], p[1]);
    if (err)
        fail_msg("parent after fork: %s", err);
    RLT_ASSERT_OK();
    rlt_close(loop, p[0]);
    rlt_close(loop, p[1]);
    rlt_close(loop, sv[0]);
    rlt_close(loop, sv[1]);
    rl_loop_free(loop);
}

static void test_fork_explicit(void **state)
{
    (void)state;
    run_fork(true);
}

static void test_fork_noticed_by_run(void **state)
{
    (void)state;
    run_fork(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_fork_explicit),
        RLT_TEST(test_fork_noticed_by_run),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
