"""A workload without a batch scorer, monitor or day source: nothing to do.

The workloads come from ``tests/bare_workload.py`` through ``LOOPML_PLUGINS``,
as a user's own package would; nothing here needs a champion or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bare_workload import PLUGINS
from loopml.cli import app
from loopml.core.config import Settings, load_settings
from loopml.core.errors import StageError
from loopml.orchestration import replay
from loopml.stages import batch, monitor


@pytest.fixture()
def settings(tiny_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LOOPML_PLUGINS", PLUGINS)
    return load_settings("default")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_batch_without_a_scorer_is_skipped_saying_so(settings: Settings) -> None:
    result = batch.run(settings, "bare", require_champion=True)
    assert result.status == "skipped"
    assert result.summary == "bare has no batch scorer: nothing to do"
    code, output = _cli("batch", "-w", "bare", "--date", "2030-01-01")
    assert code == 0, output
    assert "batch bare: bare has no batch scorer: nothing to do" in output
    assert not (settings.home / "batch").exists()


def test_monitor_without_a_monitor_is_skipped_saying_so(settings: Settings) -> None:
    in_run = settings.monitor.model_copy(update={"in_run": True})
    looped = settings.model_copy(update={"monitor": in_run})
    for result in (monitor.run(settings, "bare"), monitor.run_in_loop(looped, "bare")):
        assert result.status == "skipped"
        assert result.summary == "bare has no monitor: nothing to do"
    code, output = _cli("monitor", "-w", "bare")
    assert code == 0, output
    assert "bare has no monitor: nothing to do" in output
    assert not (settings.home / "reports").exists()


def test_replay_needs_a_day_source_and_one_that_can_drift(settings: Settings) -> None:
    with pytest.raises(StageError, match="^bare has no day source: nothing to replay$"):
        replay.run(settings, "bare", 3)
    code, output = _cli("replay", "-w", "bare", "--days", "3")
    assert code == 1
    assert "replay failed: bare has no day source: nothing to replay" in output
    with pytest.raises(ValueError, match="daily day source cannot drift"):
        replay.run(settings, "daily", 3, drift_from=2)
    assert not (settings.home / "mlflow.db").exists()  # refused before any loop


def test_replay_refuses_real_data_before_any_loop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for workload in ("demand", "recsys"):
        monkeypatch.setenv(
            f"LOOPML_WORKLOADS__{workload.upper()}__DATASET", "online-retail"
        )
        real = load_settings("default")
        with pytest.raises(StageError, match=f"only the generated {workload} data"):
            replay.run(real, workload, 3)
    assert not (settings.home / "mlflow.db").exists()


def test_tuning_asked_of_a_workload_without_a_search_space_says_so(
    settings: Settings,
) -> None:
    """``loopml run --tune``: a skipped row that says why, not silence."""
    from loopml.orchestration.runner import run_loop

    class EnoughError(Exception):
        """Stops the loop once train has started (tune comes before it)."""

    rows: dict[str, Any] = {}

    def seen(timed: Any) -> None:
        rows[timed.result.stage] = timed.result

    def started(stage: str, workload: str) -> None:
        if stage == "train":
            raise EnoughError

    for tune_first in (True, False):
        rows.clear()
        with pytest.raises(EnoughError):
            run_loop(settings, ["bare"], seen, tune_first=tune_first, on_start=started)
        if tune_first:
            assert rows["tune"].status == "skipped"
            assert "declares no search space" in rows["tune"].summary
        else:
            assert "tune" not in rows  # not asked for: no row, as before


def test_without_a_holdout_gate_nothing_is_promoted_and_the_run_fails(
    settings: Settings,
) -> None:
    """A clear failed row (exit 1), not a NotImplementedError; and the next run
    evaluates and promotes the unchanged challenger again, as the gate never
    ruled on it (before, it skipped them as 'unchanged' for good)."""
    from loopml.orchestration.runner import run_loop

    for attempt in (1, 2):
        rows = {t.result.stage: t.result for t in run_loop(settings, ["bare"])}
        assert rows["promote"].status == "failed", rows
        assert "has no holdout gate" in rows["promote"].summary
        assert "nothing is promoted" in rows["promote"].summary
        assert rows["evaluate"].status == "ok"
        if attempt == 2:
            assert rows["train"].status == "skipped"
            assert "unchanged since v1 (challenger)" in rows["train"].summary
    code, output = _cli("run", "-w", "bare")
    assert code == 1, output


def test_workloads_lists_tuning_only_where_a_search_space_is_declared(
    settings: Settings,
) -> None:
    import json

    result = CliRunner().invoke(app, ["workloads", "--json"])
    assert result.exit_code == 0, result.output
    found = {w["name"]: w["capabilities"] for w in json.loads(result.output)}
    assert "tuning" in found["demand"] and "tuning" in found["recsys"]
    assert "tuning" not in found["bare"]
