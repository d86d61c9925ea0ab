"""`vllm_args`: deployment + model -> `vllm serve` arguments, as a table."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from typing import Any

import pytest

from swarm.errors import SpecError
from swarm.model import Deployment, ModelSpec
from swarm.services.vllm import VLLM_V0_11_0, image_for, vllm_args

AWQ_12B = ModelSpec(source="casperhansen/mistral-nemo-instruct-2407-awq", params_b=12.2, quantization="awq", bits=4,
                    layers=40, kv_heads=8, head_dim=128, native_context=131072)
FP16_7B = ModelSpec(source="mistralai/Mistral-7B-Instruct-v0.3", params_b=7.2, layers=32, kv_heads=8, head_dim=128,
                    native_context=32768)
GPTQ_7B = ModelSpec(source="TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", params_b=7.2, quantization="gptq", bits=4,
                    layers=32, kv_heads=8, head_dim=128, native_context=32768)
FP8_7B = ModelSpec(source="neuralmagic/Mistral-7B-Instruct-v0.3-FP8", params_b=7.2, quantization="fp8", bits=8,
                   layers=32, kv_heads=8, head_dim=128, native_context=32768)


def deployment(**changes: Any) -> Deployment:
    base: dict[str, Any] = dict(model="nemo", node="starlord", port=8000, max_model_len=65536,
                                gpu_memory_utilization=0.66, max_num_seqs=16, kv_cache_dtype="fp8")
    return Deployment(**(base | changes))


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


# (deployment, model, compute capability) -> expected flag values (None: flag absent)
CASES = [
    (deployment(), AWQ_12B, "8.9",
     {"--served-model-name": "nemo", "--max-model-len": "65536", "--gpu-memory-utilization": "0.66",
      "--max-num-seqs": "16", "--quantization": "awq_marlin", "--kv-cache-dtype": "fp8"}),
    (deployment(kv_cache_dtype="auto"), AWQ_12B, "7.5",  # Turing: no Marlin kernels
     {"--quantization": "awq", "--kv-cache-dtype": None}),
    (deployment(kv_cache_dtype="auto"), AWQ_12B, None,  # capability unknown: the safe kernel
     {"--quantization": "awq"}),
    (deployment(model="m7", max_model_len=8192, gpu_memory_utilization=0.9, max_num_seqs=8), FP16_7B, "8.6",
     {"--served-model-name": "m7", "--max-model-len": "8192", "--gpu-memory-utilization": "0.9",
      "--max-num-seqs": "8", "--quantization": None}),
    (deployment(), GPTQ_7B, "8.6", {"--quantization": "gptq_marlin"}),
    (deployment(), GPTQ_7B, "7.0", {"--quantization": "gptq"}),
    (deployment(), FP8_7B, "8.9", {"--quantization": "fp8"}),
    (deployment(gpu_memory_utilization=0.28), AWQ_12B, "not-a-number", {"--gpu-memory-utilization": "0.28",
                                                                         "--quantization": "awq"}),
]


@pytest.mark.parametrize(("dep", "model", "capability", "expected"), CASES)
def test_flags(dep: Deployment, model: ModelSpec, capability: str | None, expected: dict[str, str | None]) -> None:
    args = vllm_args(dep, model, capability)
    assert args[0] == model.source
    assert flag(args, "--port") == "8000" and flag(args, "--host") == "0.0.0.0"
    assert "--enable-prefix-caching" in args
    for name, value in expected.items():
        assert flag(args, name) == value, (name, args)


def test_no_secret_and_no_flag_twice() -> None:
    args = vllm_args(deployment(), AWQ_12B, "8.9")
    flags = [a for a in args if a.startswith("--")]
    assert len(flags) == len(set(flags))
    assert "--api-key" not in args  # the key comes from the secret file (VLLM_API_KEY in-process)


def test_image_pins() -> None:
    assert image_for("d", deployment()) == VLLM_V0_11_0
    pinned = image_for("d", deployment(image="vllm/vllm-openai:v0.12.0@sha256:" + "b" * 64))
    assert (pinned.tag, pinned.digest, pinned.platforms) == ("v0.12.0", "sha256:" + "b" * 64, frozenset({"amd64"}))
    with pytest.raises(SpecError) as raised:
        image_for("d", deployment(image="vllm/vllm-openai:latest"))
    assert "ai-swarm:inference.d.image" in str(raised.value)


def test_getuser_works_for_the_container_uid_that_has_no_passwd_entry(prod_plan) -> None:
    """PyTorch Inductor and vLLM call `getpass.getuser()`; for a uid the image's /etc/passwd does
    not list it raises KeyError unless the environment names the user (run here as that uid)."""
    python = "/usr/bin/python3"  # the venv's may sit under a home the container's uid cannot enter
    if os.geteuid() != 0 or not shutil.which(python):
        pytest.skip("switching to the container's uid needs root and the system's python3")
    servers = [s for s in prod_plan.services if s.kind == "vllm"]
    assert servers
    uid, gid = (int(part) for part in servers[0].user.split(":"))
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)  # as in the image: no entry for the uid
    probe = [python, "-S", "-c", "import getpass; print(getpass.getuser())"]
    bare = subprocess.run(probe, user=uid, group=gid, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=30)
    assert bare.returncode != 0 and "KeyError" in bare.stderr
    for server in servers:
        named = subprocess.run(probe, user=uid, group=gid, env={"PATH": "/usr/bin:/bin", **server.env},
                               capture_output=True, text=True, timeout=30)
        assert named.returncode == 0 and named.stdout.strip() == "vllm", named.stderr
