"""The day sources of ``loopml replay``: new days after the history, stable.

A replay must never restate the history, and a longer replay must live the
same first days as a shorter one: both need generators that only append
days when asked for more.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.core.config import Settings, load_settings
from loopml.workloads.demand.replay import DemandDaySource
from loopml.workloads.demand.workload import DemandWorkload
from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.generator import generate
from loopml.workloads.recsys.replay import RecsysDaySource
from loopml.workloads.recsys.workload import RecsysWorkload


@pytest.fixture()
def settings(tiny_env: Path) -> Settings:
    return load_settings("default")


def _before(frame: pd.DataFrame, column: str, end: pd.Timestamp) -> pd.DataFrame:
    return frame[frame[column] < end].reset_index(drop=True)


def test_recsys_generator_extra_days_keep_the_history() -> None:
    end = pd.Timestamp("2025-01-01") + pd.Timedelta(days=60)
    history = generate(60, 25, 60, seed=3)
    longer = generate(60, 25, 60, seed=3, extra_days=10)
    pd.testing.assert_frame_equal(longer.users, history.users)
    pd.testing.assert_frame_equal(longer.items, history.items)
    pd.testing.assert_frame_equal(
        _before(longer.interactions, "timestamp", end), history.interactions
    )
    assert (longer.interactions["timestamp"] >= end).sum() > 0


def test_recsys_days_are_prefix_stable_after_the_history(settings: Settings) -> None:
    cfg = RecsysSettings.of(settings)
    first = pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.n_days)
    source = RecsysDaySource()
    week = source.days(settings, first, 7)
    fortnight = source.days(settings, first, 14)
    days = fortnight["timestamp"].dt.normalize()
    assert days.min() == first and days.max() < first + pd.Timedelta(days=14)
    assert days.nunique() >= 12  # a quiet weekend day may have no interaction
    pd.testing.assert_frame_equal(
        _before(fortnight, "timestamp", first + pd.Timedelta(days=7)), week
    )
    # The same columns, employees and courses as the history it continues.
    history = RecsysWorkload().load_raw(settings)
    assert list(fortnight.columns) == list(history.columns)
    assert set(fortnight["user_id"]) <= set(generate(150, 40, 120).users["user_id"])
    # A later start continues the same world (a second replay after a first).
    later = source.days(settings, first + pd.Timedelta(days=7), 7)
    pd.testing.assert_frame_equal(
        fortnight[days >= first + pd.Timedelta(days=7)].reset_index(drop=True), later
    )


def test_recsys_drift_changes_only_the_days_from_the_drift(settings: Settings) -> None:
    cfg = RecsysSettings.of(settings)
    first = pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.n_days)
    source = RecsysDaySource()
    calm = source.days(settings, first, 28)
    drifted = source.days(settings, first, 28, drift_from=8)
    cut = first + pd.Timedelta(days=7)
    pd.testing.assert_frame_equal(
        _before(drifted, "timestamp", cut), _before(calm, "timestamp", cut)
    )
    after = drifted[drifted["timestamp"] >= cut]
    assert not after.equals(calm[calm["timestamp"] >= cut].reset_index(drop=True))
    # Each role takes the next role's categories: the mix moves.
    mix = pd.crosstab(after["segment"], after["category"], normalize="index")
    before = calm[calm["timestamp"] >= cut]
    usual = pd.crosstab(before["segment"], before["category"], normalize="index")
    assert (mix - usual).abs().max().max() > 0.2


def test_demand_days_are_the_generated_days_after_the_history(
    settings: Settings,
) -> None:
    history = DemandWorkload().load_raw(settings)
    first = history["date"].max() + pd.Timedelta(days=1)
    source = DemandDaySource()
    days = source.days(settings, first, 5)
    assert sorted(days["date"].unique()) == list(pd.date_range(first, periods=5))
    one = DemandWorkload().load_day(settings, first + pd.Timedelta(days=2))
    pd.testing.assert_frame_equal(
        days[days["date"] == first + pd.Timedelta(days=2)].reset_index(drop=True), one
    )
    # Drift from replay day 3: level x1.6 from then on, the days before kept.
    calm, drifted = (
        source.days(settings, first, 16),
        source.days(settings, first, 16, 3),
    )
    early = first + pd.Timedelta(days=2)
    pd.testing.assert_frame_equal(
        _before(drifted, "date", early), _before(calm, "date", early)
    )
    late = drifted[drifted["date"] >= early]["sales"].sum()
    assert late > 1.3 * calm[calm["date"] >= early]["sales"].sum()
