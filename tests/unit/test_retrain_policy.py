"""The retrain policy: each trigger, the cool-down, and no trigger."""

from __future__ import annotations

import datetime as dt
from typing import Any

from loopml.core.config import RetrainSettings
from loopml.monitoring.retrain_policy import (
    AGE,
    DRIFT,
    NO_CHAMPION,
    PERFORMANCE,
    SCHEDULE,
    Facts,
    decide,
)

TODAY = dt.date(2025, 3, 1)


def report(
    sales_index: float = 0.2,
    wape: float = 0.30,
    backtest: float = 0.30,
    n: int = 56,
    version: str = "3",
    prediction_drifted: bool = False,
) -> dict[str, Any]:
    """A monitor report as ``loopml monitor`` writes it (the fields read)."""
    columns = {
        "sales_index": {
            "judged": True,
            "score": sales_index,
            "threshold": 0.6,
            "drifted": sales_index >= 0.6,
        },
        "price": {"judged": True, "score": 0.05, "threshold": 0.6, "drifted": False},
    }
    return {
        "date": TODAY.isoformat(),
        "model_version": version,
        "thresholds": {"min_rows": 30},
        "drift": {
            "share": sum(c["drifted"] for c in columns.values()) / len(columns),
            "drifted": [k for k, c in columns.items() if c["drifted"]],
            "columns": columns,
        },
        "prediction_drift": {"score": 0.7, "drifted": prediction_drifted},
        "performance": {"metric": "wape", "value": wape, "backtest": backtest, "n": n},
    }


def facts(**changes: Any) -> Facts:
    """A healthy champion, trained 10 days ago, never retrained."""
    base: dict[str, Any] = {
        "today": TODAY,
        "champion_version": "3",
        "champion_data_end": TODAY - dt.timedelta(days=10),
        "last_retrain": None,
        "monitor": report(),
    }
    return Facts(**{**base, **changes})


def names(policy: RetrainSettings, given: Facts) -> list[str]:
    return [t.name for t in decide(policy, given).triggers]


def test_a_healthy_champion_triggers_nothing_and_says_why() -> None:
    verdict = decide(RetrainSettings(), facts())
    assert not verdict.fire
    text = verdict.summary()
    assert "drift: none" in text and "largest sales_index 0.20 < 0.6" in text
    assert "1.00x (limit 1.5x)" in text
    assert "age: 10 < 90 days" in text
    assert "schedule: off" in text


def test_drift_over_the_threshold_triggers() -> None:
    verdict = decide(RetrainSettings(), facts(monitor=report(sales_index=0.83)))
    assert [t.name for t in verdict.triggers] == [DRIFT]
    assert "sales_index 0.83 >= 0.6" in verdict.triggers[0].reason


def test_prediction_drift_alone_triggers_and_on_drift_false_ignores_it() -> None:
    drifted = facts(monitor=report(prediction_drifted=True))
    assert names(RetrainSettings(), drifted) == [DRIFT]
    assert names(RetrainSettings(on_drift=False), drifted) == []


def test_metric_decay_triggers_only_past_the_ratio() -> None:
    decayed = facts(monitor=report(wape=0.46, backtest=0.30))  # 1.53x
    assert names(RetrainSettings(), decayed) == [PERFORMANCE]
    assert names(RetrainSettings(max_metric_ratio=1.6), decayed) == []
    assert names(RetrainSettings(max_metric_ratio=None), decayed) == []


def test_a_higher_is_better_metric_decays_downwards() -> None:
    # NDCG fell from 0.30 to 0.15: 2x worse.
    fell = facts(monitor=report(wape=0.15, backtest=0.30), higher_is_better=True)
    assert names(RetrainSettings(), fell) == [PERFORMANCE]


def test_too_few_labelled_forecasts_get_no_performance_verdict() -> None:
    one_day = facts(monitor=report(wape=0.80, backtest=0.30, n=8))
    verdict = decide(RetrainSettings(), one_day)
    assert not verdict.fire
    assert "8 labelled forecasts, fewer than monitor.min_rows (30)" in (
        verdict.summary()
    )


def test_an_old_champion_triggers_on_age() -> None:
    old = facts(champion_data_end=TODAY - dt.timedelta(days=90))
    verdict = decide(RetrainSettings(), old)
    assert [t.name for t in verdict.triggers] == [AGE]
    assert "90 days ago" in verdict.triggers[0].reason
    assert names(RetrainSettings(max_age_days=None), old) == []


def test_the_schedule_counts_from_the_last_retrain_else_the_data_end() -> None:
    policy = RetrainSettings(every_days=7)
    assert names(policy, facts()) == [SCHEDULE]  # data ends 10 days ago
    recent = facts(last_retrain=TODAY - dt.timedelta(days=3))
    assert names(policy, recent) == []
    due = facts(last_retrain=TODAY - dt.timedelta(days=7))
    assert names(policy, due) == [SCHEDULE]


def test_the_cool_down_holds_drift_and_decay_but_not_deadlines() -> None:
    policy = RetrainSettings(cooldown_days=7)
    bad = report(sales_index=0.9, wape=0.9, backtest=0.3)
    cooling = facts(monitor=bad, last_retrain=TODAY - dt.timedelta(days=6))
    verdict = decide(policy, cooling)
    assert not verdict.fire
    assert "held by the cool-down (6 of 7 days)" in verdict.summary()
    # The cool-down is over on day 7.
    over = facts(monitor=bad, last_retrain=TODAY - dt.timedelta(days=7))
    assert names(policy, over) == [DRIFT, PERFORMANCE]
    # Age is a deadline: it fires even while cooling down.
    stale = facts(
        monitor=bad,
        last_retrain=TODAY - dt.timedelta(days=1),
        champion_data_end=TODAY - dt.timedelta(days=120),
    )
    assert names(policy, stale) == [AGE]


def test_a_report_on_another_version_is_not_used() -> None:
    stale_report = facts(monitor=report(sales_index=0.9, version="2"))
    verdict = decide(RetrainSettings(), stale_report)
    assert not verdict.fire
    assert "judged v2, not the champion v3" in verdict.summary()
    assert (
        "no monitor report yet"
        in decide(RetrainSettings(), facts(monitor=None)).summary()
    )


def test_without_a_champion_training_one_is_due() -> None:
    assert names(RetrainSettings(), facts(champion_version=None)) == [NO_CHAMPION]
