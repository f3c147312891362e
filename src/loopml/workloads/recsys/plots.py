"""Evaluation figures, drawn on ``matplotlib.figure.Figure`` (no pyplot state).

Matplotlib is imported when a figure is drawn: the workload module imports
this one, and a process that only serves or scores (an API replica, a batch
worker) draws none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CURVES = ("ndcg", "recall", "precision")
_LABELS = {"baseline": "strongest baseline", "ranker": "two-stage ranker"}


def metrics_at_k_plot(results: dict[str, dict[str, float]]) -> Figure:
    """NDCG, recall and precision against k for every evaluated model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, len(_CURVES))
    for ax, metric in zip(axes, _CURVES, strict=True):
        for name, metrics in results.items():
            points = sorted(
                (int(key.rsplit("_", 1)[1]), value)
                for key, value in metrics.items()
                if key.startswith(f"{metric}_at_") and key.rsplit("_", 1)[1].isdigit()
            )
            ax.plot(
                *zip(*points, strict=True), marker="o", label=_LABELS.get(name, name)
            )
        ax.set_title(f"{metric}@k", fontsize=10)
        ax.set_xlabel("k")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def slice_table(results: dict[str, dict[str, float]], k: int) -> pd.DataFrame:
    """NDCG@k per segment (and the cold slice), ranker vs baseline."""
    prefix = f"ndcg_at_{k}_"
    rows = {
        name: {
            key.removeprefix(prefix).removeprefix("segment_"): value
            for key, value in results[name].items()
            if key.startswith(prefix)
        }
        for name in ("ranker", "baseline")
    }
    table = pd.DataFrame(rows).rename_axis("slice").reset_index()
    return table.assign(uplift=table["ranker"] / table["baseline"] - 1.0)


def group_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Per-group figures (age bands: NDCG, users) and gaps, model x protocol."""
    rows = {
        name: {k: v for k, v in metrics.items() if "group_" in k}
        for name, metrics in results.items()
    }
    return pd.DataFrame(rows).rename_axis("metric").reset_index()


def slice_plot(table: pd.DataFrame, k: int) -> Figure:
    """Horizontal bars of NDCG@k per slice, ranker vs baseline."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.0 + 0.32 * len(table)))
    ax = fig.subplots()
    position = range(len(table))
    ax.barh(
        [p + 0.2 for p in position],
        table["ranker"],
        height=0.4,
        label=_LABELS["ranker"],
    )
    ax.barh(
        [p - 0.2 for p in position],
        table["baseline"],
        height=0.4,
        label=_LABELS["baseline"],
    )
    ax.set_yticks(list(position), table["slice"], fontsize=8)
    ax.set_xlabel(f"NDCG@{k}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
