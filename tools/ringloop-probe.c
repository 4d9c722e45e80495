/*
 * ringloop-probe: what this kernel's io_uring really supports, and what a
 * ringloop loop does with it.
 *
 *   ringloop-probe           a readable report
 *   ringloop-probe --json    one JSON object (fields below)
 *
 * Exit status: 0 if io_uring is usable (a ring can be set up, runs a NOP,
 * and ringloop's auto selection picks it), 1 if not, 2 on a usage error
 * (bad option, or a RINGLOOP_DISABLE / RINGLOOP_ENABLE / RINGLOOP_BACKEND
 * value the library refuses).
 *
 * Setup flags are tried with the raw io_uring_setup(2) syscall rather than
 * io_uring_queue_init_params(), so that the answer is the kernel's and not
 * liburing's: liburing 2.3 cannot map NO_MMAP or NO_SQARRAY rings.
 *
 * JSON fields (--json). Errnos are negative (-errno), as everywhere in
 * ringloop; an errno's name ("EPERM") sits next to it.
 *
 *   probe_version        int     1; bumped when a field changes meaning
 *   ringloop_version     string  "MAJOR.MINOR.PATCH" of the library
 *   liburing_version     string  liburing the probe was built against
 *   usable               bool    io_uring.setup_ok && io_uring.nop_ok &&
 *                                auto.backend == "uring"; the exit status
 *   kernel               object  uname(2):
 *     sysname            string  "Linux"
 *     release            string  "6.18.44-..."
 *     version            string  the build string ("#1 SMP ...")
 *     machine            string  "x86_64"
 *   io_uring             object  can a ring be set up, and if not why:
 *     setup_ok           bool    io_uring_queue_init_params(8) succeeded
 *     setup_errno        int     0, or its -errno
 *     setup_error        string  "" or the errno's name ("EPERM")
 *     nop_ok             bool    a NOP went through the ring and back
 *     cause              string  "ok", "enosys", "sysctl_disabled",
 *                                "sysctl_group", "seccomp", "memlock",
 *                                "other"
 *     explanation        string  one sentence for a human
 *     io_uring_disabled  int|null  /proc/sys/kernel/io_uring_disabled
 *                                (null: no such file, kernel < 6.6)
 *     io_uring_group     int|null  /proc/sys/kernel/io_uring_group
 *     seccomp_mode       int|null  Seccomp: in /proc/self/status
 *                                (0 off, 1 strict, 2 filter)
 *     seccomp_filters    int|null  Seccomp_filters: in /proc/self/status
 *     memlock_limit      int|null  RLIMIT_MEMLOCK soft limit in bytes
 *                                (null: unlimited)
 *     sq_entries         int     SQ/CQ sizes the kernel gave the probe
 *     cq_entries         int     ring (0 when setup failed)
 *   setup_flags          array   one object per IORING_SETUP_* flag, in bit
 *                                order; empty when setup_ok is false:
 *     name               string  "SQPOLL" (without IORING_SETUP_)
 *     value              int     the flag's bit value
 *     tried_with         array   names of flags it was combined with,
 *                                because it needs them (SQ_AFF: SQPOLL)
 *     accepted           bool    the kernel set up a ring with it
 *     errno              int     0, or -errno of the refusal
 *     error              string  "" or the errno's name
 *     note               string  what the flag needs or excludes
 *   unknown_setup_flags  array   ints: bit values above the newest flag
 *                                the probe knows that the kernel accepted
 *                                on their own (a newer kernel)
 *   setup_flag_rules     array   combination rules, one object each:
 *     rule               string  "SQ_AFF needs SQPOLL"
 *     flags              array   names of the flags tried together
 *     applicable         bool    each flag is accepted where it is valid
 *                                (otherwise the rule was not tried)
 *     enforced           bool    the kernel refused the combination
 *     errno              int     -errno of the refusal, or 0
 *   features             object  io_uring_params.features of the ring:
 *     value              int     the raw bits
 *     names              array   names of the set bits ("NODROP", ...)
 *     unknown_bits       array   ints: set bits the probe has no name for
 *   opcodes              object  from io_uring_get_probe_ring():
 *     last_op            int     the kernel's last opcode (-1: no probe)
 *     supported          array   names of the supported opcodes; one the
 *                                probe has no name for is "op_N"
 *     unsupported        array   names of opcodes <= last_op the kernel
 *                                knows but does not support
 *   loop                 object  a loop created with the default config,
 *                                as any program in this environment gets
 *                                it (honours RINGLOOP_BACKEND/_DISABLE):
 *     ok                 bool    rl_loop_new() succeeded
 *     errno              int     0 or the -errno of rl_loop_new()
 *     backend            string  "uring", "epoll" ("" when !ok)
 *     fallback_errno     int     rl_loop_fallback_errno()
 *     fallback_reason    string  rl_loop_fallback_reason()
 *     features           array   words of rl_loop_features()
 *     env_backend        string|null  RINGLOOP_BACKEND as set
 *     env_disable        string|null  RINGLOOP_DISABLE as set
 *     env_enable         string|null  RINGLOOP_ENABLE as set
 *   auto                 object  a loop created with RINGLOOP_BACKEND,
 *                                RINGLOOP_DISABLE and RINGLOOP_ENABLE
 *                                cleared: what auto picks
 *                                and which fast paths can be active here;
 *                                fields ok, errno, backend, fallback_errno,
 *                                fallback_reason, features as in loop
 *   fast_paths           array   one object per ringloop fast path:
 *     word               string  rl_feature_name(); the RINGLOOP_DISABLE
 *                                word that turns it off (and, for an
 *                                opt-in, the RINGLOOP_ENABLE word that
 *                                turns it on)
 *     bit                int     its enum rl_feature bit
 *     opt_in             bool    off unless asked for (RL_FEAT_OPT_IN:
 *                                sqpoll, napi)
 *     supported          bool    can be active here: active on the auto
 *                                loop, or on an auto loop with the paths
 *                                active there switched off (a fallback
 *                                such as coop_taskrun under defer_taskrun),
 *                                or, for an opt-in, on an auto loop that
 *                                asks for every opt-in
 *     available          bool    active on the auto loop
 *     active             bool    active on the loop
 *     disabled           bool    switched off by RINGLOOP_DISABLE
 *     enabled            bool    named in RINGLOOP_ENABLE
 *     reason             string  rl_loop_feature_reason() on the loop: why
 *                                it is not used although asked for (the
 *                                kernel refused it, or an opt-in excludes
 *                                it); "" otherwise
 *     status             string  "active"; "disabled" (by
 *                                RINGLOOP_DISABLE); "inactive" (available
 *                                but off on the loop, e.g. epoll forced or
 *                                a path it needs disabled); "opt_in"
 *                                (supported, off unless RINGLOOP_ENABLE
 *                                names it); "fallback" (supported, used
 *                                when a preferred path is off);
 *                                "unavailable" (kernel or backend lacks
 *                                it)
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <liburing.h>

#include "ringloop.h"
#include "uring/compat.h"

#ifndef RL_LIBURING_VERSION
#define RL_LIBURING_VERSION "unknown"
#endif

/* IORING_SETUP_* bits the probe has names for (compat.h defines those
 * newer than liburing 2.3). */
#define PROBE_KNOWN_SETUP_BITS 20

#define PROBE_ENTRIES 8
#define UNKNOWN LONG_MIN /* a /proc value that could not be read */

/* ---- name tables ------------------------------------------------------ */

/* IORING_OP_* in enum order, up to the newest the probe knows. */
static const char *const op_names[] = {
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",       /* 48, the last in liburing 2.3's headers */
    "READ_MULTISHOT",   /* 49, Linux 6.7 */
    "WAITID",           /* 50, 6.7 */
    "FUTEX_WAIT",       /* 51, 6.7 */
    "FUTEX_WAKE",       /* 52, 6.7 */
    "FUTEX_WAITV",      /* 53, 6.7 */
    "FIXED_FD_INSTALL", /* 54, 6.8 */
    "FTRUNCATE",        /* 55, 6.9 */
    "BIND",             /* 56, 6.11 */
    "LISTEN",           /* 57, 6.11 */
    "RECV_ZC",          /* 58, 6.15 */
    "EPOLL_WAIT",       /* 59, 6.15 */
    "READV_FIXED",      /* 60, 6.15 */
    "WRITEV_FIXED",     /* 61, 6.15 */
    "PIPE",             /* 62, 6.16 */
    "NOP128",           /* 63, 6.19 */
    "URING_CMD128",     /* 64, 6.19 */
};
#define NOPNAMES (sizeof(op_names) / sizeof(op_names[0]))

/* IORING_FEAT_* by bit. */
static const char *const feat_names[] = {
    "SINGLE_MMAP",     "NODROP",         "SUBMIT_STABLE",   "RW_CUR_POS",
    "CUR_PERSONALITY", "FAST_POLL",      "POLL_32BITS",     "SQPOLL_NONFIXED",
    "EXT_ARG",         "NATIVE_WORKERS", "RSRC_TAGS",       "CQE_SKIP",
    "LINKED_FILE",     "REG_REG_RING",   "RECVSEND_BUNDLE", "MIN_TIMEOUT",
    "RW_ATTR",         "NO_IOWAIT",
};
#define NFEATNAMES (sizeof(feat_names) / sizeof(feat_names[0]))

/* IORING_SETUP_* by bit. */
static const char *const setup_names[PROBE_KNOWN_SETUP_BITS] = {
    "IOPOLL",        "SQPOLL",        "SQ_AFF",     "CQSIZE",
    "CLAMP",         "ATTACH_WQ",     "R_DISABLED", "SUBMIT_ALL",
    "COOP_TASKRUN",  "TASKRUN_FLAG",  "SQE128",     "CQE32",
    "SINGLE_ISSUER", "DEFER_TASKRUN", "NO_MMAP",    "REGISTERED_FD_ONLY",
    "NO_SQARRAY",    "HYBRID_IOPOLL", "CQE_MIXED",  "SQE_MIXED",
};

/* What each flag is tried with, and what a reader should know about it. */
static const struct flag_need {
    unsigned with;
    const char *note;
} flag_needs[PROBE_KNOWN_SETUP_BITS] = {
    [0] = {0, "polled completions (O_DIRECT)"},
    [1] = {0, "a kernel thread submits"},
    [2] = {IORING_SETUP_SQPOLL, "pins the SQPOLL thread"},
    [3] = {0, "caller-sized CQ (tried 2x SQ)"},
    [4] = {0, "clamp oversized rings"},
    [5] = {0, "share another ring's io-wq"},
    [6] = {0, "ring starts disabled"},
    [7] = {0, "submit past a failed SQE"},
    [8] = {0, "no IPI on completion"},
    [9] = {IORING_SETUP_COOP_TASKRUN, "flag pending task work"},
    [10] = {0, "128-byte SQEs"},
    [11] = {0, "32-byte CQEs"},
    [12] = {0, "one task submits"},
    [13] = {IORING_SETUP_SINGLE_ISSUER, "task work runs in wait only"},
    [14] = {0, "rings in caller memory"},
    [15] = {IORING_SETUP_NO_MMAP, "a registered index, no fd"},
    [16] = {0, "no SQ index array"},
    [17] = {IORING_SETUP_IOPOLL, "sleep a while before polling"},
    [18] = {0, "16- and 32-byte CQEs mixed"},
    [19] = {0, "64- and 128-byte SQEs mixed"},
};

/* Combinations the kernel must refuse (io_uring_sanitise_params et al.). */
static const struct flag_rule {
    const char *rule;
    unsigned flags;
} flag_rules[] = {
    {"SQ_AFF needs SQPOLL", IORING_SETUP_SQ_AFF},
    {"TASKRUN_FLAG needs COOP_ or DEFER_TASKRUN", IORING_SETUP_TASKRUN_FLAG},
    {"DEFER_TASKRUN needs SINGLE_ISSUER", IORING_SETUP_DEFER_TASKRUN},
    {"REGISTERED_FD_ONLY needs NO_MMAP", IORING_SETUP_REGISTERED_FD_ONLY},
    {"HYBRID_IOPOLL needs IOPOLL", IORING_SETUP_HYBRID_IOPOLL},
    {"SQPOLL excludes COOP_TASKRUN",
     IORING_SETUP_SQPOLL | IORING_SETUP_COOP_TASKRUN},
    {"SQPOLL excludes DEFER_TASKRUN", IORING_SETUP_SQPOLL |
                                          IORING_SETUP_SINGLE_ISSUER |
                                          IORING_SETUP_DEFER_TASKRUN},
    {"CQE32 excludes CQE_MIXED", IORING_SETUP_CQE32 | IORING_SETUP_CQE_MIXED},
    {"SQE128 excludes SQE_MIXED", IORING_SETUP_SQE128 | IORING_SETUP_SQE_MIXED},
};
#define NRULES (sizeof(flag_rules) / sizeof(flag_rules[0]))

/* ---- the report ------------------------------------------------------- */

#define NFASTPATHS 32

struct flag_result {
    bool tried;
    bool accepted;
    int err; /* -errno */
};

struct loop_result {
    bool ok;
    int err;
    char backend[16];
    int fallback_errno;
    char fallback_reason[256];
    unsigned features;
    char reasons[NFASTPATHS][128]; /* rl_loop_feature_reason() by bit */
};

struct report {
    struct utsname uts;

    /* io_uring_setup and why it failed */
    bool setup_ok;
    int setup_err;
    bool nop_ok;
    const char *cause;
    char explanation[256];
    long uring_disabled, uring_group; /* UNKNOWN: no such file */
    long seccomp_mode, seccomp_filters;
    long long memlock; /* -1: unlimited, -2: unknown */
    unsigned sq_entries, cq_entries;
    unsigned features;

    struct flag_result flags[PROBE_KNOWN_SETUP_BITS];
    unsigned unknown_flags;
    struct flag_result rules[NRULES];

    int last_op;           /* -1: no probe */
    uint8_t op_state[256]; /* 0 beyond last_op, 1 unsupported, 2 supported */

    const char *env_backend, *env_disable, *env_enable;
    unsigned env_disable_bits, env_enable_bits;
    struct loop_result loop, autoloop;
    unsigned supported; /* fast paths that can be active here */
};

/* ---- system facts ----------------------------------------------------- */

/* One integer from a /proc/sys file; UNKNOWN if it cannot be read. */
static long read_sysctl(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = UNKNOWN;

    if (!f)
        return UNKNOWN;
    if (fscanf(f, "%ld", &v) != 1)
        v = UNKNOWN;
    fclose(f);
    return v;
}

/* "Key:\tN" from /proc/self/status; UNKNOWN if absent. */
static long read_status_field(const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    FILE *f = fopen("/proc/self/status", "re");
    long v = UNKNOWN;

    if (!f)
        return UNKNOWN;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static void probe_system(struct report *r)
{
    struct rlimit rl;

    uname(&r->uts);
    r->uring_disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
    r->uring_group = read_sysctl("/proc/sys/kernel/io_uring_group");
    r->seccomp_mode = read_status_field("Seccomp");
    r->seccomp_filters = read_status_field("Seccomp_filters");
    if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
        r->memlock = -2;
    else if (rl.rlim_cur == RLIM_INFINITY)
        r->memlock = -1;
    else
        r->memlock = (long long)rl.rlim_cur;
}

/* The errnos io_uring_setup and the loop are known to return. */
static const struct {
    int err;
    const char *name;
} errno_names[] = {
    {EPERM, "EPERM"},   {ENOENT, "ENOENT"},       {EINTR, "EINTR"},
    {EBADF, "EBADF"},   {EAGAIN, "EAGAIN"},       {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"}, {EFAULT, "EFAULT"},       {EBUSY, "EBUSY"},
    {ENODEV, "ENODEV"}, {EINVAL, "EINVAL"},       {EMFILE, "EMFILE"},
    {ENFILE, "ENFILE"}, {ERANGE, "ERANGE"},       {ENOSYS, "ENOSYS"},
    {ENXIO, "ENXIO"},   {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"},
};

/* "EPERM" for -EPERM (or EPERM); "" for 0. */
static const char *errno_name(int err)
{
    size_t i;

    if (err < 0)
        err = -err;
    if (!err)
        return "";
    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].err == err)
            return errno_names[i].name;
    return "E?";
}

/* True if the process is in group gid (primary or supplementary). */
static bool in_group(long gid)
{
    gid_t groups[256];
    int i, n;

    if (gid < 0) /* -1: no group */
        return false;
    if (getegid() == (gid_t)gid)
        return true;
    n = getgroups(256, groups);
    for (i = 0; i < n; i++)
        if (groups[i] == (gid_t)gid)
            return true;
    return false;
}

/* Why did io_uring_setup fail? Fills cause and explanation. */
static void diagnose(struct report *r)
{
    char *e = r->explanation;
    size_t n = sizeof(r->explanation);
    bool filtered = r->seccomp_mode == 2;

    if (r->setup_ok) {
        r->cause = "ok";
        snprintf(e, n, "io_uring rings can be set up");
    } else if (r->setup_err == -ENOSYS && filtered) {
        r->cause = "seccomp";
        snprintf(e, n,
                 "io_uring_setup: ENOSYS under a seccomp filter (%ld "
                 "installed); the filter most likely refuses it",
                 r->seccomp_filters);
    } else if (r->setup_err == -ENOSYS) {
        r->cause = "enosys";
        snprintf(e, n,
                 "io_uring_setup: ENOSYS: this kernel has no io_uring "
                 "(CONFIG_IO_URING=n, or Linux < 5.1)");
    } else if (r->setup_err == -EPERM && r->uring_disabled == 2) {
        r->cause = "sysctl_disabled";
        snprintf(e, n,
                 "io_uring_setup: EPERM: kernel.io_uring_disabled=2 "
                 "disables io_uring for every process");
    } else if (r->setup_err == -EPERM && r->uring_disabled == 1 &&
               geteuid() != 0 && !in_group(r->uring_group)) {
        r->cause = "sysctl_group";
        snprintf(e, n,
                 "io_uring_setup: EPERM: kernel.io_uring_disabled=1 allows "
                 "only CAP_SYS_ADMIN and kernel.io_uring_group=%ld",
                 r->uring_group);
    } else if ((r->setup_err == -EPERM || r->setup_err == -EACCES) &&
               filtered) {
        r->cause = "seccomp";
        snprintf(e, n,
                 "io_uring_setup: %s under a seccomp filter (%ld installed, "
                 "kernel.io_uring_disabled=%ld); the filter refuses it",
                 errno_name(r->setup_err), r->seccomp_filters,
                 r->uring_disabled);
    } else if (r->setup_err == -ENOMEM) {
        r->cause = "memlock";
        if (r->memlock >= 0)
            snprintf(e, n,
                     "io_uring_setup: ENOMEM: RLIMIT_MEMLOCK is %lld bytes; "
                     "Linux < 5.12 charges rings to it (raise ulimit -l)",
                     r->memlock);
        else
            snprintf(e, n,
                     "io_uring_setup: ENOMEM with RLIMIT_MEMLOCK "
                     "unlimited: the kernel is out of memory");
    } else {
        r->cause = "other";
        snprintf(e, n, "io_uring_setup: %s (%s)%s", errno_name(r->setup_err),
                 strerror(-r->setup_err),
                 r->setup_err == -EPERM
                     ? "; a security module or container runtime refuses it"
                     : "");
    }
}

/* ---- the ring --------------------------------------------------------- */

/* Push one NOP through ring and back. 0 or -errno. */
static int ring_nop(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe;
    int ret;

    if (!sqe)
        return -EBUSY;
    io_uring_prep_nop(sqe);
    ret = io_uring_submit(ring);
    if (ret < 0)
        return ret;
    ret = io_uring_wait_cqe(ring, &cqe);
    if (ret < 0)
        return ret;
    ret = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return ret;
}

static void probe_opcodes(struct report *r, struct io_uring *ring)
{
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    int i;

    r->last_op = -1;
    if (!p)
        return;
    r->last_op = p->last_op;
    for (i = 0; i < p->ops_len && i <= p->last_op; i++)
        r->op_state[p->ops[i].op] =
            (p->ops[i].flags & IO_URING_OP_SUPPORTED) ? 2 : 1;
    io_uring_free_probe(p);
}

/* Set up the ring ringloop would use, the way liburing does. */
static void probe_ring(struct report *r)
{
    struct io_uring_params p;
    struct io_uring ring;
    int ret;

    memset(&p, 0, sizeof(p));
    r->last_op = -1;
    ret = io_uring_queue_init_params(PROBE_ENTRIES, &ring, &p);
    r->setup_ok = ret == 0;
    r->setup_err = ret < 0 ? ret : 0;
    if (ret < 0)
        return;
    r->sq_entries = p.sq_entries;
    r->cq_entries = p.cq_entries;
    r->features = p.features;
    r->nop_ok = ring_nop(&ring) == 0;
    probe_opcodes(r, &ring);
    io_uring_queue_exit(&ring);
}

/* ---- setup flags ------------------------------------------------------ */

/* struct io_uring_params as the kernel has it (user_addr is resv2 in 2.3). */
struct setup_params {
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle;
    uint32_t features, wq_fd, resv[3];
    struct {
        uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array;
        uint32_t resv1;
        uint64_t user_addr;
    } sq_off;
    struct {
        uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags;
        uint32_t resv1;
        uint64_t user_addr;
    } cq_off;
};

/* A ring set up with REGISTERED_FD_ONLY has no fd, only a slot. */
static void unregister_ring(int index)
{
    struct io_uring_rsrc_update up = {.offset = (uint32_t)index};

    syscall(__NR_io_uring_register, index,
            IORING_UNREGISTER_RING_FDS | IORING_REGISTER_USE_REGISTERED_RING,
            &up, 1);
}

/*
 * Try io_uring_setup(2) with flags and what they need filled in: SQ_AFF a
 * CPU, CQSIZE a CQ size, ATTACH_WQ wq_fd, NO_MMAP one page per ring.
 * Returns 0 if the kernel took it, else -errno.
 */
static int try_setup(unsigned flags, int wq_fd)
{
    long page = sysconf(_SC_PAGESIZE);
    struct setup_params p;
    void *mem = MAP_FAILED;
    int fd, cpu, ret = 0;

    memset(&p, 0, sizeof(p));
    p.flags = flags;
    cpu = sched_getcpu();
    p.sq_thread_cpu = cpu < 0 ? 0 : (uint32_t)cpu;
    p.sq_thread_idle = 10; /* ms */
    p.cq_entries = 2 * PROBE_ENTRIES;
    p.wq_fd = (uint32_t)wq_fd;
    if (flags & IORING_SETUP_NO_MMAP) {
        mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return -errno;
        memset(mem, 0, 2 * page);
        p.cq_off.user_addr = (uintptr_t)mem;
        p.sq_off.user_addr = (uintptr_t)mem + page;
    }
    fd = (int)syscall(__NR_io_uring_setup, PROBE_ENTRIES, &p);
    if (fd < 0)
        ret = -errno;
    else if (flags & IORING_SETUP_REGISTERED_FD_ONLY)
        unregister_ring(fd);
    else
        close(fd);
    if (mem != MAP_FAILED)
        munmap(mem, 2 * page);
    return ret;
}

/* A plain ring whose io-wq ATTACH_WQ can share. fd or -errno. */
static int plain_ring(void)
{
    struct setup_params p;
    int fd;

    memset(&p, 0, sizeof(p));
    fd = (int)syscall(__NR_io_uring_setup, PROBE_ENTRIES, &p);
    return fd < 0 ? -errno : fd;
}

static void probe_flags(struct report *r)
{
    int wq_fd = plain_ring(), ret;
    unsigned i, j, bit;

    for (i = 0; i < PROBE_KNOWN_SETUP_BITS; i++) {
        bit = 1u << i;
        ret = try_setup(bit | flag_needs[i].with, wq_fd);
        r->flags[i].tried = true;
        r->flags[i].accepted = ret == 0;
        r->flags[i].err = ret;
    }
    for (i = PROBE_KNOWN_SETUP_BITS; i < 32; i++)
        if (try_setup(1u << i, wq_fd) == 0)
            r->unknown_flags |= 1u << i;
    if (wq_fd >= 0)
        close(wq_fd);

    /* A rule is worth trying only where each of its flags is accepted. */
    for (j = 0; j < NRULES; j++) {
        bool ok = true;

        for (i = 0; i < PROBE_KNOWN_SETUP_BITS; i++)
            if (flag_rules[j].flags & (1u << i) && !r->flags[i].accepted)
                ok = false;
        r->rules[j].tried = ok;
        if (!ok)
            continue;
        ret = try_setup(flag_rules[j].flags, -1);
        r->rules[j].accepted = ret == 0;
        r->rules[j].err = ret;
    }
}

/* ---- ringloop --------------------------------------------------------- */

static void loop_probe(struct loop_result *lr, const struct rl_loop_config *c)
{
    rl_loop *loop;
    int ret = rl_loop_new(&loop, c);

    lr->ok = ret == 0;
    lr->err = ret;
    if (ret < 0)
        return;
    snprintf(lr->backend, sizeof(lr->backend), "%s",
             rl_loop_backend_name(loop));
    lr->fallback_errno = rl_loop_fallback_errno(loop);
    snprintf(lr->fallback_reason, sizeof(lr->fallback_reason), "%s",
             rl_loop_fallback_reason(loop) ? rl_loop_fallback_reason(loop)
                                           : "");
    lr->features = rl_loop_features(loop);
    for (unsigned i = 0; i < NFASTPATHS; i++)
        snprintf(lr->reasons[i], sizeof(lr->reasons[i]), "%s",
                 rl_loop_feature_reason(loop, 1u << i));
    rl_loop_free(loop);
}

/*
 * Create a loop as this environment configures it; then, with the
 * environment's RINGLOOP_BACKEND, RINGLOOP_DISABLE and RINGLOOP_ENABLE
 * cleared, an auto loop, one with the auto loop's fast paths switched off,
 * which shows the fallbacks this kernel supports, and one asking for every
 * opt-in, which shows those the kernel takes.
 */
static void probe_loops(struct report *r)
{
    char *b = r->env_backend ? strdup(r->env_backend) : NULL;
    char *d = r->env_disable ? strdup(r->env_disable) : NULL;
    char *e = r->env_enable ? strdup(r->env_enable) : NULL;
    struct rl_loop_config cfg;
    struct loop_result alt;
    unsigned bits = 0;

    if (r->env_disable && rl_feature_parse(r->env_disable, &bits) == 0)
        r->env_disable_bits = bits;
    bits = 0;
    if (r->env_enable && rl_feature_parse(r->env_enable, &bits) == 0)
        r->env_enable_bits = bits;
    loop_probe(&r->loop, NULL);
    unsetenv("RINGLOOP_BACKEND");
    unsetenv("RINGLOOP_DISABLE");
    unsetenv("RINGLOOP_ENABLE");
    loop_probe(&r->autoloop, NULL);
    r->supported = r->autoloop.features;
    if (r->autoloop.features) {
        rl_loop_config_init(&cfg);
        cfg.disable = r->autoloop.features;
        memset(&alt, 0, sizeof(alt));
        loop_probe(&alt, &cfg);
        r->supported |= alt.features;
        rl_loop_config_init(&cfg);
        cfg.enable = RL_FEAT_OPT_IN;
        memset(&alt, 0, sizeof(alt));
        loop_probe(&alt, &cfg);
        r->supported |= alt.features & RL_FEAT_OPT_IN;
    }
    if (b)
        setenv("RINGLOOP_BACKEND", b, 1);
    if (d)
        setenv("RINGLOOP_DISABLE", d, 1);
    if (e)
        setenv("RINGLOOP_ENABLE", e, 1);
    free(b);
    free(d);
    free(e);
}

static bool usable(const struct report *r)
{
    return r->setup_ok && r->nop_ok && r->autoloop.ok &&
           !strcmp(r->autoloop.backend, "uring");
}

static const char *fast_path_status(const struct report *r, unsigned bit)
{
    if (r->loop.features & bit)
        return "active";
    if (r->env_disable_bits & bit)
        return "disabled";
    if (r->autoloop.features & bit)
        return "inactive";
    if ((r->supported & bit) && (bit & RL_FEAT_OPT_IN))
        return "opt_in";
    if (r->supported & bit)
        return "fallback";
    return "unavailable";
}

static const char *op_name(unsigned op, char *buf, size_t len)
{
    if (op < NOPNAMES)
        return op_names[op];
    snprintf(buf, len, "op_%u", op);
    return buf;
}

/* ---- JSON ------------------------------------------------------------- */

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_key_str(const char *key, const char *val, const char *end)
{
    printf("\"%s\": ", key);
    json_str(val);
    fputs(end, stdout);
}

/* v as a JSON number, or null if v is UNKNOWN. */
static void json_key_long(const char *key, long v, const char *end)
{
    if (v == UNKNOWN)
        printf("\"%s\": null%s", key, end);
    else
        printf("\"%s\": %ld%s", key, v, end);
}

static void json_key_nullable_str(const char *key, const char *val,
                                  const char *end)
{
    if (val)
        json_key_str(key, val, end);
    else
        printf("\"%s\": null%s", key, end);
}

/* A JSON array of the names of flags' set bits, from table. */
static void json_bit_names(unsigned flags, const char *const *table, unsigned n)
{
    const char *sep = "";
    unsigned i;

    putchar('[');
    for (i = 0; i < n; i++)
        if (flags & (1u << i)) {
            fputs(sep, stdout);
            json_str(table[i]);
            sep = ", ";
        }
    putchar(']');
}

static void json_feature_words(unsigned bits)
{
    const char *sep = "";
    unsigned i;

    putchar('[');
    for (i = 0; i < NFASTPATHS; i++)
        if (bits & (1u << i) && rl_feature_name(1u << i)) {
            fputs(sep, stdout);
            json_str(rl_feature_name(1u << i));
            sep = ", ";
        }
    putchar(']');
}

static void json_loop(const char *key, const struct loop_result *lr,
                      const struct report *r)
{
    printf("  \"%s\": {\"ok\": %s, ", key, lr->ok ? "true" : "false");
    json_key_long("errno", lr->err, ", ");
    json_key_str("backend", lr->backend, ", ");
    json_key_long("fallback_errno", lr->fallback_errno, ", ");
    json_key_str("fallback_reason", lr->fallback_reason, ", ");
    fputs("\"features\": ", stdout);
    json_feature_words(lr->features);
    if (r) {
        fputs(", ", stdout);
        json_key_nullable_str("env_backend", r->env_backend, ", ");
        json_key_nullable_str("env_disable", r->env_disable, ", ");
        json_key_nullable_str("env_enable", r->env_enable, "");
    }
    fputs("},\n", stdout);
}

static void json_io_uring(const struct report *r)
{
    fputs("  \"io_uring\": {", stdout);
    printf("\"setup_ok\": %s, ", r->setup_ok ? "true" : "false");
    json_key_long("setup_errno", r->setup_err, ", ");
    json_key_str("setup_error", errno_name(r->setup_err), ", ");
    printf("\"nop_ok\": %s, ", r->nop_ok ? "true" : "false");
    json_key_str("cause", r->cause, ", ");
    json_key_str("explanation", r->explanation, ",\n    ");
    json_key_long("io_uring_disabled", r->uring_disabled, ", ");
    json_key_long("io_uring_group", r->uring_group, ", ");
    json_key_long("seccomp_mode", r->seccomp_mode, ", ");
    json_key_long("seccomp_filters", r->seccomp_filters, ", ");
    if (r->memlock < 0)
        fputs("\"memlock_limit\": null, ", stdout);
    else
        printf("\"memlock_limit\": %lld, ", r->memlock);
    printf("\"sq_entries\": %u, \"cq_entries\": %u},\n", r->sq_entries,
           r->cq_entries);
}

static void json_setup_flags(const struct report *r)
{
    const char *sep = "";
    unsigned i;

    fputs("  \"setup_flags\": [", stdout);
    for (i = 0; i < PROBE_KNOWN_SETUP_BITS && r->setup_ok; i++) {
        const struct flag_result *f = &r->flags[i];

        printf("%s\n    {", sep);
        json_key_str("name", setup_names[i], ", ");
        printf("\"value\": %u, \"tried_with\": ", 1u << i);
        json_bit_names(flag_needs[i].with, setup_names, PROBE_KNOWN_SETUP_BITS);
        printf(", \"accepted\": %s, ", f->accepted ? "true" : "false");
        json_key_long("errno", f->err, ", ");
        json_key_str("error", errno_name(f->err), ", ");
        json_key_str("note", flag_needs[i].note, "}");
        sep = ",";
    }
    fputs("],\n  \"unknown_setup_flags\": [", stdout);
    sep = "";
    for (i = PROBE_KNOWN_SETUP_BITS; i < 32; i++)
        if (r->unknown_flags & (1u << i)) {
            printf("%s%u", sep, 1u << i);
            sep = ", ";
        }
    fputs("],\n  \"setup_flag_rules\": [", stdout);
    sep = "";
    for (i = 0; i < NRULES && r->setup_ok; i++) {
        printf("%s\n    {", sep);
        json_key_str("rule", flag_rules[i].rule, ", ");
        fputs("\"flags\": ", stdout);
        json_bit_names(flag_rules[i].flags, setup_names,
                       PROBE_KNOWN_SETUP_BITS);
        printf(", \"applicable\": %s, \"enforced\": %s, ",
               r->rules[i].tried ? "true" : "false",
               r->rules[i].tried && !r->rules[i].accepted ? "true" : "false");
        json_key_long("errno", r->rules[i].err, "}");
        sep = ",";
    }
    fputs("],\n", stdout);
}

static void json_kernel_features(const struct report *r)
{
    const char *sep = "";
    unsigned i;

    printf("  \"features\": {\"value\": %u, \"names\": ", r->features);
    json_bit_names(r->features, feat_names, NFEATNAMES);
    fputs(", \"unknown_bits\": [", stdout);
    for (i = NFEATNAMES; i < 32; i++)
        if (r->features & (1u << i)) {
            printf("%s%u", sep, 1u << i);
            sep = ", ";
        }
    fputs("]},\n", stdout);
}

static void json_opcodes(const struct report *r)
{
    char buf[16];
    const char *sep;
    int i, want;

    printf("  \"opcodes\": {\"last_op\": %d", r->last_op);
    for (want = 2; want >= 1; want--) {
        printf(", \"%s\": [", want == 2 ? "supported" : "unsupported");
        sep = "";
        for (i = 0; i <= r->last_op; i++)
            if (r->op_state[i] == want) {
                fputs(sep, stdout);
                json_str(op_name((unsigned)i, buf, sizeof(buf)));
                sep = ", ";
            }
        putchar(']');
    }
    fputs("},\n", stdout);
}

static void json_fast_paths(const struct report *r)
{
    const char *sep = "";
    unsigned i, bit;

    fputs("  \"fast_paths\": [", stdout);
    for (i = 0; i < NFASTPATHS; i++) {
        bit = 1u << i;
        if (!rl_feature_name(bit))
            continue;
        printf("%s\n    {", sep);
        json_key_str("word", rl_feature_name(bit), ", ");
        printf("\"bit\": %u, \"opt_in\": %s, \"supported\": %s, "
               "\"available\": %s, \"active\": %s, \"disabled\": %s, "
               "\"enabled\": %s, ",
               bit, bit & RL_FEAT_OPT_IN ? "true" : "false",
               r->supported & bit ? "true" : "false",
               r->autoloop.features & bit ? "true" : "false",
               r->loop.features & bit ? "true" : "false",
               r->env_disable_bits & bit ? "true" : "false",
               r->env_enable_bits & bit ? "true" : "false");
        json_key_str("reason", r->loop.reasons[i], ", ");
        json_key_str("status", fast_path_status(r, bit), "}");
        sep = ",";
    }
    fputs("]\n", stdout);
}

static void print_json(const struct report *r)
{
    fputs("{\n  \"probe_version\": 1,\n", stdout);
    fputs("  ", stdout);
    json_key_str("ringloop_version", RINGLOOP_VERSION, ",\n  ");
    json_key_str("liburing_version", RL_LIBURING_VERSION, ",\n");
    printf("  \"usable\": %s,\n", usable(r) ? "true" : "false");
    fputs("  \"kernel\": {", stdout);
    json_key_str("sysname", r->uts.sysname, ", ");
    json_key_str("release", r->uts.release, ", ");
    json_key_str("version", r->uts.version, ", ");
    json_key_str("machine", r->uts.machine, "},\n");
    json_io_uring(r);
    json_setup_flags(r);
    json_kernel_features(r);
    json_opcodes(r);
    json_loop("loop", &r->loop, r);
    json_loop("auto", &r->autoloop, NULL);
    json_fast_paths(r);
    fputs("}\n", stdout);
}

/* ---- the table -------------------------------------------------------- */

/* Print words wrapped at 78 columns, each line indented by 2. */
struct wrap {
    int col;
};

static void wrap_word(struct wrap *w, const char *s)
{
    int len = (int)strlen(s);

    if (w->col > 2 && w->col + 1 + len > 78) {
        fputs("\n ", stdout);
        w->col = 1;
    }
    printf(" %s", s);
    w->col += 1 + len;
}

static void wrap_end(struct wrap *w)
{
    if (w->col > 0)
        putchar('\n');
    w->col = 0;
}

/* Print text, starting at column at, wrapped at 78 columns; continuation
 * lines start at column col. */
static void wrap_text(const char *text, int at, int col)
{
    const char *p = text;

    while (*p) {
        int len = (int)strcspn(p, " ");

        if (p != text && at + 1 + len > 78) {
            printf("\n%*s", col, "");
            at = col;
        } else if (p != text) {
            putchar(' ');
            at++;
        }
        printf("%.*s", len, p);
        at += len;
        p += len;
        p += strspn(p, " ");
    }
    putchar('\n');
}

static void table_header(const struct report *r)
{
    printf("ringloop-probe %s (liburing %s)\n\n", RINGLOOP_VERSION,
           RL_LIBURING_VERSION);
    printf("kernel          %s %s %s\n", r->uts.sysname, r->uts.release,
           r->uts.machine);
    if (r->setup_ok)
        printf("io_uring        %s (SQ %u, CQ %u entries; NOP %s)\n",
               usable(r) ? "usable" : "set up, but not used", r->sq_entries,
               r->cq_entries, r->nop_ok ? "ok" : "FAILED");
    else
        printf("io_uring        NOT usable: io_uring_setup fails with %s\n",
               errno_name(r->setup_err));
    printf("  cause         %s: ", r->cause);
    wrap_text(r->explanation, 18 + (int)strlen(r->cause), 16);
    fputs("  system        io_uring_disabled=", stdout);
    if (r->uring_disabled == UNKNOWN)
        fputs("(absent)", stdout);
    else
        printf("%ld", r->uring_disabled);
    printf(" seccomp=%ld (%ld filter%s) memlock=", r->seccomp_mode,
           r->seccomp_filters, r->seccomp_filters == 1 ? "" : "s");
    if (r->memlock == -1)
        fputs("unlimited\n", stdout);
    else
        printf("%lld\n", r->memlock);
}

static void table_backend(const char *what, const struct loop_result *lr)
{
    if (!lr->ok) {
        printf("%-15s cannot create a loop: %s\n", what, strerror(-lr->err));
        return;
    }
    printf("%-15s %s\n", what, lr->backend);
    if (lr->fallback_errno || lr->fallback_reason[0]) {
        fputs("  fell back     ", stdout);
        wrap_text(lr->fallback_reason, 16, 16);
    }
}

static void table_flags(const struct report *r)
{
    unsigned i;

    printf("\nsetup flags (each tried on its own, or with what it needs)\n"
           "  %-19s %-11s %-14s %s\n",
           "flag", "accepted", "tried with", "what it does");
    for (i = 0; i < PROBE_KNOWN_SETUP_BITS; i++) {
        const struct flag_result *f = &r->flags[i];
        char with[32] = "", res[24];

        if (flag_needs[i].with) {
            unsigned b = (unsigned)__builtin_ctz(flag_needs[i].with);
            snprintf(with, sizeof(with), "+%s", setup_names[b]);
        }
        snprintf(res, sizeof(res), "%s%s%s%s", f->accepted ? "yes" : "no",
                 f->err ? " (" : "", errno_name(f->err), f->err ? ")" : "");
        printf("  %-19s %-11s %-14s %s\n", setup_names[i], res, with,
               flag_needs[i].note);
    }
    for (i = PROBE_KNOWN_SETUP_BITS; i < 32; i++)
        if (r->unknown_flags & (1u << i))
            printf("  bit %-15u yes (unknown to this probe)\n", i);
    printf("\nflag combination rules\n");
    for (i = 0; i < NRULES; i++)
        printf("  %-45s %s\n", flag_rules[i].rule,
               !r->rules[i].tried     ? "n/a (a flag is not accepted)"
               : r->rules[i].accepted ? "NOT enforced (accepted)"
                                      : "enforced");
}

static void table_kernel(const struct report *r)
{
    struct wrap w = {0};
    char buf[16];
    unsigned i, nsup = 0;

    printf("\nfeatures (0x%x)\n ", r->features);
    w.col = 1;
    for (i = 0; i < 32; i++)
        if (r->features & (1u << i)) {
            if (i < NFEATNAMES) {
                wrap_word(&w, feat_names[i]);
            } else {
                snprintf(buf, sizeof(buf), "bit_%u", i);
                wrap_word(&w, buf);
            }
        }
    wrap_end(&w);
    for (i = 0; (int)i <= r->last_op; i++)
        nsup += r->op_state[i] == 2;
    printf("\nopcodes (%u of %d supported, last_op %d)\n ", nsup,
           r->last_op + 1, r->last_op);
    w.col = 1;
    for (i = 0; (int)i <= r->last_op; i++)
        if (r->op_state[i] == 2)
            wrap_word(&w, op_name(i, buf, sizeof(buf)));
    wrap_end(&w);
    if (nsup < (unsigned)(r->last_op + 1)) {
        fputs("  not supported:", stdout);
        w.col = 16;
        for (i = 0; (int)i <= r->last_op; i++)
            if (r->op_state[i] == 1)
                wrap_word(&w, op_name(i, buf, sizeof(buf)));
        wrap_end(&w);
    }
}

static void table_fast_paths(const struct report *r)
{
    unsigned i, bit;

    printf("\nringloop fast paths (RINGLOOP_DISABLE=<word>,... turns one off;"
           "\nRINGLOOP_ENABLE=<word>,... turns an opt-in on)"
           "\n  %-18s %-12s %-10s %-10s %s\n",
           "word", "status", "auto loop", "supported", "opt-in");
    for (i = 0; i < NFASTPATHS; i++) {
        bit = 1u << i;
        if (!rl_feature_name(bit))
            continue;
        printf("  %-18s %-12s %-10s %-10s %s\n", rl_feature_name(bit),
               fast_path_status(r, bit),
               r->autoloop.features & bit ? "yes" : "no",
               r->supported & bit ? "yes" : "no",
               bit & RL_FEAT_OPT_IN ? "yes" : "no");
        if (r->loop.reasons[i][0]) {
            fputs("    not used: ", stdout);
            wrap_text(r->loop.reasons[i], 14, 14);
        }
    }
    fputs("  (inactive: supported but off in this environment; opt_in: "
          "supported, off\n  unless RINGLOOP_ENABLE names it; fallback: "
          "used when a preferred path is off;\n  unavailable: not with this "
          "kernel or backend)\n",
          stdout);
}

static void print_table(const struct report *r)
{
    table_header(r);
    table_backend("auto backend", &r->autoloop);
    printf("this env        RINGLOOP_BACKEND=%s RINGLOOP_DISABLE=%s\n"
           "                RINGLOOP_ENABLE=%s\n",
           r->env_backend ? r->env_backend : "(unset)",
           r->env_disable ? r->env_disable : "(unset)",
           r->env_enable ? r->env_enable : "(unset)");
    table_backend("  loop backend", &r->loop);
    if (r->setup_ok) {
        table_flags(r);
        table_kernel(r);
    }
    table_fast_paths(r);
    /* msg_ring: docs/multithreading.md */
    printf("  ring-to-ring wake (msg_ring): IORING_OP_MSG_RING %s; fds are "
           "handed over\n  as numbers (no IORING_MSG_SEND_FD)\n",
           r->op_state[IORING_OP_MSG_RING] == 2   ? "supported"
           : r->op_state[IORING_OP_MSG_RING] == 1 ? "not supported"
                                                  : "unknown");
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: ringloop-probe [--json] [--help]\n"
          "\n"
          "Report what this kernel's io_uring supports (setup flags, "
          "features,\nopcodes), why it is refused if it is, which backend "
          "ringloop's auto\nselection picks, and which ringloop fast paths "
          "are active, each with the\nRINGLOOP_DISABLE word that turns it "
          "off (RINGLOOP_ENABLE turns an opt-in on).\n"
          "\n"
          "  --json   print one JSON object (fields documented in "
          "tools/ringloop-probe.c)\n"
          "  --help   this text\n"
          "\n"
          "Exit status: 0 io_uring usable, 1 not usable, 2 usage error.\n",
          f);
}

int main(int argc, char **argv)
{
    static struct report r;
    bool json = false;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ringloop-probe: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    r.env_backend = getenv("RINGLOOP_BACKEND");
    r.env_disable = getenv("RINGLOOP_DISABLE");
    r.env_enable = getenv("RINGLOOP_ENABLE");
    probe_system(&r);
    probe_ring(&r);
    diagnose(&r);
    if (r.setup_ok)
        probe_flags(&r);
    probe_loops(&r);
    if (json)
        print_json(&r);
    else
        print_table(&r);
    fflush(stdout);
    if (r.loop.err == -EINVAL &&
        (r.env_backend || r.env_disable || r.env_enable)) {
        fprintf(stderr, "ringloop-probe: the library refuses%s%s%s%s%s%s\n",
                r.env_backend ? " RINGLOOP_BACKEND=" : "",
                r.env_backend ? r.env_backend : "",
                r.env_disable ? " RINGLOOP_DISABLE=" : "",
                r.env_disable ? r.env_disable : "",
                r.env_enable ? " RINGLOOP_ENABLE=" : "",
                r.env_enable ? r.env_enable : "");
        return 2;
    }
    return usable(&r) ? 0 : 1;
}
