"""LiteLLM: the OpenAI-compatible gateway users call (keys, budgets, cache, fallbacks).

Image: the upstream `litellm-database` variant. With a database LiteLLM runs Prisma, whose
query engine and CLI must match the generated client; the `-database` image generates them at
build time (`prisma generate`), while the plain image downloads them at first start, which
fails on a node without that egress and is a supply-chain fetch at every recreate. The image
generates them as root under /root/.cache, so the container runs as root, with every
capability dropped and no-new-privileges (policy exception in swarm/policy_config.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.plan.types import Flow, Healthcheck, PlannedFile, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services import postgres, redis, swarm_router
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_config import (
    MASTER_KEY,
    PER_WORKER_RPS,
    TARGET_RPS,
    Backends,
    litellm_config,
    provider_keys,
    render_entrypoint,
    secret_env,
    workers_for,
)
from swarm.services.litellm_keys import SCRIPT_NAME, key_holders, key_id, render_register_script
from swarm.services.pinned import BOTH, override

KIND = "litellm"
PORT = 4000
CONFIG_DIR = "/etc/litellm"
CONFIG_NAME = "config.yaml"
ENTRYPOINT_NAME = "entrypoint.sh"
WORKER_MB = 640  # ~330 MB RSS idle per worker (REFERENCE.md), doubled for load and the cache client

# litellm-database v1.104.0: digest seen pinned (with the comment `# v1.104.0`) in a public
# repository's Dependabot-tracked Dockerfile; the tag name follows upstream's `main-v<version>`
# scheme (a reference with a digest is pulled by the digest). Upstream builds its images for
# linux/amd64 and linux/arm64 (BerriAI/litellm#1607). The pip pin in requirements-dev.txt is the
# same version, so the end-to-end test runs what the image runs.
LITELLM_DATABASE = PulledImage("ghcr.io/berriai/litellm-database", "main-v1.104.0",
                               "sha256:5a9ff0fd7177372f2ccd8949cb121f67e281f4d13d026af51f9c096c0626f50a", BOTH)


def backends(ctx: PlanContext, node: str) -> Backends | None:
    """LiteLLM's dependencies as its container reaches them; None if one is not placed."""
    router, pg, cache = swarm_router.placed(ctx), postgres.placed(ctx), redis.placed(ctx)
    if router is None or pg is None or cache is None:
        return None
    router_name, router_node, router_port = router
    router_url = (f"http://{router_name}:{swarm_router.PORT}" if router_node == node
                  else ctx.url(router_node, router_port))
    return Backends(router_url=router_url, redis_host=cache[0], redis_port=redis.PORT, postgres_host=pg[0],
                    postgres_port=postgres.PORT, postgres_user=postgres.USER, postgres_db=postgres.DATABASE)


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    spec = ctx.spec
    for name, service in ctx.services_of(KIND):
        deps, router = backends(ctx, service.node), swarm_router.placed(ctx)
        if deps is None or router is None or not spec.inference:
            continue
        workers = workers_for(TARGET_RPS, PER_WORKER_RPS, spec.nodes[service.node].cpus)
        config_path = f"{CONFIG_DIR}/{CONFIG_NAME}"
        config = to_yaml(litellm_config(spec, deps), "LiteLLM proxy configuration")
        clients = key_holders(spec)
        register = f"{CONFIG_DIR}/{SCRIPT_NAME}" if clients else None
        entrypoint = render_entrypoint(secret_env(spec, swarm_router.API_KEY, redis.PASSWORD), postgres.PASSWORD,
                                       deps, config_path, PORT, workers, register)
        secrets = (
            SecretFile(MASTER_KEY, f"generated:{MASTER_KEY}"),
            SecretFile(swarm_router.API_KEY, f"generated:{swarm_router.API_KEY}"),
            SecretFile(redis.PASSWORD, f"generated:{redis.PASSWORD}"),
            SecretFile(postgres.PASSWORD, f"generated:{postgres.PASSWORD}"),
            *(SecretFile(key, f"config:{key}") for key in provider_keys(spec)),
            *(SecretFile(key_id(kind), f"generated:{key_id(kind)}") for kind in clients),
        )
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/health/liveliness', timeout=3)"
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=override(ctx, name, LITELLM_DATABASE),
            entrypoint=("/bin/sh", f"{CONFIG_DIR}/{ENTRYPOINT_NAME}"),
            command=(),
            healthcheck=Healthcheck(test=("python3", "-c", probe), interval_s=30, start_period_s=120),
            memory_mb=512 + WORKER_MB * workers, cpus=float(min(workers, spec.nodes[service.node].cpus)),
            user="0:0",
            read_only=False,
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "REDIS_HOST": deps.redis_host,
                 "REDIS_PORT": str(deps.redis_port), "LITELLM_MODE": "PRODUCTION", "LITELLM_LOG": "INFO",
                 "NO_DOCS": "True"},
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            config_dir=CONFIG_DIR,
            files=(PlannedFile(CONFIG_NAME, config, f"{name}/{CONFIG_NAME}"),
                   PlannedFile(ENTRYPOINT_NAME, entrypoint, f"{name}/{ENTRYPOINT_NAME}"),
                   *((PlannedFile(SCRIPT_NAME, render_register_script(clients, secret_path(MASTER_KEY), PORT),
                                  f"{name}/{SCRIPT_NAME}"),) if clients else ())),
            secret_files=secrets,
            tmpfs={"/tmp": "rw,nosuid,size=256m"},
            flows=(
                Flow(source=name, target=router[0], port=router[2] if router[1] != service.node else swarm_router.PORT,
                     purpose="local models", cross_node=router[1] != service.node),
                Flow(source=name, target=deps.postgres_host, port=postgres.PORT, purpose="keys and spend"),
                Flow(source=name, target=deps.redis_host, port=redis.PORT, purpose="response cache"),
                *(Flow(source=name, target=f"external:{kind}", port=443, purpose="hosted models")
                  for kind in dict.fromkeys(p.kind for p in spec.providers.values())),
            ),
        )

