"""Read a credential from a file (preferred: a Docker upload under /run/secrets) or an env var.

Files keep keys out of `docker inspect` and out of the environment of every child process;
the env var remains for running the tools by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class SecretError(Exception):
    """A configured secret file cannot be read; the message names the file and the config key."""


def read_secret(file_path: str | None, env_name: str | None, config_key: str,
                environ: Mapping[str, str] | None = None) -> str | None:
    """The file's stripped content if `file_path` is set, else the env var's value, else None."""
    if file_path:
        try:
            value = Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{config_key}: cannot read {file_path}: {exc.strerror}") from exc
        if not value:
            raise SecretError(f"{config_key}: {file_path} is empty")
        return value
    if env_name:
        env = os.environ if environ is None else environ
        return env.get(env_name) or None
    return None
