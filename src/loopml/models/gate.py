"""The promotion gate: may the challenger replace the champion?

Both are scored afresh on the same, latest holdout (see each workload's
``holdout_metrics``); stored numbers are never trusted. The challenger passes
when every check does:

1. its model checks pass (``Workload.check_model``: finite, well-formed
   answers on its input example);
2. it beats every simple alternative the workload declares
   (``Workload.baselines``): the strongest of them on the primary metric,
   by ``margin`` when one is set, and no slice is worse than the strongest
   baseline of that slice by more than ``slice_tolerance`` (relative);
3. inclusion: its worst group of a sensitive attribute
   (``Workload.group_prefix``: recsys's age bands) is not below its best
   group by more than ``max_group_gap`` (relative); groups smaller than
   ``min_slice_size`` are not compared;
4. with a champion: it beats the champion's primary metric by ``margin``
   (relative; 0 means strictly better);
5. no guard metric (``Workload.guard_metrics``, e.g. |bias|, coverage) is
   worse than the champion's by more than ``guard_tolerance`` (absolute);
6. no slice (``Workload.slice_prefix``: per store, per segment) is worse than
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


def strongest(
    workload: Workload, scores: dict[str, dict[str, float]], key: str | None = None
) -> tuple[str, float] | None:
    """The best baseline on ``key`` (default: the primary metric), if any.

    Args:
        workload: its ``baselines`` and whether higher is better.
        scores: metrics per side; baselines absent from it are ignored.
        key: the metric.

    Returns:
        The baseline's name and value, or ``None`` when none was scored.
    """
    key = key or workload.primary_metric
    found = [
        (name, scores[name][key])
        for name in workload.baselines
        if name in scores and key in scores[name] and math.isfinite(scores[name][key])
    ]
    if not found:
        return None
    pick = max if workload.higher_is_better else min
    return pick(found, key=lambda pair: pair[1])


def _judged_slices(
    workload: Workload, new: dict[str, float], gate: GateSettings
) -> tuple[list[str], str]:
    """The slice metrics the gate judges, and a note on those too small to."""
    prefix, size_prefix = workload.slice_prefix, workload.slice_size_prefix
    slices = sorted(k for k in new if prefix and k.startswith(prefix))
    if not size_prefix:
        return slices, ""
    small = [
        k
        for k in slices
        if new.get(size_prefix + k[len(prefix) :], math.inf) < gate.min_slice_size
    ]
    note = (
        f"; {len(small)} not judged (fewer than {gate.min_slice_size}: "
        + ", ".join(k[len(prefix) :] for k in small[:5])
        + ")"
        if small
        else ""
    )
    return [k for k in slices if k not in small], note


def _margin_bar(value: float, margin: float, higher_is_better: bool) -> float:
    return value * (1 + margin if higher_is_better else 1 - margin)


def _baseline_checks(
    workload: Workload, scores: dict[str, dict[str, float]], gate: GateSettings
) -> list[Check]:
    """Beat the strongest baseline overall (margin) and in every slice."""
    key, up = workload.primary_metric, workload.higher_is_better
    new = scores[CHALLENGER]
    best = strongest(workload, scores)
    if best is None:
        return [Check("beats baselines", False, f"no baseline was scored on {key}")]
    name, value = best
    bar = _margin_bar(value, gate.margin, up)
    others = ", ".join(
        f"{b} {scores[b][key]:.4f}"
        for b in workload.baselines
        if b in scores and b != name and key in scores[b]
    )
    found = [
        Check(
            "beats baselines",
            workload.beats(new[key], bar if gate.margin else value),
            f"{key} {new[key]:.4f} vs strongest baseline {name} {value:.4f}"
            + (f" (needs {bar:.4f}, margin {gate.margin:.0%})" if gate.margin else "")
            + (f"; also beat {others}" if others else ""),
        )
    ]
    prefix = workload.slice_prefix
    slices, small = _judged_slices(workload, new, gate)
    below = []
    for slice_key in slices:
        bar_slice = strongest(workload, scores, slice_key)
        if bar_slice is None or bar_slice[1] == 0:
            continue
        relative = _worse(new[slice_key], bar_slice[1], up) / abs(bar_slice[1])
        if relative > gate.slice_tolerance:
            below.append(
                f"{slice_key[len(prefix) :]} {relative:+.0%} vs {bar_slice[0]}"
            )
    if slices:
        found.append(
            Check(
                "slices vs baselines",
                not below,
                f"{len(below)} of {len(slices)} slices worse than their strongest "
                f"baseline by > {gate.slice_tolerance:.0%}"
                + (f": {', '.join(below[:5])}" if below else "")
                + small,
            )
        )
    return found


def _group_check(
    workload: Workload, new: dict[str, float], gate: GateSettings
) -> list[Check]:
    """The gap between the challenger's best and worst group, when it has groups."""
    prefix, size_prefix = workload.group_prefix, workload.group_size_prefix
    groups = {
        k[len(prefix) :]: v
        for k, v in new.items()
        if prefix and k.startswith(prefix) and math.isfinite(v)
    }
    if not groups:
        return []
    small = sorted(
        g
        for g in groups
        if size_prefix and new.get(size_prefix + g, math.inf) < gate.min_slice_size
    )
    judged = {g: v for g, v in groups.items() if g not in small}
    note = (
        f"; not compared (fewer than {gate.min_slice_size}): {', '.join(small)}"
        if small
        else ""
    )
    if len(judged) < 2:
        return [Check("group gap", True, f"{len(judged)} group to compare{note}")]
    up = workload.higher_is_better
    best = (max if up else min)(judged, key=judged.__getitem__)
    worst = (min if up else max)(judged, key=judged.__getitem__)
    gap = _worse(judged[worst], judged[best], up) / abs(judged[best] or math.inf)
    return [
        Check(
            "group gap",
            not gap > gate.max_group_gap,
            f"{workload.primary_metric} of {worst} {judged[worst]:.4f} is "
            f"{gap:.0%} below {best} {judged[best]:.4f} "
            f"(tolerance {gate.max_group_gap:.0%}){note}",
        )
    ]


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
        scores: holdout metrics per ``challenger``, each of the workload's
            ``baselines`` and, when there is one, ``champion``.
        gate: margin and tolerances.
        problems: failures of the challenger's model checks.

    Returns:
        The checks in the order above.
    """
    key, up = workload.primary_metric, workload.higher_is_better
    new = scores[CHALLENGER]
    found: list[Check] = [
        Check(
            "model checks",
            not problems,
            "; ".join(problems or []) or "answers are finite and well-formed",
        ),
        *_baseline_checks(workload, scores, gate),
        *_group_check(workload, new, gate),
    ]
    old = scores.get(CHAMPION)
    if old is None:
        return found
    bar = _margin_bar(old[key], gate.margin, up)
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
    judged, small = _judged_slices(workload, new, gate)
    slices = [k for k in judged if k in old]
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
                + (f": {', '.join(regressed[:5])}" if regressed else "")
                + small,
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
