"""`python -m swarm outputs`: stack outputs as client tools need them.

Reads `pulumi stack output --json` on stdin (`--from -`) or builds the outputs of the offline
plan (`--stack`/`--config`), validates them against `StackOutputs`, and prints JSON or
`KEY=value` lines (`OPENAI_BASE_URL`, one `SWARM_<SERVICE>_URL` per published service, the
monitoring URLs).
"""

from __future__ import annotations

import json
import shlex
from typing import IO

from pydantic import ValidationError

from swarm.errors import Issue, SpecError
from swarm.outputs import StackOutputs


def parse_outputs(text: str, source: str) -> StackOutputs:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Issue(source, f"not JSON: {exc}")]) from None
    try:
        return StackOutputs.model_validate(document)
    except ValidationError as exc:
        issues = [Issue(f"{source}:{'.'.join(str(p) for p in e['loc']) or '(root)'}", e["msg"]) for e in exc.errors()]
        raise SpecError(issues) from None


def env_lines(outputs: StackOutputs) -> list[str]:
    values: dict[str, str] = {}
    if outputs.openai_base_url:
        values["OPENAI_BASE_URL"] = outputs.openai_base_url
    for name, endpoint in sorted(outputs.endpoints.items()):
        if endpoint.url:
            values[f"SWARM_{name.upper().replace('-', '_')}_URL"] = endpoint.url
    monitoring = outputs.monitoring
    for key, url in (("PROMETHEUS_URL", monitoring.prometheus_url), ("GRAFANA_URL", monitoring.grafana_url),
                     ("ALERTMANAGER_URL", monitoring.alertmanager_url)):
        if url:
            values[key] = url
    return [f"{key}={shlex.quote(value)}" for key, value in values.items()]


def write_outputs(outputs: StackOutputs, fmt: str, out: IO[str]) -> None:
    if fmt == "env":
        out.write("".join(f"{line}\n" for line in env_lines(outputs)))
    else:
        out.write(json.dumps(outputs.model_dump(mode="json"), indent=2) + "\n")
