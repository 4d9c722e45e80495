/*
 * RL_OP_READ / RL_OP_WRITE: a temp file at explicit offsets (many in
 * flight, a sparse hole, an offset past 4 GiB), offset -1 (the file
 * position), zero-length transfers, a pipe (parked read, 1 MiB through
 * it with short writes resubmitted, EOF), and the vectored forms
 * (rl_prep_readv / rl_prep_writev) on a file and a pipe.
 */
#include <limits.h>
#include <sys/stat.h>

#include "helpers.h"

struct io_op {
    rl_op op;
    int calls;
    int res;
};

static void io_cb(rl_loop *loop, rl_op *op)
{
    struct io_op *o = op->data;

    (void)loop;
    o->calls++;
    o->res = op->res;
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("read/write completed with RL_CQE_MORE");
}

static int temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/ringloop-test-XXXXXX",
             dir && *dir ? dir : "/tmp");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        fail_msg("mkostemp(%s): %s", path, strerror(errno));
    unlink(path);
    return fd;
}

/* Submit o's prepared op and wait for its one completion; returns res. */
static int submit_wait(rl_loop *loop, struct io_op *o, const char *what)
{
    assert_int_equal(rl_submit(loop, &o->op), 0);
    if (!rlt_run_until_count(loop, &o->calls, 1, RLT_GUARD_MS))
        fail_msg("%s did not complete", what);
    RLT_ASSERT_OK();
    assert_int_equal(o->calls, 1);
    return o->res;
}

/* Submit one read or write and wait for it; returns res. */
static int do_io(rl_loop *loop, bool write, int fd, void *buf, size_t len,
                 int64_t off)
{
    struct io_op o = {0};
    char what[64];

    if (write)
        rl_prep_write(&o.op, fd, buf, len, off, io_cb, &o);
    else
        rl_prep_read(&o.op, fd, buf, len, off, io_cb, &o);
    snprintf(what, sizeof(what), "%s of %zu bytes at %lld",
             write ? "write" : "read", len, (long long)off);
    return submit_wait(loop, &o, what);
}

static void test_offsets(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    int fd = temp_file();
    char buf[16];
    struct stat st;

    (void)state;
    assert_int_equal(do_io(loop, true, fd, "world", 5, 100), 5);
    assert_int_equal(do_io(loop, true, fd, "hello", 5, 0), 5);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 105);

    memset(buf, 'x', sizeof(buf));
    assert_int_equal(do_io(loop, false, fd, buf, 5, 100), 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(do_io(loop, false, fd, buf, 10, 0), 10);
    assert_memory_equal(buf, "hello\0\0\0\0\0", 10); /* the hole reads 0 */
    assert_int_equal(do_io(loop, false, fd, buf, 10, 103), 2);
    assert_memory_equal(buf, "ld", 2);
    assert_int_equal(do_io(loop, false, fd, buf, 10, 105), 0); /* EOF */
    assert_int_equal(do_io(loop, false, fd, buf, 10, 4096), 0);

    /* Offsets are 64-bit: 5 GiB into a sparse file. */
    int64_t far = 5ll << 30;
    assert_int_equal(do_io(loop, true, fd, "far!", 4, far), 4);
    assert_int_equal(do_io(loop, false, fd, buf, 8, far), 4);
    assert_memory_equal(buf, "far!", 4);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, far + 4);

    /* Zero-length transfers complete with 0 and change nothing. */
    assert_int_equal(do_io(loop, true, fd, buf, 0, 0), 0);
    assert_int_equal(do_io(loop, false, fd, buf, 0, 0), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, far + 4);

    rlt_close(loop, fd);
    rl_loop_free(loop);
}

static void test_many_in_flight(void **state)
{
    enum { CHUNKS = 64, CHUNK = 16384 };
    rl_loop *loop = rlt_loop_new(NULL);
    uint8_t *data = malloc(CHUNKS * CHUNK), *back = malloc(CHUNKS * CHUNK);
    struct io_op *ops = calloc(CHUNKS, sizeof(*ops));
    int fd = temp_file(), done = 0;
    size_t bad;

    (void)state;
    assert_non_null(data);
    assert_non_null(back);
    assert_non_null(ops);
    rlt_pattern_fill(data, CHUNKS * CHUNK, 3, 0);
    /* All writes in flight at once, submitted back to front. */
    for (int i = CHUNKS - 1; i >= 0; i--) {
        rl_prep_write(&ops[i].op, fd, data + (size_t)i * CHUNK, CHUNK,
                      (int64_t)i * CHUNK, io_cb, &ops[i]);
        assert_int_equal(rl_submit(loop, &ops[i].op), 0);
    }
    for (int i = 0; i < CHUNKS; i++) {
        if (!rlt_run_until_count(loop, &ops[i].calls, 1, RLT_GUARD_MS))
            fail_msg("write #%d did not complete", i);
        if (ops[i].res != CHUNK)
            fail_msg("write #%d: %s, expected %d", i, rlt_res_str(ops[i].res),
                     CHUNK);
        done++;
    }
    assert_int_equal(done, CHUNKS);

    memset(back, 0, CHUNKS * CHUNK);
    memset(ops, 0, CHUNKS * sizeof(*ops));
    for (int i = 0; i < CHUNKS; i++) {
        rl_prep_read(&ops[i].op, fd, back + (size_t)i * CHUNK, CHUNK,
                     (int64_t)i * CHUNK, io_cb, &ops[i]);
        assert_int_equal(rl_submit(loop, &ops[i].op), 0);
    }
    for (int i = 0; i < CHUNKS; i++) {
        if (!rlt_run_until_count(loop, &ops[i].calls, 1, RLT_GUARD_MS))
            fail_msg("read #%d did not complete", i);
        if (ops[i].res != CHUNK)
            fail_msg("read #%d: %s, expected %d", i, rlt_res_str(ops[i].res),
                     CHUNK);
    }
    bad = rlt_pattern_check(back, CHUNKS * CHUNK, 3, 0);
    if (bad != SIZE_MAX)
        fail_msg("file content differs at byte %zu", bad);
    RLT_ASSERT_OK();
    rlt_close(loop, fd);
    free(ops);
    free(back);
    free(data);
    rl_loop_free(loop);
}

static void test_offset_minus_one(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    int fd = temp_file();
    char buf[8];

    (void)state;
    /* -1 writes at the file position and advances it. */
    assert_int_equal(do_io(loop, true, fd, "abc", 3, -1), 3);
    assert_int_equal(do_io(loop, true, fd, "def", 3, -1), 3);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 6);
    assert_memory_equal(buf, "abcdef", 6);

    /* An explicit offset leaves the position alone. */
    assert_int_equal(do_io(loop, false, fd, buf, 2, 1), 2);
    assert_memory_equal(buf, "bc", 2);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);

    /* -1 reads from the position and advances it. */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(do_io(loop, false, fd, buf, 4, -1), 4);
    assert_memory_equal(buf, "abcd", 4);
    assert_int_equal(do_io(loop, false, fd, buf, 4, -1), 2);
    assert_memory_equal(buf, "ef", 2);
    assert_int_equal(do_io(loop, false, fd, buf, 4, -1), 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);

    rlt_close(loop, fd);
    rl_loop_free(loop);
}

/* Reads a pipe with RL_OP_READ at offset -1 into buf until want or EOF. */
struct pipe_reader {
    rl_op op;
    int fd;
    uint8_t *buf;
    size_t want, got;
    int err;
    bool eof;
};

static void pipe_read_cb(rl_loop *loop, rl_op *op)
{
    struct pipe_reader *pr = op->data;
    int r;

    if (op->res < 0) {
        pr->err = op->res;
        return;
    }
    if (op->res == 0) {
        pr->eof = true;
        return;
    }
    pr->got += (size_t)op->res;
    if (pr->got >= pr->want)
        return;
    rl_prep_read(op, pr->fd, pr->buf + pr->got, pr->want - pr->got, -1,
                 pipe_read_cb, pr);
    r = rl_submit(loop, op);
    if (r < 0)
        rlt_fail("resubmit pipe read: %s", rlt_res_str(r));
}

static bool pipe_reader_done(void *arg)
{
    struct pipe_reader *pr = arg;

    return pr->got >= pr->want || pr->eof || pr->err;
}

static bool sender_done(void *arg)
{
    return ((struct rlt_sender *)arg)->done;
}

static void test_pipe(void **state)
{
    enum { BIG = 1 << 20 };
    rl_loop *loop = rlt_loop_new(NULL);
    uint8_t *data = malloc(BIG), *back = malloc(BIG);
    struct pipe_reader pr = {0};
    struct rlt_sender snd = {.use_write = true};
    struct io_op o = {0};
    char small[8];
    int p[2];
    size_t bad;

    (void)state;
    assert_non_null(data);
    assert_non_null(back);
    rlt_pipe(p);

    /* A read on an empty pipe parks until a write arrives. */
    rl_prep_read(&o.op, p[0], small, sizeof(small), -1, io_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(o.calls, 0);
    assert_int_equal(do_io(loop, true, p[1], "ping", 4, -1), 4);
    if (!rlt_run_until_count(loop, &o.calls, 1, RLT_GUARD_MS))
        fail_msg("parked pipe read did not complete after a write");
    assert_int_equal(o.res, 4);
    assert_memory_equal(small, "ping", 4);

    /* 1 MiB through a 64 KiB pipe: writes come back short, get resumed. */
    rlt_pattern_fill(data, BIG, 11, 0);
    pr.fd = p[0];
    pr.buf = back;
    pr.want = BIG;
    rl_prep_read(&pr.op, p[0], back, BIG, -1, pipe_read_cb, &pr);
    assert_int_equal(rl_submit(loop, &pr.op), 0);
    assert_int_equal(rlt_sender_start(loop, &snd, p[1], data, BIG), 0);
    if (!rlt_run_until(loop, pipe_reader_done, &pr, RLT_GUARD_MS))
        fail_msg("pipe transfer stalled at %zu of %d bytes", pr.got, BIG);
    assert_int_equal(pr.err, 0);
    assert_false(pr.eof);
    if (!rlt_run_until(loop, sender_done, &snd, RLT_GUARD_MS))
        fail_msg("the last pipe write did not complete");
    assert_int_equal(snd.err, 0);
    bad = rlt_pattern_check(back, BIG, 11, 0);
    if (bad != SIZE_MAX)
        fail_msg("pipe data differs at byte %zu", bad);

    /* Closing the write end: a parked read sees EOF (res 0). */
    memset(&o, 0, sizeof(o));
    rl_prep_read(&o.op, p[0], small, sizeof(small), -1, io_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(o.calls, 0);
    rlt_close(loop, p[1]);
    if (!rlt_run_until_count(loop, &o.calls, 1, RLT_GUARD_MS))
        fail_msg("pipe read saw no EOF after the writer closed");
    assert_int_equal(o.res, 0);
    RLT_ASSERT_OK();
    rlt_close(loop, p[0]);
    free(data);
    free(back);
    rl_loop_free(loop);
}

/* Submit one readv or writev and wait for it; returns res. */
static int do_iov(rl_loop *loop, bool write, int fd, const struct iovec *iov,
                  size_t nr, int64_t off)
{
    struct io_op o = {0};

    if (write)
        rl_prep_writev(&o.op, fd, iov, nr, off, io_cb, &o);
    else
        rl_prep_readv(&o.op, fd, iov, nr, off, io_cb, &o);
    return submit_wait(loop, &o, write ? "writev" : "readv");
}

static void test_vectored(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    int fd = temp_file(), p[2];
    char a[4], b[8], small[16];
    struct iovec out[3] = {{"he", 2}, {"llo ", 4}, {"world", 5}};
    struct iovec in[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    struct iovec big = {small, sizeof(small)};
    struct io_op o = {0};

    (void)state;
    /* A file: gathered at an offset, scattered back, then at -1. */
    assert_int_equal(do_iov(loop, true, fd, out, 3, 10), 11);
    assert_int_equal(do_iov(loop, false, fd, in, 2, 10), 11);
    assert_memory_equal(a, "hell", 4);
    assert_memory_equal(b, "o world", 7);
    assert_int_equal(do_iov(loop, true, fd, out, 2, -1), 6);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
    assert_int_equal(do_iov(loop, false, fd, out, 0, 0), 0);

    /* A pipe: a parked readv completes with what one writev gathered. */
    rlt_pipe(p);
    rl_prep_readv(&o.op, p[0], &big, 1, -1, io_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), 0);
    rlt_run_for(loop, 2);
    assert_int_equal(o.calls, 0);
    assert_int_equal(do_iov(loop, true, p[1], out, 3, -1), 11);
    if (!rlt_run_until_count(loop, &o.calls, 1, RLT_GUARD_MS))
        fail_msg("parked readv did not complete after a writev");
    assert_int_equal(o.res, 11);
    assert_memory_equal(small, "hello world", 11);

    /* Refused at submit: too many iovecs, vectored ops of other kinds. */
    rl_prep_writev(&o.op, p[1], out, (size_t)IOV_MAX + 1, -1, io_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), -EINVAL);
    rl_prep_writev(&o.op, p[1], NULL, 1, -1, io_cb, &o);
    assert_int_equal(rl_submit(loop, &o.op), -EINVAL);
    rl_prep_send(&o.op, p[1], "x", 1, 0, io_cb, &o);
    o.op.flags |= RL_F_VECTORED;
    assert_int_equal(rl_submit(loop, &o.op), -EINVAL);
    RLT_ASSERT_OK();
    rlt_close(loop, p[0]);
    rlt_close(loop, p[1]);
    rlt_close(loop, fd);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_offsets),          RLT_TEST(test_many_in_flight),
        RLT_TEST(test_offset_minus_one), RLT_TEST(test_pipe),
        RLT_TEST(test_vectored),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
