"""What a real Docker engine stores for the prod containers' limits and healthchecks, read back
the way the Docker provider reads it (swarm.provider_readback), equals what the program sends.

The provider's create turns the inputs into the engine's units (`opts.ParseCPUs` for `cpus`,
`time.ParseDuration` for healthcheck durations, MB × 2^20 for memory); after create and on every
refresh its read formats `docker inspect` back (`nanoInt64ToDecimalString`, `Duration.String()`,
bytes / 2^20). The tests make the same create with the `docker` SDK from the offline plan's
container inputs and apply the read's formatting to what the engine answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from decimal import Decimal
from typing import Any

import docker.errors
import pytest

from swarm.offline.engine import CapturedRun
from swarm.provider_readback import go_duration, nano_cpus
from tests.engine.dockerd import Engine
from tests.provider_create import parse_cpus, parse_duration

CONTAINER = "docker:index/container:Container"
MIB = 1024 * 1024

pytestmark = pytest.mark.slow


def _limits(inputs: dict[str, Any]) -> tuple[Any, ...]:
    check = inputs.get("healthcheck") or {}
    return (inputs.get("cpus"), inputs.get("memory"), inputs.get("memorySwap"),
            check.get("interval"), check.get("timeout"), check.get("startPeriod"), check.get("retries"))


@pytest.fixture(scope="module")
def distinct(prod_run: CapturedRun) -> list[dict[str, Any]]:
    """One prod service container per distinct set of limits and healthcheck timings."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for resource in prod_run.resources:
        if resource.type == CONTAINER and resource.inputs.get("healthcheck", {}).get("tests", ["NONE"]) != ["NONE"]:
            seen.setdefault(_limits(dict(resource.inputs)), dict(resource.inputs))
    return list(seen.values())


@pytest.fixture
def created(engine: Engine) -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for container in made:
        with suppress(docker.errors.DockerException):
            container.remove(force=True)


def _create(engine: Engine, made: list[Any], inputs: dict[str, Any], *, swap: bool = True) -> dict[str, Any]:
    check = inputs["healthcheck"]
    container = engine.client.containers.create(
        engine.image, ["true"],
        nano_cpus=parse_cpus(inputs["cpus"]) if inputs.get("cpus") else None,
        mem_limit=int(inputs["memory"]) * MIB,
        memswap_limit=int(inputs["memorySwap"]) * MIB if swap else None,
        healthcheck={"test": ["CMD", "true"], "interval": parse_duration(check["interval"]),
                     "timeout": parse_duration(check["timeout"]), "retries": int(check["retries"]),
                     "start_period": parse_duration(check["startPeriod"])},
        network_mode="none")
    made.append(container)
    container.reload()
    return container.attrs


def test_the_plan_has_whole_cpus_and_minute_long_healthchecks(distinct: list[dict[str, Any]]) -> None:
    """The spellings that differ from the naive ones are exercised below."""
    assert any(d.get("cpus") == "1.0" for d in distinct)
    assert any("m" in d["healthcheck"]["startPeriod"] for d in distinct)


def test_the_engine_reads_back_what_the_program_sends(engine: Engine, created: list[Any],
                                                      distinct: list[dict[str, Any]]) -> None:
    info = engine.client.info()
    swap_limit = bool(info.get("SwapLimit"))
    # the engine refuses more CPUs than it has ("Range of CPUs is from 0.01 to 2.00"): a 2-core
    # runner checks the others, whole numbers among them
    fitting = [d for d in distinct if Decimal(d.get("cpus") or 0) <= int(info["NCPU"])]
    assert any(d.get("cpus", "").endswith(".0") for d in fitting)
    for inputs in fitting:
        attrs = _create(engine, created, inputs)
        host, check = attrs["HostConfig"], attrs["Config"]["Healthcheck"]
        name = inputs["name"]
        if inputs.get("cpus"):
            assert nano_cpus(int(host["NanoCpus"])) == inputs["cpus"], name
        assert host["Memory"] // MIB == inputs["memory"], name
        # without swap accounting the engine stores -1 whatever is sent (README, known limits)
        assert host["MemorySwap"] == (inputs["memorySwap"] * MIB if swap_limit else -1), name
        for key, field in (("interval", "Interval"), ("timeout", "Timeout"), ("startPeriod", "StartPeriod")):
            assert go_duration(int(check[field])) == inputs["healthcheck"][key], (name, key)


def test_an_unset_swap_limit_is_stored_as_twice_the_memory(engine: Engine, created: list[Any],
                                                            distinct: list[dict[str, Any]]) -> None:
    """Why the program sets `memory_swap`: unset, the read-back differs from the (absent) input."""
    if not engine.client.info().get("SwapLimit"):
        pytest.skip("this kernel has no swap accounting: the engine stores -1 (and the provider reads -1)")
    inputs = distinct[0]
    host = _create(engine, created, inputs, swap=False)["HostConfig"]
    assert host["MemorySwap"] == 2 * inputs["memory"] * MIB
