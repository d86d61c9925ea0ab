"""Every policy: the bad resource is reported at the policy's level, the good one is not,
and an allow-list entry turns the report into a visible ``allowed`` verdict."""

from __future__ import annotations

import pytest

from policies import POLICIES

from .helpers import level_of, run
from .rule_cases import CASES


def test_every_policy_has_a_case() -> None:
    assert set(CASES) == {policy.name for policy in POLICIES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_violation_is_reported(name: str) -> None:
    bad, _ = CASES[name]
    resources = bad()
    verdicts = run(name, resources)
    assert verdicts, f"{name} did not fire"
    assert {v.level for v in verdicts} == {level_of(name)}
    assert all(v.policy == name for v in verdicts)
    if name != "oci-always-free-limits":  # a stack-wide total has no single resource to blame
        assert resources[0].urn in {v.urn for v in verdicts}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compliant_resources_pass(name: str) -> None:
    _, good = CASES[name]
    assert run(name, good()) == []


@pytest.mark.parametrize("name", sorted(set(CASES) - {"oci-always-free-limits"}))
def test_allow_list_waives_and_stays_visible(name: str) -> None:
    bad, _ = CASES[name]
    resources = bad()
    verdicts = run(name, resources, {"allow": [resources[0].name]})
    assert verdicts, "a waiver must stay visible"
    assert {v.level for v in verdicts} == {"allowed"}
    assert {v.urn for v in verdicts} == {resources[0].urn}
    assert all(v.message.startswith("waived by allow list: ") for v in verdicts)


def test_allow_list_accepts_patterns() -> None:
    verdicts = run("container-no-privileged", CASES["container-no-privileged"][0](), {"allow": ["oracle-*"]})
    assert [v.level for v in verdicts] == ["allowed"]


def test_messages_say_how_to_fix() -> None:
    for name, (bad, _) in CASES.items():
        for verdict in run(name, bad()):
            detail = verdict.message.split("\n", 1)[-1]
            assert len(detail) > 30 and any(
                w in detail.lower()
                for w in (
                    "set",
                    "add",
                    "use",
                    "remove",
                    "pin",
                    "give",
                    "shrink",
                    "restrict",
                    "create",
                    "upload",
                    "fix",
                    "label",
                    "list",
                    "grant",
                    "generate",
                    "leave",
                    "make",
                    "mount",
                    "place",
                    "point",
                )
            ), detail
