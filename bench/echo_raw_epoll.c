/*
 * The epoll ceiling: a raw epoll echo server, no ringloop. Level-triggered
 * EPOLLIN on every socket; each readiness is one read and one write.
 *
 * It assumes what a closed-loop benchmark guarantees: an echo fits in the
 * socket's send buffer. When it does not, it waits for that one socket
 * (poll), which stalls the others but loses no bytes.
 */
#include <poll.h>
#include <sys/epoll.h>

#include "echo_common.h"

static char buf[65536];

static void echo(int fd)
{
    ssize_t n = read(fd, buf, sizeof(buf)), off = 0, w;

    if (n < 0 && errno == EAGAIN)
        return;
    while (n > 0 && off < n) {
        w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w < 0)
            break;
        off += w;
    }
    if (n <= 0 || off < n)
        close(fd); /* EOF or error; also leaves the epoll set */
}

int main(int argc, char **argv)
{
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    struct echo_args a;
    int lfd, epfd, fd, n, i;

    echo_parse_args(argc, argv, &a, 0);
    lfd = echo_listen(a.port, SOCK_NONBLOCK);
    epfd = epoll_create1(0);
    ev.data.fd = lfd;
    if (lfd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        fprintf(stderr, "echo_raw_epoll: setup: %s\n",
                strerror(lfd < 0 ? -lfd : errno));
        return 1;
    }
    for (;;) {
        n = epoll_wait(epfd, evs, 256, -1);
        for (i = 0; i < n; i++) {
            if (evs[i].data.fd != lfd) {
                echo(evs[i].data.fd);
                continue;
            }
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                echo_nodelay(fd);
                ev.data.fd = fd;
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                    close(fd);
            }
        }
    }
}
