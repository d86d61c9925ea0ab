"""The GitHub workflows: valid for actionlint, actions pinned by commit, least privilege."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm.oracle.acl import SSH_PORT, allows, build_acl
from swarm.oracle.tags import node_tag
from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(found).exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed (requirements-dev.txt pins it)")
        pytest.skip("actionlint is not installed")
    return found


def _uses(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_uses(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(_uses(item))
    return found


def unpinned(document: Any) -> list[str]:
    return [ref for ref in _uses(document) if not ref.startswith("./") and not PINNED.match(ref)]


def test_there_are_workflows_for_pull_requests_and_drift() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"pull-request.yml", "drift.yml"} <= names


def test_actionlint_accepts_every_workflow() -> None:
    result = subprocess.run([_actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_is_a_real_check(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                      "      - run: echo ${{ github.event.pull_request.title }}\n        shell: bash\n"
                      "      - uses: actions/checkout@v4\n        with: {nonexistent-input: 1}\n")
    result = subprocess.run([_actionlint(), str(broken)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_every_action_is_pinned_by_commit(path: Path) -> None:
    assert unpinned(yaml.safe_load(path.read_text())) == []


def test_the_pin_check_catches_a_tag() -> None:
    assert unpinned({"steps": [{"uses": "actions/checkout@v4"}, {"uses": "./.github/actions/x"}]}) == [
        "actions/checkout@v4"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_permissions(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {"contents": "read"}, "read-only by default; jobs ask for more"
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert granted != "write-all" and isinstance(granted, dict), name
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"pull-requests", "issues"}, f"{name} asks for {writes}"


def _steps(path: Path, job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(path.read_text())["jobs"][job]["steps"]
    return steps


def test_preview_runs_the_policy_pack_and_comments() -> None:
    steps = _steps(REPO / ".github/workflows/pull-request.yml", "preview")
    pulumi = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    assert any(s.get("uses") == "./.github/actions/reach-swarm" for s in steps)


def test_drift_check_expects_no_changes_and_reports_failure() -> None:
    path = REPO / ".github/workflows/drift.yml"
    assert "schedule" in yaml.safe_load(path.read_text())[True]  # YAML 1.1 reads `on:` as True
    steps = _steps(path, "drift")
    pulumi = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["expect-no-changes"] is True and pulumi["with"]["refresh"] is True
    assert any(s.get("if") == "failure()" for s in steps)


def test_the_test_job_runs_the_readme_test_command() -> None:
    steps = _steps(REPO / ".github/workflows/pull-request.yml", "test")
    assert any("scripts/test.sh" in s.get("run", "") for s in steps)
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/test.sh" in readme


def test_the_runner_joins_with_a_tag_the_generated_policy_owns_and_lets_reach_ssh(prod_plan) -> None:
    """Tailscale replaces the tailnet policy whole on `up`: a CI tag the policy does not name could
    neither be minted by the OAuth client nor reach the nodes' SSH, and every preview would fail."""
    steps = yaml.safe_load((REPO / ".github/actions/reach-swarm/action.yml").read_text())["runs"]["steps"]
    join = next(s for s in steps if s.get("uses", "").startswith("tailscale/github-action@"))
    tags = join["with"]["tags"].split(",")
    policy = build_acl(prod_plan)
    assert set(tags) <= set(policy["tagOwners"])
    for node in prod_plan.spec.nodes:
        assert any(allows(policy, tag, node_tag(prod_plan.spec, node), SSH_PORT) for tag in tags), node
