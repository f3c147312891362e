"""False alarms and detections of the monitor's drift verdicts on generated data.

For every ``--step``-th day of the generator's second year, the demand drift
columns (``workloads/demand/monitoring.samples``) of the last
``monitor.window_days`` are judged against the ``monitor.reference_days``
before them, as ``loopml monitor`` does, with the default thresholds:

* ``no drift``: the seeded generator as is; every flagged column is a false
  alarm;
* ``drift``: the same world with ``drift_from_day`` (level x1.6 and the weekly
  pattern shifted by three days), judged on windows that start on or after
  the drift; a day without the ``sales_index`` flagged is a miss.

Recsys gets the same on its generator (role affinities swapped from
``drift_from_day``) with its interaction columns.

Not a test: run on demand (about a minute on 2 cores)::

    .venv/bin/python benchmarks/drift_false_alarms.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd

from loopml.core.config import MonitorSettings
from loopml.monitoring.drift import detect
from loopml.workloads.demand import monitoring as demand
from loopml.workloads.demand.data import generate as generate_demand
from loopml.workloads.recsys import monitoring as recsys
from loopml.workloads.recsys.generator import generate as generate_recsys

Samples = Callable[
    [pd.DataFrame, pd.Timestamp, pd.Timestamp, MonitorSettings],
    tuple[pd.DataFrame, pd.DataFrame],
]


def raw_sales(
    data: pd.DataFrame,
    reference_end: pd.Timestamp,
    day: pd.Timestamp,
    cfg: MonitorSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled raw sales, the column ``sales_index`` replaces (for comparison)."""
    days = data["date"]
    start = reference_end - pd.Timedelta(days=cfg.reference_days)
    reference = data[(days > start) & (days <= reference_end)]
    current = data[(days > day - pd.Timedelta(days=cfg.window_days)) & (days <= day)]
    return reference[["sales"]].astype(float), current[["sales"]].astype(float)


def judge(
    data: pd.DataFrame,
    days: list[pd.Timestamp],
    samples: Samples,
    numerical: list[str],
    categorical: list[str],
    cfg: MonitorSettings,
) -> pd.DataFrame:
    """One row per monitored day: each column's score and verdict."""
    rows = []
    for day in days:
        reference_end = day - pd.Timedelta(days=cfg.window_days)
        reference, current = samples(data, reference_end, day, cfg)
        result = detect(reference, current, cfg, numerical, categorical, False)
        row: dict[str, object] = {"day": day.date(), "share": result.share}
        for name, column in result.columns.items():
            row[name] = column.score
            row[f"{name}_drifted"] = column.drifted
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(name: str, frame: pd.DataFrame, columns: list[str]) -> None:
    """Print days judged, days flagged per column and the largest score."""
    print(f"\n{name}: {len(frame)} monitored days")
    for column in columns:
        if column not in frame:
            print(f"  {column:18s} never judged")
            continue
        flagged = int(frame[f"{column}_drifted"].fillna(False).astype(bool).sum())
        print(
            f"  {column:18s} flagged {flagged:3d}/{len(frame)}  "
            f"max {frame[column].max():.3f}  median {frame[column].median():.3f}"
        )
    print(f"  dataset drift on {int((frame['share'] >= 0.5).sum())} days")


def main() -> None:
    """Run both workloads without and with drift; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=7, help="days between checks")
    args = parser.parse_args()
    cfg = MonitorSettings()

    n_days, drift_day = 730, 500
    clean = generate_demand(3, 10, n_days, "2024-01-01", seed=42)
    start = pd.Timestamp("2024-01-01")
    days = [start + pd.Timedelta(days=d) for d in range(365, n_days, args.step)]
    columns = demand.NUMERICAL
    summarise(
        "demand, no drift",
        judge(clean, days, demand.samples, columns, [], cfg),
        columns,
    )
    summarise(
        "demand, no drift, pooled raw sales",
        judge(clean, days, raw_sales, ["sales"], [], cfg),
        ["sales"],
    )
    drifted = generate_demand(3, 10, n_days, "2024-01-01", 42, drift_day)
    after = [
        d
        for d in days
        if d - pd.Timedelta(days=cfg.window_days - 1)
        >= start + pd.Timedelta(days=drift_day)
    ]
    summarise(
        "demand, drift from day 500 (windows after it)",
        judge(drifted, after[:4], demand.samples, columns, [], cfg),
        columns,
    )
    summarise(
        "demand, drift from day 500, pooled raw sales",
        judge(drifted, after[:4], raw_sales, ["sales"], [], cfg),
        ["sales"],
    )

    n_days, drift_day = 240, 180
    columns = recsys.NUMERICAL + recsys.CATEGORICAL
    for title, drift in (
        ("no drift", None),
        (f"drift from day {drift_day}", drift_day),
    ):
        tables = generate_recsys(600, 120, n_days, "2025-01-01", 42, drift)
        data = tables.to_frame()
        first = pd.Timestamp("2025-01-01")
        days = [first + pd.Timedelta(days=d) for d in range(120, n_days, args.step)]
        if drift is not None:
            days = [
                d
                for d in days
                if d - pd.Timedelta(days=6) >= first + pd.Timedelta(days=drift)
            ]
        summarise(
            f"recsys, {title}",
            judge(
                data, days, recsys.samples, recsys.NUMERICAL, recsys.CATEGORICAL, cfg
            ),
            columns,
        )


if __name__ == "__main__":
    main()
