"""Continuous training through the CLI: replayed days, drifted or not.

Each test replays 30 generated days after the tiny history (2 stores x 4
items x 400 days; 7-day monitor windows against 56 reference days), ~1.5-2
minutes on 2 busy cores. Nothing is faked: the drift comes from the
generator's ``drift_from_day`` and is found by ``loopml monitor``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conftest

LOOPML = [sys.executable, "-m", "loopml.cli"]
DAYS = 30
DRIFT_FROM = 15


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOOPML, *args],
        # Wide enough that the console never wraps a message (or a path).
        env=conftest.subprocess_env(home, COLUMNS="2000", **env),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _ok(home: Path, *args: str, **env: str) -> str:
    result = _cli(home, *args, **env)
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _report(home: Path, drift: bool) -> dict[str, Any]:
    folder = home / "reports" / "demand"
    suffix = f"-drift{DRIFT_FROM}" if drift else ""
    (path,) = folder.glob(f"replay-*-{DAYS}d{suffix}.json")
    assert path.with_suffix(".md").is_file()
    report: dict[str, Any] = json.loads(path.read_text())
    assert [d["day"] for d in report["days"]] == list(range(1, DAYS + 1))
    return report


def _retrain_log(home: Path) -> list[dict[str, Any]]:
    path = home / "state" / "demand" / "retrain.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _champion(home: Path) -> str:
    status = json.loads(_ok(home, "status", "--json"))
    return str(status["workloads"]["demand"]["champion"]["version"])


@pytest.mark.slow
def test_drifted_replay_retrains_after_the_drift(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = _ok(
        home,
        "replay",
        "-w",
        "demand",
        "--days",
        str(DAYS),
        "--drift-from",
        str(DRIFT_FROM),
    )
    report = _report(home, drift=True)
    days = report["days"]
    assert [d["drifted_input"] for d in days] == [i >= DRIFT_FROM for i in range(1, 31)]
    # The monitor found the drift itself, and only once it was there.
    assert not any(d["drifted"] for d in days[: DRIFT_FROM - 1])
    assert any("sales_index" in d["drifted"] for d in days[DRIFT_FROM - 1 :])
    retrains = report["retrains"]
    assert retrains, out
    first = retrains[0]
    assert first["day"] >= DRIFT_FROM
    assert "drift" in first["trigger"].split(",")
    assert first["decision"] in {"promoted", "rejected"}

    logged = _retrain_log(home)
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

    history = _ok(home, "history", "-w", "demand")
    assert "retrain" in history
    assert f"retrain on {first['date']} triggered by drift" in history
    verb = "promoted" if first["decision"] == "promoted" else "refused"
    assert f"gate {verb} v{entry['version']}" in history

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    tags = client.get_model_version("demand", entry["version"]).tags
    assert tags["loopml.retrain.triggers"] == "drift"
    assert tags["loopml.retrain.date"] == first["date"]
    expected = entry["version"] if first["decision"] == "promoted" else None
    if expected is not None:
        assert days[first["day"] - 1]["champion"] == expected


@pytest.mark.slow
def test_undrifted_replay_never_retrains(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _ok(home, "replay", "-w", "demand", "--days", str(DAYS))
    report = _report(home, drift=False)
    days = report["days"]
    assert report["retrains"] == []
    assert {d["decision"] for d in days} == {"none"}
    assert not any(d["drifted"] for d in days)
    # Not vacuous: every day was judged, with a live metric on most of them.
    assert all(
        d["top_score"].startswith(("sales_index", "price", "promo")) for d in days
    )
    assert sum(d["live_n"] >= 30 for d in days) >= DAYS - 5
    assert _retrain_log(home) == []
    before = _champion(home)
    assert "retrain" not in _ok(home, "history", "-w", "demand")

    # The policy says why nothing fires, and changes nothing.
    said = _ok(home, "retrain", "-w", "demand")
    assert "no trigger on" in said and "drift: none" in said
    assert _retrain_log(home) == []

    # A failing stage: the champion stays, the log says so, the exit is 1.
    validated = home / "data" / "demand" / "validated.parquet"
    kept = validated.read_bytes()
    validated.write_bytes(b"not a parquet file")
    last = days[-1]["date"]
    failed = _cli(
        home, "retrain", "-w", "demand", "--date", last, LOOPML_RETRAIN__EVERY_DAYS="1"
    )
    validated.write_bytes(kept)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "retrain failed" in failed.stderr
    assert f"the champion is unchanged (v{before})" in failed.stderr
    assert _champion(home) == before
    (entry,) = _retrain_log(home)
    assert entry["decision"] == "failed"
    assert entry["triggers"][0]["name"] == "schedule"
