"""Continuous training through the CLI: an undrifted replay never retrains.

The replay covers 30 generated days after the tiny history (2 stores x 4
items x 400 days; 7-day monitor windows against 56 reference days), ~1.5-2
minutes on 2 busy cores. Nothing is faked: the drift comes from the
generator's ``drift_from_day`` and is found by ``loopml monitor``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from replaying import (
    DAYS,
    LATE_RATIO,
    MAX_RATIO,
    MIN_LIVE_N,
    champion,
    here,
    html_days,
    late_ratio,
    ok,
    ok_here,
    read_report,
    retrain_log,
)


@pytest.mark.slow
def test_undrifted_replay_never_retrains(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok(home, "replay", "-w", "demand", "--days", str(DAYS))
    report = read_report(home, drift=False)
    days = report["days"]
    assert report["retrains"] == []
    assert {d["decision"] for d in days} == {"none"}
    assert not any(d["drifted"] for d in days)
    # Not vacuous: every day was judged, with a live metric on most of them.
    assert all(
        d["top_score"].startswith(("sales_index", "price", "promo")) for d in days
    )
    assert sum(d["live_n"] >= 30 for d in days) >= DAYS - 5

    # Staleness is bounded: the champion of day 0 is never retrained, yet its
    # live WAPE stays within MAX_RATIO of its backtest WAPE on every day with
    # enough rows, and a month on it is still close to it (the drifted
    # replay, tests/e2e/test_replay.py, goes over the same bound).
    judged = [d for d in days if d["live_n"] >= MIN_LIVE_N]
    assert len(judged) >= DAYS - 5
    assert all(d["live_ratio"] <= MAX_RATIO for d in judged), judged
    assert late_ratio(days) <= LATE_RATIO
    assert retrain_log(home) == []
    # Nothing to show but the last day: its HTML is the only one.
    assert html_days(home, days) == {days[-1]["date"]}
    before = champion(home)
    assert "retrain" not in ok_here(home, "history", "-w", "demand")

    # The policy says why nothing fires, and changes nothing.
    said = ok_here(home, "retrain", "-w", "demand")
    assert "no trigger on" in said and "drift: none" in said
    assert retrain_log(home) == []

    # A failing stage: the champion stays, the log says so, the exit is 1.
    validated = home / "data" / "demand" / "validated.parquet"
    kept = validated.read_bytes()
    validated.write_bytes(b"not a parquet file")
    last = days[-1]["date"]
    failed = here(
        home, "retrain", "-w", "demand", "--date", last, LOOPML_RETRAIN__EVERY_DAYS="1"
    )
    validated.write_bytes(kept)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "retrain failed" in failed.stderr
    assert f"the champion is unchanged (v{before})" in failed.stderr
    assert champion(home) == before
    (entry,) = retrain_log(home)
    assert entry["decision"] == "failed"
    assert entry["triggers"][0]["name"] == "schedule"
