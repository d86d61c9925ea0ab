"""SearXNG's rendered settings.yml, parsed and checked against SearXNG's documented keys.

No real validator installs here (SearXNG is not published on PyPI; the `searxng` package there
is an unrelated MCP server), so the file is parsed with a YAML parser and every key is checked
against the keys docs.searxng.org documents for settings.yml (admin/settings/*).
"""

from __future__ import annotations

import yaml

from swarm.plan import SwarmPlan
from swarm.services import searxng

DOCUMENTED: dict[str, set[str] | None] = {
    "use_default_settings": None,
    "general": {"debug", "instance_name", "privacypolicy_url", "donation_url", "contact_url", "enable_metrics",
                "open_metrics"},
    "search": {"safe_search", "autocomplete", "autocomplete_min", "favicon_resolver", "default_lang", "languages",
               "ban_time_on_fail", "max_ban_time_on_fail", "suspended_times", "formats", "max_page"},
    "server": {"base_url", "port", "bind_address", "secret_key", "limiter", "public_instance", "image_proxy",
               "http_protocol_version", "method", "default_http_headers"},
    "outgoing": {"request_timeout", "max_request_timeout", "useragent_suffix", "pool_connections", "pool_maxsize",
                 "enable_http2", "verify", "proxies", "using_tor_proxy", "extra_proxy_timeout", "source_ips",
                 "retries"},
    "ui": None, "brand": None, "valkey": None, "redis": None, "engines": None, "plugins": None,
    "categories_as_tabs": None, "preferences": None, "doi_resolvers": None, "default_doi_resolver": None,
}
FORMATS = {"html", "json", "csv", "rss"}


def _settings(plan: SwarmPlan) -> dict[str, object]:
    search = plan.service("searxng")
    document = yaml.safe_load(search.files[0].content)
    assert isinstance(document, dict)
    return document


def test_every_key_is_one_searxng_documents(prod_plan: SwarmPlan) -> None:
    document = _settings(prod_plan)
    assert set(document) <= set(DOCUMENTED), set(document) - set(DOCUMENTED)
    for section, keys in DOCUMENTED.items():
        if keys is not None and section in document:
            value = document[section]
            assert isinstance(value, dict) and set(value) <= keys, (section, set(value) - keys)
    assert set(document["search"]["formats"]) <= FORMATS  # type: ignore[index]


def test_json_output_is_on_for_the_researcher(prod_plan: SwarmPlan) -> None:
    assert "json" in _settings(prod_plan)["search"]["formats"]  # type: ignore[index]


def test_no_public_instance_and_no_secret_in_the_file(prod_plan: SwarmPlan) -> None:
    document = _settings(prod_plan)
    server = document["server"]
    assert isinstance(server, dict)
    assert server["public_instance"] is False and server["limiter"] is False and server["image_proxy"] is False
    assert "secret_key" not in server, "the key comes from SEARXNG_SECRET, exported from the secret file"
    assert document["use_default_settings"] is True
    assert "ultrasecretkey" not in prod_plan.service("searxng").files[0].content


def test_the_file_is_exactly_what_render_writes(prod_plan: SwarmPlan) -> None:
    service = prod_plan.service("searxng")
    assert prod_plan.files()[f"{service.name}/{searxng.SETTINGS}"] == service.files[0].content
    assert service.file_path(service.files[0]) == "/etc/searxng/settings.yml"
    assert service.env["SEARXNG_SETTINGS_PATH"] == "/etc/searxng/settings.yml"
