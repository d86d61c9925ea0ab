"""The real request path on loopback: real LiteLLM proxy -> real swarm-router -> three fake vLLMs,
each on the config the plan renders for it (addresses rewritten to 127.0.0.1, no database)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from swarm.plan import SwarmPlan
from swarm.services import litellm
from swarm.services.litellm_config import CASCADE_GROUP, ROUTER_KEY_ENV, local_models
from tests.services.loopback import BIN, GatewayPath, config_file_keys, gateway_path, rendered


def _require_litellm() -> None:
    if shutil.which("litellm", path=str(BIN)) is None:
        if os.environ.get("CI"):
            pytest.fail("litellm is not installed in CI (requirements-dev.txt pins litellm[proxy])")
        pytest.skip("litellm[proxy] is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def path(prod_plan: SwarmPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayPath]:
    _require_litellm()
    with gateway_path(prod_plan, tmp_path_factory.mktemp("gateway")) as started:
        yield started


def chat(path: GatewayPath, model: str) -> httpx.Response:
    return httpx.post(f"{path.gateway_url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {path.master_key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4})


def test_litellm_loaded_every_model_of_the_rendered_config(path: GatewayPath, prod_plan: SwarmPlan) -> None:
    groups = {entry["model_name"] for entry in path.litellm_config["model_list"]}
    # Local models, the cascade group and one group per hosted chat or embedding model (Gemini's two
    # keys share one).
    hosted = {m for p in prod_plan.spec.providers.values() for m in (*p.models, *p.embedding_models)}
    assert groups == {*local_models(prod_plan.spec), CASCADE_GROUP, *hosted}
    listed = httpx.get(f"{path.gateway_url}/v1/models", timeout=30,
                       headers={"Authorization": f"Bearer {path.master_key}"})
    assert listed.status_code == 200, listed.text
    assert {m["id"] for m in listed.json()["data"]} == groups
    assert len(listed.json()["data"]) == 7  # prod: 2 local, 3 hosted chat, 1 hosted embedding, swarm-auto


def test_the_gateway_refuses_a_request_without_the_master_key(path: GatewayPath) -> None:
    response = httpx.post(f"{path.gateway_url}/v1/chat/completions", timeout=30,
                          json={"model": "mistral-7b", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401, response.text


def test_every_local_model_answers_through_litellm_and_the_router(path: GatewayPath, prod_plan: SwarmPlan) -> None:
    for model in [*local_models(prod_plan.spec), CASCADE_GROUP]:
        response = chat(path, model)
        assert response.status_code == 200, (model, response.text)
        body = response.json()
        assert body["choices"][0]["message"]["content"]
        if model != CASCADE_GROUP:
            assert body["model"].endswith(model)


def test_requests_survive_a_killed_backend(path: GatewayPath, prod_plan: SwarmPlan) -> None:
    # Runs last in this module (pytest keeps file order): it kills starlord's two backends.
    assert [chat(path, "mistral-nemo-12b").status_code for _ in range(3)] == [200] * 3
    for name in ("starlord-primary", "starlord-secondary"):  # starlord goes down mid-run
        path.vllms[name].stop()
    time.sleep(0.2)
    results = []
    for _ in range(4):
        # mistral-7b: the router fails over to thanos-backup. mistral-nemo-12b: its only backend is
        # gone, the router answers with an error and LiteLLM falls back to mistral-7b (on thanos).
        for model in ("mistral-7b", "mistral-nemo-12b"):
            response = chat(path, model)
            assert response.status_code == 200, (model, response.text, path.gateway.tail() if path.gateway else "")
            results.append((model, response.json()["model"]))
    assert all(served.endswith("mistral-7b") for _, served in results)  # thanos served every one
    assert path.vllms["thanos-backup"].popen.poll() is None


def test_the_full_rendered_config_validates(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    """The unmodified file (Redis cache, database, budgets) through LiteLLM's own validator; it
    accepts a model without a provider prefix, so the deployment count is asserted too."""
    _require_litellm()
    config = rendered(prod_plan, litellm.KIND, litellm.CONFIG_NAME)
    (tmp_path / "config.yaml").write_text(config)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
           "REDIS_PASSWORD": "x", "LITELLM_MASTER_KEY": "sk-" + "0" * 40,
           "DATABASE_URL": "postgresql://litellm:x@127.0.0.1:1/litellm", ROUTER_KEY_ENV: "x"}
    env |= {name: "x" for name in config_file_keys(yaml.safe_load(config))}
    done = subprocess.run([str(BIN / "litellm"), "--config", "config.yaml", "--validate_config"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    deployments = len(yaml.safe_load(config)["model_list"])
    # prod: 2 local, 4 hosted chat (Gemini twice), 2 embedding (Gemini twice), 5 in the swarm-auto cascade
    assert deployments == 13
    assert done.returncode == 0 and f"config OK ({deployments} models)" in done.stdout + done.stderr, done.stdout
