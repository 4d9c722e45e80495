# Sourced by test_python.sh and bench.sh: the venv that ringloop is
# installed into (made once, reused) and `pip install .` into it.
#
#   RINGLOOP_PYTHON   interpreter (default: python3); a name such as
#                     python3.13 is also looked up among pyenv's versions
#   RINGLOOP_VENV     venv directory (default: build/venv-pyX.Y)
#   RINGLOOP_PY_BUILD CMake build directory of `pip install .` (default:
#                     build/py-<wheel tag>); two builds at once need two
#
# Expects $root (the checkout). Sets $pyver, $venv, $vpy (the venv's python)
# and $pip (an array: pip, quiet).

. "$root/scripts/find_python.sh"
python=$(find_python "${RINGLOOP_PYTHON:-python3}") || {
    echo "no interpreter ${RINGLOOP_PYTHON:-python3} on this machine" >&2
    exit 1
}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=${RINGLOOP_VENV:-$root/build/venv-py$pyver}

if [ ! -x "$venv/bin/python" ]; then
    echo "== python: creating $venv"
    "$python" -m venv "$venv"
fi
vpy=$venv/bin/python
pip=("$vpy" -m pip --disable-pip-version-check -q)

# venv_require MODULE=REQUIREMENT...: pip install each requirement whose
# module does not import yet (a second run installs nothing).
venv_require() {
    local spec missing=()
    for spec in "$@"; do
        "$vpy" -c "import ${spec%%=*}" 2>/dev/null || missing+=("${spec#*=}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== python $pyver: pip install ${missing[*]}"
        "${pip[@]}" install "${missing[@]}"
    fi
}

# install_ringloop BUILD-NAME [CMAKE-DEFINE...]: build and install the
# checkout with `pip install .`, reusing the CMake build directory
# build/BUILD-NAME-<wheel tag> (so the build requirements live in the venv,
# not in an isolated build environment).
install_ringloop() {
    local name=$1 def args=() bdir="$root/build/$1-{wheel_tag}"
    shift
    bdir=${RINGLOOP_PY_BUILD:-$bdir}
    for def in "$@"; do
        args+=(--config-settings=cmake.define."$def")
    done
    venv_require scikit_build_core='scikit-build-core>=0.10'
    echo "== python $pyver: pip install ."
    "${pip[@]}" install --no-build-isolation --force-reinstall --no-deps \
        --config-settings=build-dir="$bdir" \
        ${args[@]+"${args[@]}"} "$root"
}
