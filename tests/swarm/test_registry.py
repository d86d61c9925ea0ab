"""Every kind of the vocabulary has exactly one service module, and modules keep their contract."""

from __future__ import annotations

from swarm.kinds import ALL_KINDS, CONFIGURED_KINDS, PLACED_KINDS
from swarm.plan import SwarmPlan
from swarm.services import REGISTRY


def test_every_kind_has_exactly_one_registry_entry() -> None:
    assert len(ALL_KINDS) == len(set(ALL_KINDS)), "a kind is both configured and placed"
    missing = sorted(set(ALL_KINDS) - set(REGISTRY))
    unknown = sorted(set(REGISTRY) - set(ALL_KINDS))
    assert not missing, f"kinds without a module in swarm/services: {missing}"
    assert not unknown, f"registry entries outside swarm.kinds: {unknown}"


def test_each_module_declares_the_kind_it_is_registered_under() -> None:
    for kind, module in REGISTRY.items():
        assert kind == module.KIND


def test_planned_services_carry_registered_kinds_and_unique_names(prod_plan: SwarmPlan) -> None:
    names = [service.name for service in prod_plan.services]
    assert len(names) == len(set(names))
    assert {service.kind for service in prod_plan.services} <= set(REGISTRY)


def test_the_vocabulary_is_split_into_configured_and_placed() -> None:
    assert set(CONFIGURED_KINDS).isdisjoint(PLACED_KINDS)
    assert "swarm-router" in CONFIGURED_KINDS and "swarm-autotuner" in PLACED_KINDS
