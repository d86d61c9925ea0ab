"""alertmanager.yml from `ai-swarm:alerting`: receivers, grouping, node-down inhibition.

Credentials never appear in the file: each is a secret file under /run/secrets named after
its config key (`auth_password_file`, `authorization.credentials_file`). Without any
receiver, alerts still reach Alertmanager (and Grafana shows them) but notify nobody.
"""

from __future__ import annotations

from typing import Any

from swarm.model import Alerting, AlertReceiver
from swarm.plan.types import secret_path
from swarm.render.yaml_text import to_yaml

NULL_RECEIVER = "null"


def _receiver(name: str, receiver: AlertReceiver) -> dict[str, Any]:
    http: dict[str, Any] = {}
    if receiver.token_secret:
        http = {"http_config": {"authorization": {"type": "Bearer",
                                                  "credentials_file": secret_path(receiver.token_secret)}}}
    if receiver.kind == "webhook":
        return {"name": name, "webhook_configs": [{"url": receiver.url, "send_resolved": True, **http}]}
    if receiver.kind == "ntfy":
        # ntfy formats Alertmanager's JSON itself with its built-in `alertmanager` template.
        url = f"{receiver.url}{'&' if '?' in str(receiver.url) else '?'}template=alertmanager"
        return {"name": name, "webhook_configs": [{"url": url, "send_resolved": True, **http}]}
    email: dict[str, Any] = {"to": receiver.to, "from": receiver.sender, "smarthost": receiver.smarthost,
                             "send_resolved": True, "require_tls": True}
    if receiver.username:
        email["auth_username"] = receiver.username
    if receiver.password_secret:
        email["auth_password_file"] = secret_path(receiver.password_secret)
    return {"name": name, "email_configs": [email]}


def alertmanager_config(alerting: Alerting) -> dict[str, Any]:
    receivers = [{"name": NULL_RECEIVER}, *(_receiver(n, r) for n, r in alerting.receivers.items())]
    routes = [{"receiver": name, "matchers": [f'severity=~"{"|".join(r.severities)}"'], "continue": True}
              for name, r in alerting.receivers.items()]
    return {
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": ["alertname", "node"],
            "group_wait": f"{alerting.group_wait_s}s",
            "group_interval": f"{alerting.group_interval_m}m",
            "repeat_interval": f"{alerting.repeat_interval_h}h",
            **({"routes": routes} if routes else {}),
        },
        "inhibit_rules": [
            # A node that is down (no scrape target on it answers, rules.py) explains every other alert on it.
            {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['alertname!="NodeDown"'],
             "equal": ["node"]},
            # A critical alert silences the warning of the same name on the same service.
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
             "equal": ["alertname", "node", "service"]},
        ],
        "receivers": receivers,
    }


def render_alertmanager(alerting: Alerting) -> str:
    return to_yaml(alertmanager_config(alerting), "Alertmanager configuration (ai-swarm:alerting)")


def secret_keys(alerting: Alerting) -> tuple[str, ...]:
    return tuple(sorted({key for r in alerting.receivers.values() for key in r.secret_keys()}))
