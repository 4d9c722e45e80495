/*
 * Seccomp filters for the tests that make the kernel refuse io_uring
 * (test_select: io_uring_setup; test_features: some registrations).
 * RLT_AUDIT_ARCH is the filter's architecture check, undefined where these
 * tests do not know it (they skip there).
 */
#ifndef RLT_SECCOMP_H
#define RLT_SECCOMP_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#if defined(__x86_64__)
#define RLT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define RLT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define RLT_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define RLT_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

/* Install the filter f[n] for this process for good (a forked child's).
 * 0 or -errno. */
static inline int rlt_seccomp_install(struct sock_filter *f, size_t n)
{
    struct sock_fprog prog = {
        .len = (unsigned short)n,
        .filter = f,
    };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -errno;
    return 0;
}

#endif /* RLT_SECCOMP_H */
