"""Tuning without Ray: search spaces, parameters laid over settings, objectives,
and ``tuned.json`` read back by the next train / evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from loopml.core.config import Settings, load_settings
from loopml.core.params import PARAMS_ENV
from loopml.sdk.tuning import SearchParam
from loopml.sdk.workload import get_workload
from loopml.stages.tune import apply_tuned, ray_search_space, tuned_path
from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand.config import DemandSettings
from loopml.workloads.demand.evaluate import backtest
from loopml.workloads.demand.models import LightGBMForecaster
from loopml.workloads.demand.tuning import tuning_cutoff
from loopml.workloads.recsys.config import RecsysSettings


@pytest.mark.parametrize(
    ("args", "match"),
    [(("int", 5, 5), "empty range"), (("float", 0.0, 1.0, True), "positive")],
)
def test_search_param_refuses_bad_ranges(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SearchParam(*args)


def test_ray_domains_keep_inclusive_integer_bounds() -> None:
    domains = ray_search_space(
        {
            "leaves": SearchParam("int", 7, 127, log=True),
            "rate": SearchParam("float", 0.01, 0.2, log=True),
            "share": SearchParam("float", 0.1, 0.9),
        }
    )
    leaves, rate, share = domains["leaves"], domains["rate"], domains["share"]
    # Ray's integer upper bound is exclusive: 128 so that 127 can be drawn.
    assert (leaves.lower, leaves.upper) == (7, 128)
    assert (rate.lower, rate.upper, share.lower, share.upper) == (0.01, 0.2, 0.1, 0.9)
    draws = [leaves.sample() for _ in range(200)]
    assert min(draws) >= 7 and max(draws) <= 127


@pytest.mark.parametrize("name", ["demand", "recsys"])
def test_with_params_changes_only_the_model_section(tiny_env: Path, name: str) -> None:
    settings = load_settings("default")
    workload = get_workload(name)
    space = workload.search_space(settings)
    point = {k: int(p.low) if p.kind == "int" else p.high for k, p in space.items()}
    tuned = workload.with_params(settings, point)
    section = (
        DemandSettings.of(tuned).model if name == "demand" else RecsysSettings.of(tuned)
    )
    assert {k: getattr(section, k) for k in point} == point
    other = "recsys" if name == "demand" else "demand"
    assert tuned.workloads.get(other) == settings.workloads.get(other)
    assert (
        DemandSettings.of(settings).model.n_estimators == 60
    )  # the original is untouched
    first = next(iter(point))
    with pytest.raises(ValidationError):
        workload.with_params(settings, {first: -1})


def test_demand_objective_reports_each_fold_and_stops_before_the_holdout(
    tiny_env: Path,
) -> None:
    settings = load_settings("default")
    raw = demand_data.generate(n_stores=2, n_items=3, n_days=300, seed=5)
    cutoff = tuning_cutoff(settings, raw)
    cfg = DemandSettings.of(settings)
    # evaluate's first origin: horizon 14 + one fold step of 14 (TINY_ENV).
    assert cutoff == raw["date"].max() - pd.Timedelta(days=28)
    reports: list[tuple[int, dict[str, float]]] = []
    params = {"n_estimators": 40, "num_leaves": 7}
    value = get_workload("demand").tune_objective(
        settings, raw, params, lambda step, m: reports.append((step, m))
    )
    assert [step for step, _ in reports] == list(range(1, settings.tune.n_folds + 1))
    assert reports[-1][1]["wape"] == pytest.approx(value)
    # Same number as a backtest that never saw a row after the cutoff.
    expected = backtest(
        raw[raw["date"] <= cutoff],
        lambda: LightGBMForecaster(n_estimators=40, num_leaves=7, min_child_samples=20),
        horizon=cfg.horizon,
        n_folds=settings.tune.n_folds,
        fold_step=cfg.fold_step,
    )
    assert value == pytest.approx(expected.metrics["wape"])


def test_recsys_objective_scores_ndcg_before_the_test_period(tiny_env: Path) -> None:
    settings = load_settings(
        "default", workloads={"recsys": {"n_users": 200, "n_items": 40}}
    )
    workload = get_workload("recsys")
    raw = workload.load_raw(settings)
    reports: list[tuple[int, dict[str, float]]] = []
    value = workload.tune_objective(
        settings,
        raw,
        {"ranker_n_estimators": 30, "als_factors": 8},
        lambda step, m: reports.append((step, m)),
    )
    assert 0.0 < value <= 1.0
    assert reports == [(1, {"ndcg_at_10": value})]


def test_tuned_parameters_reach_train_and_evaluate(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PARAMS_ENV, raising=False)
    settings = load_settings("default")
    assert apply_tuned(settings, "demand") is settings  # nothing tuned yet
    path = tuned_path(settings, "demand")
    path.parent.mkdir(parents=True)
    record = {"params": {"num_leaves": 9, "learning_rate": 0.1}, "parent_run_id": "r"}
    path.write_text(json.dumps(record), encoding="utf-8")
    tuned = apply_tuned(settings, "demand")
    assert (
        DemandSettings.of(tuned).model.num_leaves,
        DemandSettings.of(tuned).model.learning_rate,
    ) == (9, 0.1)
    assert (
        DemandSettings.of(tuned).model.n_estimators
        == DemandSettings.of(settings).model.n_estimators
    )
    # Under DVC, params.yaml says what ran: tuned.json is ignored.
    monkeypatch.setenv(PARAMS_ENV, "params.yaml")
    assert apply_tuned(settings, "demand") is settings


def test_a_workload_without_tuning_says_so(tiny_env: Path) -> None:
    from loopml.sdk.workload import Workload

    class Untunable(Workload):
        name = "untunable"

        def load_raw(self, settings: Settings) -> pd.DataFrame:
            return pd.DataFrame()

        def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
            return raw

        def train(self, settings: Settings, data: pd.DataFrame) -> Any:
            return None

        def evaluate(self, settings: Settings, data: pd.DataFrame) -> Any:
            return None

    settings = load_settings("default")
    with pytest.raises(NotImplementedError, match="untunable workload"):
        Untunable().search_space(settings)
    with pytest.raises(NotImplementedError, match="does not support tuning"):
        Untunable().tune_objective(settings, pd.DataFrame(), {})
    assert Untunable().tune_steps(settings) == 1
