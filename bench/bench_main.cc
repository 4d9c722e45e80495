// main() for ringloop_bench: Google Benchmark's flags plus
//   --backend=uring|epoll|auto   (default: RINGLOOP_BACKEND, else auto)
// The backend in use is printed in the context header ("ringloop_backend")
// and as every benchmark's label.
#include <cstdio>
#include <cstring>
#include <string>

#include "bench_common.h"

int rl_bench_backend = RL_BACKEND_AUTO;

rl_loop *rl_bench_loop(benchmark::State &state)
{
    rl_loop_config cfg;
    rl_loop *loop = nullptr;

    rl_loop_config_init(&cfg);
    cfg.backend = rl_bench_backend;
    int ret = rl_loop_new(&loop, &cfg);
    if (ret < 0) {
        state.SkipWithError(
            (std::string("rl_loop_new: ") + strerror(-ret)).c_str());
        return nullptr;
    }
    state.SetLabel(rl_loop_backend_name(loop));
    return loop;
}

static int parse_backend(const char *v)
{
    if (!strcmp(v, "uring") || !strcmp(v, "io_uring"))
        return RL_BACKEND_URING;
    if (!strcmp(v, "epoll"))
        return RL_BACKEND_EPOLL;
    if (!strcmp(v, "auto"))
        return RL_BACKEND_AUTO;
    return -1;
}

int main(int argc, char **argv)
{
    int out = 1;

    // Take --backend out before Google Benchmark sees the arguments.
    for (int i = 1; i < argc; i++) {
        const char *v = nullptr;
        if (!strncmp(argv[i], "--backend=", 10))
            v = argv[i] + 10;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            v = argv[++i];
        if (!v) {
            argv[out++] = argv[i];
            continue;
        }
        rl_bench_backend = parse_backend(v);
        if (rl_bench_backend < 0) {
            fprintf(stderr, "%s: --backend uring|epoll|auto\n", argv[0]);
            return 2;
        }
    }
    argc = out;
    argv[argc] = nullptr;

    rl_loop_config cfg;
    rl_loop *probe;
    rl_loop_config_init(&cfg);
    cfg.backend = rl_bench_backend;
    int ret = rl_loop_new(&probe, &cfg);
    if (ret < 0) {
        fprintf(stderr, "%s: cannot create a loop: %s\n", argv[0],
                strerror(-ret));
        return 1;
    }
    benchmark::AddCustomContext("ringloop_backend",
                                rl_loop_backend_name(probe));
    std::string feats;
    for (unsigned bit = 1; bit & RL_FEAT_ALL; bit <<= 1) {
        const char *name = rl_feature_name(bit);
        if (name && (rl_loop_features(probe) & bit))
            feats += (feats.empty() ? "" : ",") + std::string(name);
    }
    benchmark::AddCustomContext("ringloop_features",
                                feats.empty() ? "none" : feats);
    if (rl_loop_fallback_errno(probe))
        benchmark::AddCustomContext("ringloop_fallback",
                                    rl_loop_fallback_reason(probe));
    rl_loop_free(probe);

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
