"""Hosted embedding models: served by LiteLLM as their own groups, never a chat fallback."""

from __future__ import annotations

import yaml

from swarm.plan import SwarmPlan
from swarm.services import litellm
from swarm.services.litellm_config import CASCADE_GROUP
from tests.services.loopback import rendered

EMBEDDING = "gemini/gemini-embedding-001"


def _config(plan: SwarmPlan) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(rendered(plan, litellm.KIND, litellm.CONFIG_NAME))


def test_each_key_serves_the_embedding_model_in_embedding_mode(prod_plan: SwarmPlan) -> None:
    entries = [e for e in _config(prod_plan)["model_list"] if e["model_name"] == EMBEDDING]
    assert [e["litellm_params"]["api_key"] for e in entries] == ["os.environ/GEMINI_API_KEY",
                                                                  "os.environ/GEMINI_API_KEY_ALT"]
    assert all(e["model_info"] == {"mode": "embedding"} and e["litellm_params"]["model"] == EMBEDDING
               for e in entries)


def test_an_embedding_model_is_never_a_chat_fallback_or_in_the_cascade(prod_plan: SwarmPlan) -> None:
    config = _config(prod_plan)
    settings = config["litellm_settings"]
    targets = [t for rule in settings["fallbacks"] + settings["context_window_fallbacks"]
               for chain in rule.values() for t in chain]
    assert targets and EMBEDDING not in targets
    cascade = [e["litellm_params"]["model"] for e in config["model_list"] if e["model_name"] == CASCADE_GROUP]
    assert cascade and EMBEDDING not in cascade
