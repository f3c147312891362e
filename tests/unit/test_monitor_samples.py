"""The monitored columns of both workloads, on their generators; the summary."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.core.config import MonitorSettings
from loopml.monitoring.drift import detect
from loopml.stages.monitor import summary_line
from loopml.workloads.demand import monitoring as demand
from loopml.workloads.demand.data import generate as generate_demand
from loopml.workloads.demand.monitoring import DemandMonitor
from loopml.workloads.recsys import monitoring as recsys
from loopml.workloads.recsys.generator import generate as generate_recsys
from loopml.workloads.recsys.monitoring import RecsysMonitor

CFG = MonitorSettings()


def test_sales_index_is_one_as_usual_and_finds_a_level_shift() -> None:
    start = pd.Timestamp("2024-01-01")
    day = start + pd.Timedelta(days=299)
    reference_end = day - pd.Timedelta(days=CFG.window_days)
    clean = generate_demand(3, 10, 300, "2024-01-01", seed=7)
    reference, current = demand.samples(clean, reference_end, day, CFG)
    assert list(reference.columns) == demand.NUMERICAL
    assert len(current) == 30 * CFG.window_days
    assert reference["sales_index"].mean() == pytest.approx(1.0, abs=0.05)
    calm = detect(reference, current, CFG, demand.NUMERICAL, summary=False)
    assert calm.columns["sales_index"].drifted is False

    shifted = generate_demand(3, 10, 300, "2024-01-01", seed=7, drift_from_day=293)
    reference, current = demand.samples(shifted, reference_end, day, CFG)
    moved = detect(reference, current, CFG, demand.NUMERICAL, summary=False)
    assert moved.columns["sales_index"].drifted is True
    assert moved.columns["price"].drifted is False


def test_recsys_columns_count_over_equal_blocks() -> None:
    data = generate_recsys(150, 40, 120, "2025-01-01", seed=3).to_frame()
    day = data["timestamp"].max().normalize()
    reference_end = day - pd.Timedelta(days=CFG.window_days)
    reference, current = recsys.samples(data, reference_end, day, CFG)
    assert set(reference.columns) == set(recsys.NUMERICAL + recsys.CATEGORICAL)
    in_window = data["timestamp"].dt.normalize() > reference_end
    assert len(current) == int(in_window.sum())
    # The current window is one block: activity is the user's count in it.
    window = data[in_window]
    expected = window.groupby("user_id")["user_id"].transform("size")
    assert current["user_activity"].tolist() == expected.astype(float).tolist()
    assert reference["item_popularity"].max() <= 100.0
    quality = recsys.quality(data, day, CFG.window_days)
    assert quality["rows"] == len(current)
    assert quality["missing_share"] == 0.0


def test_recsys_new_items_move_item_popularity() -> None:
    data = generate_recsys(150, 40, 120, "2025-01-01", seed=3).to_frame()
    day = data["timestamp"].max().normalize()
    reference_end = day - pd.Timedelta(days=CFG.window_days)
    window = data["timestamp"].dt.normalize() > reference_end
    # Everyone suddenly takes courses the reference never saw.
    moved = data.assign(
        item_id=data["item_id"].where(~window, "NEW-" + data["item_id"])
    )
    reference, current = recsys.samples(moved, reference_end, day, CFG)
    assert (current["item_popularity"] == 0).all()
    verdict = detect(reference, current, CFG, ["item_popularity"], summary=False)
    assert verdict.columns["item_popularity"].drifted is True


def test_the_workloads_monitors_watch_these_columns() -> None:
    assert DemandMonitor.numerical == tuple(demand.NUMERICAL)
    assert RecsysMonitor.categorical == tuple(recsys.CATEGORICAL)
    # recsys measures nothing live: the monitor reports it as not measured.
    assert RecsysMonitor().live(None) == {}  # type: ignore[arg-type]


def test_the_summary_says_why_when_only_the_predictions_drifted() -> None:
    doc = {
        "date": "2025-03-01",
        "drift": {"share": 0.0, "drifted": []},
        "prediction_drift": {"drifted": True, "score": 0.83, "threshold": 0.6},
        "model_age_days": None,
    }
    line = summary_line(doc, "monitor-2025-03-01.json")
    assert line == (
        "2025-03-01: drift share 0.00 (no column drifted; predictions drifted "
        "(0.83 >= 0.6)), model age unknown -> monitor-2025-03-01.json"
    )
    doc["drift"] = {"share": 0.5, "drifted": ["sales_index"]}
    doc["prediction_drift"] = {"drifted": False, "score": 0.1, "threshold": 0.6}
    doc["model_age_days"] = 4
    assert summary_line(doc, "m.json") == (
        "2025-03-01: drift share 0.50 (sales_index), model age 4 d -> m.json"
    )
