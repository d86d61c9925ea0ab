#!/usr/bin/env bash
# Debian packages the tests run for real (validators, servers, a Docker engine). Idempotent:
# installs only what is missing, runs `apt-get update` at most once. Needs root (CI is root).
set -euo pipefail

missing=()
need() {  # need <command-or-path> <debian-package>
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -e "$1" ]; then
        missing+=("$2")
    fi
}

# One line per tool: `need <command> <package>`.

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci-deps: missing ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "ci-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
