"""Invalid or infeasible stacks: exit 2, an error naming the key path, and nothing registered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from swarm.offline import offline
from swarm.offline.offline import EXIT_INVALID, offline_plan
from tests.swarm.conftest import REPO, config_of

N = "ai-swarm:nodes"
INF = "ai-swarm:inference"
S = "ai-swarm:services"

Mutation = Callable[[dict[str, Any]], None]


def _set(key: str, *path: str | int, value: Any) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        target = values[key]
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return mutate


def _delete(key: str, *path: str) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        target = values[key]
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return mutate


def _add_key(key: str, value: Any) -> Mutation:
    return lambda values: values.__setitem__(key, value)


CASES: list[tuple[str, Mutation, str, str]] = [
    ("unknown top-level key", _add_key("ai-swarm:nodez", {}), "ai-swarm:nodez", "unknown key"),
    ("unknown nested key", _set(N, "starlord", "gpu", value=[]), f"{N}.starlord.gpu", "unknown key"),
    ("wrong type (RAM)", _set(N, "starlord", "ram_gb", value="lots"), f"{N}.starlord.ram_gb", "number"),
    ("wrong type (port)", _set(INF, "starlord-primary", "port", value="eight thousand"),
     f"{INF}.starlord-primary.port", "integer"),
    ("duplicate Tailscale address", _set(N, "thanos", "tailscale_ip", value="100.72.73.3"),
     f"{N}.thanos.tailscale_ip", "already node 'starlord'"),
    ("service on an unknown node", _set(S, "sillytavern", "node", value="hulk"),
     f"{S}.sillytavern.node", "unknown node 'hulk'"),
    ("GPU index out of range", _set(INF, "starlord-primary", "gpu", value=1),
     f"{INF}.starlord-primary.gpu", "no GPU index 1"),
    ("vLLM on a GPU-less node", _set(INF, "thanos-backup", "node", value="oracle"),
     f"{INF}.thanos-backup.node", "has no GPU"),
    ("two services on one host port", _set(S, "grafana", "port", value=3000),
     f"{S}.grafana.port", "host port 3000 on node 'oracle' is already published by service 'open-webui'"),
    ("service port taken by a vLLM", _set(S, "qdrant", "port", value=8000),
     f"{S}.qdrant.port", "already published by inference 'starlord-primary'"),
    ("service port taken by an agent", _set(S, "grafana", "port", value=9100),
     f"{S}.grafana.port", "node-exporter"),
    ("a literal secret in a secret key", _add_key("ai-swarm:openrouterApiKey", "sk-or-v1-0123456789abcdef0123"),
     "ai-swarm:openrouterApiKey", "pulumi config set --secret openrouterApiKey"),
    ("a literal credential in a structured value",
     _set("ai-swarm:providers", "openrouter", "api_key_secrets", value=["sk-or-v1-0123456789abcdef0123"]),
     "ai-swarm:providers.openrouter.api_key_secrets[0]", "looks like a credential"),
    ("a provider naming a non-secret key", _set("ai-swarm:providers", "gemini", "api_key_secrets", value=["gemini"]),
     "ai-swarm:providers.gemini.api_key_secrets", "must name a secret config key"),
    ("utilisation sum over the ceiling", _set(INF, "starlord-secondary", "gpu_memory_utilization", value=0.35),
     f"{INF}.{{starlord-primary,starlord-secondary}}.gpu_memory_utilization", "over the ceiling 0.95"),
    ("a model that does not fit", _set(INF, "starlord-primary", "max_model_len", value=131072),
     f"{INF}.starlord-primary.gpu_memory_utilization", "short by"),
    ("context over the model's native length", _set(INF, "thanos-backup", "max_model_len", value=65536),
     f"{INF}.thanos-backup.max_model_len", "native context 32768"),
    ("unknown model", _set(INF, "thanos-backup", "model", value="llama-70b"),
     f"{INF}.thanos-backup.model", "unknown model 'llama-70b'"),
    ("address outside the tailnet", _set(N, "oracle", "tailscale_ip", value="192.168.1.5"),
     f"{N}.oracle.tailscale_ip", "outside Tailscale's 100.64.0.0/10"),
    ("unknown architecture", _set(N, "oracle", "arch", value="x86"), f"{N}.oracle.arch",
     "'amd64' or 'arm64'"),
    ("utilisation of 1 or more", _set(INF, "thanos-backup", "gpu_memory_utilization", value=1.2),
     f"{INF}.thanos-backup.gpu_memory_utilization", "less than 1"),
    ("bits that do not match the quantisation", _set("ai-swarm:models", "mistral-7b", "bits", value=8),
     "ai-swarm:models.mistral-7b", "awq weights are [4] bits"),
    ("unknown service without a kind", _set(S, "ollama", value={"node": "thanos", "port": 11434}),
     f"{S}.ollama.kind", "not a known service"),
    ("adopting something other than qdrant", _set(S, "redis", "adopt", value=True),
     f"{S}.redis.adopt", "only an already-running qdrant"),
    ("no nodes at all", _add_key(N, {}), N, "at least 1"),
    ("duplicate GPU index on a node",
     _set(N, "starlord", "gpus", value=[{"index": 0, "model": "a", "vram_gb": 24},
                                        {"index": 0, "model": "b", "vram_gb": 24}]),
     f"{N}.starlord", "duplicate GPU index"),
    ("containers over a node's RAM", _set(N, "thanos", "ram_gb", value=2), f"{N}.thanos.ram_gb",
     "containers' limits plus the OS reserve need"),
    ("a container limited to more CPUs than its node has", _set(N, "starlord", "cpus", value=2),
     f"{N}.starlord.cpus", "Docker refuses a limit above the node's CPUs"),
    ("OCI provisioning without sizing", _delete(N, "oracle", "oci"), f"{N}.oracle", "oci: required"),
    ("invalid node name", lambda v: v[N].__setitem__("Star_Lord", v[N].pop("starlord")), f"{N}.Star_Lord",
     "should match pattern"),
]


@pytest.fixture
def no_program(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if the plan reaches the Pulumi program for an invalid stack."""
    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append("run_program")
        raise AssertionError("the program ran for an invalid configuration")

    monkeypatch.setattr(offline, "run_program", refuse)
    return calls


@pytest.mark.parametrize(("label", "mutate", "path", "message"), CASES, ids=[case[0] for case in CASES])
def test_invalid_stack_exits_2_naming_the_key(label: str, mutate: Mutation, path: str, message: str,
                                              prod_values: dict[str, Any], no_program: list[str]) -> None:
    mutate(prod_values)
    result = offline_plan(config_of(prod_values), "test")
    assert result.exit_code == EXIT_INVALID, label
    assert result.resources == []
    assert no_program == []
    matching = [issue for issue in result.issues if issue.path == path]
    assert matching, f"no issue at {path!r}; got {[str(i) for i in result.issues]}"
    assert any(message in issue.message for issue in matching), [str(i) for i in matching]


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarm", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


def test_duplicate_node_in_stack_file_exits_2(tmp_path) -> None:
    text = (REPO / "Pulumi.prod.yaml").read_text()
    thanos_block = text[text.index("    thanos:\n"):text.index("\n  ai-swarm:models:")]
    broken = text.replace(thanos_block, thanos_block + "\n" + thanos_block)
    stack_file = tmp_path / "Pulumi.dup.yaml"
    stack_file.write_text(broken)
    result = _cli("plan", "--config", str(stack_file))
    assert result.returncode == 2
    assert "duplicate key 'thanos'" in result.stderr
    assert "Pulumi.dup.yaml:" in result.stderr


def test_seeds_final_plan_is_rejected_with_numbers() -> None:
    result = _cli("plan", "--config", "examples/seeds-final-plan.yaml", "--json")
    assert result.returncode == 2
    import json

    report = json.loads(result.stdout)
    assert report["resources"] == []
    by_path = {error["path"]: error["message"] for error in report["errors"]}
    primary = by_path["ai-swarm:inference.starlord-primary.gpu_memory_utilization"]
    # Mixtral 46.7B at 4 bits + 5 %: 46.7e9 x 0.5 x 1.05 / 2^30 = 22.83 GiB > any share of 24 GiB
    assert "weights 22.83 GiB" in primary
    assert "short by 14.33 GiB" in primary
    assert "131072 exceeds mixtral-8x7b's native context 32768" in by_path[
        "ai-swarm:inference.starlord-primary.max_model_len"]
    assert "short by 2.24 GiB" in by_path["ai-swarm:inference.starlord-secondary.gpu_memory_utilization"]


def test_unreadable_stack_file_exits_2(tmp_path) -> None:
    missing = _cli("plan", "--config", str(tmp_path / "Pulumi.none.yaml"))
    assert missing.returncode == 2
    assert "cannot read stack file" in missing.stderr
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    bad = _cli("plan", "--config", str(tmp_path / "Pulumi.bad.yaml"))
    assert bad.returncode == 2
    assert "not valid YAML" in bad.stderr
