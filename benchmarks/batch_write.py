"""Writing a day's batch results to PostgreSQL: row inserts vs COPY.

The batch stage replaces a day of results in the workload's SQL table (the
production profile's PostgreSQL). This benchmark writes the same generated
recsys day (``--users`` x 10 recommendations, in the stage's blocks of
50,000 users) into a table shaped like ``recommendations`` (primary key and
unique constraint included), through:

* ``SQLAlchemy insert, executemany``: what loopml did before
  (``connection.execute(insert(table), records)`` per block);
* ``pandas DataFrame.to_sql``: what a user would write (SQLAlchemy engine,
  ``if_exists="append"``, ``chunksize`` = one block);
* ``loopml batch write``: the stage's own ``batch._write``: the Parquet file
  and ``COPY`` (``batch.copy_rows``), in one transaction, the day deleted
  first;
* ``floor``: one ``COPY`` (psycopg2 ``copy_expert``) of the same rows
  already rendered as CSV, so nothing but PostgreSQL's work.

Each mode starts from an empty table and is read back and compared with the
generated rows. The table has a name of its own and is dropped at the end.

Not a test: run on demand; the Markdown table replaces this benchmark's
section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/batch_write.py
    .venv/bin/python benchmarks/batch_write.py --users 5000 --no-write  # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from doc_sections import write_section
from sqlalchemy import Engine, create_engine, delete, insert

from loopml.stages import batch
from loopml.workloads.recsys.batch import RecsysBatchScorer

SECTION = "batch-write"
COMMAND = ".venv/bin/python benchmarks/batch_write.py"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DAY = dt.date(2030, 1, 1)
K = 10
COLUMNS = ["date", "user_id", "rank", "item_id", "score", "reason", "model_version"]


def _rows(users: int, seed: int) -> pd.DataFrame:
    """``users`` x ``K`` recommendations, shaped like the stage's chunks."""
    rng = np.random.default_rng(seed)
    n = users * K
    items = rng.permutation(10_000)[: K * 4]
    return pd.DataFrame(
        {
            "date": DAY,
            "user_id": np.repeat([f"U{u:06d}" for u in range(users)], K),
            "rank": np.tile(np.arange(1, K + 1, dtype=np.int32), users),
            # k distinct items per user (the unique constraint holds)
            "item_id": [
                f"C{items[(r * 3 + u) % len(items)]:05d}"
                for u in range(users)
                for r in range(K)
            ],
            "score": rng.random(n),
            "reason": rng.choice(
                [
                    "popular with Data Engineer",
                    'similar to "SQL basics"',
                    "new, in your role",
                ],
                n,
            ),
            "model_version": "1",
        }
    )[COLUMNS]


def _blocks(frame: pd.DataFrame, block_users: int) -> Iterator[pd.DataFrame]:
    step = block_users * K
    for start in range(0, len(frame), step):
        yield frame.iloc[start : start + step]


class _Scorer(RecsysBatchScorer):
    """``recommendations``' columns and keys, under a table name of its own."""

    table = f"bench_write_{uuid.uuid4().hex[:8]}"


def _read_back(engine: Engine, table: str) -> pd.DataFrame:
    back = pd.read_sql_query(
        f"select user_id, rank, item_id, score, reason, model_version "
        f"from {table} order by user_id, rank",
        engine,
    )
    return back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users (x 10 rows)")
    parser.add_argument("--url", default=URL, help="PostgreSQL (SQLAlchemy URL)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    scorer = _Scorer()
    table = batch.result_table(scorer)
    engine = create_engine(args.url)
    frame = _rows(args.users, args.seed)
    block_users = RecsysBatchScorer.block_rows
    created = dt.datetime.now(dt.UTC)
    expected = frame.drop(columns="date").reset_index(drop=True)

    def sqlalchemy_insert() -> None:
        with engine.begin() as connection:
            for block in _blocks(frame, block_users):
                records = block.assign(created_at=created).to_dict("records")
                connection.execute(insert(table), records)

    def pandas_to_sql() -> None:
        frame.assign(created_at=created).to_sql(
            scorer.table,
            engine,
            if_exists="append",
            index=False,
            chunksize=block_users * K,
        )

    folder = Path(tempfile.mkdtemp(prefix="bench-write-"))

    def loopml_write() -> None:
        path = folder / f"date={DAY.isoformat()}.parquet"
        rows = batch._write(_blocks(frame, block_users), scorer, path, engine, DAY, "1")
        assert rows == len(frame)

    csv = io.BytesIO()
    arrow = pa.Table.from_pandas(
        frame.assign(created_at=created.isoformat()), preserve_index=False
    )
    pa_csv.write_csv(arrow, csv, pa_csv.WriteOptions(include_header=False))

    def floor() -> None:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            csv.seek(0)
            cursor.copy_expert(
                f"COPY {scorer.table} ({', '.join(arrow.column_names)}) "
                "FROM STDIN (FORMAT csv)",
                csv,
            )
            raw.commit()
        finally:
            raw.close()

    modes: list[tuple[str, Callable[[], None]]] = [
        ("SQLAlchemy insert, executemany (loopml before)", sqlalchemy_insert),
        ("pandas DataFrame.to_sql", pandas_to_sql),
        ("loopml batch write (Parquet file + COPY)", loopml_write),
        ("floor: one COPY of ready CSV", floor),
    ]
    results: list[tuple[str, float]] = []
    table.metadata.create_all(engine)
    try:
        for name, fn in modes:
            with engine.begin() as connection:
                connection.execute(delete(table))
            started = time.perf_counter()
            fn()
            seconds = time.perf_counter() - started
            back = _read_back(engine, scorer.table)
            pd.testing.assert_frame_equal(back, expected, check_dtype=False)
            results.append((name, seconds))
            print(
                f"{name}: {seconds:.2f}s ({len(frame) / seconds:,.0f} rows/s)",
                flush=True,
            )
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()

    floor_s = results[-1][1]
    before = results[0][1]
    lines = [
        "## Batch results to PostgreSQL: row inserts vs COPY",
        "",
        f"Measured {dt.date.today()} on CPython {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, PostgreSQL on loopback. One recsys day: "
        f"{args.users:,} users x {K} = {len(frame):,} rows, in blocks of "
        f"{block_users:,} users, into a table with `recommendations`' primary "
        "key (date, user_id, rank) and unique (date, user_id, item_id); every "
        "mode read back and equal to the generated rows.",
        "",
        "| mode | wall s | rows/s | x floor | speedup vs row inserts |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, seconds in results:
        lines.append(
            f"| {name} | {seconds:.2f} | {len(frame) / seconds:,.0f} | "
            f"{seconds / floor_s:.2f}x | {before / seconds:.1f}x |"
        )
    lines += ["", f"Reproduce: `{COMMAND} --users {args.users}`"]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(DOC, SECTION, body)


if __name__ == "__main__":
    main()
