"""Config and secret delivery on a real Docker engine, for the containers the prod plan deploys.

What the Docker provider does (pulumi-docker 5.2 over kreuzwerker/terraform-provider-docker,
`resourceDockerContainerCreate`): create the container; for each `uploads` entry write a tar of
one entry (Name = the file's path, Mode from `permissions`, owner/group as Uid/Gid) and copy it
with `CopyToContainer(id, "/", tar)`; then start. The tests make those calls with the `docker` SDK
(`put_archive("/", tar)`), from `components.service_container.delivery(plan)` (the mounts and
uploads the component itself passes to the provider), with each plan's user, read-only root,
tmpfs, all capabilities dropped and no-new-privileges. The image is busybox (no registry here),
so the command is `stat` + `cat` of the delivered files, not the service.

What the engine says (moby `daemon/archive.go`): the copy's destination is "/", which is never
inside a volume, so a read-only root refuses it ("container rootfs is marked read-only") even when
every file lands in a volume (`test_volumes_at_the_destination_do_not_help_...`). So the component
delivers through a loader: a never-started container with a writable root mounts the config and
secrets volumes read-write and receives the uploads; the service container mounts them read-only
(`test_component_delivery`, for every prod container with files or secrets).
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from secrets import token_hex

import docker.errors
import pytest
from docker.models.containers import Container

from components.service_container import FILE_MODE, FILE_OWNER, Upload, delivery
from swarm.plan.builder import build_plan
from swarm.plan.types import Mount, ServicePlan
from swarm.stack_config import build_spec, read_stack_file
from tests.engine.dockerd import Engine

REPO = Path(__file__).resolve().parents[2]
PLAN = build_plan(build_spec(read_stack_file(REPO / "Pulumi.prod.yaml")))
DELIVERED = tuple(service for service in PLAN.services if service.files or service.secret_files)
SECRET_VALUES = {s.source: f"{s.source}={token_hex(16)}" for svc in DELIVERED for s in svc.secret_files}
STRANGER = "54321:54321"
"""A non-root uid/gid no plan uses."""
ROOTFS_READ_ONLY = "container rootfs is marked read-only"
RUN_TIMEOUT_S = 30

pytestmark = pytest.mark.slow  # ~45 s: one daemon, ~70 containers on vfs


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: bytes
    stderr: bytes


def provider_tar(upload: Upload) -> bytes:
    """The provider's upload archive: one entry, named by the absolute path."""
    content = upload.content if upload.content is not None else SECRET_VALUES[str(upload.secret_source)]
    data = content.encode()
    entry = tarfile.TarInfo(upload.path)
    entry.size, entry.mode, entry.mtime = len(data), int(upload.mode, 8), int(time.time())
    entry.uid, entry.gid = int(upload.owner), int(upload.group)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def expected_bytes(plan: ServicePlan, upload: Upload) -> bytes:
    """What the container must read: the render twin (`SwarmPlan.files()`) or the secret's value."""
    if upload.secret_source is not None:
        return SECRET_VALUES[upload.secret_source].encode()
    twin = next(f.render_path for f in plan.files if plan.file_path(f) == upload.path)
    return PLAN.files()[twin].encode()


class Scene:
    """Volumes and containers of one test, all removed at the end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.containers: list[Container] = []
        self.volumes: list[str] = []

    def volumes_for(self, mounts: Sequence[Mount]) -> None:
        for mount in mounts:
            if mount.volume is not None and mount.volume not in self.volumes:
                self.engine.client.volumes.create(mount.volume)
                self.volumes.append(mount.volume)

    def binds(self, mounts: Sequence[Mount]) -> dict[str, dict[str, str]]:
        binds: dict[str, dict[str, str]] = {}
        for mount in mounts:
            if mount.volume is not None:
                source = mount.volume
            else:  # a host path the plan names: a scratch folder stands in for it
                assert mount.host_path is not None
                folder = self.engine.root / mount.host_path.strip("/").replace("/", "_")
                folder.mkdir(exist_ok=True)
                source = str(folder)
            binds[source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
        return binds

    def create(self, plan: ServicePlan, mounts: Sequence[Mount], command: Sequence[str], *, name: str,
               user: str | None = None, read_only: bool | None = None) -> Container:
        """The container the component declares, translated to the engine's create call."""
        container = self.engine.client.containers.create(
            self.engine.image, list(command), name=name, user=user or plan.user,
            read_only=plan.read_only if read_only is None else read_only,
            cap_drop=["ALL"], cap_add=list(plan.cap_add) or None, security_opt=["no-new-privileges:true"],
            tmpfs=dict(plan.tmpfs) or None, network_mode="none", volumes=self.binds(mounts) or None,
        )
        self.containers.append(container)
        return container

    @staticmethod
    def upload(container: Container, uploads: Sequence[Upload]) -> None:
        for upload in uploads:
            container.put_archive("/", provider_tar(upload))

    @staticmethod
    def run(container: Container) -> Outcome:
        container.start()
        status = container.wait(timeout=RUN_TIMEOUT_S)["StatusCode"]
        return Outcome(int(status), container.logs(stdout=True, stderr=False),
                       container.logs(stdout=False, stderr=True))

    def close(self) -> None:
        for container in self.containers:
            container.remove(force=True)
        for volume in self.volumes:
            self.engine.client.volumes.get(volume).remove(force=True)


@pytest.fixture
def scene(engine: Engine) -> Iterator[Scene]:
    made = Scene(engine)
    try:
        yield made
    finally:
        made.close()


def component_design(scene: Scene, plan: ServicePlan, command: Sequence[str], *, name: str = "",
                     user: str | None = None, upload: bool = True) -> Outcome:
    """What the component declares (`delivery(plan)`): a never-started loader with a writable root
    and the file volumes read-write receives the uploads; the service container mounts them
    read-only and runs."""
    planned = delivery(plan)
    scene.volumes_for(planned.mounts)
    if upload:
        loader = scene.create(plan, planned.loader_mounts, ["/bin/true"], name=f"{plan.container_name}-files",
                              read_only=False)
        scene.upload(loader, planned.uploads)
    container = scene.create(plan, planned.mounts, command, name=name or plan.container_name, user=user)
    return scene.run(container)


def read_command(paths: Sequence[str]) -> list[str]:
    return ["/bin/sh", "-c", 'stat -c "%n %u:%g %a %s" "$@" && cat "$@"', "sh", *paths]


def neighbour(plan: ServicePlan) -> ServicePlan:
    """Another delivered service with secrets and the same kind of root, on the same node when there is one."""
    others = [s for s in DELIVERED if s.name != plan.name and s.secret_files and s.read_only == plan.read_only]
    return next((s for s in others if s.node == plan.node), others[0])


def assert_delivered(scene: Scene, plan: ServicePlan) -> None:
    deliver = component_design
    uploads = delivery(plan).uploads
    paths = [u.path for u in uploads]

    # The service's own user reads every file, byte for byte, owned root:<its gid>, mode 0440.
    own = deliver(scene, plan, read_command(paths))
    assert own.status == 0, own.stderr.decode()
    contents = [expected_bytes(plan, u) for u in uploads]
    metadata = "".join(f"{u.path} {FILE_OWNER}:{plan.gid} {int(FILE_MODE, 8):o} {len(c)}\n"
                       for u, c in zip(uploads, contents, strict=True)).encode()
    assert own.stdout == metadata + b"".join(contents)

    # Another non-root uid on the same volumes reads none of them.
    stranger = deliver(scene, plan, ["/bin/cat", *paths], name=f"{plan.container_name}-stranger", user=STRANGER,
                       upload=False)
    assert stranger.status != 0 and stranger.stdout == b""
    for path in paths:
        assert f"can't open '{path}': Permission denied".encode() in stranger.stderr, stranger.stderr

    # Another service's container (its own delivery) does not see this service's files.
    other = neighbour(plan)
    foreign = [p for p in paths if p not in {u.path for u in delivery(other).uploads}]
    assert foreign and (any(p.startswith("/run/secrets/") for p in foreign) or not plan.secret_files), \
        (plan.name, other.name)
    seen = deliver(scene, other, ["/bin/cat", *foreign])
    assert seen.status != 0 and seen.stdout == b""
    for path in foreign:
        assert f"can't open '{path}': No such file or directory".encode() in seen.stderr, seen.stderr


def test_the_plan_has_the_containers_this_test_needs() -> None:
    names = {s.name for s in DELIVERED}
    assert "swarm-router" in names and any(s.kind == "swarm-autotuner" for s in DELIVERED), names
    assert any(s.read_only for s in DELIVERED)


@pytest.mark.parametrize("name", [s.name for s in DELIVERED])
def test_component_delivery(scene: Scene, name: str) -> None:
    assert_delivered(scene, PLAN.service(name))


def test_old_design_uploads_into_a_read_only_root_are_refused(scene: Scene) -> None:
    router = PLAN.service("swarm-router")
    container = scene.create(router, (), read_command(["/etc/hostname"]), name=router.container_name)
    with pytest.raises(docker.errors.APIError) as refused:
        scene.upload(container, delivery(router).uploads[:1])
    assert refused.value.explanation == ROOTFS_READ_ONLY


def test_volumes_at_the_destination_do_not_help_when_the_copy_targets_root(scene: Scene) -> None:
    router = PLAN.service("swarm-router")
    planned = delivery(router)
    scene.volumes_for(planned.mounts)
    container = scene.create(router, planned.loader_mounts, ["/bin/true"], name=router.container_name)
    with pytest.raises(docker.errors.APIError) as refused:
        scene.upload(container, planned.uploads[:1])
    assert refused.value.explanation == ROOTFS_READ_ONLY
    # The engine accepts a copy whose destination is the volume itself (what `docker cp` does,
    # not what the provider does).
    upload = planned.uploads[0]
    directory, _, file = upload.path.rpartition("/")
    assert container.put_archive(directory, provider_tar(replace(upload, path=file)))


def test_a_read_only_volume_refuses_the_upload(scene: Scene) -> None:
    """So the volumes the uploads land in must be mounted read-write where the upload happens."""
    router = PLAN.service("swarm-router")
    planned = delivery(router)
    scene.volumes_for(planned.mounts)
    read_only = [replace(m, read_only=True) for m in planned.mounts]
    upload = planned.uploads[0]
    loader = scene.create(router, read_only, ["/bin/true"], name="loader", read_only=False)
    with pytest.raises(docker.errors.APIError) as refused:
        scene.upload(loader, [upload])
    assert refused.value.explanation.endswith(f"open {upload.path}: read-only file system")
    service = scene.create(router, read_only, ["/bin/true"], name=router.container_name)
    directory, _, file = upload.path.rpartition("/")
    with pytest.raises(docker.errors.APIError) as refused:
        service.put_archive(directory, provider_tar(replace(upload, path=file)))
    assert refused.value.explanation == "mounted volume is marked read-only"
