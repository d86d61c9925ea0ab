"""The hardened fixtures pass the whole pack; each insecure mutation is caught by name."""

from __future__ import annotations

import pytest

from policies.local_runner import run_policies

from . import fixtures as f
from .mutations import MUTATIONS, check_mutation, mutated

BASES = {"gateway": f.hardened_container, "vllm": f.hardened_vllm}


@pytest.mark.parametrize("base", sorted(BASES))
def test_hardened_container_passes_every_rule(base: str) -> None:
    assert run_policies([BASES[base]()]) == []


def test_captured_fixture_stack_is_clean() -> None:
    resources = [
        f.captured(name)
        for name in (
            "litellm-master-key",
            "oracle-litellm-image",
            "oracle-postgres-data",
            "starlord-vllm-image",
            "oracle-tailnet-key",
            "tailnet-acl",
            "oracle-litellm-container",
            "starlord-vllm-primary-container",
        )
    ]
    resources += [f.oci_instance(), f.oci_security_list([f.oci_rule("100.64.0.0/10")])]
    verdicts = run_policies(resources)
    assert [(v.policy, v.level) for v in verdicts] == [("image-digest-pinned", "advisory")]


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize(("label", "mutate", "expected"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_is_caught_as_mandatory(base: str, label: str, mutate, expected: str) -> None:
    caught, verdicts = check_mutation(BASES[base](), (label, mutate, expected))
    assert caught, f"{label!r} not caught by {expected}: {verdicts}"


@pytest.mark.parametrize(("label", "mutate", "expected"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutations_do_not_touch_their_input(label: str, mutate, expected: str) -> None:
    original = f.hardened_container()
    before = repr(original.props)
    assert mutated(original, mutate).props != original.props
    assert repr(original.props) == before


def test_allow_listed_mutation_is_reported_as_allowed() -> None:
    host_network = next(m for m in MUTATIONS if m[0] == "network_mode host")
    config = {"container-no-host-namespaces": {"allow": ["oracle-litellm-container"]}}
    caught, verdicts = check_mutation(f.hardened_container(), host_network, config)
    assert not caught
    assert [(v.policy, v.level) for v in verdicts] == [("container-no-host-namespaces", "allowed")]
