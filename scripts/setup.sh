#!/usr/bin/env bash
# Install what building, testing and benchmarking ringloop need,
# idempotently: Debian packages with apt-get (only those missing). Python
# packages go into a venv (scripts/python_env.sh).
set -euo pipefail

debs=(build-essential cmake pkg-config liburing-dev libcmocka-dev python3-dev python3-venv
      libbenchmark-dev clang-format wrk)

missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
