"""One-way dependencies: the domain never creates resources, the runtime never knows Pulumi."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

RESOURCE_PACKAGES = ("pulumi_docker", "pulumi_random", "pulumi_command", "pulumi_oci", "pulumi_tailscale",
                     "components")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("swarm"), ids=lambda p: str(p.relative_to(REPO)))
def test_swarm_imports_no_resource_package_nor_components(path: Path) -> None:
    bad = {name for name in _imports(path) if name.split(".")[0] in RESOURCE_PACKAGES}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}: swarm/ is the pure domain"


@pytest.mark.parametrize("path", _modules("runtime/src"), ids=lambda p: str(p.relative_to(REPO)))
def test_runtime_never_imports_pulumi(path: Path) -> None:
    bad = {name for name in _imports(path) if name.split(".")[0].startswith("pulumi")}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}: the runtime ships without Pulumi"


def test_the_checker_sees_a_violation() -> None:
    sample = REPO / "components" / "service_container.py"
    assert "pulumi_docker" in _imports(sample)
