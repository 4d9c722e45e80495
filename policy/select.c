/*
 * Backend selection, per loop: an explicit config > RINGLOOP_BACKEND > auto.
 * Auto takes io_uring when its ring can be set up with the features the
 * loop needs, and otherwise epoll, keeping the reason it fell back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"

/* One word per line, in bit order (enum rl_feature). */
/* clang-format off */
static const char *const feature_names[] = {
    "multishot_accept", /* 0 */
    "multishot_recv",
    "bufring",
    "defer_taskrun",
    "coop_taskrun",
    "multishot_poll",
    "cancel_fd",
    "ext_arg",
    "bufring_inc",      /* 8 */
    "ring_fd",          /* 9 */
    "sqpoll",           /* 10 */
    "napi",             /* 11 */
    "send_zc",          /* 12 */
    "recv_bundle",      /* 13 */
    "fixed_files",      /* 14 */
    "msg_ring",         /* 15 */
};
/* clang-format on */
#define NFEATURES (sizeof(feature_names) / sizeof(feature_names[0]))

const char *rl_feature_name(unsigned feature)
{
    unsigned i;

    for (i = 0; i < NFEATURES; i++)
        if (feature == 1u << i)
            return feature_names[i]; /* NULL for an unused bit */
    return NULL;
}

/* Parse one word of length len; returns its bit or 0. */
static unsigned feature_word(const char *w, size_t len)
{
    unsigned i;

    if (len == 3 && !strncmp(w, "all", 3))
        return RL_FEAT_ALL;
    for (i = 0; i < NFEATURES; i++)
        if (feature_names[i] && strlen(feature_names[i]) == len &&
            !strncmp(w, feature_names[i], len))
            return 1u << i;
    return 0;
}

int rl_feature_parse(const char *list, unsigned *out)
{
    unsigned bits = 0;
    const char *p = list;

    while (p && *p) {
        size_t len = strcspn(p, ", ");
        if (len) {
            unsigned bit = feature_word(p, len);
            if (!bit)
                return -EINVAL;
            bits |= bit;
        }
        p += len;
        p += strspn(p, ", ");
    }
    *out = bits;
    return 0;
}

/* Returns the enum rl_backend_kind named by RINGLOOP_BACKEND, or -EINVAL. */
static int env_backend(void)
{
    const char *v = getenv("RINGLOOP_BACKEND");

    if (!v || !*v || !strcmp(v, "auto"))
        return RL_BACKEND_AUTO;
    if (!strcmp(v, "uring") || !strcmp(v, "io_uring"))
        return RL_BACKEND_URING;
    if (!strcmp(v, "epoll"))
        return RL_BACKEND_EPOLL;
    return -EINVAL;
}

int rl__backend_select(rl_loop *loop, const struct rl_loop_config *cfg)
{
    const char *envdis = getenv("RINGLOOP_DISABLE");
    char why[sizeof(loop->fallback_reason)] = "";
    unsigned disable = 0;
    int kind = cfg->backend, ret;

    /* A typo here would silently test the wrong thing: refuse it. */
    if (envdis && rl_feature_parse(envdis, &disable) < 0)
        return -EINVAL;
    loop->disable = cfg->disable | disable;
    if (kind == RL_BACKEND_AUTO) {
        kind = env_backend();
        if (kind < 0)
            return kind;
    }
    if (kind != RL_BACKEND_EPOLL) {
        ret = rl__uring_ops.init(loop, cfg, loop->disable, why, sizeof(why));
        if (ret == 0) {
            loop->ops = &rl__uring_ops;
            return 0;
        }
        if (!why[0])
            snprintf(why, sizeof(why), "io_uring setup failed: %s",
                     strerror(-ret));
        loop->fallback_errno = ret;
        memcpy(loop->fallback_reason, why, sizeof(why));
        if (kind == RL_BACKEND_URING)
            return ret;
    }
    ret = rl__epoll_ops.init(loop, cfg, loop->disable, why, sizeof(why));
    if (ret < 0)
        return ret;
    loop->ops = &rl__epoll_ops;
    return 0;
}
