"""Point-in-time training set: Feast's file store vs its PostgreSQL store.

Builds the demand training set (``training_set.training_examples``: one
entity row per series and weekly origin, the origin state by a point-in-time
join, labels for 28 days) on generated data, by default 1,000 series x 1,095
days, through:

* ``in memory (floor)``: ``features.build_training_examples``, no store;
* ``Feast file store``: the default profile's parquet offline store
  (``point_in_time`` sends ~400k-joined-row batches, ``MAX_FANOUT``);
* ``Feast PostgreSQL store``: the production profile's store as loopml runs
  it (entity rows by ``COPY``, one query, ``work_mem`` 256MB, tables indexed
  on join key + ``event_timestamp`` and analysed by ``loopml features``);
* ``Feast PostgreSQL, stock path`` (``--stock``): the same tables through
  plain ``get_historical_features`` (entity rows inserted by Feast,
  PostgreSQL's default ``work_mem``), what a Feast user gets out of the box.

Every path must give the same frame as the floor (checked exactly). Loading
the offline table (parquet write / ``COPY`` + index + ``ANALYZE``) is timed
apart. ``--explain`` prints PostgreSQL's ``EXPLAIN ANALYZE`` of the
point-in-time query. The PostgreSQL tables live under a unique Feast project
and are dropped at the end.

Not a test: run on demand; the Markdown table replaces this benchmark's
section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/offline_store.py
    .venv/bin/python benchmarks/offline_store.py --stores 2 --items 10 \\
        --days 400 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from doc_sections import write_section

from loopml.core.config import FeatureStoreSettings, Settings, load_settings
from loopml.core.io import write_parquet
from loopml.core.runtime import configure_environment
from loopml.feature_store.store import drop_project
from loopml.sdk import pg_offline
from loopml.sdk.feast import data_dir, open_store
from loopml.workloads.demand import data
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    STATE_FEATURES,
    STATE_VIEW,
    TIMESTAMP,
    feast_objects,
    offline_tables,
    series_ids,
)
from loopml.workloads.demand.features import build_training_examples
from loopml.workloads.demand.training_set import _eligible, training_examples

SECTION = "offline-store"
COMMAND = ".venv/bin/python benchmarks/offline_store.py"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _open(settings: Settings, fs: FeatureStoreSettings, sales: pd.DataFrame) -> Any:
    """Load the offline table of ``sales`` into ``fs``'s store and apply."""
    settings = settings.model_copy(update={"feature_store": fs})
    tables = offline_tables(sales)
    objects = feast_objects(data_dir(settings), settings)
    if fs.offline == "postgres":
        keys = pg_offline.table_keys(objects, fs.project, tables)
        pg_offline.write_tables(fs, tables, keys)
    else:
        for name, table in tables.items():
            write_parquet(table, data_dir(settings) / name)
    store = open_store(settings, fs)
    store.apply(objects)
    return store


def _entity_rows(sales: pd.DataFrame, horizon: int, step: int) -> pd.DataFrame:
    """The (series, origin) rows ``training_examples`` sends to the store."""
    first, last = sales["date"].min(), sales["date"].max()
    origins = pd.date_range(
        first + pd.Timedelta(days=28),
        last - pd.Timedelta(days=horizon),
        freq=f"{step}D",
    )
    pairs = _eligible(sales, origins[origins < last])
    pairs[JOIN_KEY] = series_ids(pairs["store_id"], pairs["item_id"])
    pairs[TIMESTAMP] = pairs["origin"].dt.tz_localize("UTC")
    pairs = pairs[[JOIN_KEY, TIMESTAMP]].drop_duplicates(ignore_index=True)
    return pairs.assign(_loopml_row=range(len(pairs)))


def _refs() -> list[str]:
    return [f"{STATE_VIEW}:{name}" for name in ["origin", *STATE_FEATURES]]


def _stock(store: Any, pairs: pd.DataFrame) -> pd.DataFrame:
    """Plain get_historical_features on the PostgreSQL store: Feast uploads
    the entity frame itself (temp_table mode) at the server's work_mem."""
    store.config.offline_store.entity_select_mode = "temp_table"
    try:
        job = store.get_historical_features(entity_df=pairs, features=_refs())
        return job.to_df()
    finally:
        store.config.offline_store.entity_select_mode = "embed_query"


def _explain(store: Any, pairs: pd.DataFrame) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the point-in-time query as loopml runs it."""
    offline = store.config.offline_store.model_dump()
    with pg_offline.connect(offline) as conn:
        conn.autocommit = True
        with pg_offline._entity_table(conn, store.project, pairs) as table:
            job = store.get_historical_features(
                entity_df=f'SELECT * FROM "{table}"', features=_refs()
            )
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"SET LOCAL work_mem = '{pg_offline.WORK_MEM}'")
                cur.execute("SET LOCAL jit = off")
                query = pg_offline._literal_bounds(job.to_sql(), pairs[TIMESTAMP])
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + query)
                return "\n".join(row[0] for row in cur.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--origin-step", type=int, default=7)
    parser.add_argument("--skip-file", action="store_true", help="no file store")
    parser.add_argument("--stock", action="store_true", help="also Feast's stock path")
    parser.add_argument("--explain", action="store_true", help="print the plan")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    os.environ["LOOPML_HOME"] = tempfile.mkdtemp(prefix="loopml-offline-bench-")
    settings = load_settings("default")
    configure_environment(settings.home)
    sales = data.generate(n_stores=args.stores, n_items=args.items, n_days=args.days)
    n_series = args.stores * args.items
    kwargs = {"horizon": args.horizon, "origin_step": args.origin_step}
    pairs = _entity_rows(sales, args.horizon, args.origin_step)
    load_avg = [os.getloadavg()]
    rows: list[tuple[str, float | None, float, str]] = []

    floor, floor_s = _timed(lambda: build_training_examples(sales, **kwargs))
    rows.append(("in memory (floor): build_training_examples", None, floor_s, "-"))
    print(f"floor {floor_s:.1f} s, {len(floor):,} examples, {len(pairs):,} entity rows")

    def check(got: pd.DataFrame) -> str:
        pd.testing.assert_frame_equal(got, floor, check_exact=True)
        return "identical"

    fs_pg = FeatureStoreSettings(
        offline="postgres", project=f"bench_{uuid.uuid4().hex[:8]}"
    )
    pg_store = None
    try:
        pg_store, pg_load = _timed(lambda: _open(settings, fs_pg, sales))
        pg, pg_s = _timed(lambda: training_examples(pg_store, sales, **kwargs))
        print(f"postgres: load {pg_load:.1f} s, training set {pg_s:.1f} s")
        rows.append(("Feast PostgreSQL store (loopml)", pg_load, pg_s, check(pg)))
        load_avg.append(os.getloadavg())
        if args.explain:
            print(_explain(pg_store, pairs))
        if args.stock:
            stock, stock_s = _timed(lambda: _stock(pg_store, pairs))
            same = len(stock) == len(pairs)
            rows.append(
                (
                    "Feast PostgreSQL store, stock get_historical_features "
                    "(the point-in-time join only, no labels)",
                    None,
                    stock_s,
                    f"{len(stock):,} rows ({'all' if same else 'not all'} answered)",
                )
            )
            print(f"stock postgres {stock_s:.1f} s")
        if not args.skip_file:
            file_store, file_load = _timed(
                lambda: _open(settings, FeatureStoreSettings(), sales)
            )
            got, file_s = _timed(lambda: training_examples(file_store, sales, **kwargs))
            print(f"file: load {file_load:.1f} s, training set {file_s:.1f} s")
            rows.append(
                ("Feast file store (parquet, dask)", file_load, file_s, check(got))
            )
            pd.testing.assert_frame_equal(got, pg, check_exact=True)
            load_avg.append(os.getloadavg())
    finally:
        if pg_store is not None:
            drop_project(pg_store)

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    by_name = {name: seconds for name, _, seconds, _ in rows}
    pg_s = by_name["Feast PostgreSQL store (loopml)"]
    table = [
        "| path | load offline table s | training set s | vs PostgreSQL | frame |",
        "|---|---:|---:|---:|---|",
    ]
    for name, load, seconds, result in rows:
        load_text = f"{load:.1f}" if load is not None else "-"
        ratio = "-" if "join only" in name else f"{seconds / pg_s:.2f}x"
        table.append(f"| {name} | {load_text} | {seconds:.1f} | {ratio} | {result} |")
    loads = ", ".join("/".join(f"{x:.1f}" for x in avg) for avg in load_avg)
    summary = ""
    if "Feast file store (parquet, dask)" in by_name:
        ratio = by_name["Feast file store (parquet, dask)"] / pg_s
        summary = (
            f"\nThe PostgreSQL store builds the training set {ratio:.1f}x faster than "
            "the file store, with the same frame.\n"
        )
    body = "\n".join(
        [
            "## Offline store: point-in-time training set (demand)",
            "",
            f"Measured {dt.date.today().isoformat()} on CPython "
            f"{platform.python_version()}, {os.cpu_count()} CPUs (shared with "
            f"other work; load average 1/5/15 min at the start and after each "
            f"store: {loads}), PostgreSQL on 127.0.0.1: {n_series:,} series x "
            f"{args.days:,} days ({len(sales):,} sales rows, "
            f"{len(offline_tables(sales)['demand_series_state.parquet']):,} "
            f"state rows), {len(pairs):,} entity rows (series x weekly origin), "
            f"{len(floor):,} training examples; peak RSS {peak_gb:.1f} GB. "
            "Each path ran once, in one process; every frame is compared "
            "exactly with the in-memory floor.",
            "",
            *table,
            summary,
            f"Reproduce: `{COMMAND}`",
        ]
    )
    print(body)
    if not args.no_write:
        write_section(DOC, SECTION, body)


if __name__ == "__main__":
    main()
