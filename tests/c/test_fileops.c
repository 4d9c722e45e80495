/*
 * The file ops (issue 15): openat, fsync, fallocate, ftruncate, statx,
 * rename, unlink, mkdir; each one's success and its errors (ENOENT,
 * EEXIST, EISDIR, ENOTDIR, ENOTEMPTY, EBADF, EINVAL ...) compared with
 * what the syscall itself says, statx compared with stat(2), rename
 * flags, and where each op ran (stats: the pool on epoll and where the
 * ring lacks the opcode; RWF_NOWAIT hits on epoll). Reads that start in
 * the page cache and end on the disk (the pool finishes them on epoll).
 *
 * Also registered with RINGLOOP_TEST_NO_OPCODES naming every file op, so
 * that io_uring sends them all to the pool.
 */
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "helpers.h"

struct fop {
    rl_op op;
    int calls;
    int res;
};

static void fop_cb(rl_loop *loop, rl_op *op)
{
    struct fop *f = op->data;

    (void)loop;
    f->calls++;
    f->res = op->res;
    if (op->cflags & RL_CQE_MORE)
        rlt_fail("a file op completed with RL_CQE_MORE");
}

/* Submit f's prepared op, wait for its one final completion: res. */
static int run_op(rl_loop *loop, struct fop *f)
{
    const char *name = rl_opcode_name(f->op.opcode);
    int r = rl_submit(loop, &f->op);

    if (r < 0)
        fail_msg("rl_submit(%s): %s", name, rlt_res_str(r));
    if (!rlt_run_until_count(loop, &f->calls, 1, RLT_GUARD_MS))
        fail_msg("%s did not complete", name);
    RLT_ASSERT_OK();
    assert_int_equal(f->calls, 1);
    return f->res;
}

/* Each op through the loop; returns its res. */
static int op_openat(rl_loop *loop, int dfd, const char *path, int flags,
                     unsigned mode)
{
    struct fop f = {0};

    rl_prep_openat(&f.op, dfd, path, flags, mode, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_fsync(rl_loop *loop, int fd, unsigned flags)
{
    struct fop f = {0};

    rl_prep_fsync(&f.op, fd, flags, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_fallocate(rl_loop *loop, int fd, int mode, int64_t off,
                        int64_t len)
{
    struct fop f = {0};

    rl_prep_fallocate(&f.op, fd, mode, off, len, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_ftruncate(rl_loop *loop, int fd, int64_t len)
{
    struct fop f = {0};

    rl_prep_ftruncate(&f.op, fd, len, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_statx(rl_loop *loop, int dfd, const char *path, int flags,
                    struct statx *stx)
{
    struct fop f = {0};

    memset(stx, 0xa5, sizeof(*stx));
    rl_prep_statx(&f.op, dfd, path, flags, STATX_BASIC_STATS, stx, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_rename(rl_loop *loop, int dfd, const char *from, const char *to,
                     unsigned flags)
{
    struct fop f = {0};

    rl_prep_renameat(&f.op, dfd, from, dfd, to, flags, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_unlink(rl_loop *loop, int dfd, const char *path, int flags)
{
    struct fop f = {0};

    rl_prep_unlinkat(&f.op, dfd, path, flags, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_mkdir(rl_loop *loop, int dfd, const char *path, unsigned mode)
{
    struct fop f = {0};

    rl_prep_mkdirat(&f.op, dfd, path, mode, fop_cb, &f);
    return run_op(loop, &f);
}

static int op_rw(rl_loop *loop, bool wr, int fd, void *buf, size_t len,
                 int64_t off)
{
    struct fop f = {0};

    if (wr)
        rl_prep_write(&f.op, fd, buf, len, off, fop_cb, &f);
    else
        rl_prep_read(&f.op, fd, buf, len, off, fop_cb, &f);
    return run_op(loop, &f);
}

/* -errno of a direct syscall's result (r < 0), else r. */
static int sys_res(long r)
{
    return r < 0 ? -errno : (int)r;
}

/* A fresh temporary directory, opened; its path in path[len]. */
static int temp_dir(char *path, size_t len)
{
    const char *dir = getenv("TMPDIR");
    int dfd;

    snprintf(path, len, "%s/ringloop-fileops-XXXXXX",
             dir && *dir ? dir : "/tmp");
    if (!mkdtemp(path))
        fail_msg("mkdtemp(%s): %s", path, strerror(errno));
    dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        fail_msg("open(%s): %s", path, strerror(errno));
    return dfd;
}

/* Remove everything under the temp directory, then it. */
static void temp_dir_remove(const char *path, int dfd)
{
    char cmd[600];

    close(dfd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
}

static void make_file(int dfd, const char *name, const char *content)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        fail_msg("openat(%s): %s", name, strerror(errno));
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        fail_msg("write(%s): %s", name, strerror(errno));
    close(fd);
}

static bool exists(int dfd, const char *name)
{
    struct stat st;

    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static uint64_t pool_ops(rl_loop *loop)
{
    struct rl_loop_stats st;

    rl_loop_stats(loop, &st);
    return st.pool_ops;
}

/* The loop runs every file op on the pool: epoll, or io_uring told by the
 * test hook that its kernel lacks them all. */
static bool all_on_pool(const rl_loop *loop)
{
    const char *no = getenv("RINGLOOP_TEST_NO_OPCODES");

    return !rlt_on_uring(loop) || (no && strstr(no, "mkdir"));
}

static void test_openat(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512], path[600], buf[16];
    uint64_t pool0 = pool_ops(loop);
    int dfd = temp_dir(dir, sizeof(dir)), fd, fd2, sys;
    mode_t old = umask(022);
    struct stat st;

    (void)state;
    /* create, exclusive; O_CLOEXEC is always added; the mode as given */
    fd = op_openat(loop, dfd, "f", O_RDWR | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(op_rw(loop, true, fd, "abc", 3, 0), 3);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "abc", 3);
    /* AT_FDCWD with an absolute path; O_TRUNC */
    snprintf(path, sizeof(path), "%s/f", dir);
    fd2 = op_openat(loop, AT_FDCWD, path, O_WRONLY | O_TRUNC, 0);
    assert_true(fd2 >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 0);
    close(fd2);

    assert_int_equal(op_openat(loop, dfd, "f", O_RDWR | O_CREAT | O_EXCL, 0600),
                     -EEXIST);
    assert_int_equal(op_openat(loop, dfd, "missing", O_RDONLY, 0), -ENOENT);
    assert_int_equal(op_openat(loop, dfd, "missing/x", O_RDONLY, 0), -ENOENT);
    assert_int_equal(op_openat(loop, dfd, ".", O_WRONLY, 0), -EISDIR);
    assert_int_equal(op_openat(loop, dfd, "f/x", O_RDONLY, 0), -ENOTDIR);
    assert_int_equal(op_openat(loop, dfd, "f", O_RDONLY | O_DIRECTORY, 0),
                     -ENOTDIR);
    assert_int_equal(op_openat(loop, -1, "f", O_RDONLY, 0), -EBADF);
    /* not a directory as dfd */
    assert_int_equal(op_openat(loop, fd, "x", O_RDONLY, 0), -ENOTDIR);
    /* bad flags: what the syscall says */
    sys = sys_res(openat(dfd, "f", O_RDONLY | O_CREAT | O_DIRECTORY, 0));
    if (sys >= 0)
        close(sys);
    assert_int_equal(
        op_openat(loop, dfd, "f", O_RDONLY | O_CREAT | O_DIRECTORY, 0), sys);

    /* 11 openat, and on epoll the write: inline or on the pool */
    if (!rlt_on_uring(loop)) {
        struct rl_loop_stats s;

        rl_loop_stats(loop, &s);
        assert_int_equal(s.pool_ops - pool0 + s.nowait_hits, 12);
    } else if (all_on_pool(loop)) {
        assert_int_equal(pool_ops(loop) - pool0, 11);
    } else {
        assert_int_equal(pool_ops(loop), 0); /* 6.9+: every opcode */
    }
    close(fd);
    umask(old);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

static void test_fsync_fallocate_ftruncate(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512], buf[64];
    int dfd = temp_dir(dir, sizeof(dir)), fd, rd, p[2];
    struct stat st;

    (void)state;
    fd = openat(dfd, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    rd = openat(dfd, "f", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0 && rd >= 0);
    assert_int_equal(op_rw(loop, true, fd, "0123456789", 10, 0), 10);
    assert_int_equal(op_fsync(loop, fd, 0), 0);
    assert_int_equal(op_fsync(loop, fd, RL_FSYNC_DATASYNC), 0);
    assert_int_equal(op_fsync(loop, rd, 0), 0); /* read-only fds sync too */

    /* ftruncate: grow (a hole), shrink, errors */
    assert_int_equal(op_ftruncate(loop, fd, 1 << 20), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 1 << 20);
    assert_int_equal(op_ftruncate(loop, fd, 4), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(op_ftruncate(loop, fd, -1), -EINVAL);
    assert_int_equal(op_ftruncate(loop, rd, 0),
                     sys_res(ftruncate(rd, 0))); /* not open for writing */
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 4);

    /* fallocate: extend, keep size, punch a hole, errors */
    assert_int_equal(op_fallocate(loop, fd, 0, 0, 65536), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 65536);
    assert_int_equal(op_fallocate(loop, fd, FALLOC_FL_KEEP_SIZE, 65536, 65536),
                     0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 65536);
    assert_true(st.st_blocks * 512 >= 131072);
    assert_int_equal(op_fallocate(loop, fd,
                                  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                                  4096),
                     sys_res(0)); /* ext4, tmpfs, xfs, btrfs: supported */
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    assert_int_equal(op_fallocate(loop, fd, 0, 0, 0), -EINVAL);
    assert_int_equal(op_fallocate(loop, fd, 0, -1, 10), -EINVAL);
    assert_int_equal(op_fallocate(loop, rd, 0, 0, 10), -EBADF);

    /* the wrong kind of file */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(op_fsync(loop, p[0], 0), sys_res(fsync(p[0])));
    assert_int_equal(op_fallocate(loop, p[1], 0, 0, 10), -ESPIPE);
    assert_int_equal(op_ftruncate(loop, p[1], 0), sys_res(ftruncate(p[1], 0)));
    rlt_close(loop, p[0]);
    rlt_close(loop, p[1]);

    /* a bad op is refused before any call */
    {
        struct fop f = {0};

        rl_prep_fsync(&f.op, fd, 0x80, fop_cb, &f);
        assert_int_equal(rl_submit(loop, &f.op), -EINVAL);
        rl_prep_fsync(&f.op, -1, 0, fop_cb, &f);
        assert_int_equal(rl_submit(loop, &f.op), -EBADF);
        rl_prep_statx(&f.op, AT_FDCWD, "/", 0, STATX_BASIC_STATS, NULL, fop_cb,
                      &f);
        assert_int_equal(rl_submit(loop, &f.op), -EINVAL);
        rl_prep_openat(&f.op, AT_FDCWD, NULL, O_RDONLY, 0, fop_cb, &f);
        assert_int_equal(rl_submit(loop, &f.op), -EINVAL);
        assert_int_equal(f.calls, 0);
    }
    /* io_uring (no hook): every one of them was a ring op (6.9+) */
    if (rlt_on_uring(loop) && !all_on_pool(loop))
        assert_int_equal(pool_ops(loop), 0);
    rlt_close(loop, fd);
    rlt_close(loop, rd);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

/* stx (from the loop) says what st (stat(2)) says. */
static void same_stat(const struct statx *stx, const struct stat *st)
{
    assert_true((stx->stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
    assert_int_equal(stx->stx_mode, st->st_mode);
    assert_int_equal(stx->stx_ino, st->st_ino);
    assert_int_equal(stx->stx_nlink, st->st_nlink);
    assert_int_equal(stx->stx_uid, st->st_uid);
    assert_int_equal(stx->stx_gid, st->st_gid);
    assert_int_equal(stx->stx_size, st->st_size);
    assert_int_equal(stx->stx_blocks, st->st_blocks);
    assert_int_equal(stx->stx_mtime.tv_sec, st->st_mtim.tv_sec);
    assert_int_equal(stx->stx_mtime.tv_nsec, st->st_mtim.tv_nsec);
    assert_int_equal(stx->stx_ctime.tv_sec, st->st_ctim.tv_sec);
    assert_int_equal(makedev(stx->stx_dev_major, stx->stx_dev_minor),
                     st->st_dev);
}

static void test_statx(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512];
    int dfd = temp_dir(dir, sizeof(dir)), fd;
    struct statx stx;
    struct stat st;

    (void)state;
    make_file(dfd, "f", "some content");
    assert_int_equal(symlinkat("f", dfd, "link"), 0);
    assert_int_equal(mkdirat(dfd, "d", 0750), 0);

    assert_int_equal(op_statx(loop, dfd, "f", 0, &stx), 0);
    assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
    same_stat(&stx, &st);
    assert_int_equal(stx.stx_size, 12);
    /* through the symlink, and of the symlink itself */
    assert_int_equal(op_statx(loop, dfd, "link", 0, &stx), 0);
    same_stat(&stx, &st);
    assert_int_equal(op_statx(loop, dfd, "link", AT_SYMLINK_NOFOLLOW, &stx), 0);
    assert_int_equal(fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISLNK(stx.stx_mode));
    same_stat(&stx, &st);
    assert_int_equal(op_statx(loop, dfd, "d", 0, &stx), 0);
    assert_int_equal(fstatat(dfd, "d", &st, 0), 0);
    assert_true(S_ISDIR(stx.stx_mode));
    same_stat(&stx, &st);
    /* an open fd: AT_EMPTY_PATH */
    fd = openat(dfd, "f", O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 5000), 0);
    assert_int_equal(op_statx(loop, fd, "", AT_EMPTY_PATH, &stx), 0);
    assert_int_equal(fstat(fd, &st), 0);
    same_stat(&stx, &st);
    assert_int_equal(stx.stx_size, 5000);
    /* an absolute path */
    assert_int_equal(op_statx(loop, AT_FDCWD, dir, 0, &stx), 0);
    assert_int_equal(fstat(dfd, &st), 0);
    same_stat(&stx, &st);

    assert_int_equal(op_statx(loop, dfd, "missing", 0, &stx), -ENOENT);
    assert_int_equal(op_statx(loop, dfd, "f/x", 0, &stx), -ENOTDIR);
    assert_int_equal(op_statx(loop, dfd, "", 0, &stx), -ENOENT);
    assert_int_equal(op_statx(loop, -1, "f", 0, &stx), -EBADF);
    assert_int_equal(op_statx(loop, dfd, "f", 0x40000000, &stx), -EINVAL);
    rlt_close(loop, fd);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

/* The content of dfd/name ("" if it cannot be read). */
static const char *content(int dfd, const char *name)
{
    static char buf[64];
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;

    buf[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    return buf;
}

static void test_rename(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512];
    int dfd = temp_dir(dir, sizeof(dir)), sub;

    (void)state;
    make_file(dfd, "a", "A");
    make_file(dfd, "b", "B");
    assert_int_equal(op_rename(loop, dfd, "a", "c", 0), 0);
    assert_false(exists(dfd, "a"));
    assert_string_equal(content(dfd, "c"), "A");
    /* replaces by default; not with RENAME_NOREPLACE */
    assert_int_equal(op_rename(loop, dfd, "b", "c", RENAME_NOREPLACE), -EEXIST);
    assert_string_equal(content(dfd, "c"), "A");
    assert_int_equal(op_rename(loop, dfd, "c", "b", RENAME_EXCHANGE), 0);
    assert_string_equal(content(dfd, "c"), "B");
    assert_string_equal(content(dfd, "b"), "A");
    assert_int_equal(op_rename(loop, dfd, "c", "b", 0), 0);
    assert_false(exists(dfd, "c"));
    assert_string_equal(content(dfd, "b"), "B");
    /* between directories */
    assert_int_equal(mkdirat(dfd, "d", 0700), 0);
    sub = openat(dfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    {
        struct fop f = {0};

        rl_prep_renameat(&f.op, dfd, "b", sub, "moved", 0, fop_cb, &f);
        assert_int_equal(run_op(loop, &f), 0);
    }
    assert_string_equal(content(sub, "moved"), "B");

    assert_int_equal(op_rename(loop, dfd, "missing", "x", 0), -ENOENT);
    assert_int_equal(op_rename(loop, dfd, "missing", "x", RENAME_EXCHANGE),
                     -ENOENT);
    make_file(dfd, "f", "F");
    assert_int_equal(op_rename(loop, dfd, "f", "d", 0), -EISDIR);
    assert_int_equal(op_rename(loop, dfd, "d", "f", 0), -ENOTDIR);
    assert_int_equal(mkdirat(dfd, "e", 0700), 0);
    assert_int_equal(op_rename(loop, dfd, "e", "d", 0), -ENOTEMPTY);
    assert_int_equal(op_rename(loop, dfd, "d", "d/x", 0), -EINVAL);
    assert_int_equal(
        op_rename(loop, dfd, "f", "g", RENAME_NOREPLACE | RENAME_EXCHANGE),
        -EINVAL);
    assert_int_equal(op_rename(loop, -1, "f", "g", 0), -EBADF);
    close(sub);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

static void test_unlink_mkdir(void **state)
{
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512];
    int dfd = temp_dir(dir, sizeof(dir));
    mode_t old = umask(022);
    struct stat st;

    (void)state;
    assert_int_equal(op_mkdir(loop, dfd, "d", 0750), 0);
    assert_int_equal(fstatat(dfd, "d", &st, 0), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);
    assert_int_equal(op_mkdir(loop, dfd, "d", 0700), -EEXIST);
    assert_int_equal(op_mkdir(loop, dfd, "missing/x", 0700), -ENOENT);
    make_file(dfd, "f", "x");
    assert_int_equal(op_mkdir(loop, dfd, "f", 0700), -EEXIST);
    assert_int_equal(op_mkdir(loop, dfd, "f/x", 0700), -ENOTDIR);
    assert_int_equal(op_mkdir(loop, -1, "x", 0700), -EBADF);

    make_file(dfd, "d/inner", "x");
    assert_int_equal(op_unlink(loop, dfd, "d", 0), -EISDIR);
    assert_int_equal(op_unlink(loop, dfd, "d", AT_REMOVEDIR), -ENOTEMPTY);
    assert_int_equal(op_unlink(loop, dfd, "f", AT_REMOVEDIR), -ENOTDIR);
    assert_int_equal(op_unlink(loop, dfd, "missing", 0), -ENOENT);
    assert_int_equal(op_unlink(loop, dfd, "f/x", 0), -ENOTDIR);
    assert_int_equal(op_unlink(loop, dfd, "d/inner", 0), 0);
    assert_false(exists(dfd, "d/inner"));
    assert_int_equal(op_unlink(loop, dfd, "d", AT_REMOVEDIR), 0);
    assert_false(exists(dfd, "d"));
    assert_int_equal(op_unlink(loop, dfd, "f", 0), 0);
    assert_false(exists(dfd, "f"));
    assert_int_equal(op_unlink(loop, dfd, "f", 0x1), -EINVAL); /* bad flag */
    assert_int_equal(op_unlink(loop, -1, "f", 0), -EBADF);
    umask(old);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

/* Many different file ops in flight at once, each completing once. */
static void test_many_in_flight(void **state)
{
    enum { N = 64 };
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512], names[N][16];
    int dfd = temp_dir(dir, sizeof(dir)), done = 0, i;
    struct fop *ops = calloc(N, sizeof(*ops));
    struct statx *stx = calloc(N, sizeof(*stx));
    struct stat st;

    (void)state;
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        make_file(dfd, names[i], i % 2 ? "odd" : "even!");
    }
    for (i = 0; i < N; i++) {
        if (i % 2)
            rl_prep_statx(&ops[i].op, dfd, names[i], 0, STATX_SIZE, &stx[i],
                          fop_cb, &ops[i]);
        else
            rl_prep_unlinkat(&ops[i].op, dfd, names[i], 0, fop_cb, &ops[i]);
        assert_int_equal(rl_submit(loop, &ops[i].op), 0);
    }
    for (i = 0; i < N; i++) {
        struct rlt_count_arg a = {&ops[i].calls, 1};

        if (!rlt_run_until(loop, rlt_count_reached, &a, RLT_GUARD_MS))
            fail_msg("op %d did not complete", i);
    }
    rlt_run_for(loop, 1);
    RLT_ASSERT_OK();
    for (i = 0; i < N; i++) {
        assert_int_equal(ops[i].calls, 1);
        assert_int_equal(ops[i].res, 0);
        if (i % 2)
            assert_int_equal(stx[i].stx_size, 3);
        else
            assert_int_equal(fstatat(dfd, names[i], &st, 0), -1);
        done++;
    }
    assert_int_equal(done, N);
    assert_int_equal(rl_loop_pending(loop), 0);
    free(ops);
    free(stx);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

/*
 * Reads that start in the page cache and end on the disk: the first page
 * cached, the rest dropped. On epoll RWF_NOWAIT gets the first page and the
 * pool reads the rest; the result is the whole read either way, at an
 * offset, at the file position, and vectored across the boundary.
 */
static void test_partly_cached(void **state)
{
    enum { PG = 4096, LEN = 4 * PG };
    rl_loop *loop = rlt_loop_new(NULL);
    char dir[512];
    int dfd = temp_dir(dir, sizeof(dir)), fd, i, round;
    uint8_t *data = malloc(LEN), *back = malloc(LEN);
    struct rl_loop_stats s0, s1;

    (void)state;
    for (i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    fd = openat(dfd, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_int_equal(pwrite(fd, data, LEN, 0), LEN);
    assert_int_equal(fsync(fd), 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM); /* no readahead */
    for (round = 0; round < 3; round++) {
        struct fop f = {0};
        struct iovec iov[2] = {{back, PG + 100}, {back + PG + 100, LEN}};

        memset(back, 0, LEN);
        /* drop the cache, then bring the first page back */
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        assert_int_equal(pread(fd, back, PG, 0), PG);
        rl_loop_stats(loop, &s0);
        switch (round) {
        case 0:
            rl_prep_read(&f.op, fd, back, LEN, 0, fop_cb, &f);
            break;
        case 1:
            assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
            rl_prep_read(&f.op, fd, back, LEN, -1, fop_cb, &f);
            break;
        default:
            iov[1].iov_len = LEN - iov[0].iov_len;
            rl_prep_readv(&f.op, fd, iov, 2, 0, fop_cb, &f);
            break;
        }
        assert_int_equal(run_op(loop, &f), LEN);
        assert_memory_equal(back, data, LEN);
        if (round == 1)
            assert_int_equal(lseek(fd, 0, SEEK_CUR), LEN);
        rl_loop_stats(loop, &s1);
        if (!rlt_on_uring(loop))
            printf("partly cached read %d: nowait hits %llu, pool %llu\n",
                   round, (unsigned long long)(s1.nowait_hits - s0.nowait_hits),
                   (unsigned long long)(s1.pool_ops - s0.pool_ops));
    }
    /* All cached now: epoll reads it inline, without the pool. */
    rl_loop_stats(loop, &s0);
    memset(back, 0, LEN);
    assert_int_equal(op_rw(loop, false, fd, back, LEN, 0), LEN);
    assert_memory_equal(back, data, LEN);
    /* a short read at the end of the file is not sent on to the pool */
    assert_int_equal(op_rw(loop, false, fd, back, LEN, LEN - 10), 10);
    assert_memory_equal(back, data + LEN - 10, 10);
    rl_loop_stats(loop, &s1);
    if (!rlt_on_uring(loop)) {
        assert_int_equal(s1.nowait_hits - s0.nowait_hits, 2);
        assert_int_equal(s1.pool_ops - s0.pool_ops, 0);
    } else {
        assert_int_equal(s1.nowait_hits, 0);
    }
    free(data);
    free(back);
    rlt_close(loop, fd);
    temp_dir_remove(dir, dfd);
    rl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RLT_TEST(test_openat),        RLT_TEST(test_fsync_fallocate_ftruncate),
        RLT_TEST(test_statx),         RLT_TEST(test_rename),
        RLT_TEST(test_unlink_mkdir),  RLT_TEST(test_many_in_flight),
        RLT_TEST(test_partly_cached),
    };
    int r = rlt_init();

    if (r)
        return r;
    return rlt_run_tests(tests);
}
