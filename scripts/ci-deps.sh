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
need cloud-init cloud-init  # tests/oracle: `cloud-init schema --config-file` on the rendered user-data
need redis-server redis-server  # tests/services: the rendered redis.conf, entrypoint and healthcheck for real
need /usr/lib/postgresql/15/bin/initdb postgresql  # Debian 12; tests/services: the backup job's dump, prune and restore against a real server
need /usr/sbin/dockerd docker.io  # tests/engine: a Docker engine of the test's own (dockerd 20.10, vfs, no bridge)
need /usr/share/doc/busybox-static/copyright busybox-static  # tests/engine: a static /bin/busybox for the imported image
need promtool prometheus  # tests/monitoring: promtool check config/rules, test rules; a real prometheus on loopback
need amtool prometheus-alertmanager  # tests/monitoring: amtool check-config on the rendered alertmanager.yml
need node nodejs  # tests/apps: the real SillyTavern (npm) and its start command's key seeding

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
