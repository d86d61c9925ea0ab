"""log-shipper: Grafana Alloy on every node, tailing the Docker engine's container logs into Loki.

It reads `/var/lib/docker/containers` read-only, as root with every capability dropped: the
engine writes those files root-owned 0640, so no other uid can read them without
CAP_DAC_READ_SEARCH (policy exceptions: root user, the engine's log directory). It never gets
the Docker socket. Its `/metrics` carries the backup job's last-dump gauge (swarm/monitoring/logs.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.errors import key_path
from swarm.monitoring.logs import DOCKER_LOGS, SHIPPER_PORT, render_alloy
from swarm.plan.types import Flow, Healthcheck, Mount, PlannedFile, PulledImage, ServicePlan
from swarm.services import loki
from swarm.services.base import PlanContext

KIND = "log-shipper"
PORT = SHIPPER_PORT
CONFIG_DIR = "/etc/alloy"
CONFIG_NAME = "config.alloy"
DATA = "/var/lib/alloy/data"
# grafana/alloy v1.18.1: digest pinned in six unrelated public repositories (one notes "pinned by
# index digest"); upstream publishes linux/amd64 and linux/arm64.
IMAGE = PulledImage("grafana/alloy", "v1.18.1",
                    "sha256:0f4434c92b3e6cdac38bb129b344e1790c246f7b6e2eaffcc16a5fa363240e33",
                    frozenset({"amd64", "arm64"}))
# Ubuntu-based image without curl or wget: bash's /dev/tcp asks Alloy's readiness endpoint.
PROBE = (f"exec 3<>/dev/tcp/127.0.0.1/{PORT} && printf 'GET /-/ready HTTP/1.0\\r\\n\\r\\n' >&3 "
         "&& head -n 1 <&3 | grep -q ' 200 '")


def instance_name(node: str) -> str:
    return f"{KIND}-{node}"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    central = loki.placed(ctx)
    if central is None:
        return
    loki_name, loki_node, loki_port = central
    for node in ctx.spec.nodes:
        if node == loki_node:
            url, port, cross = f"http://{loki_name}:{loki.PORT}", loki.PORT, False
        elif loki_port is not None:
            url, port, cross = f"{ctx.url(loki_node, loki_port)}", loki_port, True
        else:
            continue  # Loki is private to its node: other nodes cannot ship to it
        name = instance_name(node)
        yield ServicePlan(
            name=name, kind=KIND, node=node, origin=key_path("agents", "log_shipper_port"),
            image=IMAGE,
            command=("run", f"--server.http.listen-addr=0.0.0.0:{PORT}", f"--storage.path={DATA}",
                     "--disable-reporting", f"{CONFIG_DIR}/{CONFIG_NAME}"),
            healthcheck=Healthcheck(test=("/bin/bash", "-c", PROBE)),
            memory_mb=256, cpus=0.5,
            user="0:0",
            ports=ctx.publish(node, PORT, ctx.spec.agents.log_shipper_port),
            internal_port=PORT,
            mounts=(Mount(target=DOCKER_LOGS, host_path=DOCKER_LOGS, read_only=True),
                    Mount(target=DATA, volume=f"ai-swarm-{name}-positions", stateful=True)),
            config_dir=CONFIG_DIR,
            files=(PlannedFile(CONFIG_NAME, render_alloy(node, f"{url}/loki/api/v1/push"), f"{KIND}/{node}.alloy"),),
            flows=(Flow(source=name, target=loki_name, port=port, purpose="log push", cross_node=cross),),
        )
