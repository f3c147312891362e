"""The generic replay on recsys: new days of the learning platform, monitored.

In process, three days after the tiny history (150 employees x 40 courses x
120 days), drifted from the third, from a copy of the session's trained
recsys home (``conftest.TrainedHomes``: ``loopml run -w recsys`` with the
tiny settings, what the replay would otherwise run first). The replay of a
home without a champion, which runs that loop itself, is the demand
replays' (tests/e2e/test_replay*.py, through the CLI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.orchestration import replay
from loopml.workloads.recsys.replay import RecsysDaySource

DAYS = 3


@pytest.mark.slow
def test_recsys_replay_ingests_new_days_and_monitors_each(recsys_home: Path) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    report = replay.run(settings, "recsys", DAYS, drift_from=DAYS)

    assert [d.day for d in report.days] == list(range(1, DAYS + 1))
    assert [d.drifted_input for d in report.days] == [False, False, True]
    assert all(d.champion == "1" and d.decision == "none" for d in report.days)
    # Every day was judged on its interaction mix; nothing is measured live.
    assert all(d.top_score != "-" and d.live_ratio is None for d in report.days)
    folder = settings.home / "reports" / "recsys"
    for d in report.days:
        doc = json.loads((folder / f"monitor-{d.date}.json").read_text())
        assert doc["not_measured"] == ["prediction_drift", "performance"]
    assert Path(report.paths["md"]).parent == folder
    assert "3 days of recsys" in Path(report.paths["md"]).read_text()
    assert not (settings.home / "inference" / "recsys").exists()

    # The validated log now ends with exactly the source's new days.
    validated = pd.read_parquet(settings.data_dir("recsys") / "validated.parquet")
    first = pd.Timestamp(report.first_date)
    new = validated[validated["timestamp"] >= first].reset_index(drop=True)
    expected = RecsysDaySource().days(settings, first, DAYS, drift_from=DAYS)
    assert sum(d.rows for d in report.days) == len(expected) == len(new) > 0
    pd.testing.assert_frame_equal(
        new[expected.columns], expected, check_dtype=False, check_categorical=False
    )
