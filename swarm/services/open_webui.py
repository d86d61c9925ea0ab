"""open-webui: the chat UI on oracle, models through LiteLLM, RAG on Qdrant over the tailnet.

Sign-up is off except for the first account, the admin (`ENABLE_INITIAL_ADMIN_SIGNUP`: create
it right after the first deploy); accounts an admin adds start as `pending`. The session
secret is generated, and configuration comes from here on every start
(`ENABLE_PERSISTENT_CONFIG=False`). Open WebUI reads its keys only from the environment, so
the start command exports them from the secret files inside the process: the LiteLLM key of
its own, the Pipelines key, the Qdrant key and the session secret.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.plan.types import Healthcheck, Mount, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.services import pipelines, qdrant
from swarm.services.app_links import flows, gateway, pinned_image
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_keys import key_expression, key_id

KIND = "open-webui"
PORT = 8080
DATA = "/app/backend/data"
SECRET_KEY = "open-webui-secret-key"
LITELLM_KEY = key_id(KIND)
# Seen in a public restore runbook as the image of Open WebUI revision ecd48e2f, which another
# public repo's release pin names v0.10.2 with linux/amd64 and linux/arm64 manifests.
IMAGE = PulledImage(
    repository="ghcr.io/open-webui/open-webui",
    tag="v0.10.2",
    digest="sha256:a26effeb220e132482bf7e0560b3404843e7bc40d23051144e062960df8df6b0",
    platforms=frozenset({"amd64", "arm64"}),
)


def _start(with_pipelines: bool, with_qdrant: bool) -> str:
    keys = key_expression(KIND)
    if with_pipelines:
        keys += f";$(cat {secret_path(pipelines.API_KEY)})"
    lines = [f'WEBUI_SECRET_KEY="$(cat {secret_path(SECRET_KEY)})"', f'OPENAI_API_KEYS="{keys}"']
    names = ["WEBUI_SECRET_KEY", "OPENAI_API_KEYS"]
    if with_qdrant:
        lines.append(f'QDRANT_API_KEY="$(cat {secret_path(qdrant.API_KEY)})"')
        names.append("QDRANT_API_KEY")
    return " && ".join(lines) + f" || exit 1; export {' '.join(names)}; exec bash start.sh"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        llm = gateway(ctx, service.node, name)
        plugins = pipelines.url(ctx, service.node, name)
        vectors = qdrant.url(ctx, service.node, name)
        urls = [f"{llm.url}/v1", *([plugins.url] if plugins else [])]
        env = {
            "WEBUI_AUTH": "True",
            "ENABLE_SIGNUP": "False",
            # With sign-up off, only the very first account (the admin, while no user exists) may sign up.
            "ENABLE_INITIAL_ADMIN_SIGNUP": "True",
            "DEFAULT_USER_ROLE": "pending",
            "ENABLE_PERSISTENT_CONFIG": "False",
            "ENABLE_OLLAMA_API": "False",
            "ENABLE_OPENAI_API": "True",
            "OPENAI_API_BASE_URLS": ";".join(urls),
            "ANONYMIZED_TELEMETRY": "False",
            "DO_NOT_TRACK": "True",
            "SCARF_NO_ANALYTICS": "True",
        }
        if vectors:
            env |= {"VECTOR_DB": "qdrant", "QDRANT_URI": vectors.url}
        secrets = [SecretFile(SECRET_KEY, f"generated:{SECRET_KEY}"),
                   SecretFile(LITELLM_KEY, f"generated:{LITELLM_KEY}")]
        if plugins:
            secrets.append(SecretFile(pipelines.API_KEY, f"generated:{pipelines.API_KEY}"))
        if vectors:
            secrets.append(SecretFile(qdrant.API_KEY, f"generated:{qdrant.API_KEY}"))
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, IMAGE),
            entrypoint=("/bin/bash", "-c"),
            command=(_start(plugins is not None, vectors is not None),),
            healthcheck=Healthcheck(test=("curl", "--silent", "--fail", f"http://127.0.0.1:{PORT}/health"),
                                    start_period_s=90),
            memory_mb=3072, cpus=2.0,
            user="0:0",  # the published image is built with UID=0 and owns /app/backend/data as root
            env=env,
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=DATA, volume=f"ai-swarm-{name}-data", stateful=True),),
            secret_files=tuple(secrets),
            # Open WebUI copies its static assets and writes caches under /app/backend at start.
            read_only=False,
            flows=flows(name, (llm, "OpenAI API (LiteLLM)"), (plugins, "OpenAI API (Pipelines)"),
                        (vectors, "RAG vectors (Qdrant REST)")),
        )
