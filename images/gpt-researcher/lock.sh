#!/usr/bin/env bash
# Regenerates requirements.lock from the requirements.txt of the commit the Dockerfile pins.
#
#   bash images/gpt-researcher/lock.sh [GIT_DIR]
#
# GIT_DIR is a clone of upstream that contains the commit (default: a fresh shallow fetch of
# the commit from GitHub). Resolution is for the image's Python (3.11) on Linux, from PyPI only
# (no local indexes or wheel folders of this machine leak into the lock), with every file's hash.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
commit="$(sed -n 's/^ARG GPTR_COMMIT=\([0-9a-f]\{40\}\)$/\1/p' "$here/Dockerfile")"
repository="$(sed -n 's/^ARG GPTR_REPOSITORY=//p' "$here/Dockerfile")"
[[ -n "$commit" ]] || { echo "lock.sh: no 40-hex ARG GPTR_COMMIT in $here/Dockerfile" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git_dir="${1:-}"
if [[ -z "$git_dir" ]]; then
    git_dir="$work/src"
    git init --quiet "$git_dir"
    git -C "$git_dir" fetch --quiet --depth 1 "$repository" "$commit"
fi
git -C "$git_dir" show "$commit:requirements.txt" > "$work/requirements.in"

python3.11 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet pip-tools==7.6.2
(cd "$work" && env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    "$work/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --index-url https://pypi.org/simple \
    --output-file requirements.lock requirements.in)
{
    echo "# GPT Researcher $commit: requirements.txt of that commit, locked by images/gpt-researcher/lock.sh"
    cat "$work/requirements.lock"
} > "$here/requirements.lock"
echo "lock.sh: wrote $here/requirements.lock for $commit"
