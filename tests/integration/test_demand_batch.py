"""The daily demand batch: every series' forecasts over the horizon, stored.

One tiny home per module: a copy of the shared trained demand home
(``loopml run -w demand``: version 1 is champion), without its batch.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import conftest
from loopml.core.config import Settings, load_settings
from loopml.core.runtime import configure_environment
from loopml.data.results import file_version, result_path
from loopml.models.integrity import load_verified
from loopml.models.tracking import setup_mlflow
from loopml.stages import batch

SERIES, HORIZON = 2 * 4, 14  # TINY_ENV
COLUMNS = ["store_id", "item_id", "target_date", "horizon", "forecast"]


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, trained_homes: conftest.TrainedHomes
) -> Iterator[Path]:
    """A home with a trained demand champion (version 1); env set for the module."""
    home = trained_homes.copy(
        "demand", tmp_path_factory.mktemp("demand_batch") / "home"
    )
    # No batch yet: the tests here count what the batch writes.
    shutil.rmtree(home / "batch")
    with pytest.MonkeyPatch.context() as patch:
        conftest.set_tiny_env(patch, home)
        settings = load_settings("default")
        configure_environment(settings.home)
        setup_mlflow(settings)
        yield home


@pytest.fixture()
def settings(home: Path) -> Settings:
    return load_settings("default")


def _validated(settings: Settings) -> pd.DataFrame:
    return pd.read_parquet(settings.data_dir("demand") / "validated.parquet")


def _sql(settings: Settings, day: dt.date) -> pd.DataFrame:
    with sqlite3.connect(settings.home / "batch" / "demand.db") as connection:
        return pd.read_sql_query(
            f"select {', '.join(COLUMNS)}, model_version from forecasts "
            "where date = ? order by store_id, item_id, target_date",
            connection,
            params=(day.isoformat(),),
        )


def test_one_forecast_per_series_and_horizon_day_from_the_last_state(
    settings: Settings,
) -> None:
    result = batch.run(settings, "demand")
    last = _validated(settings)["date"].max()
    day = (last + pd.Timedelta(days=1)).date()
    assert result.status == "ok" and result.details["date"] == day.isoformat()
    assert result.details["rows"] == SERIES * HORIZON
    assert result.details["entities"] == SERIES
    path = result_path(settings, "demand", day)
    assert file_version(path) == "1"
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["date", *COLUMNS, "model_version"]
    assert not frame.duplicated(["store_id", "item_id", "target_date"]).any()
    per_series = frame.groupby(["store_id", "item_id"])["horizon"].apply(sorted)
    assert len(per_series) == SERIES
    assert all(h == list(range(1, HORIZON + 1)) for h in per_series)
    target = pd.to_datetime(frame["target_date"])
    assert (target == last + pd.to_timedelta(frame["horizon"], unit="D")).all()
    # The champion's own origin is the last day: the batch says what the
    # service answers for a row without a plan (last price, no promo).
    model = load_verified("demand", "1").unwrap_python_model()
    asked = frame[["store_id", "item_id"]].assign(date=frame["target_date"])
    assert frame["forecast"].to_numpy() == pytest.approx(model.forecast(asked))
    assert (frame["forecast"] >= 0).all()
    sql = _sql(settings, day)
    assert len(sql) == SERIES * HORIZON and (sql["model_version"] == "1").all()
    ordered = frame.sort_values(["store_id", "item_id", "target_date"])
    assert sql["forecast"].to_numpy() == pytest.approx(ordered["forecast"])


def test_a_rerun_replaces_the_day(settings: Settings) -> None:
    day = dt.date(2031, 1, 1)
    first = batch.run(settings, "demand", day)
    before = _sql(settings, day)
    file_before = pd.read_parquet(result_path(settings, "demand", day))
    again = batch.run(settings, "demand", day)
    assert first.details["rows"] == again.details["rows"] == SERIES * HORIZON
    pd.testing.assert_frame_equal(_sql(settings, day), before)
    pd.testing.assert_frame_equal(
        pd.read_parquet(result_path(settings, "demand", day)), file_before
    )


def test_a_past_day_forecasts_from_the_state_before_it(settings: Settings) -> None:
    last = _validated(settings)["date"].max()
    day = (last - pd.Timedelta(days=5)).date()
    batch.run(settings, "demand", day)
    frame = pd.read_parquet(result_path(settings, "demand", day))
    target = pd.to_datetime(frame["target_date"])
    assert target.min() == pd.Timestamp(day)
    assert len(frame) == SERIES * HORIZON


@pytest.mark.timeout(300)
def test_the_ray_engine_writes_what_the_local_one_writes(settings: Settings) -> None:
    day = _validated(settings)["date"].max().date() + dt.timedelta(days=1)
    blocks = settings.batch.model_copy(update={"block_rows": 3})  # 3 blocks
    local = settings.model_copy(update={"batch": blocks})
    assert batch.run(local, "demand", day).status == "ok"
    expected = pd.read_parquet(result_path(settings, "demand", day))
    expected_sql = _sql(settings, day)
    on_ray = settings.model_copy(
        update={"batch": blocks.model_copy(update={"engine": "ray", "ray_workers": 2})}
    )
    result = batch.run(on_ray, "demand", day)
    assert result.details["rows"] == len(expected) == SERIES * HORIZON
    pd.testing.assert_frame_equal(
        pd.read_parquet(result_path(settings, "demand", day)), expected
    )
    pd.testing.assert_frame_equal(_sql(settings, day), expected_sql)
