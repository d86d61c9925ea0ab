"""The CLI contracts: plan --json shape, render output, diagram in the README."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.swarm.conftest import REPO


def _cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarm", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False)


def test_plan_json_has_the_contract_keys() -> None:
    result = _cli("plan", "--stack", "prod", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert {"resources", "violations", "capacity"} <= set(report)
    for resource in report["resources"]:
        assert {"urn", "type", "name", "parent", "inputs"} <= set(resource)
    for violation in report["violations"]:
        assert {"policy", "urn", "level", "message"} <= set(violation)
    assert {row["gpu"] for row in report["capacity"]} == {"starlord/gpu0", "thanos/gpu0"}
    assert {r["node"] for r in report["resources"]} >= {"oracle", "starlord", "thanos"}


def test_plan_text_groups_by_node_and_shows_capacity() -> None:
    result = _cli("plan")
    assert result.returncode == 0
    for expected in ("node oracle (gateway, arm64, 100.96.197.84", "node starlord (inference, amd64",
                     "node thanos (worker, amd64", "VRAM capacity", "starlord-primary", "Policies:"):
        assert expected in result.stdout


def test_render_writes_files(tmp_path) -> None:
    out = tmp_path / "rendered"
    result = _cli("render", "--stack", "prod", "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written
    assert all("/" in path for path in written), "one sub-folder per service"


def test_render_of_an_invalid_stack_writes_nothing(tmp_path) -> None:
    out = tmp_path / "rendered"
    result = _cli("render", "--config", "examples/seeds-final-plan.yaml", "--out", str(out))
    assert result.returncode == 2
    assert not out.exists() or not any(out.iterdir())


def test_readme_embeds_the_generated_diagram() -> None:
    diagram = _cli("diagram").stdout
    assert "subgraph starlord" in diagram
    assert "swarm_router -->|OpenAI API| thanos_backup" in diagram
    assert diagram.strip() in (REPO / "README.md").read_text()


def test_plan_json_redacts_secret_inputs() -> None:
    report = json.loads(_cli("plan", "--json").stdout)
    router = next(r for r in report["resources"] if r["name"] == "swarm-router-files")
    assert "uploads" in router["secret_inputs"]
    assert router["inputs"]["uploads"] == "[secret]"
