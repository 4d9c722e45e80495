/*
 * probe-seccomp-refuse: run a program with io_uring refused at setup, the
 * way a container runtime or sandbox refuses it.
 *
 *   probe-seccomp-refuse [-e EPERM|ENOSYS|EACCES|ENOMEM] PROG [ARGS...]
 *
 * Installs a seccomp filter (after PR_SET_NO_NEW_PRIVS, so no privilege is
 * needed) that makes io_uring_setup(2) fail with the errno (EPERM unless
 * told) and lets every other syscall through, then execs PROG. The filter
 * is inherited by PROG and everything it starts (ctest and its tests).
 *
 * Exit status: PROG's; 77 if this kernel has no seccomp filters; 127 if
 * PROG cannot be executed; 2 on a usage error.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define PROBE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PROBE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_S390X
#else
#error "probe-seccomp-refuse: add this architecture's AUDIT_ARCH_*"
#endif

static const struct {
    const char *name;
    int err;
} errnos[] = {
    {"EPERM", EPERM},
    {"ENOSYS", ENOSYS},
    {"EACCES", EACCES},
    {"ENOMEM", ENOMEM},
};

/* Returns 0, or -errno if the filter could not be installed. */
static int refuse_io_uring_setup(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* Another ABI (e.g. i386 on x86_64) has other numbers: let it be. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROBE_AUDIT_ARCH, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
        .filter = filter,
    };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    return 0;
}

static int usage(void)
{
    fputs("usage: probe-seccomp-refuse [-e EPERM|ENOSYS|EACCES|ENOMEM] "
          "PROG [ARGS...]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    int i = 1, err = EPERM, ret;
    size_t j;

    if (i + 1 < argc && !strcmp(argv[i], "-e")) {
        err = 0;
        for (j = 0; j < sizeof(errnos) / sizeof(errnos[0]); j++)
            if (!strcmp(argv[i + 1], errnos[j].name))
                err = errnos[j].err;
        if (!err)
            return usage();
        i += 2;
    }
    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    if (i >= argc)
        return usage();
    ret = refuse_io_uring_setup(err);
    if (ret < 0) {
        fprintf(stderr, "probe-seccomp-refuse: cannot install filter: %s\n",
                strerror(-ret));
        return ret == -EINVAL ? 77 : 1;
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "probe-seccomp-refuse: %s: %s\n", argv[i], strerror(errno));
    return 127;
}
