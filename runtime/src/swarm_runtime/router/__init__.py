"""swarm-router: a load- and health-aware OpenAI-compatible router in front of vLLM.

``swarm_runtime.router.config`` is importable on its own (no server, no event loop), so the
Pulumi program can validate the router config it renders.
"""
