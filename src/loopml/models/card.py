"""Model cards: one Markdown page per promoted version.

Written by ``promote`` when a version becomes champion, logged as
``model_card.md`` on the version's MLflow run (so it travels with the
registry) and shown by ``loopml status --card WORKLOAD``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlflow import MlflowClient

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from loopml.models.gate import Check
    from loopml.models.registry import Decision
    from loopml.sdk.workload import Workload

CARD_FILE = "model_card.md"


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4f}"


def render(
    workload: Workload,
    version: ModelVersion,
    scores: dict[str, dict[str, float]],
    checks: list[Check],
    decision: Decision,
    params: dict[str, str],
) -> str:
    """The card of a promoted version as Markdown.

    Args:
        workload: the workload (metrics, intended use, limits).
        version: the registered version (its tags hold the lineage).
        scores: the gate's holdout metrics per side (challenger = this one).
        checks: the gate's checks.
        decision: the promotion decision.
        params: the training run's parameters.
    """
    tags = version.tags or {}
    sides = [s for s in ("challenger", "champion", *workload.baselines) if s in scores]
    header = {"challenger": "this model", "champion": "previous champion"}
    lines = [
        f"# Model card: {workload.name} v{version.version}",
        "",
        f"{workload.description}",
        "",
        f"Promoted {decision.when} by {decision.who}"
        + (f", replacing v{decision.from_version}" if decision.from_version else "")
        + f". Reason: {decision.reason}.",
        "",
        "## Data and lineage",
        "",
        f"- data version (md5 of the validated table): "
        f"`{tags.get('loopml.data_version', 'unknown')}`",
        f"- trained on data up to {params.get('train_until', 'unknown')}; "
        "the gate's holdout is everything after",
        f"- model: `{params.get('model', 'unknown')}`, dataset "
        f"`{params.get('dataset', 'unknown')}`, seed {params.get('seed', '?')}",
        f"- git commit `{tags.get('loopml.git_commit', 'unknown')}` "
        f"(dirty: {tags.get('loopml.git_dirty', 'unknown')}), lock "
        f"`{tags.get('loopml.lock_hash', 'unknown')}`",
        f"- MLflow run `{version.run_id}`",
    ]
    if platform := tags.get("loopml.platform_commit"):  # a project's own repository
        lines.insert(-1, f"- loopml commit `{platform}`")
    views = sorted(
        k.split(".", 2)[2] for k in tags if k.startswith("loopml.feature_view.")
    )
    if views:
        lines.append(f"- Feast feature views: {', '.join(f'`{v}`' for v in views)}")
    keys = [workload.primary_metric, *workload.guard_metrics]
    keys += [k for k in scores["challenger"] if k not in keys and "_segment_" not in k]
    keys = [k for k in keys if not k.startswith(workload.slice_prefix or "\0")]
    keys = [k for k in keys if not k.startswith(workload.group_prefix or "\0")]
    lines += [
        "",
        "## Metrics on the latest holdout",
        "",
        "| metric | " + " | ".join(header.get(s, s) for s in sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for key in keys:
        if key.startswith("n_"):
            continue
        row = [_fmt(scores[s].get(key)) for s in sides]
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    prefix = workload.slice_prefix
    slices = sorted(k for k in scores["challenger"] if prefix and k.startswith(prefix))
    if slices:
        lines += [
            "",
            "## Slices",
            "",
            "| slice | " + " | ".join(header.get(s, s) for s in sides) + " |",
            "|---|" + "---:|" * len(sides),
        ]
        for key in slices:
            row = [_fmt(scores[s].get(key)) for s in sides]
            lines.append(f"| {key[len(prefix) :]} | " + " | ".join(row) + " |")
    lines += _groups(workload, scores, sides, header)
    lines += ["", "## Gate", ""]
    lines += [
        f"- {'pass' if c.passed else 'FAIL'}: {c.name}: {c.message}" for c in checks
    ]
    lines += [
        "",
        "## Intended use",
        "",
        workload.intended_use,
        "",
        "## Limits",
        "",
        workload.limitations,
        "",
    ]
    return "\n".join(lines)


def _groups(
    workload: Workload,
    scores: dict[str, dict[str, float]],
    sides: list[str],
    header: dict[str, str],
) -> list[str]:
    """The primary metric per group of the sensitive attribute, if any."""
    prefix, size = workload.group_prefix, workload.group_size_prefix
    groups = sorted(k for k in scores["challenger"] if prefix and k.startswith(prefix))
    if not groups:
        return []
    lines = [
        "",
        "## Groups (inclusion)",
        "",
        f"{workload.primary_metric} per group of the sensitive attribute; the "
        "gate's group gap check compares this model's best and worst group.",
        "",
        "| group | "
        + ("test size | " if size else "")
        + " | ".join(header.get(s, s) for s in sides)
        + " |",
        "|---|" + ("---:|" if size else "") + "---:|" * len(sides),
    ]
    for key in groups:
        name = key[len(prefix) :]
        count = scores["challenger"].get(size + name) if size else None
        row = [_fmt(scores[s].get(key)) for s in sides]
        shown = (("-" if count is None else f"{count:.0f}") + " | ") if size else ""
        lines.append(f"| {name} | {shown}" + " | ".join(row) + " |")
    return lines


def log_card(version: ModelVersion, text: str) -> None:
    """Attach the card to the version's run."""
    if version.run_id:
        MlflowClient().log_text(version.run_id, text, CARD_FILE)


def read_card(version: ModelVersion) -> str | None:
    """The card of a version, or None when it has none (never promoted)."""
    import os

    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not version.run_id:
        return None
    try:
        return mlflow.artifacts.load_text(f"runs:/{version.run_id}/{CARD_FILE}")
    except (MlflowException, OSError):
        return None
