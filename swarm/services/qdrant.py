"""qdrant: the vector store on starlord, which already runs and holds data.

Adoption (swarm.adopt, components/adopted_container.py) goes in two steps:
(a) `adopt.container_id` set: the running container is imported exactly as it runs,
    protected and retained; this module still plans it (port, RAM share, flows) so the apps
    and the budget see it, but the container's resource is built from the adoption block.
(b) the ID removed: the hardened container below, with the data on the host directory the
    adopted one bind-mounted, or on a new protected, retained volume restored from a snapshot
    (runbook), an API key generated and required, a read-only root and a non-root user.
A stack without `adopt` gets (b) directly, with the data on a named volume.

The container this module runs (b) is non-root (uid 1000), so it needs Qdrant's unprivileged
image: the standard one is built as root (its Dockerfile creates and chowns /qdrant/storage and
/qdrant/snapshots only when built with a non-zero USER_ID), so a new volume there is root-owned
and uid 1000 cannot write it. The default below is the standard image, which the adopted
container (a) never pulls; (b) refuses it until the operator pins the `-unprivileged` variant
by digest (`services.qdrant.image`; runbook section 6).
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.adopt import STORAGE_TARGET, adoption_step, storage_location
from swarm.errors import Issue, SpecError, key_path
from swarm.model import Adoption
from swarm.plan.types import Healthcheck, Mount, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.services.app_links import Link, link, pinned_image
from swarm.services.base import PlanContext, service_origin

KIND = "qdrant"
PORT = 6333  # REST; gRPC (6334) stays on the node's private network
GRPC_PORT = 6334
API_KEY = "qdrant-api-key"
SNAPSHOTS = "/qdrant/snapshots"
USER = "1000:1000"  # the `-unprivileged` image's user; its storage and snapshot directories are its own
UNPRIVILEGED = "-unprivileged"  # Qdrant's tag suffix for the image built with USER_ID=1000
MEMORY_MB = 4096
# Seen pinned as a multi-arch index (amd64, arm64) in public compose files and a runbook
# ("preload the exact multi-architecture manifest": qdrant/qdrant:v1.15.4@sha256:6ac48070...).
# Qdrant cannot read storage written by a newer version: keep this >= the running one
# (`curl http://<node>:6333/` shows it), or pin a newer one with `services.qdrant.image`.
IMAGE = PulledImage(
    repository="qdrant/qdrant",
    tag="v1.15.4",
    digest="sha256:6ac4807063bbecddca0250bfbcff52acf18c22263b904d12919349e6d0a408f1",
    platforms=frozenset({"amd64", "arm64"}),
)
# Qdrant reads its API key only from config or QDRANT__SERVICE__API_KEY (no *_FILE variant):
# export it from the secret file inside the process, never in the container's env.
START = (f'QDRANT__SERVICE__API_KEY="$(cat {secret_path(API_KEY)})" || exit 1; '
         "export QDRANT__SERVICE__API_KEY; exec ./entrypoint.sh")
# /readyz needs no API key; the image has bash but neither curl nor wget.
PROBE = ("exec 3<>/dev/tcp/127.0.0.1/6333 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 "
         "&& head -n 1 <&3 | grep -q ' 200 '")


def url(ctx: PlanContext, from_node: str, needed_by: str) -> Link | None:
    """Qdrant as `needed_by` on `from_node` reaches it (private network or tailnet)."""
    return link(ctx, KIND, from_node, PORT, needed_by)


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        step = adoption_step(ctx.spec, name)
        storage = _storage(name, step.adoption if step else None)
        image = pinned_image(ctx, name, IMAGE)
        unprivileged = isinstance(image, PulledImage) and image.tag.endswith(UNPRIVILEGED)
        if (step is None or step.phase == "hardened") and not unprivileged:
            raise SpecError([Issue(key_path("services", name, "image"), _root_image_message(image.ref))])
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=image,
            entrypoint=("/bin/bash", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("/bin/bash", "-c", PROBE), start_period_s=30),
            memory_mb=MEMORY_MB, cpus=4.0,
            user=USER,
            env={
                "QDRANT_INIT_FILE_PATH": f"{STORAGE_TARGET}/.qdrant-initialized",
                "QDRANT__STORAGE__SNAPSHOTS_PATH": SNAPSHOTS,
                "QDRANT__TELEMETRY_DISABLED": "true",
            },
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(storage, Mount(target=SNAPSHOTS, volume=f"ai-swarm-{name}-snapshots", stateful=True)),
            secret_files=(SecretFile(API_KEY, f"generated:{API_KEY}"),),
            # Pending or imported (step a): the container itself is the state to protect.
            stateful=step is not None and step.phase != "hardened",
        )


def _storage(name: str, adoption: Adoption | None) -> Mount:
    """A host directory the adopted container bind-mounted is mounted again as is; anything else
    (its own named volume, or no adoption) becomes a new protected volume that the migration
    fills from a snapshot. Re-declaring the old named volume would not adopt it: the engine
    returns the existing volume without the labels the program sets (checked on dockerd 20.10),
    the provider reads them back empty, and labels are replace-forcing on a protected volume."""
    where = storage_location(adoption) if adoption is not None else None
    if where is not None and where[0] == "bind":
        return Mount(target=STORAGE_TARGET, host_path=where[1], stateful=True)
    return Mount(target=STORAGE_TARGET, volume=f"ai-swarm-{name}-storage", stateful=True)


def _root_image_message(ref: str) -> str:
    return (f"{ref} is built to run as root, but the container this program runs is non-root (uid 1000): "
            "new volumes at /qdrant/storage and /qdrant/snapshots would be root-owned and Qdrant could not "
            f"write them. Pin the unprivileged variant by digest, e.g. qdrant/qdrant:{IMAGE.tag}{UNPRIVILEGED}"
            "@sha256:<digest> (`docker buildx imagetools inspect "
            f"qdrant/qdrant:{IMAGE.tag}{UNPRIVILEGED}` prints it; runbook section 6)")
