"""Config: the documented example loads, defaults are sensible, errors name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm_runtime.autotuner import AutotunerConfig, load_config
from swarm_runtime.autotuner.cli import main
from swarm_runtime.autotuner.config import ConfigError, parse_config
from swarm_runtime.autotuner.limit import LimitParams

EXAMPLE = """
router: {url: "http://100.96.197.84:9000", admin_key_env: ROUTER_ADMIN_KEY}
listen: {host: 127.0.0.1, port: 9400}
interval_s: 5
dry_run: false
targets:
  - {backend: starlord-primary, vllm_url: "http://127.0.0.1:8000", gpu_index: 0, ttft_target_s: 0.5,
     min_limit: 2, max_limit: 64, initial_limit: 16}
thermal: {margin_c: 5, max_temp_c: 85}
"""


def test_example_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "autotuner.yaml"
    path.write_text(EXAMPLE)
    cfg = load_config(path)
    assert isinstance(cfg, AutotunerConfig)
    assert cfg.router.url == "http://100.96.197.84:9000"
    assert cfg.targets[0].backend == "starlord-primary"
    assert cfg.targets[0].initial_limit == 16
    assert cfg.thermal.max_temp_c == 85
    assert cfg.control.decrease_ratio == 0.75  # a default
    assert cfg.admin_key({"ROUTER_ADMIN_KEY": "s3cret"}) == "s3cret"
    assert cfg.admin_key({}) is None


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config({"targets": [{"backend": "thanos-backup"}]})
    assert (cfg.interval_s, cfg.dry_run, cfg.listen.port) == (5.0, False, 9400)
    t = cfg.targets[0]
    assert (t.min_limit, t.initial_limit, t.max_limit, t.gpu_index) == (2, 16, 64, 0)
    assert cfg.router.admin_key_env == "ROUTER_ADMIN_KEY"


@pytest.mark.parametrize(("data", "path"), [
    ({"targets": [{"backend": "a", "ttft_target": 1}]}, "targets.0.ttft_target"),
    ({"targets": [{"backend": "a"}], "thermal": {"max_temp_c": 500}}, "thermal.max_temp_c"),
    ({"targets": [{"backend": "a", "min_limit": 10, "max_limit": 4}]}, "targets.0"),
    ({"targets": [{"backend": "a", "initial_limit": 100}]}, "initial_limit"),
    ({"targets": []}, "targets"),
    ({"targets": [{"backend": "a"}, {"backend": "a"}]}, "repeated: a"),
    ({"targets": [{"backend": "a"}], "router": {"admin_key": "plaintext"}}, "router.admin_key"),
    ({"targets": [{"backend": "a"}], "router": {"admin_key_env": "not a name"}}, "router.admin_key_env"),
    ({"targets": [{"backend": "a", "vllm_url": "127.0.0.1:8000"}]}, "targets.0.vllm_url"),
    ({"targets": [{"backend": "a"}], "control": {"max_growth_ratio": 0.5}}, "control.max_growth_ratio"),
    ({"targets": [{"backend": "a"}], "control": {"min_cut_ratio": 1.0}}, "control.min_cut_ratio"),
    ({"targets": [{"backend": "a"}], "control": {"recommend_percentile": 0}}, "control.recommend_percentile"),
    ({"targets": [{"backend": "a"}], "thermal": {"trend_window": 1}}, "thermal.trend_window"),
])
def test_errors_name_the_key_path(data: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert path in str(info.value)


def test_new_control_keys_reach_the_limit() -> None:
    cfg = parse_config({"targets": [{"backend": "a"}],
                        "thermal": {"time_constant_s": 45, "trend_window": 6},
                        "control": {"min_cut_ratio": 0.4, "max_growth_ratio": 1.25, "kv_hysteresis": 0.05}})
    params = LimitParams.from_config(cfg.targets[0], cfg.thermal, cfg.control)
    assert (params.time_constant_s, params.trend_window) == (45, 6)
    assert (params.min_cut_ratio, params.max_growth_ratio, params.kv_hysteresis) == (0.4, 1.25, 0.05)


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(["targets"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(EXAMPLE)
    assert main(["--config", str(good), "--check"]) == 0
    assert "config OK (1 target(s))" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{backend: a, max_limit: 0}]\n")
    assert main(["--config", str(bad), "--check"]) == 2
    assert "targets.0.max_limit" in capsys.readouterr().err


def test_admin_key_file_wins_over_the_env_var(tmp_path) -> None:
    from swarm_runtime.autotuner.config import parse_config

    key_file = tmp_path / "router-admin-key"
    key_file.write_text("from-file\n")
    config = parse_config({"targets": [{"backend": "b"}],
                           "router": {"admin_key_file": str(key_file), "admin_key_env": "ADMIN"}})
    assert config.admin_key({"ADMIN": "from-env"}) == "from-file"
    env_only = parse_config({"targets": [{"backend": "b"}], "router": {"admin_key_env": "ADMIN"}})
    assert env_only.admin_key({"ADMIN": "from-env"}) == "from-env"


def test_unreadable_admin_key_file_is_a_clear_error(tmp_path) -> None:
    import subprocess
    import sys

    config = tmp_path / "autotuner.yaml"
    config.write_text(f"targets: [{{backend: b}}]\nrouter: {{admin_key_file: {tmp_path / 'missing'}}}\n")
    result = subprocess.run([sys.executable, "-m", "swarm_runtime.autotuner.cli", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "router.admin_key_file: cannot read" in result.stderr
    assert "Traceback" not in result.stderr
