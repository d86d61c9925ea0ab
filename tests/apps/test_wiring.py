"""Each app wired to what it uses: LiteLLM with a key of its own, Qdrant, SearXNG, Pipelines;
sign-up off, access control on, secrets as files only, arm64 refused where no arm64 build."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from swarm.errors import SpecError
from swarm.offline.engine import run_program
from swarm.plan import SwarmPlan
from swarm.plan.types import BuiltImage, ServicePlan
from swarm.stack_config import StackConfig
from tests.apps.helpers import VOLUME, plan_of, secure_keys, stack
from tests.conftest import REPO

ORACLE, STARLORD, THANOS = "100.96.197.84", "100.72.73.3", "100.122.12.54"
PINNED = "gptresearcher/gpt-researcher:latest@sha256:" + "0" * 64  # a test pin, never deployed
EXTRAS = "registry.example/sillytavern-extras:archived@sha256:" + "1" * 64
APPS = ("open-webui", "pipelines", "sillytavern", "gpt-researcher", "searxng", "sillytavern-extras")


@pytest.fixture(scope="module")
def apps(prod_config: StackConfig) -> SwarmPlan:
    return plan_of(stack(prod_config.values,
                         gpt_researcher={"node": "thanos", "port": 8001},
                         sillytavern_extras={"node": "thanos", "port": 5100, "image": EXTRAS}))


def _start(service: ServicePlan) -> str:
    return " ".join((*(service.entrypoint or ()), *service.command))


def _secrets(service: ServicePlan) -> dict[str, str]:
    return {s.name: s.source for s in service.secret_files}


def _flows(service: ServicePlan) -> dict[str, tuple[int, bool]]:
    return {f.target: (f.port, f.cross_node) for f in service.flows}


def test_open_webui_uses_litellm_pipelines_and_qdrant_with_sign_up_off(apps: SwarmPlan) -> None:
    webui = apps.service("open-webui")
    env = webui.env
    assert (env["WEBUI_AUTH"], env["ENABLE_SIGNUP"], env["DEFAULT_USER_ROLE"]) == ("True", "False", "pending")
    assert env["ENABLE_INITIAL_ADMIN_SIGNUP"] == "True", "only the first account (the admin) may sign up"
    assert env["OPENAI_API_BASE_URLS"].split(";") == ["http://litellm:4000/v1", "http://pipelines:9099"]
    assert (env["VECTOR_DB"], env["QDRANT_URI"]) == ("qdrant", f"http://{STARLORD}:6333")
    assert env["ENABLE_OLLAMA_API"] == "False"
    assert _secrets(webui) == {"open-webui-secret-key": "generated:open-webui-secret-key",
                               "litellm-key-open-webui": "generated:litellm-key-open-webui",
                               "pipelines-api-key": "generated:pipelines-api-key",
                               "qdrant-api-key": "generated:qdrant-api-key"}
    start = _start(webui)
    assert ('OPENAI_API_KEYS="sk-$(cat /run/secrets/litellm-key-open-webui);'
            '$(cat /run/secrets/pipelines-api-key)"') in start
    assert 'WEBUI_SECRET_KEY="$(cat /run/secrets/open-webui-secret-key)"' in start
    assert 'QDRANT_API_KEY="$(cat /run/secrets/qdrant-api-key)"' in start
    assert _flows(webui) == {"litellm": (4000, False), "pipelines": (9099, False), "qdrant": (6333, True)}
    assert [(m.target, m.stateful) for m in webui.mounts] == [("/app/backend/data", True)]
    assert webui.ports[0].host_ip == ORACLE and webui.ports[0].container == 8080


def test_pipelines_shares_its_key_with_open_webui_and_has_its_own_litellm_key(apps: SwarmPlan) -> None:
    plugins = apps.service("pipelines")
    assert plugins.ports == () and plugins.node == "oracle"
    assert plugins.env["OPENAI_API_BASE_URL"] == "http://litellm:4000/v1"
    assert _secrets(plugins)["pipelines-api-key"] == _secrets(apps.service("open-webui"))["pipelines-api-key"]
    assert "export PIPELINES_API_KEY OPENAI_API_KEY" in _start(plugins)


def test_sillytavern_reaches_litellm_over_the_tailnet_behind_its_own_access_control(apps: SwarmPlan) -> None:
    tavern = apps.service("sillytavern")
    assert tavern.node == "thanos" and _flows(tavern) == {"litellm": (4000, True)}
    assert tavern.env["AI_SWARM_LITELLM_URL"] == f"http://{ORACLE}:4000/v1"
    config = yaml.safe_load(tavern.files[0].content)
    assert config["basicAuthMode"] is True and config["whitelistMode"] is True
    assert "100.64.0.0/10" in config["whitelist"] and config["listen"] is True
    assert config["basicAuthUser"]["password"] == "__BASIC_AUTH_PASSWORD__", "the password never sits in a file"
    start = _start(tavern)
    assert 'PASSWORD="$(cat /run/secrets/sillytavern-password)"' in start
    assert "value:process.env.LITELLM_KEY" in start and "exec ./docker-entrypoint.sh" in start
    assert {m.target: m.stateful for m in tavern.mounts}["/home/node/app/data"] is True


def test_gpt_researcher_uses_litellm_and_the_private_searxng(apps: SwarmPlan) -> None:
    researcher = apps.service("gpt-researcher")
    env = researcher.env
    assert env["OPENAI_BASE_URL"] == f"http://{ORACLE}:4000/v1"
    assert (env["RETRIEVER"], env["SEARX_URL"]) == ("searx", "http://searxng:8080")
    assert env["SMART_LLM"].startswith("openai:") and env["FAST_LLM"].startswith("openai:")
    assert _flows(researcher) == {"litellm": (4000, True), "searxng": (8080, False)}
    assert 'OPENAI_API_KEY="sk-$(cat /run/secrets/litellm-key-gpt-researcher)"' in _start(researcher)
    assert env["EMBEDDING"] == "custom:gemini/gemini-embedding-001", "text embeddings through LiteLLM"


def test_gpt_researcher_is_built_from_the_pinned_commit_with_a_read_only_root(apps: SwarmPlan) -> None:
    researcher = apps.service("gpt-researcher")
    assert isinstance(researcher.image, BuiltImage)
    assert (researcher.image.context, researcher.image.platforms) == ("images/gpt-researcher", frozenset({"amd64"}))
    assert researcher.read_only and researcher.user == "10002:10002"
    mounts = {m.target: m.stateful for m in researcher.mounts}
    assert mounts == {"/usr/src/app/outputs": True, "/usr/src/app/my-docs": True, "/usr/src/app/data": True,
                      "/usr/src/app/logs": False}
    assert researcher.env["REPORT_STORE_PATH"].startswith("/usr/src/app/data/")


def test_an_operator_pin_replaces_the_built_gpt_researcher_image(prod_config: StackConfig) -> None:
    plan = plan_of(stack(prod_config.values, gpt_researcher={"node": "thanos", "image": PINNED}))
    image = plan.service("gpt-researcher").image
    assert image.ref == PINNED and image.platforms == frozenset({"amd64"})


def test_gpt_researcher_without_an_embedding_model_is_a_config_error(prod_config: StackConfig) -> None:
    values = stack(prod_config.values, gpt_researcher={"node": "thanos"})
    providers = values["ai-swarm:providers"]
    values["ai-swarm:providers"] = {name: {k: v for k, v in p.items() if k != "embedding_models"}
                                    for name, p in providers.items()}
    with pytest.raises(SpecError, match=r"services\.gpt-researcher.*embedding_models"):
        plan_of(values)


def test_searxng_is_private_with_a_generated_secret(apps: SwarmPlan) -> None:
    search = apps.service("searxng")
    assert search.ports == () and search.node == "thanos"
    assert _secrets(search) == {"searxng-secret": "generated:searxng-secret"}
    assert 'SEARXNG_SECRET="$(cat /run/secrets/searxng-secret)"' in _start(search)
    assert search.read_only and search.user == "977:977"


def test_every_app_has_its_own_litellm_key(apps: SwarmPlan) -> None:
    keys = {name: source for app in APPS for name, source in _secrets(apps.service(app)).items()
            if name.startswith("litellm-key-")}
    assert sorted(keys) == ["litellm-key-gpt-researcher", "litellm-key-open-webui", "litellm-key-pipelines",
                            "litellm-key-sillytavern"]
    assert len(set(keys.values())) == len(keys)


@pytest.mark.parametrize("app", APPS)
def test_every_app_is_pinned_checked_limited_and_keeps_secrets_out_of_env(apps: SwarmPlan, app: str) -> None:
    service = apps.service(app)
    if isinstance(service.image, BuiltImage):
        assert (REPO / service.image.dockerfile).is_file(), "built on the node from this repository"
    else:
        assert service.image.digest.startswith("sha256:") and len(service.image.digest) == 71
    assert service.healthcheck.test and service.memory_mb > 0 and service.cpus > 0
    for port in service.ports:
        assert port.host_ip == apps.spec.nodes[service.node].tailscale_ip
    for name in service.env:
        assert not any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")), name
        assert not name.endswith(("_KEY", "_KEYS")), name
    for secret in service.secret_files:
        assert f"/run/secrets/{secret.name}" in _start(service), f"{app} never reads {secret.name}"


def test_the_apps_fit_their_nodes_ram(apps: SwarmPlan) -> None:
    for budget in apps.memory:
        assert budget.fits, budget


@pytest.mark.parametrize("app, extra", [("gpt-researcher", {}), ("gpt-researcher", {"image": PINNED}),
                                        ("sillytavern-extras", {"image": EXTRAS})])
def test_arm64_placement_is_refused_without_an_arm64_build(prod_config: StackConfig, app: str,
                                                           extra: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match=r"\(arm64\).*built for \['amd64'\] only"):
        moved = {"searxng": {"node": "oracle"}} if app == "gpt-researcher" else {}
        plan_of(stack(prod_config.values, **moved, **{app.replace("-", "_"): {"node": "oracle", **extra}}))


def test_extras_without_a_pinned_image_is_refused_naming_the_key(prod_config: StackConfig) -> None:
    with pytest.raises(SpecError, match=r"ai-swarm:services\.sillytavern-extras\.image.*archived"):
        plan_of(stack(prod_config.values, sillytavern_extras={"node": "thanos"}))


def test_a_private_service_on_another_node_is_a_config_error(prod_config: StackConfig) -> None:
    with pytest.raises(SpecError, match=r"services\.searxng\.port.*'gpt-researcher'"):
        plan_of(stack(prod_config.values, searxng={"node": "starlord"},
                      gpt_researcher={"node": "thanos"}))


def test_the_prod_plan_places_the_apps_of_the_allocation_matrix(prod_plan: SwarmPlan) -> None:
    placed = {service.name: service.node for service in prod_plan.services}
    assert {k: placed.get(k) for k in ("open-webui", "pipelines", "qdrant", "sillytavern", "searxng",
                                       "gpt-researcher")} == {
        "open-webui": "oracle", "pipelines": "oracle", "qdrant": "starlord", "sillytavern": "thanos",
        "searxng": "thanos", "gpt-researcher": "thanos"}
    assert "sillytavern-extras" not in placed, "archived upstream: SillyTavern's built-in extensions replace it"


def test_no_app_volume_collides_with_the_component_s_own(prod_config: StackConfig) -> None:
    """ServiceContainer names its files and secrets volumes `<container>-config`/`-secrets`."""
    values = stack(prod_config.values, sillytavern_extras={"node": "thanos", "port": 5100, "image": EXTRAS})
    resources = run_program(values, secure_keys(values), "prod").resources
    urns = [resource.urn for resource in resources]
    assert len(urns) == len(set(urns)), sorted(u for u in urns if urns.count(u) > 1)
    names = [resource.inputs["name"] for resource in resources if resource.type == VOLUME]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
