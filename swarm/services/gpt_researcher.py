"""gpt-researcher: autonomous web research, models through LiteLLM, search through SearXNG.

Wiring: the OpenAI-compatible provider pointed at LiteLLM (`OPENAI_BASE_URL`) with a key of
its own, exported from its secret file inside the process; `RETRIEVER=searx` on the
self-hosted SearXNG. RAG on Qdrant is not wired: GPT Researcher takes a vector store only
through its Python API (`vector_store=` of `GPTResearcher`), not through the server's
configuration.

Image: upstream publishes a moving `latest` tag only, and no digest could be verified from
public sources, so the operator pins the image they tested (`services.<name>.image`); it is
built for amd64 only, so an arm64 node is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.plan.types import Healthcheck, Mount, SecretFile, ServicePlan
from swarm.services import searxng
from swarm.services.app_links import flows, gateway, pinned_image, require
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_keys import key_expression, key_id

KIND = "gpt-researcher"
PORT = 8000
LITELLM_KEY = key_id(KIND)
EMBEDDING_MODEL = "text-embedding-3-small"
"""The embedding model name GPT Researcher asks LiteLLM for (LiteLLM must serve it)."""
APP_DIR = "/usr/src/app"
USER = "1000:1000"  # the image's gpt-researcher user
START = (f'OPENAI_API_KEY="{key_expression(KIND)}" || exit 1; export OPENAI_API_KEY; '
         f"exec uvicorn main:app --host 0.0.0.0 --port {PORT}")
PROBE = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/', timeout=3)"


def _models(ctx: PlanContext) -> tuple[str, str]:
    """(smart, fast) model names as LiteLLM serves them: the first and last local deployments."""
    deployments = list(ctx.spec.inference.values())
    if deployments:
        return deployments[0].model, deployments[-1].model
    models = [model for provider in ctx.spec.providers.values() for model in provider.models]
    return (models[0], models[-1]) if models else ("gpt-4o", "gpt-4o-mini")


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        llm = gateway(ctx, service.node, name)
        search = require(ctx, searxng.KIND, service.node, searxng.PORT, name)
        smart, fast = _models(ctx)
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, None),
            entrypoint=("/bin/sh", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("python", "-c", PROBE), start_period_s=60),
            memory_mb=4096, cpus=2.0,
            user=USER,
            env={
                "OPENAI_BASE_URL": f"{llm.url}/v1",
                "FAST_LLM": f"openai:{fast}",
                "SMART_LLM": f"openai:{smart}",
                "STRATEGIC_LLM": f"openai:{smart}",
                "EMBEDDING": f"openai:{EMBEDDING_MODEL}",
                "RETRIEVER": "searx",
                "SEARX_URL": search.url,
                "DOC_PATH": f"{APP_DIR}/my-docs",
            },
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=f"{APP_DIR}/outputs", volume=f"ai-swarm-{name}-outputs", stateful=True),
                    Mount(target=f"{APP_DIR}/my-docs", volume=f"ai-swarm-{name}-docs", stateful=True)),
            secret_files=(SecretFile(LITELLM_KEY, f"generated:{LITELLM_KEY}"),),
            # The app writes logs and reports next to its code under /usr/src/app.
            read_only=False,
            flows=flows(name, (llm, "OpenAI API (LiteLLM)"), (search, "web search (JSON)")),
        )
