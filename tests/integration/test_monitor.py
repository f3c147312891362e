"""The monitor stage on a real (tiny) loop: reports, state and /metrics.

Each test starts from a copy of a shared trained home (``loopml run``:
version 1 is champion, see ``conftest.TrainedHomes``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

import conftest
from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.models.tracking import setup_mlflow
from loopml.monitoring.collector import MonitorCollector
from loopml.monitoring.inference_log import write_part
from loopml.serving.app import create_app
from loopml.stages import ingest, monitor, validate

NEW_DAYS = 3


def test_monitor_writes_reports_state_and_metrics(demand_home: Path) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    setup_mlflow(settings)
    # Days arrive after the champion was trained: its forecasts meet actuals.
    trained_until = conftest.demand_origin(settings)
    for offset in range(1, NEW_DAYS + 1):
        ingest.run(
            settings, "demand", day=(trained_until + pd.Timedelta(days=offset)).date()
        )
        validate.run(settings, "demand")

    result = monitor.run(settings, "demand")

    assert result.status in {"ok", "drift"}
    day = result.details["date"]
    reports = settings.home / "reports" / "demand"
    html = reports / f"monitor-{day}.html"
    assert html.stat().st_size > 10_000  # Evidently's report, not a stub
    report = json.loads((reports / f"monitor-{day}.json").read_text())
    state = json.loads((settings.state_dir("demand") / "monitor.json").read_text())
    assert state == report
    assert 0.0 <= state["drift"]["share"] <= 1.0
    assert set(state["drift"]["columns"]) == {"sales_index", "price", "promo"}
    assert state["drift"]["columns"]["sales_index"]["judged"] is True
    assert state["model_age_days"] == NEW_DAYS
    assert day == str((trained_until + pd.Timedelta(days=NEW_DAYS)).date())
    performance = state["performance"]
    assert performance["metric"] == "wape"
    assert performance["n"] == 8 * NEW_DAYS  # 8 series x the new days
    assert 0 < performance["value"] < 1
    assert performance["ratio"] == pytest.approx(
        performance["value"] / performance["backtest"]
    )
    assert state["prediction_drift"]["score"] is not None
    assert state["quality"]["rows"] == 8 * settings.monitor.window_days
    assert state["quality"]["missing_share"] == 0.0
    # The reference ends before the current window starts.
    assert state["reference"]["end"] < day

    registry = CollectorRegistry()
    registry.register(MonitorCollector(settings))
    exposition = generate_latest(registry).decode()
    assert f'loopml_drift_share{{workload="demand"}} {state["drift"]["share"]}' in (
        exposition
    )
    assert 'loopml_feature_drift_score{feature="sales_index",workload="demand"}' in (
        exposition
    )
    assert f'loopml_model_age_days{{workload="demand"}} {NEW_DAYS}.0' in exposition
    assert 'loopml_live_metric{metric="wape",workload="demand"}' in exposition

    # Forecasts the service logged take over from the replay: 10 % too high.
    validated = pd.read_parquet(settings.data_dir("demand") / "validated.parquet")
    window = validated[validated["date"] > trained_until]
    served = window[["store_id", "item_id", "promo", "holiday"]].assign(
        store_id=window["store_id"].astype(str),
        item_id=window["item_id"].astype(str),
        date=window["date"].dt.strftime("%Y-%m-%d"),
        forecast=window["sales"] * 1.1,
        model_version=state["model_version"],
    )
    # A challenger's shadow answers, 20 % too high, in the same log.
    shadow = served.assign(forecast=window["sales"] * 1.2, model_version="99")
    write_part(
        settings.home / "inference",
        "demand",
        window["date"].max().date(),
        pd.concat([served, shadow.assign(source="shadow")], ignore_index=True),
    )
    logged = monitor.run(settings, "demand")
    state = json.loads((settings.state_dir("demand") / "monitor.json").read_text())
    assert logged.details["date"] == day
    assert state["performance"]["source"] == "inference_log"
    assert state["performance"]["value"] == pytest.approx(0.1)
    assert state["performance"]["bias"] == pytest.approx(0.1)
    assert state["prediction_drift"]["source"] == "inference_log"
    # The champion is judged on its own answers; the challenger beside it.
    assert state["challengers"]["99"]["value"] == pytest.approx(0.2)
    assert state["challengers"]["99"]["sources"] == ["shadow"]

    # The status page shows the champion and the monitor, linking its reports.
    client = TestClient(create_app(settings))  # no lifespan: no model loading
    page = client.get("/").text
    demand_part = page[page.index("<h2>demand</h2>") : page.index("<h2>recsys</h2>")]
    assert "version 1" in demand_part
    assert f"share {state['drift']['share']:.2f}" in demand_part
    assert "Live wape" in demand_part and "0.1" in demand_part
    assert f'href="/reports/demand/monitor-{day}.html"' in demand_part
    assert "promote" in demand_part and "baseline" in demand_part
    linked = client.get(f"/reports/demand/monitor-{day}.html")
    assert linked.status_code == 200
    assert linked.content == html.read_bytes()


def test_recsys_monitor_measures_no_live_metric_and_ages_from_the_tag(
    recsys_home: Path,
) -> None:
    from mlflow import MlflowClient

    from loopml.models.tracking import DATA_END_TAG

    settings = load_settings("default")
    configure_environment(settings.home)
    setup_mlflow(settings)  # recsys version 1 is champion (conftest.TRAINED)

    result = monitor.run(settings, "recsys")
    state = json.loads((settings.state_dir("recsys") / "monitor.json").read_text())
    assert result.status in {"ok", "drift"}
    assert set(state["drift"]["columns"]) == {
        "segment",
        "category",
        "event",
        "segment_category",
        "item_popularity",
        "user_activity",
    }
    assert state["not_measured"] == ["prediction_drift", "performance"]
    assert state["prediction_drift"] is None and state["performance"] is None
    assert "challengers" not in state
    assert state["model_age_days"] == 0 and "model age 0 d" in result.summary
    assert state["quality"]["rows"] > 0

    # A version without the data-end tag (trained before it existed): its age
    # is unknown, not guessed, and the reference ends before the window.
    MlflowClient().delete_model_version_tag("recsys", "1", DATA_END_TAG)
    unknown = monitor.run(settings, "recsys")
    state = json.loads((settings.state_dir("recsys") / "monitor.json").read_text())
    assert state["model_age_days"] is None and "model age unknown" in unknown.summary
    window = pd.Timedelta(days=settings.monitor.window_days)
    assert state["reference"]["end"] == str(
        (pd.Timestamp(state["date"]) - window).date()
    )


def test_a_day_outside_what_can_be_monitored_or_retrained_is_refused(
    demand_home: Path,
) -> None:
    """Inside the champion's training data (the model's age was negative) or
    after the last validated day (retrain decided for a day without data)."""
    from loopml.core.errors import StageError
    from loopml.stages import retrain

    settings = load_settings("default")
    configure_environment(settings.home)
    setup_mlflow(settings)
    trained_until = conftest.demand_origin(settings)
    early = (trained_until - pd.Timedelta(days=30)).date()
    with pytest.raises(StageError, match="inside the champion's training data"):
        monitor.run(settings, "demand", early)
    assert not (settings.home / "reports" / "demand" / f"monitor-{early}.json").exists()
    with pytest.raises(StageError, match="inside the champion's training data"):
        retrain.run(settings, "demand", early)  # its age was negative
    late = (trained_until + pd.Timedelta(days=400)).date()
    with pytest.raises(StageError, match=f"no validated data for {late} yet"):
        retrain.run(settings, "demand", late)
    from loopml.stages import batch

    with pytest.raises(StageError, match="no results for 1999-01-01"):
        batch.run(settings, "demand", pd.Timestamp("1999-01-01").date())
    assert not list((settings.home / "batch").rglob("date=1999-01-01*"))
    monitor.run(settings, "demand")  # the last day: the training data's end
    state = json.loads((settings.state_dir("demand") / "monitor.json").read_text())
    assert state["model_age_days"] == 0
