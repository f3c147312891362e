"""What every stage shares: its result record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """The outcome of one stage, for the run summary and the state files."""

    stage: str
    workload: str
    status: str = "ok"
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
