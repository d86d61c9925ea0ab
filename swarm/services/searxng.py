"""searxng: a private metasearch engine for GPT Researcher (never a public instance).

Settings are rendered (JSON output on for the researcher, the limiter and the public-instance
features off because nothing outside the node's private network reaches it); the secret key
is generated and reaches SearXNG as `SEARXNG_SECRET`, exported from the secret file inside
the process (the settings file holds no secret; without the variable SearXNG falls back to
its default key, which it refuses to start with).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarm.plan.types import Healthcheck, PlannedFile, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services.app_links import Link, link, pinned_image
from swarm.services.base import PlanContext, service_origin

KIND = "searxng"
PORT = 8080
CONFIG_DIR = "/etc/searxng"
SETTINGS = "settings.yml"
SECRET = "searxng-secret"
USER = "977:977"  # the image's searxng user
# Seen pinned (tag and digest) in a public infrastructure repo's OCI pin list
# (docker.io/searxng/searxng:2026.7.2-67973783d@sha256:33aa3327...); SearXNG publishes
# amd64 and arm64 (and arm/v7) builds.
IMAGE = PulledImage(
    repository="searxng/searxng",
    tag="2026.7.2-67973783d",
    digest="sha256:33aa33278be6c0be379b95f7c91cd455c18141295291c2e5a396454761df7bbb",
    platforms=frozenset({"amd64", "arm64"}),
)
START = (f'SEARXNG_SECRET="$(cat {secret_path(SECRET)})" || exit 1; export SEARXNG_SECRET; '
         "exec /usr/local/searxng/entrypoint.sh")
PROBE = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/healthz', timeout=3)"


def settings(instance_name: str) -> dict[str, Any]:
    """settings.yml on top of SearXNG's defaults (`use_default_settings`)."""
    return {
        "use_default_settings": True,
        "general": {"instance_name": instance_name, "debug": False, "enable_metrics": False},
        "search": {"safe_search": 0, "autocomplete": "", "formats": ["html", "json"]},
        "server": {
            "bind_address": "0.0.0.0",
            "port": PORT,
            "limiter": False,
            "public_instance": False,
            "image_proxy": False,
            "method": "GET",
        },
        "outgoing": {"request_timeout": 5.0, "max_request_timeout": 15.0},
    }


def url(ctx: PlanContext, from_node: str, needed_by: str) -> Link | None:
    return link(ctx, KIND, from_node, PORT, needed_by)


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        text = to_yaml(settings(f"ai-swarm {name}"), "SearXNG settings")
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, IMAGE),
            entrypoint=("/bin/sh", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("python3", "-c", PROBE)),
            memory_mb=512, cpus=1.0,
            user=USER,
            env={"SEARXNG_SETTINGS_PATH": f"{CONFIG_DIR}/{SETTINGS}"},
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            config_dir=CONFIG_DIR,
            files=(PlannedFile(SETTINGS, text, f"{name}/{SETTINGS}"),),
            secret_files=(SecretFile(SECRET, f"generated:{SECRET}"),),
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m", "/var/cache/searxng": "rw,noexec,nosuid,size=64m"},
        )
