#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It makes a virtual environment with Python >= 3.11 and the harness's
# dependencies.  The harness itself travels in lib/ next to this script, and
# the course's cases (hidden ones included) in cases/.
set -euo pipefail

AUTOGRADER="${AUTOGRADER_ROOT:-/autograder}"
VENV="$AUTOGRADER/harness-venv"
DEPENDENCIES=(@DEPENDENCIES@)

python_ok() { command -v "$1" >/dev/null 2>&1 && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; }

PYTHON=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if python_ok "$candidate"; then PYTHON="$candidate"; break; fi
done
if [ -z "$PYTHON" ]; then
    echo "setup.sh: no Python >= 3.11 on this image; installing python3.11 with apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q python3.11 python3.11-venv
    PYTHON=python3.11
fi

if ! "$PYTHON" -m venv "$VENV"; then
    # Debian and Ubuntu ship venv separately (python3.X-venv).
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "$("$PYTHON" -c 'import sys; print("python3.%d-venv" % sys.version_info[1])')"
    "$PYTHON" -m venv "$VENV"
fi
# bubblewrap: every engine process in its own sandbox (grade --sandbox auto falls back to a uid per
# engine process where the container refuses namespaces).
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q bubblewrap; } \
        || echo "setup.sh: could not install bubblewrap; engines will run under a uid of their own" >&2
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${DEPENDENCIES[@]}"
chmod -R a+rX "$VENV"  # readable (never writable) by the engine processes' own uids
"$VENV/bin/python" -c 'import pluggy, yaml' && echo "setup.sh: ready ($("$VENV/bin/python" --version))"
