"""gpt-researcher: autonomous web research, models through LiteLLM, search through SearXNG.

Wiring: the OpenAI-compatible provider pointed at LiteLLM (`OPENAI_BASE_URL`) with a key of
its own, exported from its secret file inside the process; `RETRIEVER=searx` on the
self-hosted SearXNG. RAG on Qdrant is not wired: GPT Researcher takes a vector store only
through its Python API (`vector_store=` of `GPTResearcher`), not through the server's
configuration.

Image: upstream publishes only a moving `latest` tag, so the node builds
`images/gpt-researcher/` instead: a pinned upstream commit (git checks its hash) with every
dependency installed from a hash-locked requirements file. The container runs the built
image's digest. An operator may still pin a pulled image (`services.<name>.image`). The lock
is resolved and checked for amd64 only, so an arm64 node is refused.

The root file system is read-only: the app writes only its reports (`outputs`), uploaded
documents (`my-docs`), its report store (`data`) and its log file (`logs`), each a volume the
image seeds with the app user's ownership; caches go to the /tmp tmpfs.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.errors import Issue, SpecError
from swarm.plan.types import BuiltImage, Healthcheck, Mount, SecretFile, ServicePlan
from swarm.services import searxng
from swarm.services.app_links import flows, gateway, pinned_image, require
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_config import embedding_models
from swarm.services.litellm_keys import key_expression, key_id

KIND = "gpt-researcher"
PORT = 8000
LITELLM_KEY = key_id(KIND)
IMAGE = BuiltImage(name="ai-swarm/gpt-researcher", context="images/gpt-researcher",
                   dockerfile="images/gpt-researcher/Dockerfile", version="3.5.1",
                   platforms=frozenset({"amd64"}))
APP_DIR = "/usr/src/app"
USER = "10002:10002"  # the image's gptr user (images/gpt-researcher/Dockerfile)
WRITABLE = {"outputs": True, "my-docs": True, "data": True, "logs": False}
"""The directories under APP_DIR the app writes, and whether each holds data to keep."""
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


def _embedding_model(ctx: PlanContext, name: str) -> str:
    """The first hosted embedding model LiteLLM serves (GPT Researcher ranks scraped pages with it)."""
    models = embedding_models(ctx.spec)
    if not models:
        raise SpecError([Issue(service_origin(name),
                               f"{name!r} needs an embedding model through LiteLLM; list one under "
                               "ai-swarm:providers.<provider>.embedding_models (e.g. gemini/gemini-embedding-001)")])
    return models[0][1]


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        llm = gateway(ctx, service.node, name)
        search = require(ctx, searxng.KIND, service.node, searxng.PORT, name)
        smart, fast = _models(ctx)
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, IMAGE),
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
                # `custom` is the OpenAI-compatible client that sends text, not token IDs (LiteLLM
                # forwards text to any provider).
                "EMBEDDING": f"custom:{_embedding_model(ctx, name)}",
                "RETRIEVER": "searx",
                "SEARX_URL": search.url,
                "DOC_PATH": f"{APP_DIR}/my-docs",
                "REPORT_STORE_PATH": f"{APP_DIR}/data/reports.json",
                "HOME": "/tmp",
                "XDG_CACHE_HOME": "/tmp/cache",
            },
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=tuple(Mount(target=f"{APP_DIR}/{directory}", volume=f"ai-swarm-{name}-{directory}", stateful=keep)
                         for directory, keep in WRITABLE.items()),
            secret_files=(SecretFile(LITELLM_KEY, f"generated:{LITELLM_KEY}"),),
            tmpfs={"/tmp": "rw,noexec,nosuid,size=256m"},
            flows=flows(name, (llm, "OpenAI API (LiteLLM)"), (search, "web search (JSON)")),
        )
