#!/usr/bin/env bash
# Build the C benchmarks and run them:
#   1. the core's microbenchmarks (ringloop_bench) on the uring and the
#      epoll backend, each benchmark on both in turn, printed side by side;
#   2. the echo comparison: echo_raw_uring, echo_raw_epoll and echo_ringloop
#      on each backend, each pinned to CPU 0 while loadgen runs on CPU 1,
#      with 1 and 50 connections and 1 KiB messages. Servers take turns
#      within a round (the order rotates between rounds) and every ratio is
#      to echo_raw_uring measured in the same round.
#   3. the multi-threaded echo server (echo_mt, one loop per thread):
#      SO_REUSEPORT listeners or one acceptor handing connections out by
#      ring message (rl_loop_send_fd), with 1 and 2 server threads; ratios
#      to the 1-thread reuseport server of the same round. See
#      docs/multithreading.md.
#
# Timings on a shared machine are noisy: compare the ratios of one run,
# never absolute numbers across runs.
#
# Environment (defaults in brackets):
#   RINGLOOP_BUILD_DIR  build root; the benches go in its bench/ [<repo>/build]
#   ROUNDS [3]  DURATION seconds [2]  WARMUP seconds [0.3]  SIZE bytes [1024]
#   CONNS ["1 50"]  PORT first TCP port [19000]  MICRO=0 skips step 1
#   MIN_TIME Google Benchmark min time per benchmark, seconds [0.1]
#   SERVER_CPU [0]  LOAD_CPU [1]; LOAD_CPU=0 shares the server's CPU: no
#   cross-CPU wakeups (slow and erratic on VMs), so steadier ratios, but
#   loadgen's own cost is in every request
#   ECHO=0 skips step 2; MT=0 skips step 3; MT_THREADS ["1 2"]
#   MT_CONNS ["50"]; MT_CPUS [0,1]: the CPUs the echo_mt server may use
#   (loadgen stays on LOAD_CPU, so with 2 server threads on a 2-CPU machine
#   it competes with one of them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGLOOP_BUILD_DIR:-$root/build}/bench
rounds=${ROUNDS:-3}
duration=${DURATION:-2}
warmup=${WARMUP:-0.3}
size=${SIZE:-1024}
conns_list=${CONNS:-"1 50"}
port=${PORT:-19000}
micro=${MICRO:-1}
min_time=${MIN_TIME:-0.1}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}

echo "== build ($build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRINGLOOP_BUILD_BENCH=ON -DRINGLOOP_BUILD_TESTS=OFF \
    -DRINGLOOP_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringloop_bench echo_ringloop \
    echo_raw_uring echo_raw_epoll echo_mt loadgen >/dev/null
bin=$build/bench
out=$build/results
mkdir -p "$out"

pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_server=(taskset -c "$server_cpu")
    pin_load=(taskset -c "$load_cpu")
else
    echo "note: fewer than 2 CPUs or no taskset: server and load unpinned"
fi

# ---- 1. microbenchmarks --------------------------------------------------
if [ "$micro" != 0 ]; then
    # One benchmark at a time, uring then epoll, so that both backends of a
    # row are measured side by side. Not pinned: some run several threads.
    echo "== microbenchmarks (uring and epoll, alternating)"
    rm -f "$out"/micro-*.json
    i=0
    for t in $("$bin/ringloop_bench" --benchmark_list_tests); do
        for be in uring epoll; do
            "$bin/ringloop_bench" --backend="$be" \
                --benchmark_filter="^${t}\$" \
                --benchmark_min_time="$min_time" \
                --benchmark_out="$out/micro-$be-$i.json" \
                --benchmark_out_format=json >/dev/null 2>"$out/micro.err" ||
                { echo "$t ($be) failed:"; cat "$out/micro.err"; }
        done
        i=$((i + 1))
    done
    python3 - "$out" <<'EOF'
import glob, json, os, sys

def load(backend):
    out = {}
    files = glob.glob(os.path.join(sys.argv[1], f"micro-{backend}-*.json"))
    for path in sorted(files, key=lambda p: int(p.rsplit("-", 1)[1][:-5])):
        try:
            with open(path) as f:
                out.update({b["name"]: b for b in json.load(f)["benchmarks"]})
        except (OSError, ValueError, KeyError):
            pass
    return out

uring, epoll = load("uring"), load("epoll")
names = list(uring) + [n for n in epoll if n not in uring]

def rate(b):
    if not b or b.get("error_occurred"):
        return None
    return b.get("items_per_second")

def fmt(v):
    if v is None:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f}{unit}/s"
    return f"{v:.1f}/s"

print(f"{'benchmark (items/s)':<44} {'uring':>11} {'epoll':>11} {'uring/epoll':>12}")
for n in names:
    u, e = rate(uring.get(n)), rate(epoll.get(n))
    r = f"{u / e:.2f}x" if u and e else "-"
    print(f"{n:<44} {fmt(u):>11} {fmt(e):>11} {r:>12}")
print("(BM_Timer* never reach the backend: their uring/epoll ratio shows this")
print(" run's noise; items are callbacks, timer operations or round trips.)")
EOF
fi

# ---- 2. echo comparison --------------------------------------------------
echo_step=${ECHO:-1}
servers=(raw-uring raw-epoll ringloop-uring ringloop-epoll)
server_cmd() { # NAME PORT
    case $1 in
    raw-uring) echo "$bin/echo_raw_uring --port $2" ;;
    raw-epoll) echo "$bin/echo_raw_epoll --port $2" ;;
    ringloop-uring) echo "$bin/echo_ringloop --backend uring --port $2" ;;
    ringloop-epoll) echo "$bin/echo_ringloop --backend epoll --port $2" ;;
    esac
}

spid=""
cleanup() {
    if [ -n "$spid" ]; then
        kill "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# measure NAME RESULTS ROUND CONNS SERVER-COMMAND...: start the server (on
# $port), drive it with loadgen, append the result to RESULTS and print one
# line. Only errors of the server reach stderr: echo_mt's start-up line
# ("echo_mt: 2 thread(s), ...") is dropped.
measure() {
    local s=$1 out=$2 r=$3 c=$4 line
    shift 4
    "$@" 2> >(grep -v '^echo_mt: [0-9]* thread' >&2) &
    spid=$!
    line=$("${pin_load[@]}" "$bin/loadgen" --port "$port" \
        --conns "$c" --size "$size" --duration "$duration" \
        --warmup "$warmup" --server-pid "$spid" --json) || true
    cleanup
    spid=""
    [ -n "$line" ] || line='{"rps": 0, "errors": -1}'
    echo "{\"server\": \"$s\", \"round\": $r, \"result\": $line}" >>"$out"
    printf '  round %d  conns %-3s %-20s %s\n' "$r" "$c" "$s" \
        "$(echo "$line" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f req/s" % d["rps"], "errors %d" % d["errors"] if d["errors"] else "")')"
}
trap 'exit 130' INT TERM

if [ "$echo_step" != 0 ]; then
results=$out/echo.jsonl
: >"$results"
echo "== echo: ${rounds} round(s) x conns {$conns_list} x ${#servers[@]}" \
    "servers, ${size}-byte messages, ${warmup}+${duration} s each"
for ((r = 0; r < rounds; r++)); do
    for c in $conns_list; do
        for ((k = 0; k < ${#servers[@]}; k++)); do
            s=${servers[$(((k + r) % ${#servers[@]}))]}
            port=$((port + 1)) # a fresh port: a dead ring may hold the last
            # shellcheck disable=SC2046
            measure "$s" "$results" "$r" "$c" \
                "${pin_server[@]}" $(server_cmd "$s" "$port")
        done
    done
done

python3 - "$results" "${servers[@]}" <<'EOF'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = sys.argv[2:]
base = "raw-uring"

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

noisy = []  # rows whose per-round req/s ratios disagree by > 30%
by = {}  # (conns, server) -> [result per round]
for row in rows:
    res = row["result"]
    by.setdefault((res.get("conns"), row["server"]), []).append((row["round"], res))

print()
print("echo over loopback: requests/s and server CPU per request as ratios to")
print(f"{base} in the same round (median over rounds); server on one CPU, loadgen on another")
hdr = f"{'conns':>5} {'server':<15} {'req/s':>9} {'x ' + base:>12} {'(range)':>11} {'srv us/req':>10} {'x cpu':>7} {'p50 us':>8} {'p99 us':>8} {'loadgen cpu':>11}"
print(hdr)
for conns in sorted({k[0] for k in by if k[0] is not None}):
    baseline = dict(by.get((conns, base), []))
    for s in servers:
        runs = by.get((conns, s), [])
        ok = [(r, x) for r, x in runs if x.get("rps") and not x.get("errors")
              and not x.get("mismatches") and not x.get("stalled")]
        if not ok:
            print(f"{conns:>5} {s:<15} {'failed':>9}")
            continue
        def ratios(key):
            return [x[key] / baseline[r][key] for r, x in ok
                    if r in baseline and x.get(key) and baseline[r].get(key)]
        rps = med([x["rps"] for _, x in ok])
        rrs = ratios("rps")
        rr = med(rrs)
        spread = f"{min(rrs):.2f}-{max(rrs):.2f}" if len(rrs) > 1 else "-"
        if len(rrs) > 1 and max(rrs) > 1.3 * min(rrs):
            noisy.append(f"{s}/{conns}")
        cpu = med([x.get("server_cpu_us_per_req") for _, x in ok])
        cr = med(ratios("server_cpu_us_per_req"))
        p50 = med([x["latency_us"]["p50"] for _, x in ok])
        p99 = med([x["latency_us"]["p99"] for _, x in ok])
        cli = med([x.get("client_cpu_util") for _, x in ok])
        f = lambda v, spec: format(v, spec) if v is not None else "-"
        print(f"{conns:>5} {s:<15} {rps:>9.0f} {f(rr, '.3f') + 'x':>12} {spread:>11} "
              f"{f(cpu, '.2f'):>10} {f(cr, '.3f') + 'x':>7} {p50:>8.1f} {p99:>8.1f} "
              f"{f(cli * 100 if cli is not None else None, '.0f') + '%':>11}")
print()
print("Noisy, shared machines: compare ratios within this run only; (range) is")
print("the lowest and highest per-round ratio. 'x cpu' < 1 means less server CPU")
print("per request than the raw liburing server. With 1 connection every request")
print("waits for two cross-CPU wakeups; where those are slow (VMs) they dominate.")
if noisy:
    print(f"warning: req/s ratios varied by more than 30% between rounds for "
          f"{', '.join(noisy)}; trust the server CPU column more, or rerun "
          f"with more ROUNDS on a quieter machine.")
EOF
fi

# ---- 3. multi-threaded echo (echo_mt) --------------------------------------
# Rows: MODE-THREADS. loadgen opens its connections in the warmup, so the
# hand-offs (one ring message each) are not in the measured requests; their
# cost is BM_CrossLoopRoundTrip's (step 1), per hop.
if [ "${MT:-1}" != 0 ]; then
    mt_threads=${MT_THREADS:-"1 2"}
    mt_conns=${MT_CONNS:-"50"}
    mt_cpus=${MT_CPUS:-0,1}
    mt_rows=()
    for t in $mt_threads; do
        mt_rows+=("reuseport-$t" "handoff-$t")
    done
    pin_mt=()
    [ ${#pin_server[@]} -eq 0 ] || pin_mt=(taskset -c "$mt_cpus")
    mt_results=$out/echo_mt.jsonl
    : >"$mt_results"
    echo "== echo_mt: ${rounds} round(s) x conns {$mt_conns} x ${#mt_rows[@]}" \
        "servers (io_uring), server on CPUs $mt_cpus, loadgen on CPU $load_cpu"
    for ((r = 0; r < rounds; r++)); do
        for c in $mt_conns; do
            for ((k = 0; k < ${#mt_rows[@]}; k++)); do
                s=${mt_rows[$(((k + r) % ${#mt_rows[@]}))]}
                IFS=- read -r m t <<<"$s"
                port=$((port + 1))
                measure "$s" "$mt_results" "$r" "$c" "${pin_mt[@]}" \
                    "$bin/echo_mt" --backend uring --mode "$m" --threads "$t" \
                    --port "$port"
            done
        done
    done
    python3 - "$mt_results" "${mt_rows[@]}" <<'PYEOF'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = sys.argv[2:]
base = "reuseport-1"

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

by = {}
for row in rows:
    res = row["result"]
    by.setdefault((res.get("conns"), row["server"]), []).append((row["round"], res))
print()
print("echo_mt (one ringloop loop per thread, io_uring): requests/s and server")
print(f"CPU per request (all threads), ratios to {base} in the same round")
print(f"{'conns':>5} {'server':<20} {'req/s':>9} {'x ' + base:>14} {'srv us/req':>10} "
      f"{'x cpu':>7} {'srv cpu':>8} {'p50 us':>8} {'p99 us':>8} {'loadgen cpu':>11}")
for conns in sorted({k[0] for k in by if k[0] is not None}):
    baseline = dict(by.get((conns, base), []))
    for s in servers:
        ok = [(r, x) for r, x in by.get((conns, s), []) if x.get("rps")
              and not x.get("errors") and not x.get("mismatches")
              and not x.get("stalled")]
        if not ok:
            print(f"{conns:>5} {s:<20} {'failed':>9}")
            continue
        def ratio(key):
            return med([x[key] / baseline[r][key] for r, x in ok
                        if r in baseline and x.get(key) and baseline[r].get(key)])
        f = lambda v, spec: format(v, spec) if v is not None else "-"
        util = med([x.get("server_cpu_util") for _, x in ok])
        cli = med([x.get("client_cpu_util") for _, x in ok])
        print(f"{conns:>5} {s:<20} {med([x['rps'] for _, x in ok]):>9.0f} "
              f"{f(ratio('rps'), '.3f') + 'x':>14} "
              f"{f(med([x.get('server_cpu_us_per_req') for _, x in ok]), '.2f'):>10} "
              f"{f(ratio('server_cpu_us_per_req'), '.3f') + 'x':>7} "
              f"{f(util * 100 if util is not None else None, '.0f') + '%':>8} "
              f"{med([x['latency_us']['p50'] for _, x in ok]):>8.1f} "
              f"{med([x['latency_us']['p99'] for _, x in ok]):>8.1f} "
              f"{f(cli * 100 if cli is not None else None, '.0f') + '%':>11}")
print()
print("srv cpu: server CPU time over wall time (100% = one CPU). On a 2-CPU")
print("machine the 2-thread servers share CPU 1 with loadgen: their req/s is")
print("bounded by the machine, not by the server; compare CPU per request.")
PYEOF
fi

echo "results: $out"
