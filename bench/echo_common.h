/*
 * What the echo servers share: argument parsing and the listening socket.
 * Every server binds 127.0.0.1 only.
 */
#ifndef RL_BENCH_ECHO_COMMON_H
#define RL_BENCH_ECHO_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct echo_args {
    int port;
    const char *backend; /* ringloop only: "uring", "epoll" or NULL */
};

/* Parse --port N [--backend NAME]; exits with a usage line on bad input. */
static inline void echo_parse_args(int argc, char **argv, struct echo_args *a,
                                   int with_backend)
{
    int i;

    a->port = 0;
    a->backend = NULL;
    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--port") && v) {
            a->port = atoi(v);
            i++;
        } else if (!strncmp(argv[i], "--port=", 7)) {
            a->port = atoi(argv[i] + 7);
        } else if (with_backend && !strcmp(argv[i], "--backend") && v) {
            a->backend = v;
            i++;
        } else if (with_backend && !strncmp(argv[i], "--backend=", 10)) {
            a->backend = argv[i] + 10;
        } else {
            a->port = -1;
            break;
        }
    }
    if (a->port <= 0 || a->port > 65535) {
        fprintf(stderr, "usage: %s --port PORT%s\n", argv[0],
                with_backend ? " [--backend uring|epoll]" : "");
        exit(2);
    }
    signal(SIGPIPE, SIG_IGN);
}

/* A listening TCP socket on 127.0.0.1:port, or -errno. */
static inline int echo_listen(int port, int flags)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | flags, 0);

    if (fd < 0)
        return -errno;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4096) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static inline void echo_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

#endif /* RL_BENCH_ECHO_COMMON_H */
