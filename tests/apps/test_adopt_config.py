"""`python -m swarm adopt-config`: `docker inspect` JSON -> the adopt block, exactly what the
Docker provider reads back on import (kreuzwerker `resourceDockerContainerRead`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from swarm.adopt import AdoptError, adoption_from_inspect, read_inspect, storage_location
from swarm.model import Adoption
from tests.apps.helpers import fixture_text
from tests.conftest import REPO


def _cli(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarm", "adopt-config", "--service", "qdrant"], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


def test_the_command_prints_a_block_that_reads_back_as_the_inspected_container() -> None:
    text = fixture_text("inspect-qdrant-starlord.json")
    result = _cli(text)
    assert result.returncode == 0, result.stderr
    block = yaml.safe_load(result.stdout)["adopt"]
    adoption = Adoption.model_validate(block)
    assert adoption == read_inspect(text)
    raw = json.loads(text)[0]
    assert adoption.container_id == raw["Id"] and len(raw["Id"]) == 64
    inputs = adoption.inputs
    assert (inputs.name, inputs.image) == ("qdrant", raw["Config"]["Image"])
    assert inputs.command == tuple(raw["Config"]["Cmd"]) and inputs.entrypoints == ()
    assert (inputs.working_dir, inputs.user, inputs.restart) == ("/qdrant", "", "unless-stopped")
    assert (inputs.network_mode, inputs.read_only, inputs.shm_size_mb, inputs.memory_mb) == ("bridge", False, 64, 0)
    assert inputs.healthcheck is not None
    assert inputs.healthcheck.tests == tuple(raw["Config"]["Healthcheck"]["Test"])
    assert (inputs.healthcheck.interval, inputs.healthcheck.timeout, inputs.healthcheck.start_period) == \
        ("30s", "5s", "1m30s")
    assert inputs.healthcheck.retries == 3
    assert {(p.internal, p.external, p.ip) for p in adoption.published} == {
        (6333, 6333, "0.0.0.0"), (6333, 6333, "::"), (6334, 6334, "0.0.0.0"), (6334, 6334, "::")}
    assert adoption.binds == ("/mnt/rag-storage/qdrant:/qdrant/storage",)


def test_the_block_never_copies_env_or_labels() -> None:
    """Env may hold the running container's secrets; neither is read back on import."""
    output = _cli(fixture_text("inspect-qdrant-starlord.json")).stdout
    assert "RUN_MODE" not in output and "TZ=" not in output and "opencontainers" not in output


def test_output_of_a_real_engine_is_accepted() -> None:
    """Captured from dockerd 20.10 (Debian docker.io) with `-v` and `--mount type=volume`."""
    adoption = read_inspect(fixture_text("inspect-dockerd-20.10.json"))
    assert adoption.inputs.network_mode == "none"
    assert [(m.target, m.type, m.source) for m in adoption.inputs.mounts] == [
        ("/qdrant/snapshots", "volume", "qdrant-snapshots")]
    assert storage_location(adoption) == ("bind", "/tmp/w/qdata")
    assert adoption.inputs.healthcheck is None


@pytest.mark.parametrize("field, value", [("Sysctls", {"net.core.somaxconn": "1024"}),
                                          ("ExtraHosts", ["db:10.0.0.5"]), ("GroupAdd", ["audio"])])
def test_inputs_the_block_cannot_carry_are_refused(field: str, value: object) -> None:
    document = json.loads(fixture_text("inspect-qdrant-starlord.json"))
    document[0]["HostConfig"][field] = value
    result = _cli(json.dumps(document))
    assert result.returncode == 2
    assert field in result.stderr and result.stdout == ""


def test_mount_options_are_refused_rather_than_dropped() -> None:
    document = json.loads(fixture_text("inspect-qdrant-starlord.json"))[0]
    document["HostConfig"]["Mounts"] = [{"Type": "volume", "Source": "q", "Target": "/qdrant/storage",
                                         "VolumeOptions": {"NoCopy": True}}]
    with pytest.raises(AdoptError, match="options"):
        adoption_from_inspect(document)


@pytest.mark.parametrize("stdin, message", [("not json", "not JSON"), ("[]", "exactly one"),
                                            ('{"Id": "x"}', "docker inspect")])
def test_wrong_input_exits_2_with_a_reason(stdin: str, message: str) -> None:
    result = _cli(stdin)
    assert result.returncode == 2 and message in result.stderr


