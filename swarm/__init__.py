"""ai-swarm's pure domain: stack model, capacity planner, placement, rendered files, offline plan.

Nothing here creates a Pulumi resource; `components/` does, from what this package decides.
"""
