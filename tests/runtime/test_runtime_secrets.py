"""Keys from files (Docker uploads under /run/secrets) for the router and the autotuner."""

from __future__ import annotations

import pytest
from swarm_runtime.router.app import RouterState, SecretMissing
from swarm_runtime.router.config import RouterConfig
from swarm_runtime.secrets import SecretError, read_secret

BACKENDS = [{"name": "a", "url": "http://127.0.0.1:1", "models": ["m"]}]


def test_read_secret_prefers_the_file(tmp_path) -> None:
    key = tmp_path / "key"
    key.write_text("  s3cret\n")
    assert read_secret(str(key), "KEY", "k", {"KEY": "env"}) == "s3cret"
    assert read_secret(None, "KEY", "k", {"KEY": "env"}) == "env"
    assert read_secret(None, "KEY", "k", {}) is None
    key.write_text("\n")
    with pytest.raises(SecretError, match=r"k: .* is empty"):
        read_secret(str(key), None, "k")


def test_router_reads_both_keys_from_files(tmp_path) -> None:
    (tmp_path / "api").write_text("client-key\n")
    (tmp_path / "admin").write_text("admin-key\n")
    cfg = RouterConfig.model_validate({"backends": BACKENDS, "api_key_file": str(tmp_path / "api"),
                                       "admin_key_file": str(tmp_path / "admin")})
    state = RouterState(cfg, {"ROUTER_API_KEY": "from-env"})
    assert (state.api_key, state.admin_key) == ("client-key", "admin-key")


def test_router_with_an_unreadable_key_file_names_the_key(tmp_path) -> None:
    cfg = RouterConfig.model_validate({"backends": BACKENDS, "api_key_file": str(tmp_path / "missing")})
    with pytest.raises(SecretMissing, match="api_key_file: cannot read"):
        RouterState(cfg, {})


def test_router_sends_each_backend_its_key_from_a_file(tmp_path) -> None:
    (tmp_path / "vllm").write_text("vllm-key\n")
    backends = [{**BACKENDS[0], "api_key_file": str(tmp_path / "vllm"), "api_key_env": "IGNORED"},
                {"name": "b", "url": "http://127.0.0.1:2", "models": ["m"]}]
    state = RouterState(RouterConfig.model_validate({"backends": backends, "api_key_env": None}), {})
    assert state.backend_headers == {"a": {"Authorization": "Bearer vllm-key"}, "b": {}}


def test_an_unreadable_backend_key_file_names_the_backend(tmp_path) -> None:
    backends = [{**BACKENDS[0], "api_key_file": str(tmp_path / "missing")}]
    with pytest.raises(SecretMissing, match=r"backends\.0\.api_key_file: cannot read"):
        RouterState(RouterConfig.model_validate({"backends": backends, "api_key_env": None}), {})
