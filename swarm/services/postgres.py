"""PostgreSQL: LiteLLM's keys, teams, budgets and spend. Private to its node's network.

The password is generated (pulumi-random) and reaches the server through the official
image's `POSTGRES_PASSWORD_FILE`; the data directory is a protected, retained volume.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.errors import Issue, SpecError, key_path
from swarm.plan.types import Healthcheck, Mount, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.services.base import PlanContext, service_origin
from swarm.services.pinned import BOTH, override

KIND = "postgres"
PORT = 5432
PASSWORD = "postgres-password"
USER = "litellm"
DATABASE = "litellm"
UID_GID = "70:70"  # `postgres` in the Alpine image; it owns the image's data directory
DATA_DIR = "/var/lib/postgresql/data"

# postgres 17.2-alpine: digest seen twice in public sources (a `docker build` log resolving
# `FROM docker.io/library/postgres:17.2-alpine@sha256:7e5d...` and a restore script pinning the
# same reference). The official image is multi-arch (amd64, arm64v8 among others).
POSTGRES_17 = PulledImage("postgres", "17.2-alpine",
                          "sha256:7e5df973a74872482e320dcbdeb055e178d6f42de0558b083892c50cda833c96", BOTH)

# Settings for a small, write-light database on a 4-core ARM node shared with the gateway.
SETTINGS = {
    "listen_addresses": "*",
    "password_encryption": "scram-sha-256",
    "max_connections": "100",
    "shared_buffers": "256MB",
    "effective_cache_size": "768MB",
    "log_min_duration_statement": "1000",
}


def placed(ctx: PlanContext) -> tuple[str, str] | None:
    """(service name, node) of the first PostgreSQL service, if any."""
    found = ctx.first_of(KIND)
    return (found[0], found[1].node) if found else None


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        if service.port is not None:
            raise SpecError([Issue(key_path("services", name, "port"),
                                   "PostgreSQL is reachable only on its node's private network; remove `port` "
                                   "(LiteLLM and the backup job reach it as "
                                   f"{name}:{PORT})")])
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=override(ctx, name, POSTGRES_17),
            command=("postgres", *(arg for key, value in SETTINGS.items() for arg in ("-c", f"{key}={value}"))),
            healthcheck=Healthcheck(test=("pg_isready", "-h", "127.0.0.1", "-U", USER, "-d", DATABASE),
                                    start_period_s=60),
            memory_mb=1024, cpus=1.0,
            user=UID_GID,
            env={"POSTGRES_USER": USER, "POSTGRES_DB": DATABASE, "POSTGRES_PASSWORD_FILE": secret_path(PASSWORD),
                 "PGDATA": DATA_DIR},
            internal_port=PORT,
            mounts=(Mount(target=DATA_DIR, volume=f"ai-swarm-{name}-data", stateful=True),),
            secret_files=(SecretFile(PASSWORD, f"generated:{PASSWORD}"),),
            shm_size_mb=256,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m", "/var/run/postgresql": "rw,noexec,nosuid,size=8m"},
        )
