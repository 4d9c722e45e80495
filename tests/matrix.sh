#!/usr/bin/env bash
# Feature matrix: run the test suites once per ringloop fast path switched
# off (RINGLOOP_DISABLE=<word>, for each word `ringloop-probe --json`
# lists that is on by default, then all of them), once per opt-in switched
# on (RINGLOOP_ENABLE=<word>: sqpoll, napi), with io_uring refused at
# setup, and once with nothing changed; then print a pass/fail grid.
#
# io_uring is refused by a seccomp filter that makes io_uring_setup fail
# with EPERM (tests/probe/seccomp_refuse.c), in two rows: "uring-refused"
# runs the selected tests through ctest, where the tests pinned to
# RINGLOOP_BACKEND=uring must skip (77), not fail or hang; "refused+auto"
# runs the same programs with RINGLOOP_BACKEND unset
# (tests/probe/matrix_auto.py), so every loop falls back to epoll through
# auto selection and every test must pass.
#
#   tests/matrix.sh [--no-build] [--select 'CTEST ARGS'] [--jobs N] [BUILD]
#
#   BUILD         build directory to use. It is configured (tests on,
#                 -Werror) if it has no CMakeCache.txt, and brought up to
#                 date unless --no-build. Default:
#                 ${RINGLOOP_BUILD_DIR:-<repo>/build}/matrix
#   --select ARGS the ctest arguments that pick the tests of each run.
#                 Default: -LE '^(epoll|probe|disable)$', i.e. the tests
#                 registered for the uring backend plus those that choose
#                 their backend themselves. Left out: the epoll runs (they
#                 ignore RINGLOOP_DISABLE), the ".uring.no_<word>" runs
#                 (label disable: they set RINGLOOP_DISABLE themselves,
#                 and CTest lets a test's ENVIRONMENT win) and the probe's
#                 own tests (they set their environment themselves).
#   --jobs N      ctest parallelism (default: nproc)
#
# Python suite hook: for each configuration the script also runs the
# Python suite with the same environment (and under the same seccomp
# filter), if there is one: the command in $RINGLOOP_MATRIX_PYTHON, else
# scripts/test_python.sh if it exists and is executable. Its column says
# PASS/FAIL from the exit status, or n/a when there is no Python suite.
#
# Exit status: 0 when every configuration passed, 1 otherwise, 2 on a usage
# or build error. Logs: BUILD/matrix-logs/<configuration>.log
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=""
do_build=1
select_args="-LE ^(epoll|probe|disable)\$"
jobs=$(nproc)

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --no-build) do_build=0 ;;
    --select) [ $# -ge 2 ] || usage; select_args=$2; shift ;;
    --jobs) [ $# -ge 2 ] || usage; jobs=$2; shift ;;
    -h | --help) usage ;;
    -*) echo "matrix: unknown option $1" >&2; usage ;;
    *) [ -z "$build" ] || usage; build=$1 ;;
    esac
    shift
done
build=${build:-${RINGLOOP_BUILD_DIR:-$root/build}/matrix}
# Absolute: ctest resolves --output-junit against the build directory.
mkdir -p "$build"
build=$(cd "$build" && pwd)
# Split into words without globbing (a regex may hold * or [).
read -r -a sel <<<"$select_args"

# ---- build ---------------------------------------------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "matrix: configuring $build"
    cmake -S "$root" -B "$build" -DRINGLOOP_BUILD_TESTS=ON \
        -DRINGLOOP_BUILD_TOOLS=ON -DRINGLOOP_WERROR=ON >/dev/null ||
        { echo "matrix: cmake configure failed" >&2; exit 2; }
    do_build=1
fi
if [ "$do_build" = 1 ]; then
    echo "matrix: building $build"
    cmake --build "$build" -j"$jobs" >/dev/null ||
        { echo "matrix: build failed (run cmake --build $build)" >&2; exit 2; }
fi

probe=$build/tools/ringloop-probe
refuse=$build/tools/probe-seccomp-refuse
for f in "$probe" "$refuse"; do
    if [ ! -x "$f" ]; then
        echo "matrix: $f missing (RINGLOOP_BUILD_TOOLS and" \
            "RINGLOOP_BUILD_TESTS must be ON)" >&2
        exit 2
    fi
done

logs=$build/matrix-logs
mkdir -p "$logs"
unset RINGLOOP_BACKEND RINGLOOP_DISABLE RINGLOOP_ENABLE

# The fast-path words, from the probe's JSON ("word": "x" on each row):
# those on by default, and the opt-ins ("opt_in": true).
probe_json=$(env -u RINGLOOP_DISABLE "$probe" --json || true)
mapfile -t words < <(printf '%s\n' "$probe_json" | grep -v '"opt_in": true' |
    sed -n 's/.*"word": "\([a-z_0-9]*\)".*/\1/p')
mapfile -t optins < <(printf '%s\n' "$probe_json" | grep '"opt_in": true' |
    sed -n 's/.*"word": "\([a-z_0-9]*\)".*/\1/p')
if [ ${#words[@]} -eq 0 ]; then
    echo "matrix: ringloop-probe --json lists no fast paths" >&2
    exit 2
fi

python_cmd=${RINGLOOP_MATRIX_PYTHON:-}
if [ -z "$python_cmd" ] && [ -x "$root/scripts/test_python.sh" ]; then
    python_cmd=$root/scripts/test_python.sh
fi

# ---- one configuration -------------------------------------------------
# The grid rows, filled by run_config.
rows=()
overall=0

# count ATTR FILE: an attribute of the <testsuite> element of a JUnit file.
count() {
    tr '\n' ' ' <"$2" |
        sed -n "s/.*<testsuite [^>]*\\b$1=\"\\([0-9]*\\)\".*/\\1/p"
}

# What the probe says the loop uses in this configuration: "uring 6/8".
probe_view() { # WRAP...
    local out backend active total
    out=$("$@" "$probe" --json 2>/dev/null || true)
    backend=$(printf '%s\n' "$out" |
        sed -n '/"loop": {/s/.*"backend": "\([a-z]*\)".*/\1/p')
    total=$(printf '%s\n' "$out" | grep -c '"word": ' || true)
    active=$(printf '%s\n' "$out" | grep -c '"active": true' || true)
    echo "${backend:-?} $active/$total"
}

# RINGLOOP_ENABLE for the next run_config (run_enable_config sets it).
enable=""

run_config() { # NAME DISABLE-VALUE WRAP...
    local name=$1 disable=$2
    shift 2
    local log=$logs/${name/:/-}.log junit=$logs/${name/:/-}.xml
    local rc=0 total failed skipped passed status py view
    local -a envs=()

    [ -z "$disable" ] || envs=("RINGLOOP_DISABLE=$disable")
    [ -z "$enable" ] || envs+=("RINGLOOP_ENABLE=$enable")
    view=$(
        [ -z "$disable" ] || export RINGLOOP_DISABLE=$disable
        [ -z "$enable" ] || export RINGLOOP_ENABLE=$enable
        probe_view "$@"
    )
    echo "matrix: $name${disable:+ (RINGLOOP_DISABLE=$disable)}${enable:+ (RINGLOOP_ENABLE=$enable)}"
    rm -f "$junit"
    env "${envs[@]}" "$@" ctest --test-dir "$build" "${sel[@]}" \
        -j"$jobs" --output-on-failure --output-junit "$junit" \
        >"$log" 2>&1 || rc=$?
    if [ -f "$junit" ]; then
        total=$(count tests "$junit")
        failed=$(count failures "$junit")
        skipped=$(count skipped "$junit")
    else
        total=0 failed=0 skipped=0
    fi
    total=${total:-0} failed=${failed:-0} skipped=${skipped:-0}
    passed=$((total - failed - skipped))
    if [ "$total" = 0 ]; then
        status=NOTESTS
        overall=1
    elif [ "$rc" = 0 ] && [ "$failed" = 0 ]; then
        status=PASS
    else
        status=FAIL
        overall=1
    fi

    # Python suite hook: same environment, same seccomp filter.
    py=n/a
    if [ -n "$python_cmd" ]; then
        if env "${envs[@]}" "$@" bash -c "$python_cmd" \
            >>"$log.python" 2>&1; then
            py=PASS
        else
            py=FAIL
            overall=1
        fi
    fi
    local col=${disable:--}
    [ -z "$enable" ] || col="+$enable"
    rows+=("$name|$col|$view|$passed|$failed|$skipped|$total|$status")
    rows[-1]+="|$py"
}

# The selected programs run directly with the auto backend, under WRAP.
run_auto_config() { # NAME WRAP...
    local name=$1
    shift
    local log=$logs/${name/+/-}.log res view status
    local total=0 passed=0 failed=0 skipped=0

    view=$(probe_view "$@")
    echo "matrix: $name (RINGLOOP_BACKEND unset)"
    if ! command -v python3 >/dev/null; then
        rows+=("$name|-|$view|-|-|-|-|n/a|-")
        return
    fi
    res=$("$@" python3 "$root/tests/probe/matrix_auto.py" --build "$build" \
        --log "$log" --jobs "$jobs" -- "${sel[@]}" 2>>"$log.err" |
        tail -n1) || true
    local re='^total=([0-9]+) passed=([0-9]+) failed=([0-9]+) skipped=([0-9]+)$'
    if [[ $res =~ $re ]]; then
        total=${BASH_REMATCH[1]} passed=${BASH_REMATCH[2]}
        failed=${BASH_REMATCH[3]} skipped=${BASH_REMATCH[4]}
    else
        failed=1 # the runner itself failed; see $log.err
    fi
    if [ "$failed" != 0 ]; then
        status=FAIL
        overall=1
    elif [ "$total" = 0 ]; then
        status=NOTESTS
        overall=1
    else
        status=PASS
    fi
    rows+=("$name|-|$view|$passed|$failed|$skipped|$total|$status|-")
}

# ---- the matrix ----------------------------------------------------------
run_config baseline ""
for w in "${words[@]}"; do
    run_config "off:$w" "$w"
done
run_config "off:all" "all"
# The opt-ins, each switched on (the grid shows +word).
for w in "${optins[@]}"; do
    enable=$w
    run_config "on:$w" ""
    enable=""
done
run_config "uring-refused" "" "$refuse" -e EPERM
run_auto_config "refused+auto" "$refuse" -e EPERM

# ---- the grid ------------------------------------------------------------
echo
printf '%-22s %-18s %-10s %5s %5s %5s %5s  %-7s %s\n' configuration \
    RINGLOOP_DISABLE "loop" pass fail skip total C python
printf '%.0s-' {1..90}
echo
for row in "${rows[@]}"; do
    IFS='|' read -r n d v p f s t st py <<<"$row"
    printf '%-22s %-18s %-10s %5s %5s %5s %5s  %-7s %s\n' \
        "$n" "$d" "$v" "$p" "$f" "$s" "$t" "$st" "$py"
done
echo
echo "loop: backend and active fast paths as ringloop-probe reports them"
echo "+word: RINGLOOP_ENABLE=word (an opt-in switched on) instead of a" \
    "RINGLOOP_DISABLE value"
echo "tests: ctest $select_args in $build; logs in $logs"
[ -n "$python_cmd" ] || echo "python: n/a (no scripts/test_python.sh yet," \
    "or set RINGLOOP_MATRIX_PYTHON)"
exit $overall
