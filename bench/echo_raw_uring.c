/*
 * The ceiling for the C core's echo: a raw liburing echo server, no
 * ringloop. Multishot accept, multishot recv into a provided-buffer ring,
 * and a send straight from the received buffer, which goes back to the ring
 * when the send completes. One io_uring_enter per batch of completions.
 *
 * It assumes what a closed-loop benchmark guarantees: an echo never finds
 * the socket's send buffer full, so sends on one socket do not overtake each
 * other (MSG_WAITALL covers short sends). Errors just close the connection.
 */
#include <liburing.h>
#include <sys/mman.h>

#include "echo_common.h"

#define NBUFS 1024 /* provided buffers, a power of two */
#define BUFSZ 16384
enum { ACCEPT, RECV, SEND };

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;

/* user_data: fd in bits 32..63, buffer id in 16..31, kind in 0..15 */
static void queue(int kind, int fd, unsigned bid, unsigned len)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    if (kind == ACCEPT) {
        io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, 0);
    } else if (kind == RECV) {
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
    } else {
        io_uring_prep_send(sqe, fd, bufs + (size_t)bid * BUFSZ, len,
                           MSG_WAITALL | MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)fd << 32 | bid << 16 | kind);
}

static void complete(struct io_uring_cqe *cqe, int lfd, unsigned *returned)
{
    int fd = (int)(cqe->user_data >> 32), kind = cqe->user_data & 0xffff;
    unsigned bid = (cqe->user_data >> 16) & 0xffff;
    bool more = cqe->flags & IORING_CQE_F_MORE;

    if (kind == ACCEPT) {
        if (cqe->res >= 0) {
            echo_nodelay(cqe->res);
            queue(RECV, cqe->res, 0, 0);
        }
        if (!more)
            queue(ACCEPT, lfd, 0, 0);
    } else if (kind == RECV) {
        if (cqe->res > 0)
            queue(SEND, fd, cqe->flags >> IORING_CQE_BUFFER_SHIFT,
                  (unsigned)cqe->res);
        if (cqe->res == -ENOBUFS || (cqe->res > 0 && !more))
            queue(RECV, fd, 0, 0); /* multishot ended: re-arm */
        else if (cqe->res <= 0)
            close(fd);
    } else {
        io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid,
                              NBUFS - 1, (int)(*returned)++);
    }
}

int main(int argc, char **argv)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                         IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_SUBMIT_ALL};
    struct io_uring_buf_reg reg = {.ring_entries = NBUFS, .bgid = 0};
    struct io_uring_cqe *cqe;
    struct echo_args a;
    unsigned head, n, returned, i;
    int lfd, ret;

    echo_parse_args(argc, argv, &a, 0);
    lfd = echo_listen(a.port, 0);
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = 8 * 1024;
    ret = lfd < 0 ? lfd : io_uring_queue_init_params(1024, &ring, &p);
    br = mmap(NULL, NBUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bufs = malloc((size_t)NBUFS * BUFSZ);
    reg.ring_addr = (unsigned long)br;
    if (ret == 0)
        ret = br == MAP_FAILED || !bufs
                  ? -ENOMEM
                  : io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0) {
        fprintf(stderr, "echo_raw_uring: setup: %s\n", strerror(-ret));
        return 1;
    }
    io_uring_buf_ring_init(br);
    for (i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, i, NBUFS - 1,
                              i);
    io_uring_buf_ring_advance(br, NBUFS);
    queue(ACCEPT, lfd, 0, 0);
    for (;;) {
        ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR) {
            fprintf(stderr, "echo_raw_uring: %s\n", strerror(-ret));
            return 1;
        }
        n = returned = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            complete(cqe, lfd, &returned);
            n++;
        }
        io_uring_buf_ring_advance(br, (int)returned);
        io_uring_cq_advance(&ring, n);
    }
}
