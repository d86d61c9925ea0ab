"""sillytavern-extras: SillyTavern's optional Python side-car (captioning, summarising).

Upstream archived the project in April 2024 without ever publishing an image, and SillyTavern
has since moved these features into built-in extensions. So nothing is pulled by default: an
operator who still wants it builds the archived Dockerfile, pins the result
(`services.<name>.image`, amd64 only: its torch/CUDA stack) and gets it here with an API key
(`--secure`, the key written from its secret file at start). The browser calls Extras
directly, so it is published on the tailnet when a port is set.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.plan.types import Healthcheck, SecretFile, ServicePlan, secret_path
from swarm.services.app_links import pinned_image
from swarm.services.base import PlanContext, service_origin

KIND = "sillytavern-extras"
PORT = 5100
API_KEY = "sillytavern-extras-api-key"
MODULES = "caption,summarize,classify"
START = (f"cp {secret_path(API_KEY)} api_key.txt || exit 1; "
         f"exec python server.py --listen --port {PORT} --secure --enable-modules={MODULES}")
PROBE = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), timeout=3).close()"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, None),
            entrypoint=("/bin/sh", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("python", "-c", PROBE), start_period_s=120),
            memory_mb=4096, cpus=2.0,
            user="0:0",  # the archived Dockerfile runs as root in /sillytavern
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            secret_files=(SecretFile(API_KEY, f"generated:{API_KEY}"),),
            # Extras writes api_key.txt and downloads models into its working directory.
            read_only=False,
        )
