#!/usr/bin/env bash
# Set up everything this repo needs on a fresh Debian 12 machine (idempotent):
# a Python 3.11 virtualenv in .venv with the program, the policy pack, the runtime
# package (editable) and the test tools, all pinned.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: need Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        echo "setup: installing python3-venv" >&2
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
    fi
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt policies/requirements.txt runtime/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -r policies/requirements.txt
    echo "$want" > "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python --version))" >&2
