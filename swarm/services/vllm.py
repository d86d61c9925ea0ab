"""vLLM: one container per planned inference deployment (`ai-swarm:inference.<name>`).

The container's name is the deployment's name, which is also the router's backend name and
the target of the router's and autotuners' flows. Flags come from one pure function,
`vllm_args`, so what a deployment serves is readable (and tested) as a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from swarm.errors import Issue, SpecError, key_path
from swarm.model import Deployment, ModelSpec
from swarm.plan.types import GpuRequest, Healthcheck, Mount, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.services.base import PlanContext

KIND = "vllm"
PORT = 8000  # inside the container; the host port is the deployment's `port`
API_KEY = "vllm-api-key"
"""Generated secret every vLLM requires on /v1 and the router sends (the router holds the same id)."""
MODELS_DIR = "/models"
CACHE_DIR = "/tmp"  # tmpfs: torch.compile / Triton / FlashInfer caches (rebuilt after a restart)
CACHE_TMPFS_MB = 4096
SHM_MB = 2048
START_PERIOD_S = 900  # weights from the NVMe cache + torch.compile + CUDA graph capture, worst case

# vllm/vllm-openai v0.11.0, index digest seen pinned in three unrelated public repositories
# (a Dockerfile `FROM`, a service launch script and a test of "verified releases"); the
# project publishes this image for linux/amd64 only (vllm-project/vllm#22206 asks for arm64).
VLLM_V0_11_0 = PulledImage("vllm/vllm-openai", "v0.11.0",
                           "sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec291c427bb1176dc7c93a85845c",
                           frozenset({"amd64"}))
KNOWN_IMAGES: dict[str, PulledImage] = {f"{VLLM_V0_11_0.repository}:{VLLM_V0_11_0.tag}": VLLM_V0_11_0}
PINNED_REF = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*)"
                        r"@(?P<digest>sha256:[0-9a-f]{64})$")

# Checkpoint format -> vLLM kernel. Marlin kernels (Ampere, compute capability >= 8.0) are
# several times faster than the plain AWQ/GPTQ ones, which vLLM uses when told `awq`/`gptq`.
_QUANTIZATION = {"awq": ("awq_marlin", "awq"), "gptq": ("gptq_marlin", "gptq"), "fp8": ("fp8", "fp8")}


def vllm_args(deployment: Deployment, model: ModelSpec, compute_capability: str | None = None) -> list[str]:
    """The `vllm serve` arguments for one deployment: served name, context, memory share, batch
    size, weight and KV-cache formats, prefix caching. No secret is ever an argument."""
    args = [
        model.source,
        "--served-model-name", deployment.model,
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--max-model-len", str(deployment.max_model_len),
        "--gpu-memory-utilization", f"{deployment.gpu_memory_utilization:g}",
        "--max-num-seqs", str(deployment.max_num_seqs),
    ]
    if model.quantization != "none":
        fast, plain = _QUANTIZATION[model.quantization]
        args += ["--quantization", fast if _at_least(compute_capability, 8.0) else plain]
    if deployment.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", deployment.kv_cache_dtype]
    args.append("--enable-prefix-caching")  # V1's default, stated so the plan shows it
    return args


def _at_least(capability: str | None, floor: float) -> bool:
    try:
        return capability is not None and float(capability) >= floor
    except ValueError:
        return False


def image_for(name: str, deployment: Deployment) -> PulledImage:
    """A known tag maps to its pinned digest; `repo:tag@sha256:...` is taken as given (amd64)."""
    known = KNOWN_IMAGES.get(deployment.image)
    if known is not None:
        return known
    pinned = PINNED_REF.match(deployment.image)
    if pinned is None:
        raise SpecError([Issue(key_path("inference", name, "image"),
                               f"{deployment.image!r} has no known digest; use {sorted(KNOWN_IMAGES)} or pin "
                               "repo:tag@sha256:<digest> (docker buildx imagetools inspect <repo>:<tag>)")])
    return PulledImage(pinned["repo"], pinned["tag"], pinned["digest"], frozenset({"amd64"}))


def memory_mb(model: ModelSpec) -> int:
    """Host RAM: the Python/CUDA runtime, one copy of the weights while loading, the cache tmpfs."""
    weights_mb = model.params_b * model.bits / 8 * 1024
    return int(math.ceil((6144 + 1.5 * weights_mb + CACHE_TMPFS_MB + SHM_MB) / 512) * 512)


# vLLM reads the key from VLLM_API_KEY when --api-key is absent; the wrapper exports it from the
# secret file into this process only, so it is neither an argument (visible in `ps` on the node)
# nor in the container's configuration (`docker inspect`).
ENTRYPOINT = ("/bin/sh", "-c",
              f'VLLM_API_KEY="$(cat {secret_path(API_KEY)})" && export VLLM_API_KEY && exec vllm serve "$@"',
              "vllm-serve")


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    spec = ctx.spec
    for name, deployment in spec.inference.items():
        node = spec.nodes[deployment.node]
        model = spec.models[deployment.model]
        gpu = node.gpu(deployment.gpu)
        env = {
            "HOME": CACHE_DIR, "XDG_CACHE_HOME": f"{CACHE_DIR}/.cache", "VLLM_CACHE_ROOT": f"{CACHE_DIR}/vllm",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
            # The container's uid has no passwd entry in the image; `getpass.getuser()` (PyTorch
            # Inductor's cache dir, vLLM's subprocesses) reads these first, else raises KeyError.
            "USER": "vllm", "LOGNAME": "vllm",
        }
        mounts: tuple[Mount, ...] = ()
        if node.model_cache:
            # Read-only: weights are fetched once on the node (runbook), never by the container.
            mounts = (Mount(target=MODELS_DIR, host_path=node.model_cache, read_only=True),)
            env |= {"HF_HOME": MODELS_DIR, "HF_HUB_OFFLINE": "1"}
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/health', timeout=5)"
        yield ServicePlan(
            name=name, kind=KIND, node=deployment.node, origin=key_path("inference", name),
            image=image_for(name, deployment),
            entrypoint=ENTRYPOINT,
            command=tuple(vllm_args(deployment, model, gpu.compute_capability if gpu else None)),
            healthcheck=Healthcheck(test=("python3", "-c", probe), interval_s=30, timeout_s=10, retries=5,
                                    start_period_s=START_PERIOD_S),
            memory_mb=memory_mb(model), cpus=4.0,
            env=env,
            ports=ctx.publish(deployment.node, PORT, deployment.port),
            internal_port=PORT,
            mounts=mounts,
            secret_files=(SecretFile(API_KEY, f"generated:{API_KEY}"),),
            gpu=GpuRequest(device_ids=(str(deployment.gpu),), capabilities=("gpu",)),
            shm_size_mb=SHM_MB,
            # exec: Triton and FlashInfer load the kernels they compile into this cache.
            tmpfs={CACHE_DIR: f"rw,nosuid,size={CACHE_TMPFS_MB}m"},
        )
