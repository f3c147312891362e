"""The promotion gate: may the challenger replace the champion?

Both are scored afresh on the same, latest holdout (see each workload's
``holdout_metrics``); stored numbers are never trusted. The challenger passes
when every check does:

1. its model checks pass (``Workload.check_model``: finite, well-formed
   answers on its input example);
2. it beats the workload's baseline on the primary metric;
3. with a champion: it beats the champion's primary metric by ``margin``
   (relative; 0 means strictly better);
4. no guard metric (``Workload.guard_metrics``, e.g. |bias|, coverage) is
   worse than the champion's by more than ``guard_tolerance`` (absolute);
5. no slice (``Workload.slice_prefix``: per store, per segment) is worse than
   the champion's by more than ``slice_tolerance`` (relative).

A NaN primary metric never passes (NaN comparisons are false).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.core.config import GateSettings
    from loopml.sdk.workload import Workload

CHALLENGER = "challenger"
CHAMPION = "champion"
BASELINE = "baseline"


@dataclass(frozen=True)
class Check:
    """One rule of the gate and how the challenger fared."""

    name: str
    passed: bool
    message: str


def _worse(challenger: float, bar: float, higher_is_better: bool) -> float:
    """How much worse the challenger is than ``bar`` (negative: better)."""
    return bar - challenger if higher_is_better else challenger - bar


def checks(
    workload: Workload,
    scores: dict[str, dict[str, float]],
    gate: GateSettings,
    problems: list[str] | None = None,
) -> list[Check]:
    """Apply every rule of the gate.

    Args:
        workload: supplies the primary, guard and slice metrics.
        scores: holdout metrics per ``challenger``, ``baseline`` and, when
            there is one, ``champion``.
        gate: margin and tolerances.
        problems: failures of the challenger's model checks.

    Returns:
        The checks in the order above.
    """
    key, up = workload.primary_metric, workload.higher_is_better
    new, base = scores[CHALLENGER], scores[BASELINE]
    found: list[Check] = [
        Check(
            "model checks",
            not problems,
            "; ".join(problems or []) or "answers are finite and well-formed",
        ),
        Check(
            "beats baseline",
            workload.beats(new[key], base[key]),
            f"{key} {new[key]:.4f} vs baseline {base[key]:.4f}",
        ),
    ]
    old = scores.get(CHAMPION)
    if old is None:
        return found
    factor = 1 + gate.margin if up else 1 - gate.margin
    bar = old[key] * factor
    found.append(
        Check(
            "beats champion",
            workload.beats(new[key], bar)
            if gate.margin
            else workload.beats(new[key], old[key]),
            f"{key} {new[key]:.4f} vs champion {old[key]:.4f}"
            + (f" (needs {bar:.4f}, margin {gate.margin:.0%})" if gate.margin else ""),
        )
    )
    for guard, higher in workload.guard_metrics.items():
        if guard not in new or guard not in old:
            continue
        worse = _worse(new[guard], old[guard], higher)
        found.append(
            Check(
                f"guard {guard}",
                not worse > gate.guard_tolerance,
                f"{guard} {new[guard]:.4f} vs champion {old[guard]:.4f} "
                f"(tolerance {gate.guard_tolerance})",
            )
        )
    prefix = workload.slice_prefix
    slices = sorted(k for k in new if prefix and k.startswith(prefix) and k in old)
    regressed = []
    for name in slices:
        if not math.isfinite(old[name]) or old[name] == 0:
            continue
        relative = _worse(new[name], old[name], up) / abs(old[name])
        if relative > gate.slice_tolerance:
            regressed.append(f"{name[len(prefix) :]} {relative:+.0%}")
    if slices:
        found.append(
            Check(
                "slices",
                not regressed,
                f"{len(regressed)} of {len(slices)} slices worse than the champion "
                f"by > {gate.slice_tolerance:.0%}"
                + (f": {', '.join(regressed[:5])}" if regressed else ""),
            )
        )
    return found


def verdict(found: list[Check]) -> tuple[bool, str]:
    """Whether every check passed, and the reason in one sentence."""
    failed = [c for c in found if not c.passed]
    if failed:
        reason = "; ".join(f"{c.name} failed: {c.message}" for c in failed)
        primary = [c for c in found if c.passed and c.name.startswith("beats")]
        if primary:
            reason += " (passed: " + "; ".join(c.message for c in primary) + ")"
        return False, reason
    return True, "; ".join(c.message for c in found[1:])
