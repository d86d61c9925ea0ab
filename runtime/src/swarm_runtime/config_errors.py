"""Config validation errors as one `key.path: message` line per problem (router and autotuner)."""

from __future__ import annotations

from pydantic import ValidationError


def validation_lines(exc: ValidationError, root: str = "(top level)") -> list[str]:
    """`backends.1.url: ...`; problems with the document as a whole are named `root`."""
    return [f"{'.'.join(str(part) for part in err['loc']) or root}: {err['msg']}" for err in exc.errors()]
