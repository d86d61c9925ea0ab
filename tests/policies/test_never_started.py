"""A container created with start=False (a service's file loader) runs nothing: the rules about
a running process do not apply to it, and every other rule still does."""

from __future__ import annotations

import pytest

from .fixtures import container, hardened_vllm
from .helpers import run

LOADER = {"start": False, "readOnly": False, "restart": "no", "healthcheck": {"tests": ["NONE"]}}
PROCESS_RULES = ("container-read-only-rootfs", "container-restart-policy", "container-healthcheck")


@pytest.mark.parametrize("policy", PROCESS_RULES)
def test_process_rules_skip_a_container_that_never_starts(policy: str) -> None:
    assert run(policy, [container(**LOADER)]) == []
    started = container(**{**LOADER, "start": True})
    assert run(policy, [started]), f"{policy} must still judge a container that starts"


def test_a_vllm_loader_needs_no_gpu_but_a_started_vllm_does() -> None:
    loader = container(hardened_vllm(), deviceRequests=[], **LOADER)
    assert run("vllm-requests-gpu", [loader]) == []
    assert run("vllm-requests-gpu", [container(hardened_vllm(), deviceRequests=[])])


@pytest.mark.parametrize("policy", ["container-non-root-user", "container-drop-all-capabilities",
                                    "container-no-new-privileges"])
def test_hardening_rules_still_judge_a_loader(policy: str) -> None:
    risky = container(**LOADER, user="root", capabilities={"drops": []}, securityOpts=[])
    assert run(policy, [risky])
