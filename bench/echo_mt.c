/*
 * A multi-threaded echo server on ringloop's C API: one loop per thread,
 * each serving its connections with the echo server of rl_echo.c
 * (multishot accept and recv, buffers from the loop's pool).
 *
 *   echo_mt --port PORT [--threads N] [--mode reuseport|handoff]
 *           [--backend uring|epoll]
 *
 * reuseport: every thread has its own SO_REUSEPORT listener on the port;
 *   the kernel spreads new connections over them by a hash of the 4-tuple.
 * handoff: thread 0 alone accepts (one multishot accept) and deals the
 *   connections out round-robin over all N threads, itself included: to
 *   another thread with rl_loop_send_fd(), whose wake is an
 *   IORING_OP_MSG_RING between io_uring loops (msg_ring on), else an
 *   eventfd write.
 *
 * Signals are blocked in the loop threads; the main thread waits for
 * SIGINT or SIGTERM and then stops every loop with rl_call_threadsafe()
 * (it runs no loop, so its wakes go by eventfd).
 */
#include <pthread.h>
#include <stdbool.h>

#include "echo_common.h"
#include "rl_echo.h"

#define MAX_THREADS 256

enum { MODE_REUSEPORT, MODE_HANDOFF };

struct worker {
    int id;
    rl_loop *loop;
    struct rl_echo_server *srv;
    int lfd; /* own listener (reuseport), thread 0's (handoff), or -1 */
    rl_callback quit;
    rl_timer keepalive; /* a loop with nothing in flight stays up */
    rl_op accept;       /* handoff mode, thread 0 */
    bool stopping;
    unsigned long long handed; /* handoff: connections sent elsewhere */
    int ret;
    pthread_t th;
};

static struct worker workers[MAX_THREADS];
static int nthreads = 1;
static int mode = MODE_REUSEPORT;
static unsigned next_worker; /* thread 0 only */

/* A listener on 127.0.0.1:port with SO_REUSEPORT, or -errno. */
static int listen_reuseport(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    int one = 1, err;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4096) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* On the receiving thread: the connection is this loop's now. */
static void on_handoff(rl_loop *loop, rl_fd_msg *m, int fd)
{
    struct worker *w = m->data;

    (void)loop;
    if (fd >= 0 && w->stopping)
        close(fd); /* w->srv may be gone already */
    else if (fd >= 0)
        rl_echo_server_adopt(w->srv, fd);
    free(m);
}

/* Thread 0 in handoff mode: deal each connection to the next thread. */
static void on_accept(rl_loop *loop, rl_op *op)
{
    struct worker *self = op->data, *to;
    rl_fd_msg *m;
    int fd = op->res;

    if (fd >= 0 && self->stopping) {
        close(fd);
    } else if (fd >= 0) {
        to = &workers[next_worker++ % (unsigned)nthreads];
        if (to == self) {
            rl_echo_server_adopt(self->srv, fd);
        } else if (!(m = malloc(sizeof(*m)))) {
            close(fd);
        } else {
            self->handed++;
            rl_loop_send_fd(to->loop, m, fd, on_handoff, to);
        }
    }
    if (op->cflags & RL_CQE_MORE)
        return;
    if (!self->stopping && fd != -ECANCELED && fd != -EBADF && fd != -EINVAL) {
        rl_prep_accept_multishot(&self->accept, self->lfd,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC, on_accept, self);
        if (rl_submit(loop, &self->accept) < 0)
            fprintf(stderr, "echo_mt: accept stopped\n");
    }
}

static void on_quit(rl_loop *loop, rl_callback *cb)
{
    struct worker *w = cb->data;

    w->stopping = true;
    rl_timer_stop(loop, &w->keepalive);
    rl_loop_stop(loop);
}

/* Without it, a handoff worker with no connection yet would find nothing
 * to wait for and return from rl_loop_run(). */
static void on_keepalive(rl_loop *loop, rl_timer *t)
{
    rl_timer_start(loop, t, 3600ull * 1000000000ull);
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    int ret;

    ret = rl_loop_run(w->loop, RL_RUN_DEFAULT);
    /* Close what this loop serves and let the final completions run. The
     * other loops may still hand us connections until they stop: those
     * are closed by rl_echo_server_adopt() (stopping) or, once this loop
     * is freed, by rl_loop_free(). */
    if (w->id == 0 && mode == MODE_HANDOFF && rl_op_in_flight(&w->accept))
        rl_op_cancel(w->loop, &w->accept);
    rl_echo_server_stop(w->srv);
    while (ret >= 0 && rl_loop_pending(w->loop))
        ret = rl_loop_run(w->loop, RL_RUN_ONCE);
    w->ret = ret;
    return NULL;
}

int main(int argc, char **argv)
{
    struct rl_loop_config cfg;
    struct echo_args a = {0, NULL};
    const char *mode_s = "reuseport";
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int nrest = 0, i, ret, sig, status = 0;
    sigset_t set;

    if (!rest)
        return 1;
    /* --threads and --mode here, the rest as echo_parse_args() knows it */
    rest[nrest++] = argv[0];
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode_s = argv[++i];
        else
            rest[nrest++] = argv[i];
    }
    echo_parse_args(nrest, rest, &a, 1);
    free(rest);
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "echo_mt: --threads 1..%d\n", MAX_THREADS);
        return 2;
    }
    if (!strcmp(mode_s, "handoff"))
        mode = MODE_HANDOFF;
    else if (strcmp(mode_s, "reuseport") != 0) {
        fprintf(stderr, "echo_mt: --mode reuseport|handoff\n");
        return 2;
    }
    rl_loop_config_init(&cfg);
    if (a.backend && !strcmp(a.backend, "uring"))
        cfg.backend = RL_BACKEND_URING;
    else if (a.backend && !strcmp(a.backend, "epoll"))
        cfg.backend = RL_BACKEND_EPOLL;
    else if (a.backend) {
        fprintf(stderr, "echo_mt: --backend uring|epoll\n");
        return 2;
    }

    /* Loop threads inherit a mask with the quit signals blocked. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];

        w->id = i;
        w->lfd = -1;
        ret = rl_loop_new(&w->loop, &cfg);
        if (ret < 0) {
            fprintf(stderr, "echo_mt: rl_loop_new: %s\n", strerror(-ret));
            return 1;
        }
        rl_callback_init(&w->quit, on_quit, w);
        rl_timer_init(&w->keepalive, on_keepalive, w);
        on_keepalive(w->loop, &w->keepalive);
        if (mode == MODE_REUSEPORT)
            w->lfd = listen_reuseport(a.port);
        else if (i == 0)
            w->lfd = echo_listen(a.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if ((mode == MODE_REUSEPORT || i == 0) && w->lfd < 0) {
            fprintf(stderr, "echo_mt: listen on port %d: %s\n", a.port,
                    strerror(-w->lfd));
            return 1;
        }
        /* handoff: every server only adopts; thread 0 accepts itself */
        ret = rl_echo_server_start(
            w->loop, mode == MODE_REUSEPORT ? w->lfd : -1, &w->srv);
        if (ret == 0 && mode == MODE_HANDOFF && i == 0) {
            rl_prep_accept_multishot(
                &w->accept, w->lfd, SOCK_NONBLOCK | SOCK_CLOEXEC, on_accept, w);
            ret = rl_submit(w->loop, &w->accept);
        }
        if (ret < 0) {
            fprintf(stderr, "echo_mt: start: %s\n", strerror(-ret));
            return 1;
        }
    }
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i])) {
            fprintf(stderr, "echo_mt: pthread_create failed\n");
            return 1;
        }
    fprintf(stderr, "echo_mt: %d thread(s), %s, %s backend, port %d\n",
            nthreads, mode_s, rl_loop_backend_name(workers[0].loop), a.port);

    sigwait(&set, &sig);
    for (i = 0; i < nthreads; i++)
        rl_call_threadsafe(workers[i].loop, &workers[i].quit);
    for (i = 0; i < nthreads; i++)
        pthread_join(workers[i].th, NULL);
    for (i = 0; i < nthreads; i++) {
        status |= workers[i].ret < 0;
        rl_loop_free(workers[i].loop);
        if (workers[i].lfd >= 0)
            close(workers[i].lfd);
    }
    return status;
}
