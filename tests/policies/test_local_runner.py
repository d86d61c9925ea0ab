"""run_policies builds engine-shaped args: unknowns, secrets, config, levels, providers."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_docker as docker
import pytest
from pulumi.output import Unknown
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import POLICIES
from policies.local_runner import PolicyCrashed, ResourceSnapshot, Verdict, has_mandatory, run_policies

from . import fixtures as f
from .capture import capture


def test_every_prop_unknown_never_crashes_a_policy() -> None:
    base = f.hardened_container()
    unknown = f.with_props(base, {key: Unknown() for key in base.props})
    sentinel = f.with_props(base, {key: UNKNOWN_STRING_VALUE for key in base.props})
    verdicts = run_policies([unknown, sentinel, f.captured("starlord-vllm-image")])
    assert not has_mandatory(verdicts)


def test_nested_unknowns_are_skipped() -> None:
    c = f.container(
        envs=[Unknown(), "A=1"],
        ports=[{"internal": 1.0, "external": 1.0, "ip": Unknown()}],
        capabilities={"drops": Unknown()},
        healthcheck={"tests": Unknown()},
        user=Unknown(),
    )
    assert run_policies([c]) == []


def test_preview_captured_unknown_image_is_left_to_the_remote_image_rule() -> None:
    vllm = f.hardened_vllm()
    assert isinstance(vllm.props["image"], Unknown)
    assert run_policies([vllm]) == []


def test_secret_wrapped_inputs_are_unwrapped_like_the_engine_does() -> None:
    def program() -> None:
        docker.Container("leaky", image="redis:7.4", envs=[pulumi.Output.secret("REDIS_PASSWORD=hunter2")])

    leaky = capture(program, preview=False)["leaky"]
    assert "value" in leaky.props["envs"]  # the mock keeps the secret envelope
    verdicts = run_policies([leaky], policies=[p for p in POLICIES if p.name == "container-no-plaintext-secrets"])
    assert [v.level for v in verdicts] == ["mandatory"]


def test_enforcement_level_override_and_disabled() -> None:
    bad = [f.container(privileged=True)]
    advisory = run_policies(bad, {"container-no-privileged": {"enforcementLevel": "advisory"}})
    assert [(v.policy, v.level) for v in advisory] == [("container-no-privileged", "advisory")]
    assert run_policies(bad, {"container-no-privileged": {"enforcementLevel": EnforcementLevel.DISABLED}}) == []
    assert run_policies(bad, {"container-no-privileged": "disabled"}) == []
    assert [v.level for v in run_policies(bad, {"all": "advisory"})] == ["advisory"]
    everyone_but = {"all": "disabled", "container-no-privileged": "mandatory"}
    assert [v.level for v in run_policies(bad, everyone_but)] == ["mandatory"]


def test_given_config_overrides_schema_defaults() -> None:
    config = {"gpu-device-inventory": {"gpu_inventory": {"thanos": [0]}}}
    verdicts = run_policies([f.hardened_vllm()], config)
    assert [(v.policy, v.level) for v in verdicts] == [("gpu-device-inventory", "mandatory")]


def test_verdicts_are_sorted_and_reproducible() -> None:
    resources = [f.container(privileged=True, user=None, readOnly=False), f.captured("starlord-vllm-image")]
    first, second = run_policies(resources), run_policies(list(reversed(resources)))
    assert first == second
    assert first == sorted(first, key=Verdict.sort_key)
    assert [v.level for v in first] == sorted((v.level for v in first), key=("mandatory", "advisory").index)


def test_message_carries_description_then_fix_like_the_engine() -> None:
    (verdict,) = run_policies([f.container(privileged=True)])
    description, fix = verdict.message.split("\n")
    assert description == "Containers must not run privileged (CIS 5.5)."
    assert "remove it" in fix


def test_provider_groups_containers_without_node_label() -> None:
    def unlabelled(name: str, provider: str) -> ResourceSnapshot:
        c = f.container(name=name, labels=None)
        return dataclasses.replace(c, provider_urn=provider)

    starlord = "urn:pulumi:test::ai-swarm::pulumi:providers:docker::starlord::id-1"
    thanos = "urn:pulumi:test::ai-swarm::pulumi:providers:docker::thanos::id-2"
    same = run_policies([unlabelled("a", starlord), unlabelled("b", starlord)])
    apart = run_policies([unlabelled("a", starlord), unlabelled("b", thanos)])
    assert [v.policy for v in same] == ["unique-host-ports"]
    assert apart == []


def test_a_crashing_policy_is_an_error_not_a_pass() -> None:
    def boom(args, report) -> None:
        raise KeyError("oops")

    broken = ResourceValidationPolicy("broken-policy", "Crashes.", boom, EnforcementLevel.MANDATORY)
    with pytest.raises(PolicyCrashed, match="broken-policy"):
        run_policies([f.hardened_container()], policies=[broken])


def test_async_validations_are_awaited() -> None:
    async def later(args, report) -> None:
        report("stack-wide problem", None)

    policy = StackValidationPolicy("async-policy", "Async.", later, EnforcementLevel.MANDATORY)
    assert run_policies([], policies=[policy]) == [
        Verdict("async-policy", None, "mandatory", "Async.\nstack-wide problem")
    ]
