"""Runs the built image's contents as the plan deploys them, outside Docker, and does one research.

    .venv/bin/python images/gpt-researcher/check.py --source DIR --python VENV/bin/python

DIR holds the upstream tree at the Dockerfile's GPTR_COMMIT (`git archive <commit> main.py backend
gpt_researcher frontend multi_agents`); VENV has requirements.lock installed exactly as the
Dockerfile does; its interpreter must be executable by uid 65534 (the app runs as `nobody`). Not
part of CI: the source lives on GitHub, which CI cannot reach. docs/runbook.md (section 8) has the
whole sequence.

What it checks, everything on 127.0.0.1:
* the plan's own start command, environment and uid split: the code is root-owned and read-only
  to the app's user, only the four volume directories are writable (as in the container);
* the LiteLLM key from its secret file reaches the gateway as `Bearer sk-<key>`;
* the module's health probe passes;
* a research over the WebSocket API runs end to end: chat and embeddings through a fake LiteLLM
  (embeddings as text, the `custom` provider), search through a fake SearXNG's JSON API, pages
  scraped from a local site; the report comes back and lands in `outputs`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from swarm.plan.builder import build_plan
from swarm.plan.types import SECRETS_DIR
from swarm.services import gpt_researcher
from swarm.stack_config import build_spec, read_stack_file

KEY = "check-litellm-key"
APP_UID = 65534  # nobody: not the owner of the code
REPORT = "## Findings\n\nThe local test page says the swarm routes requests by predicted delay."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fakes:
    """LiteLLM (chat + embeddings), SearXNG and a site to scrape, recording what they saw."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.auth: set[str] = set()
        self.chat_calls = 0
        self.embedded_texts = 0
        self.searches: list[str] = []
        self.pages: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/search", self.search)
        app.router.add_get("/page/{n}", self.page)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.auth.add(request.headers.get("Authorization", ""))
        self.chat_calls += 1
        body = await request.json()
        prompt = json.dumps(body.get("messages", []))
        if "agent_role_prompt" in prompt:
            text = json.dumps({"server": "Research Agent", "agent_role_prompt": "You are a careful researcher."})
        elif "queries" in prompt.lower() and "report" not in prompt.lower()[-400:]:
            text = json.dumps(["swarm routing predicted delay", "swarm routing heterogeneous GPUs"])
        else:
            text = REPORT
        if not body.get("stream"):
            return web.json_response({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": text}}],
                                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in (text[i:i + 40] for i in range(0, len(text), 40)):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        self.auth.add(request.headers.get("Authorization", ""))
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not all(isinstance(t, str) for t in texts):
            return web.json_response({"error": {"message": "token IDs: LiteLLM's providers want text"}}, status=400)
        self.embedded_texts += len(texts)
        data = []
        for i, text in enumerate(texts):
            vector = [float(len(text) % 7 + 1), 1.0, float(("swarm" in text.lower()) + 1)]
            embedding: object = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        return web.json_response({"object": "list", "data": data, "model": body["model"],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    async def search(self, request: web.Request) -> web.Response:
        assert request.query.get("format") == "json", request.query
        self.searches.append(request.query.get("q", ""))
        base = f"http://127.0.0.1:{self.port}"
        return web.json_response({"results": [
            {"url": f"{base}/page/{n}", "title": f"Swarm page {n}", "content": "routing by predicted delay"}
            for n in (1, 2)]})

    async def page(self, request: web.Request) -> web.Response:
        self.pages.append(request.match_info["n"])
        # 80 sentences a page: over the 8000 characters past which GPT Researcher ranks by embeddings.
        paragraph = "The swarm routes each request to the backend with the smallest predicted delay. " * 80
        return web.Response(text=f"<html><head><title>Swarm</title></head><body><article><p>{paragraph}</p>"
                                 "</article></body></html>", content_type="text/html")


def _deployed(stack: Path) -> tuple[str, dict[str, str]]:
    plan = build_plan(build_spec(read_stack_file(stack)))
    service = plan.service(next(s.name for s in plan.services if s.kind == gpt_researcher.KIND))
    return service.command[0], dict(service.env)


def _layout(source: Path, root: Path) -> Path:
    """The image's /usr/src/app: root-owned code, the four volume directories owned by the app user."""
    app = root / "app"
    shutil.copytree(source, app)
    for directory in gpt_researcher.WRITABLE:
        (app / directory).mkdir(exist_ok=True)
        os.chown(app / directory, APP_UID, APP_UID)
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / gpt_researcher.LITELLM_KEY).write_text(KEY)
    os.chmod(secrets / gpt_researcher.LITELLM_KEY, 0o444)
    for path in (root, app, secrets):
        os.chmod(path, 0o755)
    return app


async def _research(port: int) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    async with ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        await ws.send_str("start " + json.dumps({"task": "How does the swarm route requests?",
                                                  "report_type": "research_report", "report_source": "web",
                                                  "tone": "Objective", "headers": {}}))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            msg = await ws.receive(timeout=deadline - time.monotonic())
            if msg.type != WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            messages.append(message)
            print(f"  [{message.get('type')}] {str(message.get('output', ''))[:100]!r}", flush=True)
            if message.get("type") in ("path", "error"):
                break
    return messages


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--python", type=Path, required=True)
    parser.add_argument("--stack", type=Path, default=Path(__file__).resolve().parents[2] / "Pulumi.prod.yaml")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "gpt-researcher-check.log",
                        help="the server's output (kept for reading after a failure)")
    args = parser.parse_args()
    start, env = _deployed(args.stack)
    fakes = Fakes(_free_port())
    runner = web.AppRunner(fakes.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fakes.port).start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        app = _layout(args.source, root)
        start = (start.replace(f"{SECRETS_DIR}/", f"{root}/secrets/")
                 .replace(f"--port {gpt_researcher.PORT}", f"--port {port}").replace("0.0.0.0", "127.0.0.1"))
        env = {k: v.replace(gpt_researcher.APP_DIR, str(app)) for k, v in env.items()}
        encodings = subprocess.run([str(args.python), "-c", "import importlib.util as u; "
                                    "print(u.find_spec('litellm').submodule_search_locations[0])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        env["TIKTOKEN_CACHE_DIR"] = f"{encodings}/litellm_core_utils/tokenizers"  # the Dockerfile's ENV
        env |= {"OPENAI_BASE_URL": f"http://127.0.0.1:{fakes.port}/v1", "SEARX_URL": f"http://127.0.0.1:{fakes.port}",
                "PATH": f"{args.python.parent}:/usr/bin:/bin", "HOME": f"{root}/home", "XDG_CACHE_HOME": f"{root}/home"}
        (root / "home").mkdir()
        os.chown(root / "home", APP_UID, APP_UID)
        log = args.log.open("w")
        server = subprocess.Popen(["/bin/sh", "-c", start], cwd=app, env=env, user=APP_UID, group=APP_UID,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            probe = gpt_researcher.PROBE.replace(f":{gpt_researcher.PORT}/", f":{port}/")
            for _ in range(120):
                if server.poll() is not None:
                    raise SystemExit(f"server exited {server.returncode}:\n{args.log.read_text()[-3000:]}")
                if subprocess.run([str(args.python), "-c", probe], capture_output=True).returncode == 0:
                    break
                await asyncio.sleep(1)
            else:
                raise SystemExit("health probe never passed")
            print(f"health probe passed (uid {APP_UID}, code read-only to it)", flush=True)
            messages = await _research(port)
            report = "".join(str(m.get("output", "")) for m in messages if m.get("type") == "report")
            paths = next((m.get("output") for m in messages if m.get("type") == "path"), None)
            written = sorted(p.name for p in (app / "outputs").iterdir())
            checks = {
                "gateway saw only Bearer sk-<key>": fakes.auth == {f"Bearer sk-{KEY}"},
                "chat calls through the gateway": fakes.chat_calls > 0,
                "embeddings sent as text": fakes.embedded_texts > 0,
                "SearXNG JSON API queried": bool(fakes.searches),
                "result pages scraped": bool(fakes.pages),
                "report streamed back": "predicted delay" in report,
                "report files in outputs/": bool(written) and paths is not None,
            }
            print(f"chat calls {fakes.chat_calls}, texts embedded {fakes.embedded_texts}, searches "
                  f"{fakes.searches}, pages {sorted(set(fakes.pages))}, outputs {written}")
            for name, ok in checks.items():
                print(f"  {'ok  ' if ok else 'FAIL'} {name}")
            if not all(checks.values()):
                print(args.log.read_text()[-4000:])
                errors = [m for m in messages if m.get("type") == "error"]
                print("errors:", errors[:3])
            return 0 if all(checks.values()) else 1
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
            await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
