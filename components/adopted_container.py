"""A container that already runs on its node, taken over instead of created.

Why not the generic `ServiceContainer`: that one always adds what a running container lacks
(hardening options, labels, log options, config/secret volumes, the private network), and
every one of those is replace-forcing in the Docker provider, so the import would fail (or,
once protected, be refused). Here the container is declared with exactly the inputs the
provider reads back (`swarm.adopt`), imported by its 64-hex ID, protected and retained: no
`pulumi` command can delete or replace it. While adoption is pending (no block yet) nothing
is registered at all, so the running container is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.node_runtime import NodeRuntime
from swarm.adopt import AdoptionStep, adopted_resource_name
from swarm.kinds import TYPE_ADOPTED
from swarm.model import AdoptedInputs
from swarm.plan.types import ServicePlan

# Provider-side behaviour flags, not properties of the container: the provider's import cannot
# read them back (`must_run`, `start`, ... "can't be imported"), so they are ignored rather than
# risk an import that fails on a difference in bookkeeping.
PROVIDER_BEHAVIOUR = ("mustRun", "start", "attach", "logs", "wait", "waitTimeout", "removeVolumes", "rm",
                      "destroyGraceSeconds", "containerReadRefreshTimeoutMilliseconds")


@dataclass(frozen=True)
class AdoptedContainerArgs:
    plan: ServicePlan
    runtime: NodeRuntime
    step: AdoptionStep
    """`pending` (register nothing) or `adopt` (import by ID); `hardened` uses ServiceContainer."""


class AdoptedContainer(pulumi.ComponentResource):
    container: docker.Container | None

    def __init__(self, name: str, args: AdoptedContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_ADOPTED, name, None, opts)
        step = args.step
        self.container = None
        if step.phase == "adopt" and step.adoption is not None:
            self.container = docker.Container(
                adopted_resource_name(args.plan.name),
                container_args(step.adoption.inputs),
                opts=pulumi.ResourceOptions(parent=self, provider=args.runtime.provider,
                                            import_=step.adoption.container_id,
                                            protect=True, retain_on_delete=True,
                                            ignore_changes=list(PROVIDER_BEHAVIOUR)),
            )
        elif step.phase == "pending":
            pulumi.log.warn(f"{args.plan.name}: adoption pending, the running container is not managed; "
                            f"see the runbook (python -m swarm adopt-config --service {args.plan.name})", self)
        self.register_outputs({"phase": step.phase,
                               "container": self.container.name if self.container else None})


def container_args(inputs: AdoptedInputs) -> docker.ContainerArgs:
    """Exactly the inputs the provider reads back on import, nothing else (see swarm.adopt)."""
    check = inputs.healthcheck
    return docker.ContainerArgs(
        name=inputs.name,
        image=inputs.image,
        command=list(inputs.command) or None,
        entrypoints=list(inputs.entrypoints) or None,
        user=inputs.user or None,
        working_dir=inputs.working_dir or None,
        restart=inputs.restart,
        max_retry_count=inputs.max_retry_count or None,
        read_only=inputs.read_only,
        privileged=inputs.privileged,
        publish_all_ports=inputs.publish_all_ports,
        network_mode=inputs.network_mode,
        capabilities=docker.ContainerCapabilitiesArgs(adds=list(inputs.cap_add) or None,
                                                      drops=list(inputs.cap_drop) or None)
        if inputs.cap_add or inputs.cap_drop else None,
        security_opts=list(inputs.security_opts) or None,
        dns=list(inputs.dns) or None,
        dns_opts=list(inputs.dns_opts) or None,
        dns_searches=list(inputs.dns_search) or None,
        mounts=[docker.ContainerMountArgs(target=m.target, source=m.source or None, type=m.type,
                                          read_only=m.read_only)
                for m in inputs.mounts] or None,
        tmpfs=dict(inputs.tmpfs) or None,
        memory=inputs.memory_mb,
        memory_swap=inputs.memory_swap_mb,
        shm_size=inputs.shm_size_mb,
        cpus=inputs.cpus,
        log_driver=inputs.log_driver,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=list(check.tests), interval=check.interval, timeout=check.timeout,
            start_period=check.start_period, start_interval=check.start_interval, retries=check.retries)
        if check else None,
        init=inputs.init,
        tty=inputs.tty,
        stdin_open=inputs.stdin_open,
    )
