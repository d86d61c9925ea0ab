"""The typed stack model: what the swarm is made of, validated before anything is planned.

Every model forbids unknown keys, so a typo in a stack file is an error that names the key
instead of a silently ignored setting. Cross-references (a deployment's node, a service's
node, a GPU index) are checked in `SwarmSpec`, where the whole picture is known.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from swarm.kinds import ServiceKind
from swarm.model_adoption import AdoptedHealthcheck, AdoptedInputs, AdoptedMount, AdoptedPort, Adoption
from swarm.model_base import Name, Port, PositiveGb, Strict

__all__ = ["AdoptedHealthcheck", "AdoptedInputs", "AdoptedMount", "AdoptedPort", "Adoption", "Name", "Port",
           "PositiveGb", "Strict"]  # re-exported: the stack model's vocabulary lives here

TAILSCALE_RANGE = ipaddress.ip_network("100.64.0.0/10")

# Shapes of well-known credentials; a stack file holding one has leaked a secret.
LITERAL_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|tskey-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}"
    r"|ghp_[A-Za-z0-9]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY)"
)
# Config key names that must hold secrets (set with `pulumi config set --secret`).
SECRET_NAME = re.compile(r"(api_?key|password|passwd|token|secret|credential|private_?key)", re.IGNORECASE)


class Gpu(Strict):
    index: Annotated[int, Field(ge=0)]
    model: str
    vram_gb: PositiveGb
    compute_capability: str | None = None
    max_temp_c: Annotated[float, Field(gt=30, le=110)] = 85.0  # the seeds throttle thanos at 85 °C


class Disk(Strict):
    path: str
    size_gb: PositiveGb
    kind: Literal["nvme", "ssd", "hdd", "block-volume"] = "ssd"
    purpose: Literal["model-cache", "data", "system"] = "data"


class OciImage(Strict):
    """The platform image an OCI node boots, found by OS, version and shape at deploy time."""

    operating_system: str = "Canonical Ubuntu"
    version: str = "24.04"
    display_name_regex: str | None = None
    """Narrows the lookup (default for Ubuntu: the full, non-minimal aarch64 image)."""
    override_id: str | None = Field(default=None, pattern=r"^ocid1\.image\.")
    """Pin one image OCID instead of the newest match (e.g. to hold back an upgrade)."""


class AlwaysFreeLimits(Strict):
    """Oracle's Always Free allowance per tenancy; Oracle changes it, so it is config."""

    a1_ocpus: Annotated[float, Field(gt=0)] = 4
    a1_memory_gb: PositiveGb = 24
    storage_gb: Annotated[int, Field(gt=0)] = 200


class OciInstance(Strict):
    """How a node that this program creates in Oracle Cloud is sized (Always Free by default)."""

    shape: str = "VM.Standard.A1.Flex"
    ocpus: Annotated[float, Field(gt=0)] = 4
    memory_gb: PositiveGb = 24
    boot_volume_gb: Annotated[int, Field(ge=50)] = 200
    compartment_id: str | None = Field(default=None, pattern=r"^ocid1\.(compartment|tenancy)\.")
    """Where the node's resources go; unset, `pulumi up` refuses (preview uses a placeholder)."""
    availability_domain: str | None = None
    """Unset: the compartment's first availability domain."""
    vcn_cidr: str = "10.42.0.0/16"
    subnet_cidr: str = "10.42.0.0/24"
    image: OciImage = OciImage()
    ssh_public_key: str | None = Field(
        default=None, pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}( \S.*)?$")
    """The deploy user's public key (not a secret); unset, `pulumi up` refuses."""
    allow_direct_udp: bool = False
    """Open UDP 41641 to the world for direct Tailscale connections (never needed: DERP relays work)."""
    exceed_always_free: bool = False
    """Explicit opt-in to go beyond `always_free` (paid resources)."""
    always_free: AlwaysFreeLimits = AlwaysFreeLimits()


class Node(Strict):
    role: Literal["gateway", "inference", "worker"]
    arch: Literal["amd64", "arm64"]
    tailscale_ip: str
    ssh_user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    provisioning: Literal["existing", "oci"] = "existing"
    cpus: Annotated[int, Field(ge=1)]
    ram_gb: PositiveGb
    gpus: tuple[Gpu, ...] = ()
    disks: tuple[Disk, ...] = ()
    oci: OciInstance | None = None
    model_cache: str | None = None

    @field_validator("tailscale_ip")
    @classmethod
    def _in_tailnet(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address") from exc
        if address not in TAILSCALE_RANGE:
            raise ValueError(f"{value} is outside Tailscale's 100.64.0.0/10 range")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Node:
        indices = [gpu.index for gpu in self.gpus]
        if len(set(indices)) != len(indices):
            raise ValueError(f"gpus: duplicate GPU index in {indices}")
        if self.provisioning == "oci" and self.oci is None:
            raise ValueError("oci: required when provisioning is 'oci'")
        if self.provisioning != "oci" and self.oci is not None:
            raise ValueError("oci: only allowed when provisioning is 'oci'")
        return self

    def gpu(self, index: int) -> Gpu | None:
        return next((gpu for gpu in self.gpus if gpu.index == index), None)


class ModelSpec(Strict):
    """A model's identity plus the architecture numbers that decide its VRAM footprint."""

    source: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    params_b: PositiveGb
    quantization: Literal["none", "gptq", "awq", "fp8"] = "none"
    bits: Literal[4, 8, 16] = 16
    layers: Annotated[int, Field(ge=1)]
    kv_heads: Annotated[int, Field(ge=1)]
    head_dim: Annotated[int, Field(ge=1)]
    native_context: Annotated[int, Field(ge=256)]

    @model_validator(mode="after")
    def _bits_match_quantization(self) -> ModelSpec:
        expected = {"none": {16}, "gptq": {4, 8}, "awq": {4}, "fp8": {8}}[self.quantization]
        if self.bits not in expected:
            raise ValueError(f"bits: {self.quantization} weights are {sorted(expected)} bits, not {self.bits}")
        return self


class Deployment(Strict):
    """One vLLM instance: a model pinned to a node's GPU with its serving limits."""

    model: Name
    node: Name
    gpu: Annotated[int, Field(ge=0)] = 0
    port: Port
    max_model_len: Annotated[int, Field(ge=256)]
    gpu_memory_utilization: Annotated[float, Field(gt=0, lt=1)]
    max_num_seqs: Annotated[int, Field(ge=1, le=1024)] = 32
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    image: str = "vllm/vllm-openai:v0.11.0"
    ttft_target_s: Annotated[float, Field(gt=0, le=600)] = 1.0


PINNED_IMAGE = r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$"


class BackupSettings(Strict):
    """The nightly dump of a PostgreSQL service (swarm/services/postgres_backup.py)."""

    at_utc: str = Field(default="02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """Time of day (UTC, HH:MM) the dump runs; the seeds' 2 AM EST maintenance window is 07:00 UTC."""
    keep: Annotated[int, Field(ge=1, le=365)] = 14
    """Newest dumps kept; older ones are pruned after each successful dump."""


class Service(Strict):
    """Where a platform service runs and which host port it publishes (None: private network only)."""

    node: Name
    port: Port | None = None
    kind: ServiceKind | None = None
    adopt: bool | Adoption = False
    """`true`: an already-running container, adoption pending (not managed); a block: see `Adoption`."""
    image: str | None = Field(default=None, pattern=PINNED_IMAGE)
    """Override the module's pinned image (`repo:tag@sha256:<digest>`), e.g. for an image whose
    upstream publishes no versioned tag."""
    backup: BackupSettings | None = None
    """PostgreSQL only: when the nightly dump runs and how many dumps are kept (defaults if unset)."""


class Agents(Strict):
    """Per-node agents placed automatically: every node gets them, GPU nodes get the GPU ones."""

    node_exporter_port: Port = 9100
    gpu_exporter_port: Port = 9835
    autotuner_port: Port = 9400
    log_shipper_port: Port = 12345


class ExternalProvider(Strict):
    """A hosted model API; its keys are names of secret config keys, never the keys themselves."""

    kind: Literal["openrouter", "gemini", "anthropic", "openai"]
    api_key_secrets: tuple[str, ...] = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    embedding_models: tuple[str, ...] = ()
    """Embedding models LiteLLM serves from this provider (never chat fallbacks), e.g. for GPT Researcher."""
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    """Spend cap for this provider per `budget_period` (LiteLLM provider budget routing); None: uncapped."""
    budget_period: str = Field(default="1d", pattern=r"^[1-9][0-9]*[smhd]$")

    @field_validator("api_key_secrets")
    @classmethod
    def _config_key_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]*", name) or not SECRET_NAME.search(name):
                raise ValueError(f"{name!r} must name a secret config key such as 'openrouterApiKey' "
                                 "(camelCase, ending in ApiKey/Token/Secret), never hold the key itself")
        return names


class CapacitySettings(Strict):
    """Knobs of the VRAM planner; defaults are conservative for vLLM's V1 engine."""

    utilization_ceiling: Annotated[float, Field(gt=0, le=1)] = 0.95
    runtime_reserve_gb: Annotated[float, Field(ge=0)] = 1.5
    quantization_overhead: Annotated[float, Field(ge=0, le=1)] = 0.05
    os_reserve_gb: Annotated[float, Field(ge=0)] = 2.0
    """RAM kept for the OS, Docker and page cache on every node, on top of the containers' limits."""


class Tailnet(Strict):
    """How the tailnet policy and auth keys are generated (swarm/oracle/acl.py)."""

    tag_prefix: str = Field(default="ai-swarm", pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
    """Node tags are `tag:<prefix>-<node>`; the Pulumi runner's is `tag:<prefix>-runner`."""
    tag_owners: tuple[str, ...] = Field(default=("autogroup:admin",), min_length=1)
    operators: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = ()
    """Users (login emails) of `group:<prefix>-operators`, who reach the user-facing UIs."""
    operators_ssh: bool = False
    """Also let the operators reach every node's SSH (the runner always can)."""
    key_expiry_hours: Annotated[int, Field(ge=1, le=2160)] = 24
    overwrite_existing_acl: bool = False
    """Replace a tailnet policy that was edited by hand (else import it first; see the runbook)."""


SecretKeyName = Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9]*$")]


class AlertReceiver(Strict):
    """Where Alertmanager sends notifications (swarm/monitoring/alertmanager_config.py).

    `webhook`: POST of Alertmanager's JSON to `url`; `ntfy`: the ntfy topic URL (`url`), sent
    with ntfy's Alertmanager template; `email`: `to` through `smarthost`. Credentials are names of
    secret config keys (`pulumi config set --secret <name>`), delivered to Alertmanager as files."""

    kind: Literal["webhook", "ntfy", "email"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    token_secret: SecretKeyName | None = None
    """webhook/ntfy: secret config key holding a bearer token (ntfy access token)."""
    to: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    smarthost: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")] | None = None
    username: str | None = None
    password_secret: SecretKeyName | None = None
    """email: secret config key holding the SMTP password."""
    severities: tuple[Literal["critical", "warning"], ...] = ("critical", "warning")

    @model_validator(mode="after")
    def _complete(self) -> AlertReceiver:
        if self.kind in ("webhook", "ntfy") and self.url is None:
            raise ValueError(f"url: required for a {self.kind} receiver")
        if self.kind == "email" and None in (self.to, self.sender, self.smarthost):
            raise ValueError("to, sender and smarthost: required for an email receiver")
        for name in (self.token_secret, self.password_secret):
            if name is not None and not SECRET_NAME.search(name):
                raise ValueError(f"{name!r} must name a secret config key (ending in Token/Password/Secret)")
        return self

    def secret_keys(self) -> tuple[str, ...]:
        return tuple(name for name in (self.token_secret, self.password_secret) if name is not None)


class Alerting(Strict):
    """Monitoring knobs: notification receivers, grouping, the spend budget, retention."""

    receivers: dict[Name, AlertReceiver] = {}
    group_wait_s: Annotated[int, Field(ge=0, le=600)] = 30
    group_interval_m: Annotated[int, Field(ge=1, le=1440)] = 5
    repeat_interval_h: Annotated[int, Field(ge=1, le=168)] = 4
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    """Hosted-model spend allowed per `budget_period` across providers; alert above 120 %."""
    budget_period_days: Annotated[int, Field(ge=1, le=31)] = 30
    metrics_retention_days: Annotated[int, Field(ge=2, le=365)] = 35
    metrics_retention_gb: Annotated[int, Field(ge=1)] = 20
    logs_retention_days: Annotated[int, Field(ge=1, le=365)] = 14

    @model_validator(mode="after")
    def _window_fits_retention(self) -> Alerting:
        if self.budget_period_days > self.metrics_retention_days:
            raise ValueError("budget_period_days: must not exceed metrics_retention_days (the spend window "
                             "is read from Prometheus)")
        return self


class SwarmSpec(Strict):
    """The whole swarm. Field types are checked here; cross-references in `swarm.checks`."""

    nodes: dict[Name, Node] = Field(min_length=1)
    models: dict[Name, ModelSpec] = {}
    inference: dict[Name, Deployment] = {}
    services: dict[Name, Service] = {}
    providers: dict[Name, ExternalProvider] = {}
    agents: Agents = Agents()
    capacity: CapacitySettings = CapacitySettings()
    tailnet: Tailnet = Tailnet()
    alerting: Alerting = Alerting()

    def service_kind(self, name: str) -> str:
        service = self.services[name]
        return service.kind or name

    def gpu_nodes(self) -> dict[str, Node]:
        return {name: node for name, node in self.nodes.items() if node.gpus}
