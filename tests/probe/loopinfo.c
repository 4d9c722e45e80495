/*
 * probe-loopinfo: create a loop with the default config (as any program in
 * this environment would), push one NOP through it, and print what it uses
 * as one JSON object, for comparison with ringloop-probe --json:
 *
 *   {"ok": bool, "errno": int, "backend": "uring"|"epoll"|"",
 *    "fallback_errno": int, "fallback_reason": string,
 *    "features": [words of rl_loop_features()], "nop_ok": bool}
 *
 * Exit status: 0 if the loop was created and ran the NOP, 1 otherwise.
 */
#include <stdbool.h>
#include <stdio.h>

#include "ringloop.h"

static void print_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static void on_nop(rl_loop *loop, rl_op *op)
{
    (void)loop;
    *(int *)op->data = op->res == 0 ? 1 : -1;
}

/* Submit a NOP and run until it completes. true if it did, with res 0. */
static bool loop_nop(rl_loop *loop)
{
    rl_op op;
    int done = 0, i;

    rl_prep_nop(&op, on_nop, &done);
    if (rl_submit(loop, &op) < 0)
        return false;
    for (i = 0; i < 100 && !done; i++)
        if (rl_loop_run(loop, RL_RUN_ONCE) < 0)
            break;
    return done == 1;
}

int main(void)
{
    const char *sep = "";
    rl_loop *loop = NULL;
    bool nop_ok = false;
    unsigned bit, features = 0;
    int ret = rl_loop_new(&loop, NULL);

    printf("{\"ok\": %s, \"errno\": %d, \"backend\": ",
           ret == 0 ? "true" : "false", ret);
    print_str(ret == 0 ? rl_loop_backend_name(loop) : "");
    printf(", \"fallback_errno\": %d, \"fallback_reason\": ",
           ret == 0 ? rl_loop_fallback_errno(loop) : 0);
    print_str(ret == 0 ? rl_loop_fallback_reason(loop) : "");
    if (ret == 0) {
        features = rl_loop_features(loop);
        nop_ok = loop_nop(loop);
    }
    fputs(", \"features\": [", stdout);
    for (bit = 1; bit; bit <<= 1)
        if (features & bit && rl_feature_name(bit)) {
            fputs(sep, stdout);
            print_str(rl_feature_name(bit));
            sep = ", ";
        }
    printf("], \"nop_ok\": %s}\n", nop_ok ? "true" : "false");
    if (loop)
        rl_loop_free(loop);
    return ret == 0 && nop_ok ? 0 : 1;
}
