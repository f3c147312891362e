"""Feast for the recsys ranker: training features equal the plain code, no leakage.

Real Feast on small generated data (150 users x 40 courses x 120 days) and on
a hand-made history with known answers, in a temp home. The point-in-time and
skew tests run on both offline stores (``offline``: parquet files, and
PostgreSQL as in the production profile, a unique project dropped after).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from feast import FeatureStore

from loopml.core.config import FeatureStoreSettings, Settings, load_settings
from loopml.core.io import write_parquet
from loopml.core.runtime import configure_environment
from loopml.feature_store.store import drop_project
from loopml.models.tracking import setup_mlflow
from loopml.sdk import pg_offline
from loopml.sdk.feast import MissingFeaturesError, data_dir, open_store, point_in_time
from loopml.workloads.recsys.feature_views import (
    MATERIALIZED_VIEWS,
    RANKING_VIEWS,
    SEGMENT_ITEM_KEY,
    SEGMENT_ITEM_VIEW,
    TIMESTAMP,
    TODAY_VIEW,
    USER_CATEGORY_KEY,
    USER_CATEGORY_VIEW,
    USER_KEY,
    feast_objects,
    feature_tables,
)
from loopml.workloads.recsys.features import build_context, build_features
from loopml.workloads.recsys.generator import generate
from loopml.workloads.recsys.models import TwoStageRanker
from loopml.workloads.recsys.ranking_features import RankingFeatures
from loopml.workloads.recsys.tables import RecsysData

pytestmark = pytest.mark.filterwarnings("ignore")

WINDOW = 90


@pytest.fixture(scope="module")
def data() -> RecsysData:
    return generate(n_users=150, n_items=40, n_days=120)


@pytest.fixture()
def settings(tiny_env: Path) -> Settings:
    loaded = load_settings("default")
    configure_environment(loaded.home)
    return loaded


@pytest.fixture()
def offline_fs(settings: Settings, offline: str) -> Iterator[FeatureStoreSettings]:
    """The store settings of ``offline``; a PostgreSQL project is dropped after."""
    if offline == "file":
        yield FeatureStoreSettings()
        return
    fs = FeatureStoreSettings(offline="postgres", project=f"t_{uuid.uuid4().hex[:10]}")
    yield fs
    drop_project(open_store(settings.model_copy(update={"feature_store": fs}), fs))


def _store(
    settings: Settings, data: RecsysData, fs: FeatureStoreSettings | None = None
) -> FeatureStore:
    """Write the change-point tables of ``data`` and apply the definitions."""
    fs = fs or FeatureStoreSettings()
    settings = settings.model_copy(update={"feature_store": fs})
    tables = feature_tables(data, WINDOW)
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


def test_feast_features_equal_build_features(
    settings: Settings, data: RecsysData, offline_fs: FeatureStoreSettings
) -> None:
    store = _store(settings, data, offline_fs)
    reader = RankingFeatures(store, WINDOW)
    stamps = data.interactions["timestamp"]
    rng = np.random.default_rng(0)
    # Inner cutoffs are instants (the last interaction before a split).
    for cut in (stamps.quantile(0.3), stamps.quantile(0.75), stamps.max()):
        history = data.interactions[stamps <= cut]
        context = build_context(history, data.users, data.items, WINDOW)
        n_users, n_items = len(context.user_ids), len(context.item_ids)
        users = np.repeat(np.arange(n_users, dtype=np.int64), n_items)
        items = np.tile(np.arange(n_items, dtype=np.int64), n_users)
        segments = context.user_segment[users]
        als = rng.normal(size=len(users))
        expected = build_features(context, users, segments, items, als)
        got = reader(context, users, segments, items, als)
        assert len(got) == n_users * n_items > 4000
        mismatches = ~(
            (got.to_numpy() == expected.to_numpy())
            | (got.isna().to_numpy() & expected.isna().to_numpy())
        )
        assert int(mismatches.sum()) == 0
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_ranker_trained_through_feast_equals_the_plain_one(
    settings: Settings, data: RecsysData
) -> None:
    store = _store(settings, data)
    params = {"n_estimators": 20, "iterations": 4, "n_candidates": 30}
    plain = TwoStageRanker(**params).fit(data)
    feast = TwoStageRanker(**params).fit(
        data, pair_features=RankingFeatures(store, WINDOW)
    )
    users = sorted(data.users["user_id"])
    pd.testing.assert_frame_equal(
        feast.recommend_frame(users, 10), plain.recommend_frame(users, 10)
    )
    with pytest.raises(MissingFeaturesError, match="popularity window"):
        RankingFeatures(store, WINDOW + 1)


def _hand_made() -> RecsysData:
    users = pd.DataFrame(
        {
            "user_id": ["U1", "U2", "U3"],
            "segment": ["analyst", "analyst", "engineer"],
            "seniority": [2, 1, 3],
            "department": ["d", "d", "e"],
            "hire_date": pd.to_datetime(["2020-01-01"] * 3),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["C1", "C2"],
            "title": ["SQL 1", "SQL 2"],
            "category": ["sql", "sql"],
            "level": [1, 2],
            "duration_hours": [2.0, 4.0],
            "roles": ["analyst", "analyst,engineer"],
            "created": pd.to_datetime(["2024-06-01", "2024-06-01"]),
        }
    )
    events = [
        ("U1", "C1", "2025-01-01 10:00:00"),
        ("U2", "C1", "2025-01-10 12:00:00"),
        ("U1", "C2", "2025-02-01 09:00:00"),
        ("U3", "C2", "2025-05-01 08:00:00"),
    ]
    interactions = pd.DataFrame(events, columns=["user_id", "item_id", "timestamp"])
    interactions["timestamp"] = pd.to_datetime(interactions["timestamp"])
    interactions["event"], interactions["weight"] = "enrol", 1.0
    return RecsysData(users, items, interactions)


def test_a_later_interaction_never_reaches_an_earlier_cutoff(
    settings: Settings, offline_fs: FeatureStoreSettings
) -> None:
    store = _store(settings, _hand_made(), offline_fs)

    def at(key: str, view: str, value: str, stamps: list[str]) -> pd.DataFrame:
        rows = pd.DataFrame(
            {key: value, TIMESTAMP: pd.DatetimeIndex(stamps).tz_localize("UTC")}
        )
        refs = [f"{view}:{f.name}" for f in store.get_feature_view(view).features]
        return point_in_time(store, rows, refs, [key])

    # U1 takes C2 (level 2) at 09:00 on 1 Feb: invisible one second before.
    category = at(
        USER_CATEGORY_KEY,
        USER_CATEGORY_VIEW,
        "U1|sql",
        ["2025-01-01 09:59:59", "2025-02-01 08:59:59", "2025-02-01 09:00:00"],
    )
    assert category["category_count"].fillna(0).tolist() == [0.0, 1.0, 2.0]
    assert category["category_top_level"].fillna(0).tolist() == [0.0, 1.0, 2.0]
    # Analysts who took C1 in the last 90 days: U1 leaves 90 days after 1 Jan
    # 10:00, U2 90 days after 10 Jan 12:00; nobody later.
    popular = at(
        SEGMENT_ITEM_KEY,
        SEGMENT_ITEM_VIEW,
        "analyst|C1",
        [
            "2025-01-10 11:59:59",
            "2025-01-10 12:00:00",
            "2025-04-01 09:59:59",
            "2025-04-01 10:00:00",
            "2025-04-10 12:00:00",
            "2025-05-01 08:00:00",
        ],
    )
    assert popular["window_users"].fillna(0).tolist() == [1, 2, 2, 1, 0, 0]
    assert popular["recent_users"].fillna(0).tolist() == [1, 2, 0, 0, 0, 0]


def test_train_records_the_recsys_feature_views(recsys_home: Path) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    setup_mlflow(settings)
    # `loopml run -w recsys` trained version 1 on this home (a copy of the
    # shared one); its last_run.json holds each stage's result.
    last_run = settings.state_dir("recsys") / "last_run.json"
    stages = json.loads(last_run.read_text(encoding="utf-8"))["stages"]
    result = next(stage for stage in stages if stage["stage"] == "train")
    assert result["status"] == "ok" and result["details"]["version"] == "1"
    run = mlflow.get_run(result["details"]["run_id"])
    assert run.data.params["feature_views"] == ",".join(RANKING_VIEWS)
    for view in RANKING_VIEWS:
        assert len(run.data.tags[f"loopml.feature_view.{view}"]) == 12
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="feature_views.json"
    )
    recorded = json.loads(Path(path).read_text(encoding="utf-8"))
    assert set(recorded) == set(RANKING_VIEWS)
    assert recorded[SEGMENT_ITEM_VIEW]["ttl_seconds"] == WINDOW * 86400


def test_stage_publishes_recsys_and_push_reaches_the_online_store(
    settings: Settings, data: RecsysData
) -> None:
    from typer.testing import CliRunner

    from loopml.cli import app
    from loopml.stages import features as features_stage

    write_parquet(data.to_frame(), settings.data_dir("recsys") / "validated.parquet")
    result = features_stage.run(settings, "recsys")
    assert set(result.details["materialized"]) == set(MATERIALIZED_VIEWS)
    store = open_store(settings)
    last = data.interactions["timestamp"].max()
    user = str(data.interactions["user_id"].iloc[-1])
    ref = f"{SEGMENT_ITEM_VIEW}:window_users"
    online = store.get_online_features(
        features=[ref], entity_rows=[{SEGMENT_ITEM_KEY: "*|C001"}]
    ).to_dict()["window_users"]
    rows = pd.DataFrame({SEGMENT_ITEM_KEY: ["*|C001"], TIMESTAMP: [last]})
    rows[TIMESTAMP] = rows[TIMESTAMP].dt.tz_localize("UTC")
    offline = point_in_time(store, rows, [ref], [SEGMENT_ITEM_KEY])["window_users"]
    assert online == offline.tolist()  # no skew at the last interaction
    answer = CliRunner().invoke(
        app,
        [
            "features",
            "-w",
            "recsys",
            "push",
            f"user_id={user}",
            "item_id=C002",
            "interactions=3",
        ],
    )
    assert answer.exit_code == 0, answer.output
    today = store.get_online_features(
        features=[f"{TODAY_VIEW}:interactions_today", f"{TODAY_VIEW}:last_item_id"],
        entity_rows=[{USER_KEY: user}],
    ).to_dict()
    assert (today["interactions_today"], today["last_item_id"]) == ([3.0], ["C002"])


def _same(a: object, b: object) -> bool:
    """Equal values, or both missing (Feast gives None or NaN for no value).

    Timestamps compare as instants: the online store returns them tz-aware
    (UTC), the offline store naive UTC.
    """
    if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
        stamps = [pd.Timestamp(x) for x in (a, b)]
        utc = [x.tz_convert(None) if x.tzinfo else x for x in stamps]
        return bool(utc[0] == utc[1])
    if a is None or (isinstance(a, float) and np.isnan(a)):
        return b is None or (isinstance(b, float) and np.isnan(b))
    if isinstance(a, float | int | np.floating | np.integer):
        return isinstance(b, float | int | np.floating | np.integer) and float(
            a
        ) == pytest.approx(float(b))
    return bool(a == b)


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_no_skew_between_offline_and_online_recsys_features(
    settings: Settings, data: RecsysData, online: str, offline: str
) -> None:
    from loopml.stages import features as features_stage

    if online == "redis":
        import redis

        try:
            redis.Redis(host="127.0.0.1", port=6379, socket_timeout=3).ping()
        except redis.RedisError as error:
            pytest.skip(f"local Redis unreachable: {error}")
    fs = FeatureStoreSettings(
        online=online,  # type: ignore[arg-type]
        offline=offline,  # type: ignore[arg-type]
        project=f"t_{uuid.uuid4().hex[:10]}",
    )
    settings = settings.model_copy(update={"feature_store": fs})
    write_parquet(data.to_frame(), settings.data_dir("recsys") / "validated.parquet")
    features_stage.run(settings, "recsys")
    store = open_store(settings)
    try:
        _assert_no_skew(store, data, f"{online}, {offline}")
    finally:
        if online == "redis" or offline == "postgres":
            drop_project(store)


def _offline_table(store: FeatureStore, source: object) -> pd.DataFrame:
    """A view's offline table: its parquet file or its PostgreSQL table."""
    if store.config.offline_store.type == "file":
        return pd.read_parquet(source.path)  # type: ignore[attr-defined]
    offline = store.config.offline_store.model_dump()
    with pg_offline.connect(offline) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {source.get_table_query_string()}")  # type: ignore[attr-defined]
        names = [column.name for column in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=names)


def _assert_no_skew(store: FeatureStore, data: RecsysData, label: str) -> None:
    last = pd.Timestamp(data.interactions["timestamp"].max()).tz_localize("UTC")
    compared = mismatched = present = 0
    for name in MATERIALIZED_VIEWS:
        view = store.get_feature_view(name)
        keys = [column.name for column in view.entity_columns]
        names = [field.name for field in view.features]
        refs = [f"{name}:{field}" for field in names]
        table = _offline_table(store, view.batch_source)
        sample = table[keys].drop_duplicates().head(25).reset_index(drop=True)
        served = store.get_online_features(
            features=refs, entity_rows=sample.to_dict("records")
        ).to_dict()
        offline = point_in_time(store, sample.assign(**{TIMESTAMP: last}), refs, keys)
        for field in names:
            for i, value in enumerate(served[field]):
                compared += 1
                mismatched += not _same(value, offline[field].iloc[i])
                present += not _same(value, None)
    assert compared > 100 and present > 100  # not a comparison of blanks
    assert mismatched == 0, f"{mismatched} of {compared} values differ ({label})"
