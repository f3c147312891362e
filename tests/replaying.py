"""Helpers of the replay tests (tests/e2e/test_replay*.py): the CLI and its files.

Two files, one replay each, so that pytest-xdist runs them side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import conftest

LOOPML = [sys.executable, "-m", "loopml.cli"]
DAYS = 30
DRIFT_FROM = 15
#: Staleness bounds on the live metric (live WAPE / backtest WAPE) of a
#: champion that is never retrained: every day judged on 30+ rows stays at
#: or under retrain.max_metric_ratio (1.5), and the mean of the last 10 days
#: (a month old) under LATE_RATIO; a drift pushes that mean over it.
MIN_LIVE_N = 30
MAX_RATIO = 1.5
LATE_DAYS = 10
LATE_RATIO = 1.15


def late_ratio(days: list[dict[str, Any]]) -> float:
    """Mean live metric ratio of the last LATE_DAYS days of a replay."""
    ratios = [d["live_ratio"] for d in days[-LATE_DAYS:]]
    assert all(r is not None for r in ratios), ratios
    return float(sum(ratios) / len(ratios))


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``loopml ARGS`` in a fresh process, as a user runs it (the replays)."""
    return subprocess.run(
        [*LOOPML, *args],
        # Wide enough that the console never wraps a message (or a path).
        env=conftest.subprocess_env(home, COLUMNS="2000", **env),
        capture_output=True,
        text=True,
        timeout=900,
    )


def here(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``loopml ARGS`` in this process, for the commands run after a replay.

    ``conftest.loopml``: the same entry point and environment as :func:`cli`,
    with the imports paid once per test process (status, history, retrain).
    """
    return conftest.loopml(home, *args, **env)


def ok(home: Path, *args: str, **env: str) -> str:
    """The output of ``loopml ARGS`` in a fresh process, which must succeed."""
    return succeeded(cli(home, *args, **env), args)


def ok_here(home: Path, *args: str, **env: str) -> str:
    """The output of ``loopml ARGS`` in this process, which must succeed."""
    return succeeded(here(home, *args, **env), args)


def succeeded(result: subprocess.CompletedProcess[str], args: tuple[str, ...]) -> str:
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def read_report(home: Path, drift: bool) -> dict[str, Any]:
    folder = home / "reports" / "demand"
    suffix = f"-drift{DRIFT_FROM}" if drift else ""
    (path,) = folder.glob(f"replay-*-{DAYS}d{suffix}.json")
    assert path.with_suffix(".md").is_file()
    report: dict[str, Any] = json.loads(path.read_text())
    assert [d["day"] for d in report["days"]] == list(range(1, DAYS + 1))
    return report


def html_days(home: Path, days: list[dict[str, Any]]) -> set[str]:
    """The replayed days with a monitor HTML report, checked against the JSON.

    A day's JSON report names its HTML under ``reports`` exactly when it
    was written.
    """
    folder = home / "reports" / "demand"
    written = {p.stem.removeprefix("monitor-") for p in folder.glob("monitor-*.html")}
    for d in days:
        doc = json.loads((folder / f"monitor-{d['date']}.json").read_text())
        assert ("html" in doc["reports"]) is (d["date"] in written), doc["reports"]
    return written


def retrain_log(home: Path) -> list[dict[str, Any]]:
    path = home / "state" / "demand" / "retrain.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def champion(home: Path) -> str:
    status = json.loads(ok_here(home, "status", "--json"))
    return str(status["workloads"]["demand"]["champion"]["version"])
