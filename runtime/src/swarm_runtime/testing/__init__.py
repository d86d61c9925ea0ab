"""Test doubles shipped with the runtime so tests, benchmarks and people can run the router offline."""
