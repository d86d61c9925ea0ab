"""Routing-quality benchmark pieces: a continuous-batching engine model, its HTTP server, load and report."""
