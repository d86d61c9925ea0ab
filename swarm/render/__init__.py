"""Rendering helpers for generated config files. The files themselves come from the plan
(`SwarmPlan.files()`): every service module renders its own."""
