"""Capture the inputs a real Pulumi program registers, as the offline plan will see them.

``capture(program)`` runs ``program`` under ``pulumi.runtime.set_mocks`` and records every
``MockResourceArgs.inputs`` (camelCase, numbers as floats, preview unknowns as
``pulumi.output.Unknown``) as a :class:`policies.local_runner.ResourceSnapshot`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from policies.local_runner import ResourceSnapshot

PROJECT, STACK = "ai-swarm", "test"


def urn_of(type_token: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{type_token}::{name}"


class _Recorder(pulumi.runtime.Mocks):
    def __init__(self, outputs: Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]] | None) -> None:
        self.seen: list[pulumi.runtime.MockResourceArgs] = []
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.seen.append(args)
        extra = self.outputs(args) if self.outputs else {}
        return f"{args.name}-id", {**args.inputs, **extra}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def capture(
    program: Callable[[], Any],
    *,
    preview: bool = True,
    outputs: Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]] | None = None,
) -> dict[str, ResourceSnapshot]:
    """Run ``program`` under mocks; return snapshots keyed by logical name."""
    recorder = _Recorder(outputs)
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack=STACK, preview=preview)

    @pulumi.runtime.test
    def run() -> Any:
        program()
        return pulumi.Output.from_input(None)

    run()
    return {
        args.name: ResourceSnapshot(
            urn=urn_of(args.typ, args.name),
            type=args.typ,
            name=args.name,
            props=dict(args.inputs),
            provider_urn=args.provider or None,
        )
        for args in recorder.seen
    }
