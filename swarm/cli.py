"""Command line: `python -m swarm plan | render | diagram | outputs` (ARCHITECTURE.md contracts 1, 2, 5)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from swarm.adopt import adopt_config_command
from swarm.diagram import render_mermaid
from swarm.errors import SpecError
from swarm.offline.engine import REPO_ROOT
from swarm.offline.offline import EXIT_INVALID, offline_plan
from swarm.offline.report import plan_json, plan_text
from swarm.outputs import build_outputs
from swarm.outputs_cli import parse_outputs, write_outputs
from swarm.plan.builder import build_plan
from swarm.stack_config import StackConfig, build_spec, read_stack_file


def _stack_source(args: argparse.Namespace) -> tuple[StackConfig, str]:
    if args.config:
        path = Path(args.config)
        stack = path.stem.removeprefix("Pulumi.") if path.name.startswith("Pulumi.") else path.stem
        return read_stack_file(path), stack
    return read_stack_file(REPO_ROOT / f"Pulumi.{args.stack}.yaml"), args.stack


def _add_source(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--stack", default="prod", help="stack name: reads Pulumi.<NAME>.yaml (default: prod)")
    group.add_argument("--config", help="a stack settings file in Pulumi.<stack>.yaml format")


def _report_invalid(exc: SpecError, as_json: bool) -> int:
    if as_json:
        errors = [{"path": issue.path, "message": issue.message} for issue in exc.issues]
        print(json.dumps({"exit_code": EXIT_INVALID, "errors": errors, "resources": [], "violations": [],
                          "capacity": []}, indent=2))
    else:
        print(exc, file=sys.stderr)
    return EXIT_INVALID


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        config, stack = _stack_source(args)
    except SpecError as exc:
        return _report_invalid(exc, args.json)
    result = offline_plan(config, stack)
    if args.json:
        print(json.dumps(plan_json(result), indent=2, default=str))
    else:
        print(plan_text(result), file=sys.stderr if result.issues else sys.stdout)
    return result.exit_code


def cmd_render(args: argparse.Namespace) -> int:
    try:
        config, _ = _stack_source(args)
        files = build_plan(build_spec(config)).files()
    except SpecError as exc:
        return _report_invalid(exc, False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Write everything into a sibling temp dir first so a failure never leaves a half-rendered tree.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as staging:
        for relative, content in files.items():
            target = Path(staging, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        for relative in files:
            destination = out / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            Path(staging, relative).replace(destination)
    for relative in files:
        print(out / relative)
    return 0


def cmd_diagram(args: argparse.Namespace) -> int:
    try:
        config, _ = _stack_source(args)
        print(render_mermaid(build_plan(build_spec(config))), end="")
    except SpecError as exc:
        return _report_invalid(exc, False)
    return 0


def cmd_outputs(args: argparse.Namespace) -> int:
    try:
        if args.source == "-":
            outputs = parse_outputs(sys.stdin.read(), "stdin")
        else:
            config, _ = _stack_source(args)
            outputs = build_outputs(build_plan(build_spec(config)))
    except SpecError as exc:
        print(f"swarm outputs: {exc}", file=sys.stderr)
        return EXIT_INVALID
    write_outputs(outputs, args.format, sys.stdout)
    return 0


def cmd_adopt_config(args: argparse.Namespace) -> int:
    return adopt_config_command(args.service, sys.stdin, sys.stdout, sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m swarm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="offline plan: resources by node, VRAM capacity, policy verdicts")
    _add_source(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.set_defaults(handler=cmd_plan)
    render = commands.add_parser("render", help="write every generated config file under --out")
    _add_source(render)
    render.add_argument("--out", required=True, help="output folder (one sub-folder per service)")
    render.set_defaults(handler=cmd_render)
    diagram = commands.add_parser("diagram", help="print a Mermaid diagram of nodes, services and flows")
    _add_source(diagram)
    diagram.set_defaults(handler=cmd_diagram)
    outputs = commands.add_parser("outputs", help="stack outputs for client tools (JSON or KEY=value lines)")
    _add_source(outputs)
    outputs.add_argument("--from", dest="source", choices=["plan", "-"], default="plan",
                         help="'-': read `pulumi stack output --json` from stdin; 'plan' (default): the offline plan")
    outputs.add_argument("--format", choices=["json", "env"], default="json")
    outputs.set_defaults(handler=cmd_outputs)
    adopt = commands.add_parser(
        "adopt-config", help="print the adopt: block for a running container from `docker inspect` JSON on stdin")
    adopt.add_argument("--service", required=True, help="the service key under ai-swarm:services (e.g. qdrant)")
    adopt.set_defaults(handler=cmd_adopt_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
