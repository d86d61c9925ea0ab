"""Edge cases of the container rules, beyond one bad / one good resource per rule."""

from __future__ import annotations

import pytest

from policies.containers import split_image

from . import fixtures as f
from .helpers import run

SECRETS = "container-no-plaintext-secrets"


@pytest.mark.parametrize(
    ("env", "caught"),
    [
        ("OPENAI_API_KEY=anything", True),
        ("LITELLM_MASTER_KEY=x", True),
        ("POSTGRES_PASSWORD=x", True),
        ("PGPASSWORD=x", True),
        ("HF_TOKEN=x", True),
        ("GITHUB_PAT=x", True),
        ("TS_AUTHKEY=x", True),
        ("TS_AUTHKEY=file:/run/secrets/ts-authkey", False),
        ("TS_AUTHKEY=file:/etc/ts-authkey", True),
        ("SECRET_KEY_BASE=x", True),
        ("AWS_SECRET_ACCESS_KEY=x", True),
        ("PRIVATE_KEY=x", True),
        ("GEMINI_API_KEY_FILE=/run/secrets/gemini", False),
        ("GEMINI_API_KEY_FILE=/etc/gemini", True),
        ("TOKENIZERS_PARALLELISM=false", False),
        ("MAX_TOKENS=4096", False),
        ("KEYCLOAK_URL=http://x", False),
        ("EXTRA=--api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", True),
        ("TS_EXTRA_ARGS=--authkey=tskey-" + "auth-kAbCdEf1234CNTRL-xyz", True),  # split: fake, not a leak
        ("GOOGLE=AIza" + "SyA1234567890abcdefghijklmnopqrstu", True),  # split: fake, not a leak
        ("GH=ghp_" + "a1" * 18, True),
        ("DATABASE_URL=postgresql://litellm:hunter2@postgres:5432/litellm", True),
        ("DATABASE_HOST=postgres", False),
        ("REDIS_URL=redis://redis:6379/0", False),
    ],
)
def test_secret_names_and_values(env: str, caught: bool) -> None:
    assert bool(run(SECRETS, [f.container(envs=[env])])) is caught


def test_secret_allowed_names_config() -> None:
    config = {"allowed_names": ["CACHE_KEY_PREFIX"]}
    assert run(SECRETS, [f.container(envs=["CACHE_KEY_PREFIX=swarm"])], config) == []
    assert run(SECRETS, [f.container(envs=["CACHE_KEY_PREFIX=swarm"])]) != []


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("redis", ("redis", None, None)),
        ("redis:7.4", ("redis", "7.4", None)),
        ("registry:5000/team/app", ("registry:5000/team/app", None, None)),
        ("registry:5000/app:1@sha256:ab", ("registry:5000/app", "1", "sha256:ab")),
        ("app@sha256:ab", ("app", None, "sha256:ab")),
    ],
)
def test_split_image(ref: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_image(ref) == parts


def test_built_image_name_is_checked() -> None:
    built = f.schema_shaped(
        "docker:index/image:Image",
        "oracle-runtime-image",
        {"imageName": "swarm-runtime:latest", "build": {"context": "runtime"}},
    )
    assert run("image-tag-pinned", [built])
    pinned = f.with_props(built, {**built.props, "imageName": "swarm-runtime:0.1.0"})
    assert run("image-tag-pinned", [pinned]) == []
    assert run("image-digest-pinned", [pinned]) == []  # a locally built image has no registry digest


@pytest.mark.parametrize(
    ("image", "caught"),
    [("redis:latest", True), ("redis", True), ("redis@sha256:" + "b" * 64, False), ("sha256:abc", False)],
)
def test_container_literal_image(image: str, caught: bool) -> None:
    assert bool(run("image-tag-pinned", [f.container(image=image)])) is caught


@pytest.mark.parametrize(
    ("path", "caught"),
    [("/", True), ("/etc/ssl", True), ("/dev/net/tun", True), ("/srv/models", False), ("/etcetera", False)],
)
def test_sensitive_paths(path: str, caught: bool) -> None:
    c = f.container(volumes=[{"hostPath": path, "containerPath": "/x", "readOnly": True}])
    assert bool(run("container-no-sensitive-host-mounts", [c])) is caught


def test_docker_socket_is_not_reported_twice() -> None:
    c = f.container(volumes=[{"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}])
    assert run("container-no-sensitive-host-mounts", [c]) == []
    assert len(run("container-no-docker-socket", [c])) == 1


@pytest.mark.parametrize(
    ("ip", "caught"), [("127.0.0.1", False), ("100.72.73.3", False), ("", True), ("::", True), ("[::]", True)]
)
def test_port_ips(ip: str, caught: bool) -> None:
    c = f.container(ports=[{"internal": 80.0, "external": 8080.0, "ip": ip, "protocol": "tcp"}])
    assert bool(run("container-ports-bound-to-ip", [c])) is caught


def test_publish_all_ports_is_refused() -> None:
    assert run("container-ports-bound-to-ip", [f.container(publishAllPorts=True)])


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root", "", None])
def test_root_users(user: str | None) -> None:
    assert run("container-non-root-user", [f.container(user=user)])


@pytest.mark.parametrize("user", ["1000", "1000:1000", "nobody", "65534:65534"])
def test_non_root_users(user: str) -> None:
    assert run("container-non-root-user", [f.container(user=user)]) == []


@pytest.mark.parametrize(
    ("driver", "opts", "caught"),
    [
        (None, None, True),
        ("json-file", {"max-size": "10m", "max-file": "3"}, False),
        ("local", None, False),
        ("syslog", None, True),
    ],
)
def test_log_rotation(driver: str | None, opts: dict[str, str] | None, caught: bool) -> None:
    c = f.container(logDriver=driver, logOpts=opts)
    assert bool(run("container-log-rotation", [c])) is caught


def test_healthcheck_none_is_no_healthcheck() -> None:
    assert run("container-healthcheck", [f.container(healthcheck={"tests": ["NONE"]})])


def test_dangerous_capabilities_are_configurable() -> None:
    c = f.container(capabilities={"drops": ["ALL"], "adds": ["CAP_CHOWN"]})
    assert run("container-no-dangerous-capabilities", [c]) == []
    assert run("container-no-dangerous-capabilities", [c], {"forbidden": ["CHOWN"]})


def test_memory_threshold_is_configurable() -> None:
    assert run("container-memory-limit", [f.container()], {"min_memory_mb": 4096})
