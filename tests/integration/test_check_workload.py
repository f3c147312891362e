"""``check_workload``: the reference workloads pass it, a broken one is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from broken_workloads import PLUGINS
from loopml.testing import WorkloadCheckError, check_workload

#: Every step of the loop, in order.
STEPS = [
    "contract",
    "ingest",
    "validate",
    "features",
    "train",
    "evaluate",
    "promote",
    "batch",
    "serve",
    "monitor",
    "retrain",
    "replay",
]
TINY = {
    "demand": {
        "n_stores": 2,
        "n_items": 4,
        "n_days": 400,
        "horizon": 14,
        "n_folds": 2,
        "fold_step": 14,
        "model": {"n_estimators": 60},
    },
    "recsys": {
        "n_users": 150,
        "n_items": 40,
        "n_days": 120,
        "als_iterations": 8,
        "ranker_n_estimators": 40,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demand", "recsys"])
def test_reference_workloads_pass_the_whole_loop(
    tiny_env: Path, tmp_path: Path, name: str
) -> None:
    report = check_workload(
        name, home=tmp_path / "check", settings_overrides=TINY[name], replay_days=1
    )
    assert [s.step for s in report.steps] == STEPS
    assert {s.status for s in report.steps} == {"ok"}, str(report)


def test_a_capability_of_the_wrong_type_is_named(
    tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_PLUGINS", PLUGINS)
    with pytest.raises(WorkloadCheckError) as error:
        check_workload("wrongscorer", home=tmp_path / "check")
    message = str(error.value)
    assert "wrongscorer: step contract failed" in message
    assert "online scorer: online_scorer() returned a object" in message


def test_a_broken_capability_is_named_with_its_step(
    tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_PLUGINS", PLUGINS)
    with pytest.raises(WorkloadCheckError) as error:
        check_workload("brokenbatch", home=tmp_path / "check")
    message = str(error.value)
    assert "brokenbatch: step batch (batch scorer) failed" in message
    assert "the batch scorer is broken" in message
