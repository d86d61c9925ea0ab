"""pipelines: Open WebUI's plugin server (filters, custom model pipelines), next to it on oracle.

Open WebUI reaches it as one more OpenAI-compatible connection with a generated key
(`PIPELINES_API_KEY`, otherwise a public default); pipelines that call models use LiteLLM
with a key of their own. Both keys are exported from their secret files inside the process.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.plan.types import Healthcheck, Mount, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.services.app_links import Link, flows, gateway, link, pinned_image
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_keys import key_expression, key_id

KIND = "pipelines"
PORT = 9099
API_KEY = "pipelines-api-key"
LITELLM_KEY = key_id(KIND)
# Seen pinned by digest in a public design note ("legacy Pipelines
# ghcr.io/open-webui/pipelines@sha256:b48e9bc3..., revision 039f9c54"): the `main` build of
# that revision. Upstream builds linux/amd64 and linux/arm64 images.
IMAGE = PulledImage(
    repository="ghcr.io/open-webui/pipelines",
    tag="main",
    digest="sha256:b48e9bc338ce2be0acfbeff01810db72408a12f07739f9e3879c1f2b00952d6e",
    platforms=frozenset({"amd64", "arm64"}),
)
START = (f'PIPELINES_API_KEY="$(cat {secret_path(API_KEY)})" && OPENAI_API_KEY="{key_expression(KIND)}" '
         "|| exit 1; export PIPELINES_API_KEY OPENAI_API_KEY; exec bash start.sh")
PROBE = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/', timeout=3)"


def url(ctx: PlanContext, from_node: str, needed_by: str) -> Link | None:
    return link(ctx, KIND, from_node, PORT, needed_by)


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        llm = gateway(ctx, service.node, name)
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, IMAGE),
            entrypoint=("/bin/bash", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("python", "-c", PROBE), start_period_s=60),
            memory_mb=1024, cpus=1.0,
            user="0:0",  # the image has no other user and owns /app as root
            env={"OPENAI_API_BASE_URL": f"{llm.url}/v1"},
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target="/app/pipelines", volume=f"ai-swarm-{name}-pipelines", stateful=True),),
            secret_files=(SecretFile(API_KEY, f"generated:{API_KEY}"),
                          SecretFile(LITELLM_KEY, f"generated:{LITELLM_KEY}")),
            # start.sh pip-installs each pipeline's requirements into the image's site-packages.
            read_only=False,
            flows=flows(name, (llm, "OpenAI API (LiteLLM)")),
        )
