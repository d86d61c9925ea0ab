"""ai-swarm runtime: swarm-router and swarm-autotuner. Never imports pulumi."""
