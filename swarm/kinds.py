"""The one vocabulary of the swarm: service kinds, container labels and component type tokens.

The stack model, the service registry, the components, the policy pack's exceptions and
the offline report all spell a kind the way this module does.
"""

from __future__ import annotations

from typing import Literal, get_args

# Kinds an operator places under `ai-swarm:services` (the key is the instance name; `kind`
# defaults to the key).
ServiceKind = Literal[
    "litellm", "postgres", "redis", "swarm-router", "qdrant",
    "open-webui", "pipelines", "sillytavern", "sillytavern-extras", "gpt-researcher", "searxng",
    "prometheus", "grafana", "alertmanager", "loki",
]
# Kinds the plan places by itself: vLLM per inference deployment, agents per node.
PlacedKind = Literal[
    "swarm-autotuner",
    "vllm", "postgres-backup",
    "node-exporter", "gpu-exporter", "log-shipper",
]

CONFIGURED_KINDS: tuple[str, ...] = get_args(ServiceKind)
PLACED_KINDS: tuple[str, ...] = get_args(PlacedKind)
ALL_KINDS: tuple[str, ...] = CONFIGURED_KINDS + PLACED_KINDS

# Docker labels every container carries; policies read the kind label.
LABEL_NODE = "ai-swarm.node"
LABEL_SERVICE = "ai-swarm.service"
LABEL_KIND = "ai-swarm.kind"
# A container's role: a service's loader (`files`) is created, receives the uploads, never runs.
LABEL_ROLE = "ai-swarm.role"
ROLE_FILES = "files"
# The service container carries its loader's ID, so new files replace it.
LABEL_FILES = "ai-swarm.files"
# Volumes: `generated` ones hold only files the program uploads again on every create
# (config, secrets); anything else is data and must be protected.
LABEL_VOLUME_ROLE = "ai-swarm.volume-role"
VOLUME_ROLE_GENERATED = "generated"
VOLUME_ROLE_DATA = "data"

# Pulumi type tokens of the project's components.
TYPE_SWARM = "swarm:index:Swarm"
TYPE_NODE = "swarm:node:NodeRuntime"
TYPE_SERVICE = "swarm:service:ServiceContainer"
TYPE_ADOPTED = "swarm:service:AdoptedContainer"
TYPE_RUNTIME_IMAGE = "swarm:runtime:RuntimeImage"
TYPE_SECRETS = "swarm:secrets:GeneratedSecrets"
TYPE_OCI_NODE = "swarm:oci:OciNode"
TYPE_TAILNET = "swarm:tailnet:Tailnet"
TYPE_READINESS = "swarm:node:NodeReadiness"

# Kinds people open in a browser or call with an API key (the diagram's and the ACL's users).
USER_FACING_KINDS: frozenset[str] = frozenset({"litellm", "open-webui", "sillytavern", "gpt-researcher", "grafana"})

# Flow targets outside the swarm (hosted model APIs) are named `external:<provider>`.
EXTERNAL_PREFIX = "external:"
