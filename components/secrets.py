"""Credentials the swarm generates for itself (pulumi-random): nobody types them, git never sees them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random


@dataclass(frozen=True)
class GeneratedSecretsArgs:
    names: tuple[str, ...]
    length: int = 48


class GeneratedSecrets(pulumi.ComponentResource):
    """One RandomPassword per name; `values[name]` is a secret Output."""

    values: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: GeneratedSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:secrets:GeneratedSecrets", name, None, opts)
        self.values = {}
        for secret_name in args.names:
            password = random.RandomPassword(
                f"{name}-{secret_name}",
                length=args.length,
                special=False,  # keys travel in HTTP headers and YAML: keep them token-safe
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
            )
            self.values[secret_name] = pulumi.Output.secret(password.result)
        self.register_outputs({})
