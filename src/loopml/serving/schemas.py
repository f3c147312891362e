"""Bodies of the service's own routes (workloads bring their request rows)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "degraded", "unavailable"]
    models: dict[str, str] = Field(default_factory=dict)
    detail: str | None = None
