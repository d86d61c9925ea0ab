"""The OCI node's cloud-init user-data: the real validator, then its content (the schema lets a
misspelled top-level key through, so the content is asserted key by key)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm.oracle.cloud_init import (
    AUTH_KEY_FILE,
    AUTH_KEY_PLACEHOLDER,
    JOIN_SCRIPT,
    SSHD_DROP_IN,
    render_path,
    render_user_data,
)
from tests.oracle.support import SSH_KEY, oracle_oci, plan_of, require_tool

# Top-level keys cloud-init's modules read; anything else would be silently ignored on boot.
KNOWN_KEYS = {
    "hostname", "preserve_hostname", "package_update", "package_upgrade", "packages", "groups", "users",
    "disable_root", "ssh_pwauth", "ssh_genkeytypes", "ssh_deletekeys", "ssh", "ssh_fp_console_blacklist",
    "ssh_key_console_blacklist", "write_files", "runcmd", "final_message",
}


@pytest.fixture
def with_key(prod_values: dict[str, Any]) -> str:
    plan = plan_of(prod_values, lambda v: oracle_oci(v).update(ssh_public_key=SSH_KEY))
    return plan.extra_files[render_path("oracle")]


def _schema(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    return subprocess.run([tool, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def _document(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def _file(document: dict[str, Any], path: str) -> dict[str, Any]:
    return next(entry for entry in document["write_files"] if entry["path"] == path)


@pytest.mark.parametrize("variant", ["prod", "with-ssh-key", "key-filled"])
def test_the_real_validator_accepts_the_user_data(tmp_path, prod_plan, with_key, variant) -> None:
    text = {"prod": prod_plan.extra_files[render_path("oracle")], "with-ssh-key": with_key,
            "key-filled": with_key.replace(AUTH_KEY_PLACEHOLDER, "tskey-" + "auth-kTEST-0123456789abcdef")}[variant]
    result = _schema(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout
    assert "DEPRECATED" not in result.stdout + result.stderr


def test_the_validator_refuses_what_it_can_see(tmp_path, with_key) -> None:
    broken = with_key.replace("lock_passwd: true", "lock_passwd: [true]")
    result = _schema(tmp_path, broken)
    assert result.returncode != 0
    assert "users" in result.stdout + result.stderr


def test_only_known_top_level_keys(with_key) -> None:
    assert with_key.startswith("#cloud-config\n")
    assert set(_document(with_key)) <= KNOWN_KEYS


def test_docker_engine_and_unattended_security_upgrades(with_key) -> None:
    document = _document(with_key)
    assert {"docker.io", "unattended-upgrades"} <= set(document["packages"])
    assert document["package_update"] is True and document["package_upgrade"] is True
    periodic = _file(document, "/etc/apt/apt.conf.d/20auto-upgrades")["content"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert ["systemctl", "enable", "--now", "docker", "unattended-upgrades"] in document["runcmd"]


def test_containers_may_bind_the_tailscale_address_before_it_exists(with_key) -> None:
    """dockerd restarts containers at boot before tailscaled has the address they publish on; the
    failed bind is never retried (seen on a real dockerd), so the node allows non-local binds, from
    the first boot on (loaded before Docker is enabled) and after every reboot (sysctl.d)."""
    document = _document(with_key)
    sysctl = _file(document, "/etc/sysctl.d/60-ai-swarm.conf")["content"]
    assert "net.ipv4.ip_nonlocal_bind = 1" in sysctl.splitlines()
    commands = document["runcmd"]
    load = commands.index(["sysctl", "--load", "/etc/sysctl.d/60-ai-swarm.conf"])
    assert load < commands.index(["systemctl", "enable", "--now", "docker", "unattended-upgrades"])


def test_the_deploy_user_is_the_docker_providers_user_with_only_the_configured_key(prod_plan, with_key) -> None:
    document = _document(with_key)
    (user,) = document["users"]  # no `default`: the image's stock user is not created
    assert user["name"] == prod_plan.spec.nodes["oracle"].ssh_user
    assert user["groups"] == ["docker"] and document["groups"] == ["docker"]
    assert user["lock_passwd"] is True and "sudo" not in user
    assert user["ssh_authorized_keys"] == [SSH_KEY]


def test_sshd_is_hardened(prod_plan, with_key) -> None:
    document = _document(with_key)
    assert document["ssh_pwauth"] is False and document["disable_root"] is True
    config = _file(document, SSHD_DROP_IN)["content"].splitlines()
    for line in ("PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no",
                 "AuthenticationMethods publickey", f"AllowUsers {prod_plan.spec.nodes['oracle'].ssh_user}"):
        assert line in config
    assert ["systemctl", "restart", "ssh"] in document["runcmd"]


def test_host_key_fingerprints_go_to_the_console(with_key) -> None:
    document = _document(with_key)
    assert document["ssh"] == {"emit_keys_to_console": True}
    assert document["ssh_fp_console_blacklist"] == [] and document["ssh_key_console_blacklist"] == []
    assert "ed25519" in document["ssh_genkeytypes"]


def test_the_node_joins_the_tailnet_with_the_key_from_a_root_only_file(with_key) -> None:
    document = _document(with_key)
    key_file = _file(document, AUTH_KEY_FILE)
    assert key_file["permissions"] == "0600" and key_file["owner"] == "root:root"
    assert key_file["content"].strip() == AUTH_KEY_PLACEHOLDER
    script = _file(document, JOIN_SCRIPT)["content"]
    assert f"tailscale up --auth-key=file:{AUTH_KEY_FILE} --hostname=oracle" in script
    assert f"rm -f {AUTH_KEY_FILE}" in script
    assert "iptables -I INPUT 1 -i tailscale0 -j ACCEPT" in script
    assert document["runcmd"][-1] == [JOIN_SCRIPT]


def test_the_key_only_replaces_the_placeholder(prod_plan) -> None:
    key = "tskey-" + "auth-kTEST-0123456789abcdef"
    filled = render_user_data(prod_plan.spec, "oracle", key)
    assert AUTH_KEY_PLACEHOLDER not in filled and filled.count(key) == 1
    assert filled.replace(key, AUTH_KEY_PLACEHOLDER) == prod_plan.extra_files[render_path("oracle")]
    assert "tskey-" not in prod_plan.extra_files[render_path("oracle")]
