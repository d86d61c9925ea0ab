"""The readiness script, run for real by `sh` against stand-in `cloud-init`, `tailscale`, `docker`
and `ssh-keygen` commands; and the tailnet component refusing a tampered policy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components.readiness import readiness_script
from swarm.errors import SpecError
from swarm.offline.engine import run_program
from tests.conftest import REPO

IP = "100.96.197.84"
INSTANCE = "ocid1.instance.oc1.eu-frankfurt-1.new"
FINGERPRINT = "256 SHA256:dGVzdC1ob3N0LWtleQ root@oracle (ED25519)"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def _run(tmp_path: Path, cloud_init_rc: int = 0, ip: str = IP, tailscale_up: bool = True,
         docker_ok: bool = True, instance: str = INSTANCE) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "curl", f'case "$*" in *169.254.169.254/opc/v2/instance/id*) echo {instance};; *) exit 22;; esac')
    _fake(bin_dir, "cloud-init", f'[ "$2" = "--long" ] && echo "status: error (long)"; exit {cloud_init_rc}')
    _fake(bin_dir, "tailscale", f'case "$1" in status) exit {0 if tailscale_up else 1};; ip) echo {ip};; esac')
    _fake(bin_dir, "docker", f"exit {0 if docker_ok else 1}")
    _fake(bin_dir, "ssh-keygen", f'echo "{FINGERPRINT}"')
    shell = shutil.which("sh")
    assert shell is not None
    return subprocess.run([shell, "-c", readiness_script("oracle", IP, INSTANCE)], capture_output=True, text=True,
                          timeout=30, check=False, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})


@pytest.mark.parametrize("cloud_init_rc", [0, 2])
def test_ready_node_prints_its_host_key_fingerprint(tmp_path, cloud_init_rc) -> None:
    result = _run(tmp_path, cloud_init_rc=cloud_init_rc)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == FINGERPRINT


def test_failed_cloud_init_stops_with_its_long_status(tmp_path) -> None:
    result = _run(tmp_path, cloud_init_rc=1)
    assert result.returncode == 1
    assert "status: error (long)" in result.stderr


def test_tailscale_down_is_not_ready(tmp_path) -> None:
    result = _run(tmp_path, tailscale_up=False)
    assert result.returncode == 1 and "tailscale is not up" in result.stderr


def test_a_new_tailnet_address_names_the_config_key(tmp_path) -> None:
    result = _run(tmp_path, ip="100.100.1.2")
    assert result.returncode == 1
    assert "100.100.1.2" in result.stderr and "ai-swarm:nodes.oracle.tailscale_ip" in result.stderr


def test_an_old_device_with_the_same_name_is_not_the_new_node(tmp_path) -> None:
    result = _run(tmp_path, instance="ocid1.instance.oc1.eu-frankfurt-1.old")
    assert result.returncode == 1
    assert "not the new one" in result.stderr and "ocid1.instance.oc1.eu-frankfurt-1.old" in result.stderr


def test_no_docker_access_is_not_ready(tmp_path) -> None:
    result = _run(tmp_path, docker_ok=False)
    assert result.returncode == 1 and "no docker access" in result.stderr


def test_the_tailnet_component_refuses_a_tampered_policy_before_the_provider(tmp_path) -> None:
    program = tmp_path / "program.py"
    program.write_text(
        "from dataclasses import replace\n"
        "from pathlib import Path\n"
        "from components.tailnet import Tailnet, TailnetArgs\n"
        "from swarm.oracle.acl import ACL_PATH\n"
        "from swarm.plan.builder import build_plan\n"
        "from swarm.stack_config import build_spec, read_stack_file\n"
        f"plan = build_plan(build_spec(read_stack_file(Path({str(REPO / 'Pulumi.prod.yaml')!r}))))\n"
        "text = plan.extra_files[ACL_PATH].replace('\"acls\": [', "
        "'\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:*\"]},', 1)\n"
        "Tailnet('tailnet', TailnetArgs(replace(plan, extra_files={**plan.extra_files, ACL_PATH: text})))\n")
    with pytest.raises(SpecError, match="allow-all rule"):
        run_program({}, frozenset(), "prod", program=program)
