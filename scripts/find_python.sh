# Sourced by python_env.sh and test.sh.
#
# find_python NAME: print the path of a working interpreter for NAME (e.g.
# python3.13 or a path): NAME itself if it runs, else pyenv's build of that
# version ($PYENV_ROOT/versions/3.13.*/bin/python3.13, where a pyenv shim
# says the version is not selected). Returns 1 when there is none.
find_python() {
    local name=$1 cand
    if "$name" -c '' 2>/dev/null; then
        command -v "$name"
        return 0
    fi
    for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${name#python}".*/bin/"$name"; do
        if [ -x "$cand" ] && "$cand" -c '' 2>/dev/null; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}
