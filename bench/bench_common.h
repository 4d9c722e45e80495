// Shared by the Google Benchmark programs: which backend to run on, and a
// loop made for one benchmark.
#ifndef RL_BENCH_COMMON_H
#define RL_BENCH_COMMON_H

#include <benchmark/benchmark.h>

#include "ringloop.h"

// enum rl_backend_kind chosen by --backend (RL_BACKEND_AUTO: the core reads
// RINGLOOP_BACKEND, else picks io_uring when it can).
extern int rl_bench_backend;

// A new loop on the chosen backend, labelled with the backend's name, or
// nullptr after SkipWithError.
rl_loop *rl_bench_loop(benchmark::State &state);

#endif // RL_BENCH_COMMON_H
