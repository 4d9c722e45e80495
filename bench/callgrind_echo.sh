#!/usr/bin/env bash
# User-space instructions per request of an echo server, counted by
# callgrind: repeatable where CPU time on a shared machine is not. The
# server runs under valgrind on CPU 0, loadgen drives it from CPU 1; the
# count covers the whole run (start-up and accepts included, about 1% at the
# default length) and is divided by every echo loadgen saw (requests_all).
# Kernel work is not counted: compare syscalls per request for that.
#
#   bench/callgrind_echo.sh [-c CONNS] [-s BYTES] [-d SECONDS] -- SERVER ARGS...
#   bench/callgrind_echo.sh -c 50 -- build/bench/bench/echo_ringloop --backend epoll
#
# The server gets --port PORT appended. Output: one line, and the callgrind
# file (callgrind_annotate it) in ${OUT:-/tmp}/callgrind.echo.<pid>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
loadgen=${LOADGEN:-${RINGLOOP_BUILD_DIR:-$root/build}/bench/bench/loadgen}
conns=50 size=1024 secs=3
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
    -c) conns=$2; shift 2 ;;
    -s) size=$2; shift 2 ;;
    -d) secs=$2; shift 2 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
shift
[ $# -gt 0 ] || { echo "callgrind_echo.sh: no server given" >&2; exit 2; }
out=${OUT:-/tmp}/callgrind.echo.$$
port=$((20000 + RANDOM % 10000)) # below the ephemeral range

taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$@" --port "$port" 2>"$out.log" &
vpid=$!
trap 'kill -9 $vpid 2>/dev/null || true' EXIT
sleep 2 # valgrind starts slowly
res=$(taskset -c 1 "$loadgen" --port "$port" -c "$conns" -s "$size" \
    -d "$secs" -w 1 --json)
# Servers blocked in io_uring_enter do not see signals under valgrind:
# ask for a dump, then kill.
callgrind_control -d "$vpid" >/dev/null
sleep 0.5
kill -9 "$vpid" 2>/dev/null || true
wait "$vpid" 2>/dev/null || true # (valgrind reports the kill)
trap - EXIT
f=$(ls -t "$out" "$out".[0-9]* 2>/dev/null | head -1)
python3 - "$f" "$res" <<'EOF'
import json, sys

total = 0
for line in open(sys.argv[1]):
    if line.startswith(("totals:", "summary:")):
        total = int(line.split()[1])
res = json.loads(sys.argv[2])
n = res["requests_all"]
print(f"{n} echoes, {total} instructions, {total / n:.0f} per echo "
      f"({res['conns']} conns, {res['size']} B): {sys.argv[1]}")
EOF
