"""The stack model's building blocks: the strict base class and the shared field types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
Port = Annotated[int, Field(ge=1, le=65535)]
PositiveGb = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    """Base for every stack-model type: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
