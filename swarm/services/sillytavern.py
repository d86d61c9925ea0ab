"""sillytavern: the role-play chat UI on thanos, models through LiteLLM.

Access control is SillyTavern's own: basic auth with a generated password plus the IP
whitelist (loopback and the tailnet's 100.64.0.0/10), on every start. The rendered
config.yaml holds a placeholder, never the password: the start command fills it in from the
secret file into the config volume, and seeds the LiteLLM key of its own into SillyTavern's
secret store (`api_key_custom`, the "Custom (OpenAI-compatible)" source). The endpoint URL
is chosen once in the UI (runbook); SillyTavern keeps it in its user settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarm.plan.types import Healthcheck, Mount, PlannedFile, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services.app_links import flows, gateway, pinned_image
from swarm.services.base import PlanContext, service_origin
from swarm.services.litellm_keys import key_expression, key_id

KIND = "sillytavern"
PORT = 8000
APP = "/home/node/app"
TEMPLATE_DIR = "/etc/sillytavern"
CONFIG = "config.yaml"
PASSWORD = "sillytavern-password"
LITELLM_KEY = key_id(KIND)
USERNAME = "swarm"
PLACEHOLDER = "__BASIC_AUTH_PASSWORD__"
TAILNET = "100.64.0.0/10"
HEARTBEAT_ENV = "SILLYTAVERN_HEARTBEATINTERVAL"
HEARTBEAT_S = 10
# Seen digest-pinned in a public NixOS config ("pulls exactly this index", the `latest` of
# September 2026, with the official compose healthcheck `node src/healthcheck.js`);
# SillyTavern publishes linux/amd64 and linux/arm64 images.
IMAGE = PulledImage(
    repository="ghcr.io/sillytavern/sillytavern",
    tag="latest",
    digest="sha256:5bb7ef334602ad72b29351acae4d9744ce16c99a1fab840acbd42a7d49d27d9b",
    platforms=frozenset({"amd64", "arm64"}),
)
# SillyTavern's secret store (src/endpoints/secrets.js, SecretManager) keeps each key as a list of
# {id, value, label, active} and reads only the active entry of a list; a plain string is read as
# no key. It converts plain strings once (migrateFlatSecrets), never again once `_migrated` is set.
# So the seed converts any plain strings left from an old install the same way, then puts the
# LiteLLM key first and active under a fixed id (replaced on every start, other keys kept inactive).
SEED_ID = "ai-swarm-litellm"
SEED_KEY = ("const fs=require('fs');const d='data/default-user';fs.mkdirSync(d,{recursive:true});"
            "const p=d+'/secrets.json';let s={};try{s=JSON.parse(fs.readFileSync(p,'utf8'))}catch(e){}"
            "if(!s._migrated){for(const [k,v] of Object.entries(s)){if(typeof v==='string'&&v.trim()){"
            "s[k]=[{id:'migrated-'+k,value:v,label:k,active:true}]}else if(!Array.isArray(v)){delete s[k]}}"
            "s._migrated=[]}"
            f"const c=(Array.isArray(s.api_key_custom)?s.api_key_custom:[]).filter(e=>e.id!=='{SEED_ID}');"
            "c.forEach(e=>{e.active=false});"
            f"s.api_key_custom=[{{id:'{SEED_ID}',value:process.env.LITELLM_KEY,label:'LiteLLM (ai-swarm)',active:true}}"
            ",...c];fs.writeFileSync(p,JSON.stringify(s,null,4),{mode:0o600})")
START = (f'PASSWORD="$(cat {secret_path(PASSWORD)})" && LITELLM_KEY="{key_expression(KIND)}" || exit 1; '
         f'mkdir -p config && sed "s/{PLACEHOLDER}/$PASSWORD/" {TEMPLATE_DIR}/{CONFIG} > config/{CONFIG} '
         f"&& LITELLM_KEY=\"$LITELLM_KEY\" node -e \"{SEED_KEY}\" && unset PASSWORD LITELLM_KEY "
         "&& exec ./docker-entrypoint.sh")


def config(port: int = PORT) -> dict[str, Any]:
    """config.yaml (the password is a placeholder filled in at start)."""
    return {
        "dataRoot": "./data",
        "listen": True,
        "port": port,
        "whitelistMode": True,
        "enableForwardedWhitelist": False,
        "whitelist": ["127.0.0.1", "::1", TAILNET],
        "basicAuthMode": True,
        "basicAuthUser": {"username": USERNAME, "password": PLACEHOLDER},
        "enableUserAccounts": False,
        "enableCorsProxy": False,
        "securityOverride": False,
        "autorun": False,
        # What SillyTavern-Extras did (captioning, classification, embeddings for vector storage)
        # runs in-process on Transformers.js models fetched on first use into data/_cache;
        # summaries go through the chat API (LiteLLM). Installed extensions never update
        # themselves: an update is an operator's change.
        "extensions": {"enabled": True, "autoUpdate": False, "models": {"autoDownload": True}},
    }


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        llm = gateway(ctx, service.node, name)
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=pinned_image(ctx, name, IMAGE),
            entrypoint=("/bin/sh", "-c"),
            command=(START,),
            healthcheck=Healthcheck(test=("node", "src/healthcheck.js"), interval_s=30, timeout_s=10,
                                    start_period_s=30),
            memory_mb=1536, cpus=2.0,
            user="0:0",  # the image runs as root and owns /home/node/app as root
            env={"NODE_ENV": "production", "AI_SWARM_LITELLM_URL": f"{llm.url}/v1",
                 # The server writes data/heartbeat.json this often, and the healthcheck fails
                 # once it is two beats old; unset, `src/healthcheck.js` exits 0 unconditionally.
                 HEARTBEAT_ENV: str(HEARTBEAT_S)},
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            config_dir=TEMPLATE_DIR,
            files=(PlannedFile(CONFIG, to_yaml(config(), "SillyTavern configuration (password filled in at start)"),
                               f"{name}/{CONFIG}"),),
            mounts=(Mount(target=f"{APP}/config", volume=f"ai-swarm-{name}-app-config"),
                    Mount(target=f"{APP}/data", volume=f"ai-swarm-{name}-data", stateful=True),
                    Mount(target=f"{APP}/plugins", volume=f"ai-swarm-{name}-plugins", stateful=True)),
            secret_files=(SecretFile(PASSWORD, f"generated:{PASSWORD}"),
                          SecretFile(LITELLM_KEY, f"generated:{LITELLM_KEY}")),
            # SillyTavern builds its front-end bundle and caches under the app directory at start.
            read_only=False,
            flows=flows(name, (llm, "OpenAI API (LiteLLM)")),
        )
