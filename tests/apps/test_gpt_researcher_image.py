"""The GPT Researcher image is reproducible: a commit pinned by hash, every dependency by hash,
and the lock generated from that same commit. (The image's contents are run end to end by
images/gpt-researcher/check.py, which needs the upstream source: not reachable from CI.)"""

from __future__ import annotations

import re

from swarm.services import gpt_researcher
from tests.conftest import REPO

IMAGE_DIR = REPO / gpt_researcher.IMAGE.context
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _commit() -> str:
    found = re.findall(r"^ARG GPTR_COMMIT=(\S+)$", (IMAGE_DIR / "Dockerfile").read_text(), re.M)
    assert len(found) == 1
    return found[0]


def test_the_dockerfile_pins_a_full_commit_hash_and_checks_it() -> None:
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", _commit())
    assert 'test "$(git rev-parse HEAD)" = "${GPTR_COMMIT}"' in dockerfile
    assert "pip install --require-hashes --no-deps" in dockerfile
    assert f"USER {gpt_researcher.USER}" in dockerfile, "the plan's uid is the image's user"
    for directory in gpt_researcher.WRITABLE:
        assert directory in dockerfile.split("mkdir -p", 1)[1].split("\n", 1)[0], directory


def test_the_lock_comes_from_the_pinned_commit_and_hashes_every_requirement() -> None:
    lines = (IMAGE_DIR / "requirements.lock").read_text().splitlines()
    assert lines[0].startswith(f"# GPT Researcher {_commit()}:"), "regenerate with images/gpt-researcher/lock.sh"
    pins = {}
    for number, line in enumerate(lines):
        match = REQUIREMENT.match(line)
        if match:
            assert lines[number + 1].lstrip().startswith("--hash=sha256:"), line
            pins[match.group(1).lower()] = match.group(2)
        else:
            assert line.startswith(("#", " ")) or not line.strip(), f"unpinned or unexpected line: {line!r}"
    assert {"fastapi", "uvicorn", "langchain", "litellm", "tiktoken"} <= set(pins)
    assert not any(word in "\n".join(lines) for word in ("file://", "--find-links", "--extra-index-url", "/opt/"))


def test_the_build_context_is_relative_to_the_project() -> None:
    """The node builds this context; an absolute path would differ per checkout and sit in state."""
    assert not gpt_researcher.IMAGE.context.startswith("/")
    assert (REPO / gpt_researcher.IMAGE.dockerfile).is_file()
