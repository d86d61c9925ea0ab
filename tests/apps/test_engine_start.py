"""The apps' start commands on a real Docker engine: each exports its keys from the secret files
into its own process only, then execs the image's real start (here a stand-in that prints what it
received), with the plan's user, read-only root, tmpfs, all capabilities dropped and
no-new-privileges. A missing secret stops the start before the app runs (fail closed).

The images are busybox stand-ins (no registry here): `/bin/bash` is a script that runs busybox sh,
and each app's start target (Qdrant's ./entrypoint.sh, SearXNG's entrypoint, `bash start.sh`,
uvicorn, SillyTavern's node and docker-entrypoint.sh) prints its environment. Secret delivery
itself (the provider's uploads) is tested in tests/engine; here the files are copied straight into
the secrets volume.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from contextlib import suppress
from secrets import token_hex
from typing import Any

import docker.errors
import pytest
import yaml

from swarm.adopt import adopt_config_text
from swarm.plan.types import SECRETS_DIR, ServicePlan
from swarm.stack_config import StackConfig
from tests.apps.helpers import QDRANT_UNPRIVILEGED, plan_of, sample_adoption, stack
from tests.engine.dockerd import Engine, rootfs_tar, running_engine

IMAGE = "swarm-apps-test/standin:1"
PRINT_ENV = "#!/bin/sh\necho \"started as $(id -u):$(id -g)\"\nenv\n"
STANDINS = {
    "bin/bash": "#!/bin/sh\nexec /bin/sh \"$@\"\n",
    "qdrant/entrypoint.sh": PRINT_ENV,
    "usr/local/searxng/entrypoint.sh": PRINT_ENV,
    "app/backend/start.sh": PRINT_ENV,
    "app/start.sh": PRINT_ENV,
    "bin/uvicorn": PRINT_ENV,
    "bin/node": "#!/bin/sh\necho \"node saw LITELLM_KEY=$LITELLM_KEY\"\n",
    "home/node/app/docker-entrypoint.sh": "#!/bin/sh\n" + PRINT_ENV.split("\n", 1)[1] + "cat config/config.yaml\n",
}
APPLETS = ("sed", "mkdir", "env", "grep", "head")  # besides the base image's
WORKDIRS = {"qdrant": "/qdrant", "searxng": "/", "open-webui": "/app/backend", "pipelines": "/app",
            "gpt-researcher": "/usr/src/app", "sillytavern": "/home/node/app"}


def _standin_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(rootfs_tar())) as base, tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in base.getmembers():
            tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        directories = sorted({"/".join(path.split("/")[:i]) for path in STANDINS for i in range(1, path.count("/") + 1)}
                             | {w.strip("/") for w in WORKDIRS.values() if w != "/"}
                             | {"usr/src/app", "home/node/app/config"})
        for directory in directories:
            if directory in ("bin", "tmp", "run", "etc", "proc", "sys", "dev"):
                continue
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        for path, text in STANDINS.items():
            data = text.encode()
            entry = tarfile.TarInfo(path)
            entry.size, entry.mode = len(data), 0o755
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with running_engine() as started:
        started.client.api.import_image_from_data(_standin_rootfs(), repository=IMAGE.split(":")[0],
                                                  tag=IMAGE.split(":")[1])
        yield started


@pytest.fixture(scope="module")
def plans(prod_config: StackConfig) -> dict[str, ServicePlan]:
    block: dict[str, Any] = yaml.safe_load(adopt_config_text("qdrant", sample_adoption()))["adopt"]
    block.pop("container_id")  # step (b): the hardened container
    plan = plan_of(stack(prod_config.values, qdrant={"node": "starlord", "port": 6333, "adopt": block,
                                                     "image": QDRANT_UNPRIVILEGED},
                         gpt_researcher={"node": "thanos", "port": 8001}))
    return {name: plan.service(name) for name in WORKDIRS}


def _files_tar(plan: ServicePlan, values: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, value in values.items():
            data = value.encode()
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode, entry.uid, entry.gid = len(data), 0o440, 0, int(plan.gid)
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def _run(engine: Engine, plan: ServicePlan, values: dict[str, str]) -> tuple[int, str]:
    client = engine.client
    volume = client.volumes.create(f"secrets-{plan.name}-{token_hex(4)}")
    volumes = {volume.name: {"bind": SECRETS_DIR, "mode": "rw"}}
    extra = []
    if plan.files:
        config = client.volumes.create(f"config-{plan.name}-{token_hex(4)}")
        extra.append(config)
        volumes[config.name] = {"bind": plan.config_dir, "mode": "rw"}
    for mount in plan.mounts:
        if mount.volume is not None:
            data = client.volumes.create(f"data-{token_hex(4)}")
            extra.append(data)
            volumes[data.name] = {"bind": mount.target, "mode": "rw"}
    container = client.containers.create(
        IMAGE, entrypoint=list(plan.entrypoint or ()), command=list(plan.command), user=plan.user,
        environment=dict(plan.env), working_dir=WORKDIRS[plan.name], read_only=plan.read_only,
        tmpfs=dict(plan.tmpfs), cap_drop=["ALL"], security_opt=["no-new-privileges:true"], network_mode="none",
        volumes=volumes)
    try:
        if values:
            assert container.put_archive(SECRETS_DIR, _files_tar(plan, values))
        if plan.files:
            assert container.put_archive(plan.config_dir, _files_tar(plan, {f.name: f.content for f in plan.files}))
        container.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            container.reload()
            if container.status == "exited":
                break
            time.sleep(0.2)
        status = int(container.attrs["State"]["ExitCode"])
        return status, container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)
        for created in (volume, *extra):
            with suppress(docker.errors.APIError):
                created.remove(force=True)


def _values(plan: ServicePlan) -> dict[str, str]:
    return {s.name: f"{s.name}-{token_hex(8)}" for s in plan.secret_files}


@pytest.mark.parametrize("app, expected", [
    ("qdrant", {"QDRANT__SERVICE__API_KEY": "{qdrant-api-key}"}),
    ("searxng", {"SEARXNG_SECRET": "{searxng-secret}"}),
    ("open-webui", {"WEBUI_SECRET_KEY": "{open-webui-secret-key}", "QDRANT_API_KEY": "{qdrant-api-key}",
                    "OPENAI_API_KEYS": "sk-{litellm-key-open-webui};{pipelines-api-key}"}),
    ("pipelines", {"PIPELINES_API_KEY": "{pipelines-api-key}", "OPENAI_API_KEY": "sk-{litellm-key-pipelines}"}),
    ("gpt-researcher", {"OPENAI_API_KEY": "sk-{litellm-key-gpt-researcher}"}),
])
def test_the_start_exports_each_key_to_the_app_only(engine: Engine, plans: dict[str, ServicePlan], app: str,
                                                    expected: dict[str, str]) -> None:
    plan = plans[app]
    values = _values(plan)
    status, output = _run(engine, plan, values)
    assert status == 0, output
    assert f"started as {plan.uid}:{plan.gid}" in output
    lines = set(output.splitlines())
    for name, template in expected.items():
        value = template
        for secret, secret_value in values.items():
            value = value.replace("{" + secret + "}", secret_value)
        assert f"{name}={value}" in lines, output
    for name, value in plan.env.items():
        assert f"{name}={value}" in lines


def test_sillytavern_gets_its_password_in_config_and_its_key_in_its_store(engine: Engine,
                                                                       plans: dict[str, ServicePlan]) -> None:
    plan = plans["sillytavern"]
    values = _values(plan)
    status, output = _run(engine, plan, values)
    assert status == 0, output
    assert f"password: {values['sillytavern-password']}" in output
    assert f"node saw LITELLM_KEY=sk-{values['litellm-key-sillytavern']}" in output
    assert "PASSWORD=" not in output and "LITELLM_KEY=" not in output.replace("node saw LITELLM_KEY", ""), \
        "the secrets are unset before the app starts"


@pytest.mark.parametrize("app", sorted(WORKDIRS))
def test_a_missing_secret_stops_the_start(engine: Engine, plans: dict[str, ServicePlan], app: str) -> None:
    status, output = _run(engine, plans[app], {})
    assert status != 0
    assert "started as" not in output, "the app must not start without its keys"
