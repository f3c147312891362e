"""Feast for the demand workload: leakage, skew, the drop trap, push, profiles.

Real Feast on small generated data (2 stores x 3 items x 200 days) in a temp
home; Redis and PostgreSQL tests use a unique project and clean up after. The
point-in-time and skew tests run on both offline stores (``offline``: the
parquet file store, and PostgreSQL as in the production profile).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feast import FeatureStore

from loopml.core.config import FeatureStoreSettings, Settings, load_settings
from loopml.core.io import write_parquet
from loopml.core.runtime import configure_environment
from loopml.feature_store.store import drop_project
from loopml.sdk import pg_offline
from loopml.sdk.feast import MissingFeaturesError, data_dir, open_store, point_in_time
from loopml.stages import features as features_stage
from loopml.workloads.demand import data
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    MATERIALIZED_VIEWS,
    PRICE_VIEW,
    STATE_FEATURES,
    STATE_VIEW,
    TIMESTAMP,
    TODAY_VIEW,
    feast_objects,
    offline_tables,
)
from loopml.workloads.demand.features import (
    build_features,
    build_training_examples,
    origin_state,
)
from loopml.workloads.demand.online import OnlineFeatures
from loopml.workloads.demand.training_set import training_examples

pytestmark = pytest.mark.filterwarnings("ignore")

REFS = [f"{STATE_VIEW}:origin", *(f"{STATE_VIEW}:{n}" for n in STATE_FEATURES)]
REFS += [f"{PRICE_VIEW}:last_price"]
KEYS = [(s, i) for s in ("S01", "S02") for i in ("I001", "I002", "I003")]
SPIKE = 10_000.0


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return data.generate(n_stores=2, n_items=3, n_days=200)


@pytest.fixture()
def settings(tiny_env: Path) -> Settings:
    loaded = load_settings("default")
    configure_environment(loaded.home)
    return loaded


def _reachable(service: str) -> str | None:
    try:
        if service == "redis":
            import redis

            redis.Redis(host="127.0.0.1", port=6379, socket_timeout=3).ping()
        else:
            import psycopg2

            psycopg2.connect(
                host="127.0.0.1", user="postgres", dbname="test", connect_timeout=3
            ).close()
    except Exception as error:  # noqa: BLE001 - any failure means "skip"
        return f"{service} on 127.0.0.1 is unreachable: {error}"
    return None


def _redis_keys(project: str) -> int:
    import redis

    return len(list(redis.Redis().scan_iter(b"*" + project.encode())))


def _store(
    settings: Settings, df: pd.DataFrame, fs: FeatureStoreSettings
) -> FeatureStore:
    """Write the offline table of ``df`` and apply the definitions (no online)."""
    settings = settings.model_copy(update={"feature_store": fs})
    tables = offline_tables(df)
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


@pytest.fixture()
def offline_fs(settings: Settings, offline: str) -> Iterator[FeatureStoreSettings]:
    """The store settings of ``offline``; a PostgreSQL project is dropped after
    (its offline tables, online rows and registry entries)."""
    if offline == "file":
        yield FeatureStoreSettings()
        return
    fs = FeatureStoreSettings(offline="postgres", project=f"t_{uuid.uuid4().hex[:10]}")
    yield fs
    drop_project(open_store(settings.model_copy(update={"feature_store": fs}), fs))


def _publish(
    settings: Settings, df: pd.DataFrame, fs: FeatureStoreSettings | None = None
) -> features_stage.StageResult:
    write_parquet(df, settings.data_dir("demand") / "validated.parquet")
    return features_stage.run(settings, "demand", fs)


def _utc(day: pd.Timestamp) -> dt.datetime:
    return pd.Timestamp(day).tz_localize("UTC").to_pydatetime()


def _expected_state(df: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    state = origin_state(df, day)
    price = df[df["date"] == day][["store_id", "item_id", "price"]]
    state = state.merge(price.rename(columns={"price": "last_price"}))
    order = pd.DataFrame(KEYS, columns=["store_id", "item_id"])
    return order.merge(state, how="left")


@pytest.fixture()
def unique_fs() -> Iterator[list[FeatureStore]]:
    """Stores registered here are dropped (online data + registry) at the end."""
    stores: list[FeatureStore] = []
    yield stores
    for store in stores:
        drop_project(store)


def test_stage_materializes_incrementally_and_serves_origin_state(
    settings: Settings,
    sales: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_home = tmp_path / "user-home"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    last = sales["date"].max()
    first = _publish(settings, sales[sales["date"] < last])
    assert first.details["materialized"][STATE_VIEW].startswith("full from")
    second = _publish(settings, sales)
    assert second.details["materialized"][STATE_VIEW].startswith("incremental")
    assert _publish(settings, sales).details["materialized"][STATE_VIEW] == "up to date"
    assert (
        settings.home / "feature_store" / "data" / "demand_series_state.parquet"
    ).is_file()
    state, found = OnlineFeatures(open_store(settings)).state_for(KEYS)
    assert found == [True] * len(KEYS)
    pd.testing.assert_frame_equal(state, _expected_state(sales, last), check_exact=True)
    # A replaced past day changes the last state: incremental would miss it.
    restated = sales.copy()
    restated.loc[restated["date"] == last - pd.Timedelta(days=3), "sales"] += 100
    result = _publish(settings, restated)
    assert result.details["restated"] is True
    assert result.details["materialized"][STATE_VIEW].startswith("full from")
    state, _ = OnlineFeatures(open_store(settings)).state_for(KEYS)
    expected = _expected_state(restated, last)
    pd.testing.assert_frame_equal(state, expected, check_exact=True)
    assert (state["lag_3"] == _expected_state(sales, last)["lag_3"] + 100).all()
    # Nothing of Feast, dask or SQLite lands in the user's home folder.
    assert list(fake_home.iterdir()) == []


def test_training_set_equals_build_training_examples(
    settings: Settings, sales: pd.DataFrame, offline_fs: FeatureStoreSettings
) -> None:
    store = _store(settings, sales, offline_fs)
    got = training_examples(store, sales, horizon=14, origin_step=5)
    expected = build_training_examples(sales, horizon=14, origin_step=5)
    assert len(got) > 1000
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_a_later_stamped_value_never_reaches_an_earlier_label(
    settings: Settings, sales: pd.DataFrame, offline_fs: FeatureStoreSettings
) -> None:
    spiked = sales.copy()
    origin = spiked["date"].min() + pd.Timedelta(days=100)
    at = (spiked["store_id"] == "S01") & (spiked["item_id"] == "I002")
    spiked.loc[at & (spiked["date"] == origin + pd.Timedelta(days=1)), "sales"] = SPIKE
    known = float(spiked.loc[at & (spiked["date"] == origin), "sales"].iloc[0])
    store = _store(settings, spiked, offline_fs)
    stamps = [
        origin,
        origin + pd.Timedelta(hours=23, minutes=59),
        origin + pd.Timedelta(days=1),
    ]
    rows = pd.DataFrame(
        {JOIN_KEY: "S01:I002", TIMESTAMP: pd.DatetimeIndex(stamps).tz_localize("UTC")}
    )
    got = point_in_time(store, rows, REFS, [JOIN_KEY])
    # Known answers: the state of `origin` until the spike's own stamp.
    assert got["lag_0"].tolist() == [known, known, SPIKE]
    assert (got.loc[:1, STATE_FEATURES].to_numpy() < SPIKE).all()
    examples = training_examples(store, spiked, horizon=7, origin_step=1)
    series = examples[(examples["store_id"] == "S01") & (examples["item_id"] == "I002")]
    lags = [c for c in series.columns if c.startswith("lag_")]
    before = series[series["origin"] <= origin]
    assert (before["sales"] == SPIKE).sum() == 7  # the spike is a label ...
    assert (before[lags].to_numpy() < SPIKE).all()  # ... never a feature
    assert (
        series[series["origin"] == origin + pd.Timedelta(days=1)]["lag_0"] == SPIKE
    ).all()


def test_guard_keeps_every_row_feast_drops(
    settings: Settings, sales: pd.DataFrame, offline_fs: FeatureStoreSettings
) -> None:
    store = _store(settings, sales, offline_fs)
    first, last = sales["date"].min(), sales["date"].max()
    stamps = [
        last + pd.Timedelta(days=10),
        first + pd.Timedelta(days=5),
        last,
        last,
        last,
    ]
    rows = pd.DataFrame(
        {
            JOIN_KEY: ["S01:I001"] * 4 + ["S09:I009"],
            TIMESTAMP: pd.DatetimeIndex(stamps).tz_localize("UTC"),
            "label": [1.0, 2.0, 3.0, 4.0, 5.0],
        },
        index=[10, 11, 12, 13, 14],
    )
    if offline_fs.offline == "file":
        raw = store.get_historical_features(entity_df=rows, features=REFS).to_df()
        # The trap, pinned for feast 0.67's file store: rows with data for
        # their entity but none within the TTL vanish, duplicates collapse.
        assert len(raw) < len(rows)
    guarded = point_in_time(store, rows, REFS, [JOIN_KEY])
    assert guarded.index.tolist() == rows.index.tolist()
    assert guarded["label"].tolist() == rows["label"].tolist()
    assert guarded["origin"].notna().tolist() == [False, False, True, True, False]
    # Labels past the offline data must fail loudly, not lose rows.
    short_store = _store(
        settings,
        sales[sales["date"] <= first + pd.Timedelta(days=150)],
        offline_fs,
    )
    with pytest.raises(MissingFeaturesError, match="missing from the offline store"):
        training_examples(short_store, sales, horizon=14, origin_step=7)


def _skew(store: FeatureStore, sales: pd.DataFrame) -> int:
    """Mismatches between offline (PIT at T) and online after materializing to T."""
    day = sales["date"].min() + pd.Timedelta(days=150)
    features_stage.materialize(store, MATERIALIZED_VIEWS, _utc(day))
    ids = [f"{s}:{i}" for s, i in KEYS]
    rows = pd.DataFrame({JOIN_KEY: ids, TIMESTAMP: pd.Timestamp(day, tz="UTC")})
    offline = point_in_time(store, rows, REFS, [JOIN_KEY]).set_index(JOIN_KEY)
    online = store.get_online_features(
        features=REFS, entity_rows={JOIN_KEY: ids}
    ).to_df()
    online = online.set_index(JOIN_KEY).loc[ids]
    assert (
        pd.to_datetime(online["origin"], utc=True).dt.tz_localize(None) == day
    ).all()
    assert (offline["origin"] == day).all()
    names = [*STATE_FEATURES, "last_price"]
    a, b = offline[names].to_numpy(np.float64), online[names].to_numpy(np.float64)
    assert a.shape == (6, len(names))
    return int((a != b).sum())


def test_no_skew_sqlite(
    settings: Settings, sales: pd.DataFrame, offline_fs: FeatureStoreSettings
) -> None:
    assert _skew(_store(settings, sales, offline_fs), sales) == 0


def test_no_skew_redis(
    settings: Settings, sales: pd.DataFrame, unique_fs: list[FeatureStore]
) -> None:
    if reason := _reachable("redis"):
        pytest.skip(reason)
    fs = FeatureStoreSettings(online="redis", project=f"t_{uuid.uuid4().hex[:10]}")
    store = _store(settings, sales, fs)
    unique_fs.append(store)
    assert _skew(store, sales) == 0
    assert _redis_keys(fs.project) == len(KEYS)


def test_push_is_visible_in_the_next_online_read(
    settings: Settings, sales: pd.DataFrame
) -> None:
    _publish(settings, sales)
    online = OnlineFeatures(open_store(settings))
    last = sales["date"].max()
    at = (sales["date"] == last) & (sales["store_id"] == "S01")
    total = float(sales.loc[at & (sales["item_id"] == "I001"), "sales"].iloc[0])
    before = online.sales_today([("S01", "I001"), ("S99", "I999")])
    # Materialized: the last validated day's total, stamped that day.
    assert before["sales_today"].iloc[0] == total
    assert before["as_of"].iloc[0] == last
    assert before["sales_today"].isna().iloc[1] and before["as_of"].isna().iloc[1]
    pushed_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    online.push_sales("S01", "I001", 12)
    after = online.sales_today([("S01", "I001"), ("S01", "I002")])
    assert after["sales_today"].tolist()[0] == 12.0
    assert after["as_of"].iloc[0] >= pushed_at
    assert after["as_of"].iloc[1] == last  # other series untouched
    sdk = OnlineFeatures(open_store(settings)).store.get_online_features(
        features=[f"{TODAY_VIEW}:sales_today"], entity_rows=[{JOIN_KEY: "S01:I001"}]
    )
    assert sdk.to_dict()["sales_today"] == [12.0]


def test_online_state_builds_the_same_model_inputs(
    settings: Settings, sales: pd.DataFrame
) -> None:
    _publish(settings, sales)
    last = sales["date"].max()
    asked = [("S01", "I001"), ("S99", "I999"), ("S02", "I003"), ("S01", "I001")]
    state, found = OnlineFeatures(open_store(settings)).state_for(asked)
    assert found == [True, False, True, True]
    empty, none = OnlineFeatures(open_store(settings)).state_for([])
    assert (list(empty.columns), none) == (list(state.columns), [])
    assert (empty.dtypes == state.dtypes).all()
    assert state.loc[1, "origin"] is pd.NaT
    assert state.loc[1, [*STATE_FEATURES, "last_price"]].isna().all()
    pd.testing.assert_series_equal(state.loc[0], state.loc[3], check_names=False)
    targets = pd.DataFrame(
        {
            "store_id": ["S01", "S02"],
            "item_id": ["I001", "I003"],
            "date": [last + pd.Timedelta(days=1), last + pd.Timedelta(days=9)],
            "price": [3.5, 7.0],
            "promo": [0, 1],
            "holiday": [0, 0],
        }
    )
    # build_features wants one state row per series: drop the repeated ask.
    known = state[found].drop_duplicates(["store_id", "item_id"])
    online = build_features(known.reset_index(drop=True), targets, last)
    offline = build_features(origin_state(sales, last), targets, last)
    pd.testing.assert_frame_equal(online[offline.columns], offline, check_exact=True)


@pytest.mark.postgres
def test_production_profile_sql_registry_and_redis(
    tiny_env: Path, sales: pd.DataFrame, unique_fs: list[FeatureStore]
) -> None:
    for service in ("postgres", "redis"):
        if reason := _reachable(service):
            pytest.skip(reason)
    settings = load_settings("production", home=tiny_env)
    configure_environment(settings.home)
    fs = FeatureStoreSettings.for_profile("production").model_copy(
        update={"project": f"t_{uuid.uuid4().hex[:10]}"}
    )
    online = OnlineFeatures(open_store(settings, fs))
    unique_fs.append(online.store)  # dropped even if a step below fails
    result = _publish(settings, sales, fs)
    assert (result.details["registry"], result.details["online_store"]) == (
        "sql",
        "redis",
    )
    state, found = online.state_for(KEYS)
    assert all(found)
    pd.testing.assert_frame_equal(
        state, _expected_state(sales, sales["date"].max()), check_exact=True
    )
    online.push_sales("S02", "I003", 7)
    assert online.sales_today([("S02", "I003")])["sales_today"].tolist() == [7.0]
    got = training_examples(online.store, sales, horizon=7, origin_step=14)
    pd.testing.assert_frame_equal(
        got, build_training_examples(sales, horizon=7, origin_step=14), check_exact=True
    )
    # Another process sees the project through the PostgreSQL registry.
    fresh = open_store(settings, fs)
    assert {v.name for v in fresh.list_feature_views()} >= set(MATERIALIZED_VIEWS)
