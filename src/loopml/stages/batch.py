"""Batch: the champion's top-k for every known user, for one day, atomically.

Only workloads with a daily batch (``recsys``) are scored; others are
skipped. The model is the registry's ``champion``, resolved to its version
and loaded as ``models:/<workload>/<version>``, never from anywhere else.
Results go to two places, each replaced whole for the day:

* ``<home>/batch/<workload>/date=YYYY-MM-DD.parquet``: written to a hidden
  temp file, then swapped in with ``os.replace``;
* the SQL table ``recommendations`` (SQLite at ``<home>/batch/<workload>.db``
  by default; ``recsys.batch_db`` or the production profile's PostgreSQL):
  ``DELETE`` the day, ``INSERT`` it, ``COMMIT``, in one transaction.

The SQL commit comes first, then the file swap. A crash before the commit
leaves both stores with the previous results; between the two (a moment),
the table has the new day and the file the old one, each complete. A lock
per day keeps two batches of the same day from interleaving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import require_file
from loopml.data.results import VERSION_KEY, result_path
from loopml.models.integrity import load_verified
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table

    from loopml.workloads.recsys.pyfunc import RecsysModel

log = logging.getLogger(__name__)

#: Workloads that have a daily batch.
BATCH_WORKLOADS = ("recsys",)
TABLE = "recommendations"
COLUMNS = ["date", "user_id", "rank", "item_id", "score", "reason", "model_version"]
SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("score", pa.float64()),
        ("reason", pa.string()),
        ("model_version", pa.string()),
    ]
)
#: Users scored (and written) per chunk: bounds memory at any scale.
CHUNK_USERS = 50_000
#: Crash tests only: seconds to sleep once everything is written but neither
#: committed nor swapped in.
PAUSE_ENV = "LOOPML_BATCH_PAUSE_SECONDS"


def database_url(settings: Settings, workload: str) -> str:
    """Where the ``recommendations`` table lives (see ``recsys.batch_db``)."""
    if settings.batch.database_url:
        return settings.batch.database_url
    tracking = settings.mlflow.tracking_uri or ""
    if tracking.startswith("postgresql"):
        return tracking
    return f"sqlite:///{settings.home / 'batch' / f'{workload}.db'}"


def result_table() -> Table:
    """The ``recommendations`` table: one row per (date, user, rank)."""
    from sqlalchemy import (
        Column,
        Date,
        DateTime,
        Float,
        Integer,
        MetaData,
        String,
        Table,
        UniqueConstraint,
    )

    return Table(
        TABLE,
        MetaData(),
        Column("date", Date, primary_key=True),
        Column("user_id", String(256), primary_key=True),
        Column("rank", Integer, primary_key=True),
        Column("item_id", String(256), nullable=False),
        Column("score", Float, nullable=False),
        Column("reason", String(512), nullable=False),
        Column("model_version", String(32), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        # k distinct items per user and day, enforced by the database too.
        UniqueConstraint("date", "user_id", "item_id"),
    )


def _default_day(settings: Settings, workload: str) -> dt.date:
    """The day after the last interaction in the validated data."""
    path = require_file(settings.data_dir(workload) / "validated.parquet", "validate")
    last = pd.read_parquet(path, columns=["timestamp"])["timestamp"].max()
    day: dt.date = (pd.Timestamp(last).normalize() + pd.Timedelta(days=1)).date()
    return day


def _frames(
    model: RecsysModel, k: int, day: dt.date, version: str
) -> Iterator[pd.DataFrame]:
    """The results, ``CHUNK_USERS`` users at a time."""
    users = model.user_ids()
    for start in range(0, len(users), CHUNK_USERS):
        frame = model.recommend_frame(users[start : start + CHUNK_USERS], k)
        yield frame.assign(date=day, model_version=version)[COLUMNS]


@contextlib.contextmanager
def _day_lock(folder: Path, day: dt.date) -> Iterator[None]:
    """Hold an exclusive lock on the day (released by the OS on any exit)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".date={day.isoformat()}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise StageError(f"another batch for {day} is running") from error
        yield


def _write(
    frames: Iterator[pd.DataFrame],
    path: Path,
    engine: Engine,
    day: dt.date,
    version: str,
) -> int:
    """Replace the day in the table and the file; returns the row count."""
    from sqlalchemy import delete, insert

    table = result_table()
    table.metadata.create_all(engine)
    for stale in path.parent.glob(f".{path.name}.*"):
        stale.unlink()  # a killed run's temp file; the day lock makes it ours
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    schema = SCHEMA.with_metadata({VERSION_KEY: version.encode()})
    rows = 0
    created = dt.datetime.now(dt.UTC)
    try:
        with engine.begin() as connection:
            connection.execute(delete(table).where(table.c.date == day))
            with pq.ParquetWriter(tmp, schema) as writer:
                for frame in frames:
                    writer.write_table(
                        pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                    )
                    records = frame.assign(created_at=created).to_dict("records")
                    if records:
                        connection.execute(insert(table), records)
                    rows += len(frame)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            if pause := float(os.environ.get(PAUSE_ENV, "0") or 0):
                log.warning("pausing %.1fs before commit (%s)", pause, PAUSE_ENV)
                time.sleep(pause)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def run(
    settings: Settings,
    workload_name: str,
    day: dt.date | None = None,
    require_champion: bool = False,
) -> StageResult:
    """Score every known user with the champion and store the day's results.

    Args:
        settings: the active settings.
        workload_name: the workload; without a daily batch it is skipped.
        day: the day the results are for; default the day after the last
            interaction in the validated data.
        require_champion: raise when there is no champion (the ``batch``
            command) instead of skipping (``loopml run``, whose gate may
            have rejected the first model).

    Returns:
        ``ok`` with counts and where the results went, or ``skipped``.

    Raises:
        StageError: no champion (with ``require_champion``), or another
            batch of the same day is running.
    """
    get_workload(workload_name)  # an unknown name is a ValueError
    if workload_name not in BATCH_WORKLOADS:
        return StageResult(
            "batch", workload_name, "skipped", f"{workload_name} has no daily batch"
        )
    setup_mlflow(settings)
    champion = get_alias(workload_name, CHAMPION)
    if champion is None:
        message = (
            f"no {workload_name} champion in the registry yet: run `loopml run "
            f"-w {workload_name}` (or train, evaluate and promote) first"
        )
        if require_champion:
            raise StageError(message)
        return StageResult("batch", workload_name, "skipped", message)
    version = str(champion.version)
    day = day or _default_day(settings, workload_name)
    from sqlalchemy import create_engine

    model: Any = load_verified(workload_name, version).unwrap_python_model()
    from loopml.workloads.recsys.config import RecsysSettings  # TODO(capability)

    k = RecsysSettings.of(settings).k
    path = result_path(settings, workload_name, day)
    url = database_url(settings, workload_name)
    log.info(
        "batch %s for %s: champion version %s, top-%d", workload_name, day, version, k
    )
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        with _day_lock(path.parent, day):
            rows = _write(_frames(model, k, day, version), path, engine, day, version)
    finally:
        engine.dispose()
    users = len(model.user_ids())
    seconds = time.perf_counter() - started
    shown = engine.url.render_as_string(hide_password=True)
    log.info(
        "wrote %d rows for %d users in %.1fs to %s and %s",
        rows,
        users,
        seconds,
        path,
        shown,
    )
    return StageResult(
        "batch",
        workload_name,
        summary=f"top-{k} for {users} users on {day} by version {version} "
        f"({rows} rows) -> {path.name} and table {TABLE}",
        details={
            "date": day.isoformat(),
            "version": version,
            "users": users,
            "rows": rows,
            "path": str(path),
            "database": shown,
            "seconds": round(seconds, 2),
        },
    )
