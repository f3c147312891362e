"""Data drift per column with Evidently, judged by distances, not p-values.

A p-value answers "could these two samples come from one distribution?". On
the large samples of production, the answer is almost always "no" even when
nothing that matters changed (a shift of 0.02 standard deviations is
"significant" at n = 200,000), and our rows are not independent (the same
series on consecutive days), which makes p-values over-confident at any n.
So each column gets a distance with a threshold in config
(:class:`~loopml.core.config.MonitorSettings`):

* numbers (and 0/1 flags): the normed Wasserstein distance, i.e. how far
  the values moved, in standard deviations of the reference
  (``wasserstein_threshold``);
* categories: the population stability index (``psi_threshold``).

A column with fewer than ``min_rows`` non-missing values in either sample
gets no verdict (``judged: false``): too little data to say. A category
column also needs :data:`MIN_ROWS_PER_CATEGORY` rows per category of the
reference in both samples: PSI sums over categories, and an empty or nearly
empty cell of a small sample adds a large term by chance (measured on the
recsys generator: the 78-cell job role x course category mix scored PSI
0.32-0.51 on 7-day windows of ~330 undrifted rows, 0.13-0.17 on 28-day
windows of ~1,270).

Evidently computes the scores (its stattests, the functions its
``DataDriftPreset`` calls with a method and threshold per column) and renders
the HTML report; the verdicts here are its own. The report is built only when
its HTML is written (:meth:`DriftResult.save_html`): Evidently draws every
plotly figure while it computes a report, about 20 times the cost of the
scores, which is what a replay's quiet days skip.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from loopml.core.config import MonitorSettings

log = logging.getLogger(__name__)

NUMERICAL = "num"
CATEGORICAL = "cat"
VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
#: rows per reference category a category column needs for a PSI verdict.
MIN_ROWS_PER_CATEGORY = 10


@dataclass
class ColumnDrift:
    """The verdict on one column."""

    method: str
    threshold: float
    n_reference: int
    n_current: int
    judged: bool
    score: float | None = None
    drifted: bool = False


@dataclass
class DriftResult:
    """Per-column verdicts, the share that drifted and what the report shows.

    ``samples`` holds the judged columns of the reference and current samples
    (``None`` when no column was judged); :meth:`report` builds Evidently's
    report from them, only when asked.
    """

    columns: dict[str, ColumnDrift]
    share: float
    dataset_drift: bool
    samples: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False)
    categorical: tuple[str, ...] = ()
    drift_share: float = 0.5
    summary: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able headline (no samples)."""
        return {
            "share": self.share,
            "dataset_drift": self.dataset_drift,
            "drifted": [c for c, v in self.columns.items() if v.drifted],
            "columns": {c: asdict(v) for c, v in self.columns.items()},
        }

    def report(self) -> Any:
        """Evidently's report (snapshot) of the judged columns; None without any.

        ``DataDriftPreset`` with each column's method and threshold, and
        ``DataSummaryPreset`` when ``summary``. Its drift scores are the
        verdicts' (the same stattests on the same values); a difference is
        logged as a warning.
        """
        if self.samples is None:
            return None
        with warnings.catch_warnings():  # its own deprecations, not the user's
            warnings.simplefilter("ignore")
            from evidently import DataDefinition, Dataset, Report
            from evidently.presets import DataDriftPreset, DataSummaryPreset

        reference, current = self.samples
        judged = list(reference.columns)
        definition = DataDefinition(
            numerical_columns=[c for c in judged if c not in self.categorical],
            categorical_columns=[c for c in judged if c in self.categorical],
        )
        preset = DataDriftPreset(
            columns=judged,
            drift_share=self.drift_share,
            per_column_method={c: self.columns[c].method for c in judged},
            per_column_threshold={c: self.columns[c].threshold for c in judged},
        )
        metrics: list[Any] = (
            [preset, DataSummaryPreset(columns=judged)] if self.summary else [preset]
        )
        snapshot = Report(metrics).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        differ = {
            column: score
            for column, score in _scores(snapshot).items()
            if score != self.columns[column].score
        }
        if differ:
            log.warning(
                "the report's drift scores differ from the verdicts: %s", differ
            )
        return snapshot

    def save_html(self, path: Path) -> None:
        """Write Evidently's HTML report (nothing when no column was judged)."""
        snapshot = self.report()
        if snapshot is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(path))


def method_for(kind: str, cfg: MonitorSettings) -> tuple[str, float]:
    """The Evidently method name and threshold for a kind of column."""
    if kind == CATEGORICAL:
        return "psi", cfg.psi_threshold
    return "wasserstein", cfg.wasserstein_threshold


def _scores(snapshot: Any) -> dict[str, float]:
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == VALUE_DRIFT:
            scores[str(config["column"])] = float(metric["value"])
    return scores


def score(
    reference: pd.Series, current: pd.Series, kind: str, method: str, threshold: float
) -> float:
    """Evidently's drift score of one column, as its ``ValueDrift`` computes it.

    The same stattest on the same values as the report's (infinities and
    missing values dropped), without the report's plotly figures.
    """
    with warnings.catch_warnings():  # its own deprecations, not the user's
        warnings.simplefilter("ignore")
        from evidently.legacy.calculations.stattests import get_stattest
        from evidently.legacy.core import ColumnType

    column_type = (
        ColumnType.Categorical if kind == CATEGORICAL else ColumnType.Numerical
    )
    reference = reference.replace([-np.inf, np.inf], np.nan).dropna()
    current = current.replace([-np.inf, np.inf], np.nan).dropna()
    test = get_stattest(reference, current, column_type, method)
    return float(test(reference, current, column_type, threshold).drift_score)


def detect(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: MonitorSettings,
    numerical: list[str],
    categorical: list[str] | None = None,
    summary: bool = True,
) -> DriftResult:
    """Judge every column of ``current`` against ``reference``.

    Args:
        reference: the reference sample (training window).
        current: the sample to judge.
        cfg: methods' thresholds, ``min_rows`` and ``drift_share``.
        numerical: numeric columns (0/1 flags included).
        categorical: categorical columns.
        summary: add Evidently's data summary to the HTML report.

    Returns:
        The verdicts; ``share`` is over the judged columns only.
    """
    categorical = categorical or []
    kinds = {c: NUMERICAL for c in numerical} | {c: CATEGORICAL for c in categorical}
    columns: dict[str, ColumnDrift] = {}
    for column, kind in kinds.items():
        method, threshold = method_for(kind, cfg)
        n_ref = int(reference[column].notna().sum())
        n_cur = int(current[column].notna().sum())
        enough = min(n_ref, n_cur) >= cfg.min_rows
        if enough and kind == CATEGORICAL:
            n_categories = int(reference[column].nunique())
            enough = min(n_ref, n_cur) >= MIN_ROWS_PER_CATEGORY * n_categories
        if enough and kind == NUMERICAL:
            # A constant reference has no scale to measure a move in.
            enough = bool(np.nanstd(reference[column].to_numpy(dtype=float)) > 0)
        columns[column] = ColumnDrift(method, threshold, n_ref, n_cur, enough)
    judged = [c for c, v in columns.items() if v.judged]
    if not judged:
        log.info("no column has enough rows (min_rows=%d) to judge", cfg.min_rows)
        return DriftResult(columns, 0.0, False)
    for column in judged:
        verdict = columns[column]
        verdict.score = score(
            reference[column],
            current[column],
            kinds[column],
            verdict.method,
            verdict.threshold,
        )
        # Both are distances: drift when the score reaches the threshold.
        verdict.drifted = bool(verdict.score >= verdict.threshold)
    share = sum(columns[c].drifted for c in judged) / len(judged)
    return DriftResult(
        columns,
        share,
        share >= cfg.drift_share,
        samples=(reference[judged], current[judged]),
        categorical=tuple(c for c in judged if kinds[c] == CATEGORICAL),
        drift_share=cfg.drift_share,
        summary=summary,
    )
