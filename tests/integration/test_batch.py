"""The daily recsys batch: replace-not-duplicate, valid top-k, and crash safety.

The platform's batch stage is generic (``loopml.stages.batch``); recsys's
``RecsysBatchScorer`` says what it scores. The demand batch has its own file
(``test_demand_batch.py``).

One tiny home per module: a copy of the shared trained recsys home
(``loopml run -w recsys``: version 1 is champion), without its batch.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import conftest
from loopml.core.config import Settings, load_settings
from loopml.core.errors import StageError
from loopml.core.runtime import configure_environment
from loopml.data.results import batch_dir, result_path
from loopml.models.tracking import setup_mlflow
from loopml.stages import batch
from loopml.workloads.recsys.batch import RecsysBatchScorer

PG_URI = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
K = 10  # settings.recsys.k


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, trained_homes: conftest.TrainedHomes
) -> Iterator[Path]:
    """A home with a trained recsys champion (version 1); env set for the module."""
    home = trained_homes.copy("recsys", tmp_path_factory.mktemp("batch") / "home")
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


def _sql(settings: Settings, day: dt.date) -> pd.DataFrame:
    with sqlite3.connect(settings.home / "batch" / "recsys.db") as connection:
        return pd.read_sql_query(
            "select user_id, rank, item_id, score, reason, model_version "
            "from recommendations where date = ? order by user_id, rank",
            connection,
            params=(day.isoformat(),),
        )


def _parquet(settings: Settings, day: dt.date) -> pd.DataFrame:
    frame = pd.read_parquet(result_path(settings, "recsys", day))
    return frame.sort_values(["user_id", "rank"]).reset_index(drop=True)


def test_a_day_run_twice_leaves_one_set_of_results(settings: Settings) -> None:
    day, other = dt.date(2030, 1, 1), dt.date(2030, 1, 2)
    first = batch.run(settings, "recsys", day)
    assert first.status == "ok"
    users = first.details["entities"]
    assert users > 100 and first.details["rows"] == users * K
    before = _sql(settings, day)
    batch.run(settings, "recsys", other)
    again = batch.run(settings, "recsys", day)
    assert again.details["rows"] == users * K

    for frame in (_sql(settings, day), _parquet(settings, day)):
        assert len(frame) == users * K
        assert not frame.duplicated(["user_id", "rank"]).any()
    pd.testing.assert_frame_equal(_sql(settings, day), before)
    # The other day is untouched, and the only other file in the folder.
    assert len(_sql(settings, other)) == users * K
    files = sorted(p.name for p in batch_dir(settings, "recsys").glob("*.parquet"))
    assert files == ["date=2030-01-01.parquet", "date=2030-01-02.parquet"]


def test_results_are_k_distinct_unconsumed_items_per_user(settings: Settings) -> None:
    day = dt.date(2030, 2, 1)
    batch.run(settings, "recsys", day)
    frame = _parquet(settings, day)
    pd.testing.assert_frame_equal(
        frame.drop(columns=["date"]), _sql(settings, day), check_dtype=False
    )
    assert (frame["date"] == day).all() and (frame["model_version"] == "1").all()
    validated = pd.read_parquet(settings.data_dir("recsys") / "validated.parquet")
    assert set(frame["user_id"]) == set(validated["user_id"])
    per_user = frame.groupby("user_id")
    assert (per_user["item_id"].nunique() == K).all()
    assert per_user["rank"].apply(lambda r: list(r) == list(range(1, K + 1))).all()
    assert per_user["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    consumed = frame.merge(validated[["user_id", "item_id"]].drop_duplicates())
    assert consumed.empty, f"already consumed items recommended:\n{consumed}"
    assert frame["reason"].str.len().gt(0).all()
    assert frame["reason"].str.startswith(("because you took", "popular")).all()


def test_the_table_is_made_from_the_scorer_schema(settings: Settings) -> None:
    from sqlalchemy import create_engine, inspect

    batch.run(settings, "recsys", dt.date(2030, 4, 1))
    engine = create_engine(batch.database_url(settings, "recsys"))
    try:
        table = inspect(engine)
        columns = [c["name"] for c in table.get_columns("recommendations")]
        primary = table.get_pk_constraint("recommendations")["constrained_columns"]
        unique = table.get_unique_constraints("recommendations")
    finally:
        engine.dispose()
    assert columns == [
        "date",
        *RecsysBatchScorer.schema.names,
        "model_version",
        "created_at",
    ]
    assert primary == ["date", "user_id", "rank"]
    assert [u["column_names"] for u in unique] == [["date", "user_id", "item_id"]]


def test_default_day_is_the_day_after_the_last_interaction(
    settings: Settings,
) -> None:
    result = batch.run(settings, "recsys")
    validated = pd.read_parquet(settings.data_dir("recsys") / "validated.parquet")
    last = validated["timestamp"].max().date()
    assert result.details["date"] == (last + dt.timedelta(days=1)).isoformat()


def test_no_champion_is_skipped_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "empty"))
    empty = load_settings("default")
    configure_environment(empty.home)
    skipped = batch.run(empty, "recsys")
    assert skipped.status == "skipped" and "no recsys champion" in skipped.summary
    with pytest.raises(StageError, match="no recsys champion"):
        batch.run(empty, "recsys", require_champion=True)


def test_kill_9_mid_write_leaves_the_previous_results(
    home: Path, settings: Settings
) -> None:
    day = dt.date(2030, 3, 1)
    batch.run(settings, "recsys", day)
    path = result_path(settings, "recsys", day)
    parquet_before, sql_before = path.read_bytes(), _sql(settings, day)
    assert len(sql_before) > 0
    # A run that would write 3 items per user, paused before commit and swap.
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopml.cli", "batch", "-w", "recsys"]
        + ["--date", day.isoformat()],
        env=conftest.subprocess_env(
            home, LOOPML_WORKLOADS__RECSYS__K="3", **{batch.PAUSE_ENV: "120"}
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        temp: list[Path] = []
        while not temp and time.monotonic() < deadline:
            assert proc.poll() is None, "the batch ended before it could be killed"
            temp = list(path.parent.glob(f".{path.name}.*.tmp"))
            time.sleep(0.2)
        assert temp, "the batch never wrote its temp file"
        log = home / "logs" / "loopml.log"
        while time.monotonic() < deadline and batch.PAUSE_ENV not in log.read_text():
            time.sleep(0.2)  # until it sleeps inside the open transaction
        assert batch.PAUSE_ENV in log.read_text(), "the batch never paused"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # Both stores still hold the previous results, whole.
    assert path.read_bytes() == parquet_before
    pd.testing.assert_frame_equal(_sql(settings, day), sql_before)
    assert len(_sql(settings, day)) == len(sql_before)
    # The next run of the day takes over: its results, no leftovers.
    batch.run(settings, "recsys", day)
    assert not list(path.parent.glob(f".{path.name}.*.tmp"))
    assert len(_sql(settings, day)) == len(sql_before)


def test_production_profile_writes_to_postgresql(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = load_settings("production", home=home)
    assert batch.database_url(production, "recsys") == PG_URI
    reason = conftest.postgres_unreachable()
    if reason:
        pytest.skip(reason)
    from sqlalchemy import create_engine, delete, func, select

    # The table in the shared database; the model from this home's registry.
    monkeypatch.setenv("LOOPML_BATCH__DATABASE_URL", PG_URI)
    settings = load_settings("default")
    # A day of its own, far from any real one, so parallel runs never meet.
    day = dt.date(1901, 1, 1) + dt.timedelta(days=uuid.uuid4().int % 20_000)
    table = batch.result_table(RecsysBatchScorer())
    engine = create_engine(PG_URI)
    try:
        first = batch.run(settings, "recsys", day)
        second = batch.run(settings, "recsys", day)
        assert first.details["rows"] == second.details["rows"] > 0
        with engine.connect() as connection:
            count = connection.execute(
                select(func.count()).select_from(table).where(table.c.date == day)
            ).scalar_one()
            distinct = connection.execute(
                select(func.count()).select_from(
                    select(table.c.user_id, table.c.rank)
                    .where(table.c.date == day)
                    .distinct()
                    .subquery()
                )
            ).scalar_one()
        assert count == distinct == second.details["rows"]
        # COPY wrote what the file holds, value for value.
        stored = pd.read_sql_query(
            "select user_id, rank, item_id, score, reason, model_version "
            "from recommendations where date = %(day)s order by user_id, rank",
            engine,
            params={"day": day},
        )
        pd.testing.assert_frame_equal(
            stored,
            _parquet(settings, day).drop(columns="date"),
            check_dtype=False,
        )
    finally:
        with engine.begin() as connection:
            connection.execute(delete(table).where(table.c.date == day))
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_copy_rows_loads_awkward_values_exactly_and_rolls_back(driver: str) -> None:
    reason = conftest.postgres_unreachable()
    if reason:
        pytest.skip(reason)
    import pyarrow as pa
    from sqlalchemy import create_engine, func, select

    class Scorer(RecsysBatchScorer):
        table = f"copy_rows_{uuid.uuid4().hex[:8]}"

    table = batch.result_table(Scorer())
    reasons = ['say "hi", then\nleave', "", "naïve ☃", "\\N", "NULL", "a\tb\r\n"]
    scores = [1 / 3, 1e-300, -2.5e300, 0.1 + 0.2, float("nan"), -float("inf")]
    created = dt.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    rows = pa.table(
        {
            "date": pa.array([dt.date(2030, 5, 6)] * 6, pa.date32()),
            "user_id": [f"u,{i}" for i in range(6)],
            "rank": pa.array(range(1, 7), pa.int32()),
            "item_id": [f'i"{i}' for i in range(6)],
            "score": scores,
            "reason": reasons,
            "model_version": ["7"] * 6,
            "created_at": [created.isoformat()] * 6,
        }
    )
    engine = create_engine(PG_URI.replace("psycopg2", driver))
    table.metadata.create_all(engine)
    try:
        with pytest.raises(RuntimeError), engine.begin() as connection:
            batch.copy_rows(connection, table, rows)
            raise RuntimeError("roll back")
        with engine.connect() as connection:
            assert (
                connection.execute(select(func.count()).select_from(table)).scalar_one()
                == 0
            )
        with engine.begin() as connection:
            batch.copy_rows(connection, table, rows)
        with engine.connect() as connection:
            stored = connection.execute(select(table).order_by(table.c.rank)).all()
        assert [r.reason for r in stored] == reasons
        # exact, to the last bit; NaN is a value, not NULL
        assert [r.score for r in stored if r.rank != 5] == scores[:4] + scores[5:]
        assert math.isnan(stored[4].score)
        assert [r.user_id for r in stored] == [f"u,{i}" for i in range(6)]
        assert [r.item_id for r in stored] == [f'i"{i}' for i in range(6)]
        assert {r.created_at for r in stored} == {created}
        assert {r.date for r in stored} == {dt.date(2030, 5, 6)}
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


@pytest.mark.timeout(300)
def test_the_ray_engine_writes_what_the_local_one_writes(settings: Settings) -> None:
    day = dt.date(2030, 4, 1)
    # Blocks of 40 users: several blocks, so two workers share the work.
    blocks = settings.batch.model_copy(update={"block_rows": 40})
    local = settings.model_copy(update={"batch": blocks})
    assert batch.run(local, "recsys", day).status == "ok"
    expected_file, expected_sql = _parquet(settings, day), _sql(settings, day)
    on_ray = settings.model_copy(
        update={"batch": blocks.model_copy(update={"engine": "ray", "ray_workers": 2})}
    )
    result = batch.run(on_ray, "recsys", day)
    assert result.details["rows"] == len(expected_file) > 0
    pd.testing.assert_frame_equal(_parquet(settings, day), expected_file)
    pd.testing.assert_frame_equal(_sql(settings, day), expected_sql)
    unsorted = pd.read_parquet(result_path(settings, "recsys", day))
    assert list(unsorted["user_id"]) == sorted(unsorted["user_id"])  # block order
