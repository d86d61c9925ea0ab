"""The offline plan: the real program under Pulumi's mock engine, plus capacity and policies."""
