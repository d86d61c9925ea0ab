"""The Oracle Cloud node and the tailnet, as pure data: Always Free checks, cloud-init
user-data and the Tailscale policy, all derived from the spec and the plan's flows.
`components/oci_node.py`, `components/tailnet.py` and `components/readiness.py` turn them
into resources."""
