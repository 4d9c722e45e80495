/*
 * io_uring backend: ring setup (stepping down flags), the probe, wait()
 * (one submit-and-wait per loop iteration, completions drained in batches),
 * cross-thread wakeup, fork and teardown. Submission and completion
 * dispatch live in uring/submit.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "uring/uring.h"

#define KVER(maj, min) ((maj) << 16 | (min))

/* sqpoll: how long the SQ thread keeps polling an empty SQ before it
 * sleeps (and the next submission costs a wakeup enter). */
#define RL_URING_SQPOLL_IDLE_MS 50
/* napi: how long a wait busy-polls the NIC queues before it sleeps. */
#define RL_URING_NAPI_BUSY_POLL_US 50

/* Ring setup, best first; each step is tried only if the previous one
 * failed with -EINVAL (an older kernel). */
static const struct {
    unsigned flags;
    unsigned feature; /* the RL_FEAT_* bit that switches the step off */
} setup_steps[] = {
    /* Linux 6.1+. R_DISABLED: the thread that first runs the loop, not the
     * one that created it, becomes the ring's single issuer. */
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
         IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
         IORING_SETUP_R_DISABLED,
     RL_FEAT_DEFER_TASKRUN},
    /* Linux 6.1+ without TASKRUN_FLAG next to DEFER_TASKRUN */
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
         IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
     RL_FEAT_DEFER_TASKRUN},
    /* Linux 5.19+ */
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
         IORING_SETUP_SUBMIT_ALL,
     RL_FEAT_COOP_TASKRUN},
    {0, 0},
};

/* Opcodes the loop cannot work without. */
static const struct {
    int op;
    const char *name;
} required_ops[] = {
    {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
    {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
    {IORING_OP_RECV, "IORING_OP_RECV"},
    {IORING_OP_SEND, "IORING_OP_SEND"},
    {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},
    {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
    {IORING_OP_READ, "IORING_OP_READ"},
    {IORING_OP_WRITE, "IORING_OP_WRITE"},
    {IORING_OP_CLOSE, "IORING_OP_CLOSE"},
    {IORING_OP_SHUTDOWN, "IORING_OP_SHUTDOWN"},
    {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
    {IORING_OP_NOP, "IORING_OP_NOP"},
};

/* File ops and their io_uring opcodes: the pool runs those missing. */
static const struct {
    unsigned rl_op;
    int op;
} file_ops[] = {
    {RL_OP_OPENAT, IORING_OP_OPENAT},
    {RL_OP_FSYNC, IORING_OP_FSYNC},
    {RL_OP_FALLOCATE, IORING_OP_FALLOCATE},
    {RL_OP_FTRUNCATE, RL_IORING_OP_FTRUNCATE},
    {RL_OP_STATX, IORING_OP_STATX},
    {RL_OP_RENAME, IORING_OP_RENAMEAT},
    {RL_OP_UNLINK, IORING_OP_UNLINKAT},
    {RL_OP_MKDIR, IORING_OP_MKDIRAT},
};

_Static_assert(RL_OP__COUNT <= 32, "pool_opcodes is a 32-bit mask");

/*
 * Test hook, not an interface: RINGLOOP_TEST_NO_OPCODES=ftruncate,statx
 * (rl_opcode_name() words of file ops) makes the ring act as if it lacked
 * those opcodes, so that the tests reach the pool path on io_uring.
 */
static uint32_t test_no_opcodes(void)
{
    const char *env = getenv("RINGLOOP_TEST_NO_OPCODES"), *w, *name;
    uint32_t bits = 0;
    size_t i, len;

    for (w = env; w && *w; w += len + (w[len] == ',')) {
        len = strcspn(w, ",");
        for (i = 0; i < sizeof(file_ops) / sizeof(file_ops[0]); i++) {
            name = rl_opcode_name(file_ops[i].rl_op);
            if (strlen(name) == len && !strncmp(name, w, len))
                bits |= 1u << file_ops[i].rl_op;
        }
    }
    return bits;
}

/* KVER() of the running kernel. */
static unsigned kernel_version(void)
{
    struct utsname un;
    unsigned maj = 0, min = 0;

    if (uname(&un) == 0)
        sscanf(un.release, "%u.%u", &maj, &min);
    return KVER(maj, min);
}

/* Fast paths this kernel has, from its version (all of them on >= 6.0). */
static unsigned kernel_features(void)
{
    unsigned v = kernel_version(), f = 0;

    if (v >= KVER(5, 13))
        f |= RL_FEAT_MULTISHOT_POLL;
    if (v >= KVER(5, 19))
        f |= RL_FEAT_MULTISHOT_ACCEPT | RL_FEAT_BUFRING | RL_FEAT_CANCEL_FD;
    if (v >= KVER(6, 0))
        f |= RL_FEAT_MULTISHOT_RECV;
    /* IOU_PBUF_RING_INC is 6.12, but before 6.15 a multishot recv's
     * deferred final completion could be posted after a later piece of
     * the same buffer (fixed by "io_uring: ensure deferred completions
     * are flushed for multishot"), and the pieces' order is how we know
     * where each one lies. */
    if (v >= KVER(6, 15))
        f |= RL_FEAT_BUFRING_INC;
    /* MSG_RING is 5.18; messages to DEFER_TASKRUN rings and to rings
     * created disabled (ours, until their first run) got fixes through
     * 6.3 */
    if (v >= KVER(6, 3))
        f |= RL_FEAT_MSG_RING;
    /* SEND_ZC is 6.0, SENDMSG_ZC and the notification's flag 6.1; bundles
     * 6.10; sparse file tables 5.19 */
    if (v >= KVER(5, 19))
        f |= RL_FEAT_FIXED_FILES;
    if (v >= KVER(6, 1))
        f |= RL_FEAT_SEND_ZC;
    if (v >= KVER(6, 10))
        f |= RL_FEAT_RECV_BUNDLE;
    if (v >= KVER(5, 18))
        f |= RL_FEAT_RING_FD; /* IORING_REGISTER_RING_FDS */
    return f;
}

/* A number for the calling thread, unique in this process (unlike a tid
 * or a pthread_t, never reused after the thread exits). */
static uint64_t thread_id(void)
{
    static atomic_uint_fast64_t next = 1;
    static _Thread_local uint64_t id;

    if (!id)
        id = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    return id;
}

void rl__uring_feature_off(struct rl_uring *u, unsigned feature, int err,
                           const char *fmt, ...)
{
    unsigned i = (unsigned)__builtin_ctz(feature);
    va_list ap;

    u->features &= ~feature;
    u->feat_errno[i] = err;
    va_start(ap, fmt);
    vsnprintf(u->feat_reason[i], sizeof(u->feat_reason[i]), fmt, ap);
    va_end(ap);
}

static bool sqpoll(const struct rl_uring *u)
{
    return u->setup_flags & IORING_SETUP_SQPOLL;
}

/* One sentence on why io_uring_setup() failed with err. */
static void explain_setup(int err, char *why, size_t whylen)
{
    char val[16] = "";
    struct rlimit rl;
    FILE *f;

    switch (err) {
    case -EPERM:
        f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (f) {
            if (!fgets(val, sizeof(val), f))
                val[0] = '\0';
            fclose(f);
        }
        val[strcspn(val, "\n")] = '\0';
        if (!val[0] || !strcmp(val, "0"))
            snprintf(why, whylen,
                     "io_uring_setup: Operation not permitted "
                     "(kernel.io_uring_disabled=%s; a seccomp filter or "
                     "container policy probably blocks io_uring)",
                     val[0] ? val : "absent");
        else
            snprintf(why, whylen,
                     "io_uring_setup: Operation not permitted "
                     "(kernel.io_uring_disabled=%s)",
                     val);
        break;
    case -ENOMEM:
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            snprintf(why, whylen,
                     "io_uring_setup: Cannot allocate memory "
                     "(RLIMIT_MEMLOCK=%llu bytes)",
                     (unsigned long long)rl.rlim_cur);
        else
            snprintf(why, whylen,
                     "io_uring_setup: Cannot allocate memory "
                     "(RLIMIT_MEMLOCK=unlimited)");
        break;
    case -ENOSYS:
        snprintf(why, whylen,
                 "io_uring_setup: Function not implemented "
                 "(this kernel has no io_uring)");
        break;
    default:
        snprintf(why, whylen, "io_uring_setup: %s", strerror(-err));
        break;
    }
}

/* 0, or -EOPNOTSUPP with the first missing opcode named in why. */
static int probe_ops(struct rl_uring *u, char *why, size_t whylen)
{
    struct io_uring_probe *probe;
    size_t i;
    int ret = 0;

    probe = io_uring_get_probe_ring(&u->ring);
    if (!probe) {
        snprintf(why, whylen,
                 "io_uring: IORING_REGISTER_PROBE failed (Linux < 5.6)");
        return -EOPNOTSUPP;
    }
    for (i = 0; i < sizeof(required_ops) / sizeof(required_ops[0]); i++) {
        if (!io_uring_opcode_supported(probe, required_ops[i].op)) {
            snprintf(why, whylen, "io_uring: opcode %s not supported",
                     required_ops[i].name);
            ret = -EOPNOTSUPP;
            break;
        }
    }
    u->pool_opcodes = test_no_opcodes();
    for (i = 0; i < sizeof(file_ops) / sizeof(file_ops[0]); i++)
        if (!io_uring_opcode_supported(probe, file_ops[i].op))
            u->pool_opcodes |= 1u << file_ops[i].rl_op;
    u->zc_ops = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
                io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
    io_uring_free_probe(probe);
    return ret;
}

/*
 * Create the ring with exactly `flags` and a CQ of 8x the SQ, plus the
 * wake eventfd and its read. 0 or -errno (why filled in).
 */
static int ring_create(struct rl_uring *u, unsigned sq_entries, unsigned flags,
                       char *why, size_t whylen)
{
    struct io_uring_params p;
    int ret;

    memset(&p, 0, sizeof(p));
    p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = sq_entries * 8;
    if (flags & IORING_SETUP_SQPOLL)
        p.sq_thread_idle = RL_URING_SQPOLL_IDLE_MS;
    ret = io_uring_queue_init_params(sq_entries, &u->ring, &p);
    if (ret < 0) {
        explain_setup(ret, why, whylen);
        return ret;
    }
    u->setup_flags = flags;
    u->need_enable = flags & IORING_SETUP_R_DISABLED;
    u->cq_entries = p.cq_entries;
    if (!(p.features & IORING_FEAT_NODROP)) {
        snprintf(why, whylen, "io_uring: no IORING_FEAT_NODROP (Linux < 5.5)");
        ret = -EOPNOTSUPP;
        goto err_exit_ring;
    }
    u->efd = eventfd(0, EFD_CLOEXEC);
    if (u->efd < 0) {
        ret = -errno;
        snprintf(why, whylen, "eventfd: %s", strerror(-ret));
        goto err_exit_ring;
    }
    ret = rl__uring_arm_wake(u);
    if (ret < 0) {
        snprintf(why, whylen, "io_uring: no SQE for the wakeup read");
        goto err_close_efd;
    }
    u->ring_ok = true;
    u->koverflow_base = 0; /* a new ring counts from 0 */
    u->reg_index = -1;     /* registered at the first enter */
    u->reg_by_fd = false;
    return 0;

err_close_efd:
    close(u->efd);
    u->efd = -1;
err_exit_ring:
    io_uring_queue_exit(&u->ring);
    return ret;
}

/*
 * SQPOLL first when asked for: the kernel refuses it with the TASKRUN
 * flags (they are about the submitting task running completion work, which
 * the SQ thread does instead), so it is tried alone. A refusal of any kind
 * (EINVAL, EPERM before Linux 5.11, ENOMEM) leaves it off with the reason.
 */
static void ring_setup_sqpoll(struct rl_uring *u, unsigned sq_entries,
                              unsigned enable, int *ret, char *why,
                              size_t whylen)
{
    unsigned flags = IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL;

    *ret = -EINVAL;
    if (!(enable & RL_FEAT_SQPOLL))
        return;
    *ret = ring_create(u, sq_entries, flags, why, whylen);
    if (*ret == -EINVAL) /* SUBMIT_ALL is 5.18; SQPOLL alone then */
        *ret = ring_create(u, sq_entries, IORING_SETUP_SQPOLL, why, whylen);
    if (*ret < 0)
        rl__uring_feature_off(u, RL_FEAT_SQPOLL, *ret,
                              "sqpoll: io_uring_setup(SQPOLL): %s (left off)",
                              strerror(-*ret));
}

/* Step down the setup flags on -EINVAL. */
static int ring_setup(struct rl_uring *u, unsigned sq_entries, unsigned disable,
                      unsigned enable, char *why, size_t whylen)
{
    size_t i;
    int ret;

    ring_setup_sqpoll(u, sq_entries, enable, &ret, why, whylen);
    if (ret == 0)
        return 0;
    ret = -EINVAL;
    for (i = 0; i < sizeof(setup_steps) / sizeof(setup_steps[0]); i++) {
        if (setup_steps[i].feature & disable)
            continue;
        ret = ring_create(u, sq_entries, setup_steps[i].flags, why, whylen);
        if (ret != -EINVAL)
            break;
    }
    return ret;
}

/*
 * The fast paths this loop uses: asked for (not in disable), known to the
 * kernel, and, for DEFER/COOP_TASKRUN and EXT_ARG, taken by the ring.
 */
static unsigned features_in_use(struct rl_uring *u, unsigned disable)
{
    unsigned f = kernel_features() & ~disable;

    if (u->setup_flags & IORING_SETUP_DEFER_TASKRUN)
        f |= RL_FEAT_DEFER_TASKRUN;
    else if (u->setup_flags & IORING_SETUP_COOP_TASKRUN)
        f |= RL_FEAT_COOP_TASKRUN;
    if ((u->ring.features & IORING_FEAT_EXT_ARG) &&
        !(disable & RL_FEAT_EXT_ARG))
        f |= RL_FEAT_EXT_ARG;
    if (u->setup_flags & IORING_SETUP_SQPOLL)
        f |= RL_FEAT_SQPOLL;
    /* Multishot recv picks from the buffer ring; bundles are its. */
    if (!(f & RL_FEAT_BUFRING))
        f &= ~(RL_FEAT_MULTISHOT_RECV | RL_FEAT_BUFRING_INC);
    if (!(f & RL_FEAT_MULTISHOT_RECV))
        f &= ~RL_FEAT_RECV_BUNDLE;
    return f;
}

/*
 * ring_fd: register the ring in the table of the first thread that enters
 * it, and from then on enter by that index from that thread and by the
 * plain fd from any other (the index means nothing, or another ring, in
 * another thread's table). A refusal (EBUSY: the thread's 16 slots are
 * taken; EINVAL: an older kernel) leaves ring_fd off with the reason.
 */
static void ring_fd_sync(struct rl_uring *u)
{
    uint64_t me;
    int idx;

    if (!(u->features & RL_FEAT_RING_FD))
        return;
    me = thread_id();
    if (u->reg_index < 0) {
        idx = rl_uring_register_ring_fd(&u->ring);
        if (idx < 0) {
            rl__uring_feature_off(u, RL_FEAT_RING_FD, idx,
                                  "ring_fd: IORING_REGISTER_RING_FDS: %s",
                                  strerror(-idx));
            return;
        }
        u->reg_index = idx;
        u->reg_thread = me;
        u->reg_by_fd = false;
        rl_uring_enter_by_index(&u->ring, idx);
    } else if (u->reg_by_fd != (me != u->reg_thread)) {
        u->reg_by_fd = me != u->reg_thread;
        if (u->reg_by_fd)
            rl_uring_enter_by_fd(&u->ring);
        else
            rl_uring_enter_by_index(&u->ring, u->reg_index);
    }
}

/* Before the ring goes away: drop the registration if this thread holds it
 * (another thread's table cannot be touched from here: it keeps a reference
 * to the ring until that thread exits), and make liburing's queue_exit
 * unregister nothing. in_child: after fork the table is the parent's. */
static void ring_fd_release(struct rl_uring *u, bool in_child)
{
    if (u->reg_index >= 0 && !in_child && u->reg_thread == thread_id())
        (void)rl_uring_unregister_ring_fd(&u->ring, u->reg_index);
    rl_uring_enter_by_fd(&u->ring);
    u->reg_index = -1;
    u->reg_by_fd = false;
}

/* Enable a ring created disabled, making this thread its single issuer;
 * then pick how this thread enters it. Must be called before anything
 * enters the ring. 0 or -errno. */
int rl__uring_enable(struct rl_uring *u)
{
    int ret;

    if (u->need_enable) {
        ret = rl_uring_enable_rings(&u->ring);
        if (ret < 0)
            return ret;
        u->need_enable = false;
    }
    ring_fd_sync(u);
    return 0;
}

/* napi: register busy polling on a new ring (at init, and in a forked
 * child's new ring). A refusal leaves napi off with the reason. */
static void napi_setup(struct rl_uring *u)
{
    int ret;

    if (!(u->features & RL_FEAT_NAPI))
        return;
    ret = rl_uring_register_napi(&u->ring, RL_URING_NAPI_BUSY_POLL_US, false);
    if (ret < 0)
        rl__uring_feature_off(
            u, RL_FEAT_NAPI, ret, "napi: IORING_REGISTER_NAPI: %s%s",
            strerror(-ret), ret == -EINVAL ? " (Linux < 6.9)" : "");
}

/* SQPOLL: publish the queued SQEs. The SQ thread takes them by itself;
 * liburing enters only to wake it when it sleeps (IORING_SQ_NEED_WAKEUP). */
static int sqpoll_submit(struct rl_uring *u)
{
    unsigned kflags = IO_URING_READ_ONCE(*u->ring.sq.kflags);

    u->loop->stats.io_uring_enter +=
        io_uring_sq_ready(&u->ring) && (kflags & IORING_SQ_NEED_WAKEUP);
    return io_uring_submit(&u->ring);
}

/*
 * SQPOLL: wait (bounded) until the SQ thread has taken every SQE. It
 * advances the SQ head once it has issued them and posted the completions
 * of those that finished at once, so that an iteration sees those as it
 * would without SQPOLL. Spins briefly (the SQ thread polls on another CPU
 * when it is busy), then yields the CPU to it.
 */
static void sqpoll_settle(struct rl_uring *u)
{
    unsigned i;

    for (i = 0; io_uring_sq_ready(&u->ring) && i < 256; i++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    for (i = 0; io_uring_sq_ready(&u->ring) && i < 100000; i++)
        sched_yield();
}

int rl__uring_sq_room(struct rl_uring *u, unsigned n)
{
    int ret = rl__uring_enable(u);

    if (ret < 0)
        return ret;
    if (!sqpoll(u)) {
        u->loop->stats.io_uring_enter++;
        ret = io_uring_submit(&u->ring);
        return ret < 0 ? ret : 0;
    }
    ret = sqpoll_submit(u);
    while (ret >= 0 && io_uring_sq_space_left(&u->ring) < n) {
        if (io_uring_sq_space_left(&u->ring) == 0) {
            u->loop->stats.io_uring_enter++;
            ret = io_uring_sqring_wait(&u->ring); /* IORING_ENTER_SQ_WAIT */
        } else {
            sched_yield();
        }
    }
    return ret < 0 ? ret : 0;
}

/* ---- msg_ring: waking another loop's ring ------------------------------ */

/*
 * The sender's CQE for its MSG_RING comes only on failure, and for a
 * message to a ring that is not IOPOLL the kernel completes it while
 * submitting: look for it among the newest CQEs, so that the fallback wake
 * happens now, while the caller of rl_call_threadsafe() vouches for the
 * target. Found: its res in *res, the CQE neutralized. (One the CQ had no
 * room for is handled when it is dispatched: rl__uring_msg_failed().)
 */
static bool msg_sync_failure(struct rl_uring *u, uint64_t ud, int *res)
{
    struct io_uring_cq *cq = &u->ring.cq;
    unsigned head = *cq->khead;
    unsigned tail = io_uring_smp_load_acquire(cq->ktail);
    struct io_uring_cqe *cqe;
    unsigned n;

    for (n = 0; tail != head && n < 8; n++, tail--) {
        cqe = &cq->cqes[(tail - 1) & cq->ring_mask];
        if (cqe->user_data == ud) {
            *res = cqe->res;
            cqe->user_data = RL_URING_TAG_MSG; /* dispatch skips it */
            return true;
        }
    }
    return false;
}

void rl__uring_msg_failed(struct rl_uring *u, rl_loop *to, int res)
{
    /* A kernel that refuses the message (or the flag) will refuse the next
     * one too: this loop wakes by eventfd from now on. */
    if (res == -EINVAL || res == -EOPNOTSUPP)
        u->msg_off = true;
    to->ops->wake(to);
}

/*
 * loop->msg_wake: on `from`'s thread, inside its rl_loop_run(). The
 * message is submitted at once (not with the next wait): the caller may
 * block on the target's answer before its loop iterates again.
 */
static int uring_msg_wake(rl_loop *from, rl_loop *to)
{
    struct rl_uring *u = from->backend, *t = to->backend;
    uint64_t ud = (uint64_t)(uintptr_t)to | RL_URING_TAG_MSG_SENT;
    struct io_uring_sqe *sqe;
    int ret, res;

    if (!u->ring_ok || u->need_enable || u->msg_off ||
        !atomic_load_explicit(&t->msg_ready, memory_order_acquire))
        return -EAGAIN;
    sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_msg_ring(sqe, t->ring.ring_fd, 0, RL_URING_TAG_MSG, 0);
    io_uring_sqe_set_data64(sqe, ud);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    from->stats.sqes_submitted++;
    from->stats.io_uring_enter++;
    ret = io_uring_submit(&u->ring);
    if (ret < 0)
        return ret; /* the SQE goes with the next submit: one wake more */
    if (msg_sync_failure(u, ud, &res)) {
        if (res == -EINVAL || res == -EOPNOTSUPP)
            u->msg_off = true;
        return res;
    }
    from->stats.msg_ring_sent++;
    return 0;
}

/*
 * The data-path features: the opt-in ones off unless asked for, send_zc
 * only where the kernel has both opcodes, and its threshold.
 */
static void data_path_init(struct rl_uring *u, unsigned enable)
{
    const char *env;
    char *end;
    unsigned long v;

    u->features &= ~(RL_FEAT_OPT_IN & ~enable);
    u->zc_min = RL_URING_ZC_MIN;
    env = getenv("RINGLOOP_ZC_MIN");
    if (env && *env) {
        v = strtoul(env, &end, 10);
        if (!*end && v > 0 && v <= UINT32_MAX)
            u->zc_min = (unsigned)v;
    }
    if ((u->features & RL_FEAT_SEND_ZC) && !u->zc_ops) {
        u->features &= ~RL_FEAT_SEND_ZC;
        rl__uring_data_fallback(u, RL_FEAT_SEND_ZC,
                                "opcode SEND_ZC/SENDMSG_ZC not supported",
                                EOPNOTSUPP);
    }
}

static int uring_init(rl_loop *loop, const struct rl_loop_config *cfg,
                      unsigned disable, char *why, size_t whylen)
{
    struct rl_uring *u;
    unsigned sq = cfg->sq_entries ? cfg->sq_entries : 256;
    unsigned enable = cfg->enable & ~disable;
    int ret;

    u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(why, whylen, "io_uring: out of memory");
        return -ENOMEM;
    }
    u->loop = loop;
    u->sq_entries = sq;
    u->efd = -1;
    rl_list_init(&u->nofd);
    rl_list_init(&u->nobufs);
    rl_list_init(&u->deferred);
    u->br_entries = cfg->bufring_entries; /* 0: bufring_setup() picks */
    u->br_size = cfg->bufring_size;
    u->large_read = cfg->large_read ? cfg->large_read : RL_URING_LARGE_READ;
    ret = ring_setup(u, sq, disable, enable, why, whylen);
    if (ret < 0)
        goto err_free;
    ret = probe_ops(u, why, whylen);
    if (ret < 0)
        goto err_exit_ring;
    u->features = features_in_use(u, disable);
    data_path_init(u, enable);
    if (sqpoll(u) && !(disable & RL_FEAT_DEFER_TASKRUN) &&
        kernel_version() >= KVER(6, 1))
        rl__uring_feature_off(u, RL_FEAT_DEFER_TASKRUN, 0,
                              "defer_taskrun: off because sqpoll is enabled "
                              "(the kernel refuses DEFER_TASKRUN and "
                              "COOP_TASKRUN with SQPOLL)");
    if (enable & RL_FEAT_NAPI) {
        u->features |= RL_FEAT_NAPI;
        napi_setup(u);
    }
    loop->backend = u;
    if (u->features & RL_FEAT_MSG_RING)
        loop->msg_wake = uring_msg_wake;
    return 0;

err_exit_ring:
    io_uring_queue_exit(&u->ring);
    close(u->efd);
err_free:
    free(u);
    return ret;
}

/* Called with nothing in flight, or in a forked child after fork(). */
static void uring_fini(rl_loop *loop)
{
    struct rl_uring *u = loop->backend;

    if (!u)
        return;
    /* Exiting the ring drops the buffer ring registration with it. */
    if (u->ring_ok) {
        ring_fd_release(u, false);
        io_uring_queue_exit(&u->ring);
    }
    rl__uring_bufring_free(u, true);
    if (u->efd >= 0)
        close(u->efd);
    free(u->scratch);
    free(u->byfd);
    free(u->fdf);
    free(u);
    loop->backend = NULL;
}

static bool transient(int ret)
{
    return ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY;
}

/*
 * True when entering the kernel without waiting could not produce anything:
 * no SQE to submit and the kernel flags neither task work nor a CQ
 * overflow. Only knowable when the ring reports task work (TASKRUN_FLAG),
 * or has no deferred task work at all (no COOP/DEFER_TASKRUN).
 */
static bool idle(struct rl_uring *u)
{
    unsigned taskrun = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN;
    unsigned flags;

    if ((u->setup_flags & taskrun) &&
        !(u->setup_flags & IORING_SETUP_TASKRUN_FLAG))
        return false;
    if (io_uring_sq_ready(&u->ring))
        return false;
    flags = IO_URING_READ_ONCE(*u->ring.sq.kflags);
    return !(flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

/* Submit what is queued and wait (see wait() in policy/backend.h). */
static int enter(struct rl_uring *u, int64_t timeout_ns)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    int ret;

    /* GETEVENTS even when not waiting: DEFER_TASKRUN runs completions'
     * task work only then. But with nothing to submit, no task work flagged
     * and no overflow, the enter would find nothing: skip the syscall. */
    if (timeout_ns == 0) {
        if (idle(u))
            return 0;
        /* SQPOLL: the SQ thread submits and the completions' task work
         * runs there; only a CQ overflow needs an enter to flush. */
        if (sqpoll(u) &&
            !(IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
            ret = sqpoll_submit(u);
            if (ret > 0)
                sqpoll_settle(u);
            return ret;
        }
        u->loop->stats.io_uring_enter++;
        return io_uring_submit_and_get_events(&u->ring);
    }
    if (timeout_ns > 0 && !(u->features & RL_FEAT_EXT_ARG)) {
        /* Linux < 5.11, or switched off: a TIMEOUT SQE of our own. Not
         * liburing's fallback: its timeout SQE completes after one other
         * CQE, and one completed so is swallowed and then waited on with
         * no timer left (seen as a hang on liburing 2.3). */
        ret = rl__uring_arm_timeout(u, timeout_ns);
        if (ret < 0)
            return ret;
        timeout_ns = -1;
    }
    rl__block_begin(u->loop);
    if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        /* liburing skips the syscall when a CQE is there and nothing is
         * to be submitted */
        u->loop->stats.io_uring_enter +=
            !io_uring_cq_ready(&u->ring) ||
            (io_uring_sq_ready(&u->ring) &&
             (!sqpoll(u) || (IO_URING_READ_ONCE(*u->ring.sq.kflags) &
                             IORING_SQ_NEED_WAKEUP)));
        ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    } else {
        u->loop->stats.io_uring_enter++;
        ret = io_uring_submit_and_wait(&u->ring, 1);
    }
    rl__block_end(u->loop);
    return ret;
}

/*
 * Deliver what the CQ holds: copy a batch out, advance the CQ once, then
 * dispatch (callbacks may submit, cancel or free ops). At most one CQ's
 * worth per call, so that a busy ring cannot keep us here.
 */
static unsigned drain(struct rl_uring *u)
{
    struct io_uring_cqe *cqes[RL_URING_CQE_BATCH];
    struct rl_uring_cqe c[RL_URING_CQE_BATCH];
    unsigned n, i, seen = 0, delivered = 0;

    while (seen < u->cq_entries) {
        /* One overflow (the kernel keeps what did not fit, NODROP) counts
         * once, however many batches it takes to flush. liburing's peek
         * flushes it with an enter when the CQ is empty. */
        if (io_uring_cq_has_overflow(&u->ring)) {
            u->loop->stats.cq_overflows += !u->cq_overflowed;
            u->loop->stats.io_uring_enter += !io_uring_cq_ready(&u->ring);
            u->cq_overflowed = true;
        } else {
            u->cq_overflowed = false;
        }
        n = io_uring_peek_batch_cqe(&u->ring, cqes, RL_URING_CQE_BATCH);
        if (n == 0) {
            /* NODROP kept what did not fit; flush it into the CQ. */
            if (!io_uring_cq_has_overflow(&u->ring))
                break;
            u->loop->stats.io_uring_enter++;
            if (io_uring_get_events(&u->ring) < 0 ||
                !io_uring_cq_ready(&u->ring))
                break;
            continue;
        }
        for (i = 0; i < n; i++) {
            c[i].user_data = cqes[i]->user_data;
            c[i].res = cqes[i]->res;
            c[i].flags = cqes[i]->flags;
        }
        io_uring_cq_advance(&u->ring, n);
        u->loop->stats.cqes_reaped += n;
        seen += n;
        for (i = 0; i < n; i++)
            delivered += rl__uring_dispatch(u, &c[i]);
        rl__uring_rearm_parked(u);
    }
    return delivered;
}

static int uring_wait(rl_loop *loop, int64_t timeout_ns)
{
    struct rl_uring *u = loop->backend;
    unsigned delivered;
    int ret;

    if (!u->ring_ok) {
        /* a fork whose new ring failed: finish what the child inherited */
        delivered = rl__uring_flush_deferred(u);
        return delivered ? (int)delivered : -EBADFD;
    }
    ret = rl__uring_enable(u);
    if (ret < 0)
        return ret;
    if (!atomic_load_explicit(&u->msg_ready, memory_order_relaxed))
        atomic_store_explicit(&u->msg_ready, true, memory_order_release);
    if (!u->wake_armed)
        rl__uring_arm_wake(u);
    rl__uring_rearm_parked(u);
    if (!rl_list_empty(&u->deferred) ||
        (!rl_list_empty(&u->nobufs) && u->br_free > 0))
        timeout_ns = 0;
    ret = enter(u, timeout_ns);
    if (ret < 0 && !transient(ret))
        return ret;
    delivered = drain(u);
    delivered += rl__uring_flush_deferred(u);
    return (int)delivered;
}

/*
 * Hand the kernel the SQEs queued since the last wait, and run the task work
 * they start (with DEFER_TASKRUN only an enter does, e.g. the close linked
 * behind a cancel). Nothing is delivered: the CQEs wait for the next wait.
 */
static int uring_flush(rl_loop *loop)
{
    struct rl_uring *u = loop->backend;
    int ret;

    if (!u->ring_ok)
        return 0;
    ret = rl__uring_enable(u);
    if (ret < 0 || idle(u))
        return ret;
    if (sqpoll(u)) {
        /* The SQ thread issues them: wait until it has taken them all. */
        ret = sqpoll_submit(u);
        if (ret >= 0)
            sqpoll_settle(u);
        return ret < 0 && !transient(ret) ? ret : 0;
    }
    u->loop->stats.io_uring_enter++;
    ret = io_uring_submit_and_get_events(&u->ring);
    return ret < 0 && !transient(ret) ? ret : 0;
}

/* Any thread. The eventfd read armed in the ring completes. */
static void uring_wake(rl_loop *loop)
{
    struct rl_uring *u = loop->backend;
    uint64_t one = 1;
    ssize_t n;

    do
        n = write(u->efd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

static unsigned uring_capabilities(const rl_loop *loop)
{
    const struct rl_uring *u = loop->backend;

    return u->features;
}

/*
 * In a forked child. The ring's memory is shared with the parent, so
 * nothing is submitted, cancelled or unregistered on it: the child only
 * unmaps it and closes its own fd, which leaves the parent's ring alone.
 * The ops the parent had in flight end with -ECANCELED in the next wait().
 */
static int uring_fork(rl_loop *loop)
{
    struct rl_uring *u = loop->backend;
    char why[128];
    int ret;

    rl__uring_forget_all(u);
    if (u->ring_ok) {
        ring_fd_release(u, true); /* the index is in the parent's table */
        io_uring_queue_exit(&u->ring);
    }
    u->ring_ok = false;
    atomic_store(&u->msg_ready, false); /* the new ring starts disabled */
    u->wake_armed = false;
    rl__uring_bufring_free(u, false); /* MADV_DONTFORK: not mapped here */
    if (u->efd >= 0)
        close(u->efd);
    u->efd = -1;
    u->tmo_armed = false;
    ret = ring_create(u, u->sq_entries, u->setup_flags, why, sizeof(why));
    if (ret == 0)
        napi_setup(u);
    return ret;
}

/* The kernel's count of completions it dropped (none with NODROP unless it
 * ran out of memory), from the zero that the last reset took. */
static void uring_stats(rl_loop *loop, struct rl_loop_stats *out)
{
    struct rl_uring *u = loop->backend;
    unsigned now;

    if (!u->ring_ok)
        return;
    now = IO_URING_READ_ONCE(*u->ring.cq.koverflow);
    if (out)
        out->cq_dropped += now - u->koverflow_base;
    else
        u->koverflow_base = now;
}

const struct rl_backend_ops rl__uring_ops = {
    .version = RL_BACKEND_OPS_VERSION,
    .name = "uring",
    .kind = RL_BACKEND_URING,
    .init = uring_init,
    .fini = uring_fini,
    .submit = rl__uring_submit,
    .cancel = rl__uring_cancel,
    .wait = uring_wait,
    .wake = uring_wake,
    .capabilities = uring_capabilities,
    .fd_closed = rl__uring_fd_closed,
    .fork = uring_fork,
    .flush = uring_flush,
    .stats = uring_stats,
};

int rl_loop_feature_errno(const rl_loop *loop, unsigned feature)
{
    const struct rl_uring *u = loop->backend;

    if (loop->ops != &rl__uring_ops || !u || !feature ||
        (feature & (feature - 1)))
        return 0;
    return u->feat_errno[__builtin_ctz(feature)];
}

const char *rl_loop_feature_reason(const rl_loop *loop, unsigned feature)
{
    const struct rl_uring *u = loop->backend;

    if (loop->ops != &rl__uring_ops || !u || !feature ||
        (feature & (feature - 1)))
        return "";
    return u->feat_reason[__builtin_ctz(feature)];
}
