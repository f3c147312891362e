"""Continuous training through the CLI: a drifted replay retrains after the drift.

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
    DRIFT_FROM,
    LATE_RATIO,
    html_days,
    late_ratio,
    ok,
    ok_here,
    read_report,
    retrain_log,
)


@pytest.mark.slow
def test_drifted_replay_retrains_after_the_drift(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = ok(
        home,
        "replay",
        "-w",
        "demand",
        "--days",
        str(DAYS),
        "--drift-from",
        str(DRIFT_FROM),
    )
    report = read_report(home, drift=True)
    days = report["days"]
    assert [d["drifted_input"] for d in days] == [i >= DRIFT_FROM for i in range(1, 31)]
    # The drift shows in the live metric: the last 10 days' mean live WAPE /
    # backtest WAPE exceeds the bound an undrifted replay stays under
    # (tests/e2e/test_replay_undrifted.py), even after the retrain.
    assert late_ratio(days) > LATE_RATIO
    # The monitor found the drift itself, and only once it was there.
    assert not any(d["drifted"] for d in days[: DRIFT_FROM - 1])
    assert any("sales_index" in d["drifted"] for d in days[DRIFT_FROM - 1 :])
    retrains = report["retrains"]
    assert retrains, out
    first = retrains[0]
    assert first["day"] >= DRIFT_FROM
    assert "drift" in first["trigger"].split(",")
    assert first["decision"] in {"promoted", "rejected"}

    logged = retrain_log(home)
    assert [e["date"] for e in logged] == [d["date"] for d in retrains]
    entry = logged[0]
    assert entry["triggers"][0]["name"] == "drift"
    assert "sales_index" in entry["triggers"][0]["reason"]
    assert [s["stage"] for s in entry["stages"]] == [
        "features",
        "train",
        "evaluate",
        "promote",
    ]
    # The cool-down spaces retrains by at least retrain.cooldown_days (7).
    spaced = [b["day"] - a["day"] for a, b in zip(retrains, retrains[1:], strict=False)]
    assert all(gap >= 7 for gap in spaced)

    history = ok_here(home, "history", "-w", "demand")
    assert "retrain" in history
    assert f"retrain on {first['date']} triggered by drift" in history
    verb = "promoted" if first["decision"] == "promoted" else "refused"
    assert f"gate {verb} v{entry['version']}" in history

    from mlflow import MlflowClient

    # Both URIs: an earlier test in this worker may have set a registry URI.
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = client.get_model_version("demand", entry["version"]).tags
    assert tags["loopml.retrain.triggers"] == "drift"
    assert tags["loopml.retrain.date"] == first["date"]
    # Evidently's HTML only for the first day of a drift (not while it goes
    # on), a retrained day, and the last.
    before = [{"drifted": []}, *days[:-1]]
    opened = {
        d["date"]
        for d, b in zip(days, before, strict=True)
        if d["drifted"] and not b["drifted"]
    }
    assert opened, days
    retrained = {d["date"] for d in days if d["decision"] != "none"}
    shown = html_days(home, days)
    assert shown == opened | retrained | {days[-1]["date"]}
    # Not every drifted day: the drift goes on after it opened.
    assert len(shown) < sum(bool(d["drifted"]) for d in days)

    expected = entry["version"] if first["decision"] == "promoted" else None
    if expected is not None:
        assert days[first["day"] - 1]["champion"] == expected
