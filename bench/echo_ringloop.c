/*
 * ringloop's echo server on the C API (multishot accept, multishot recv from
 * the loop's buffer pool, send): what echo_raw_uring and echo_raw_epoll are
 * the ceilings for. Runs until SIGINT or SIGTERM, then closes what it has.
 *
 *   echo_ringloop --port PORT [--backend uring|epoll]
 */
#include "echo_common.h"
#include "rl_echo.h"

static rl_loop *loop;
static rl_callback quit_cb;
static volatile sig_atomic_t quitting;

static void on_quit(rl_loop *l, rl_callback *cb)
{
    (void)cb;
    rl_loop_stop(l);
}

/* rl_call_threadsafe() is a lock-free push and an eventfd write, both
 * safe in a signal handler. */
static void on_signal(int sig)
{
    (void)sig;
    if (!quitting) {
        quitting = 1;
        rl_call_threadsafe(loop, &quit_cb);
    }
}

int main(int argc, char **argv)
{
    struct rl_loop_config cfg;
    struct rl_echo_server *srv;
    struct echo_args a;
    int lfd, ret;

    echo_parse_args(argc, argv, &a, 1);
    rl_loop_config_init(&cfg);
    if (a.backend && !strcmp(a.backend, "uring"))
        cfg.backend = RL_BACKEND_URING;
    else if (a.backend && !strcmp(a.backend, "epoll"))
        cfg.backend = RL_BACKEND_EPOLL;
    else if (a.backend) {
        fprintf(stderr, "echo_ringloop: --backend uring|epoll\n");
        return 2;
    }
    ret = rl_loop_new(&loop, &cfg);
    if (ret < 0) {
        fprintf(stderr, "echo_ringloop: rl_loop_new: %s\n", strerror(-ret));
        return 1;
    }
    lfd = echo_listen(a.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ret = lfd < 0 ? lfd : rl_echo_server_start(loop, lfd, &srv);
    if (ret < 0) {
        fprintf(stderr, "echo_ringloop: listen on port %d: %s\n", a.port,
                strerror(-ret));
        rl_loop_free(loop);
        return 1;
    }
    rl_callback_init(&quit_cb, on_quit, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ret = rl_loop_run(loop, RL_RUN_DEFAULT);
    rl_echo_server_stop(srv);
    while (ret >= 0 && rl_loop_pending(loop))
        ret = rl_loop_run(loop, RL_RUN_ONCE);
    rl_loop_free(loop);
    close(lfd);
    return ret < 0 ? 1 : 0;
}
