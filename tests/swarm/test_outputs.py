"""Contract 5: the stack outputs' shape, its committed schema, and `python -m swarm outputs`."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from swarm.errors import SpecError
from swarm.offline.engine import CapturedRun
from swarm.outputs import SCHEMA_VERSION, build_outputs, outputs_json_schema
from swarm.outputs_cli import env_lines, parse_outputs
from swarm.plan import SwarmPlan
from tests.conftest import REPO

SCHEMA = REPO / "schemas" / f"stack-outputs.v{SCHEMA_VERSION}.json"


def test_committed_schema_equals_the_generated_one() -> None:
    committed = json.loads(SCHEMA.read_text())
    assert committed == json.loads(json.dumps(outputs_json_schema())), \
        "regenerate: python -c 'from swarm.outputs import outputs_json_schema' … (see README)"


def test_the_program_exports_outputs_that_validate(prod_run: CapturedRun) -> None:
    jsonschema.validate(prod_run.outputs, json.loads(SCHEMA.read_text()))
    assert prod_run.outputs["schema_version"] == SCHEMA_VERSION


def test_only_deployed_services_have_endpoints(prod_plan: SwarmPlan) -> None:
    outputs = build_outputs(prod_plan)
    assert set(outputs.endpoints) == {service.name for service in prod_plan.services}
    for name, endpoint in outputs.endpoints.items():
        service = prod_plan.service(name)
        assert (endpoint.url is None) == (not service.ports)


def test_outputs_hold_no_secret(prod_run: CapturedRun) -> None:
    text = json.dumps(prod_run.outputs)
    assert "/run/secrets" not in text and "offline-placeholder" not in text


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarm", "outputs", *args], capture_output=True, text=True,
                          cwd=REPO, input=stdin, timeout=120)


def test_outputs_command_reads_pulumi_stack_output_from_stdin(prod_plan: SwarmPlan) -> None:
    exported = json.dumps(build_outputs(prod_plan).model_dump(mode="json"))
    result = _cli("--from", "-", "--format", "env", stdin=exported)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    router = prod_plan.endpoints["swarm-router"].url
    assert lines["SWARM_SWARM_ROUTER_URL"] == router
    assert not any(key.endswith("_URL") and value in ("", "None") for key, value in lines.items())


def test_outputs_command_rejects_input_that_does_not_match_naming_the_field() -> None:
    result = _cli("--from", "-", stdin=json.dumps({"schema_version": 2, "nodes": {"x": {"role": "boss"}}}))
    assert result.returncode == 2
    assert "stdin:nodes.x.role" in result.stderr
    assert _cli("--from", "-", stdin="not json").returncode == 2


def test_env_lines_quote_values_and_name_the_gateway(prod_plan: SwarmPlan) -> None:
    outputs = build_outputs(prod_plan).model_copy(update={"openai_base_url": "http://100.96.197.84:4000/v1"})
    assert "OPENAI_BASE_URL=http://100.96.197.84:4000/v1" in env_lines(outputs)


def test_parse_outputs_errors_are_spec_errors() -> None:
    with pytest.raises(SpecError):
        parse_outputs("[]", "stdin")
