"""The demand state table behind Feast, and the feature-store config per profile.

No Feast here (its import alone takes seconds): the Feast objects are
exercised by ``tests/integration/test_feature_store.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.config import PRODUCTION_REGISTRY, FeatureStoreSettings, load_settings
from loopml.sdk.feast import feature_store_settings, render_yaml, repo_config
from loopml.sdk.pg_offline import table_name
from loopml.workloads.demand import data
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    STATE_FEATURES,
    TIMESTAMP,
    series_ids,
    state_history,
)
from loopml.workloads.demand.features import HISTORY_DAYS, origin_state

SALES = data.generate(n_stores=2, n_items=3, n_days=120)


def _assert_matches_origin_state(
    df: pd.DataFrame, history: pd.DataFrame, step: int = 1
) -> int:
    """Compare every ``step``-th day with ``origin_state``; return rows compared."""
    compared = 0
    for origin in pd.date_range(df["date"].min(), df["date"].max(), freq=f"{step}D"):
        expected = origin_state(df, origin)
        got = history[history["origin"] == origin]
        expected_ids = series_ids(expected["store_id"], expected["item_id"])
        assert sorted(got[JOIN_KEY]) == sorted(expected_ids), origin
        got = got.set_index(JOIN_KEY).loc[expected_ids.to_numpy()]
        np.testing.assert_array_equal(
            got[STATE_FEATURES].to_numpy(), expected[STATE_FEATURES].to_numpy()
        )
        compared += len(expected)
    return compared


def test_state_history_is_origin_state_of_every_day() -> None:
    history = state_history(SALES)
    n_series, n_days = 6, 120
    assert len(history) == n_series * (n_days - HISTORY_DAYS + 1)
    assert _assert_matches_origin_state(SALES, history) == len(history)
    # Stamped at the state's own day (midnight UTC), never later.
    stamps = history[TIMESTAMP].dt.tz_convert(None)
    assert (stamps == history["origin"]).all()
    assert str(history[TIMESTAMP].dt.tz) == "UTC"


def test_sales_today_and_last_price_are_that_days_values() -> None:
    history = state_history(SALES)
    day = SALES.assign(series_id=series_ids(SALES["store_id"], SALES["item_id"]))
    merged = history.merge(
        day, left_on=[JOIN_KEY, "origin"], right_on=[JOIN_KEY, "date"]
    )
    assert len(merged) == len(history)
    np.testing.assert_array_equal(merged["sales_today"], merged["sales"])
    np.testing.assert_array_equal(merged["last_price"], merged["price"])


@settings(max_examples=12, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=len(SALES) - 1), max_size=25),
    cut=st.integers(min_value=30, max_value=119),
)
def test_gaps_and_future_rows_do_not_leak(gaps: list[int], cut: int) -> None:
    """Missing days drop exactly the states origin_state drops; rows after a
    day never change that day's state."""
    holed = SALES.drop(index=gaps).reset_index(drop=True)
    history = state_history(holed)
    _assert_matches_origin_state(holed, history, step=3)
    day = holed["date"].min() + pd.Timedelta(days=cut)
    changed = holed.copy()
    changed.loc[changed["date"] > day, "sales"] = 1e6
    before = history[history["origin"] <= day].reset_index(drop=True)
    after = state_history(changed)
    after = after[after["origin"] <= day].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_too_short_data_gives_an_empty_table() -> None:
    short = data.generate(n_stores=1, n_items=2, n_days=HISTORY_DAYS - 1)
    assert state_history(short).empty


def test_profiles_choose_embedded_or_server_stores(tiny_env: Path) -> None:
    default = load_settings("default")
    fs = feature_store_settings(default)
    assert (fs.online, fs.registry) == ("sqlite", "file")
    config = repo_config(default, fs)
    root = default.home / "feature_store"
    assert config["online_store"] == {"type": "sqlite", "path": str(root / "online.db")}
    assert config["registry"]["path"] == str(root / "registry.db")
    production = FeatureStoreSettings.for_profile("production")
    config = repo_config(default, production)
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == PRODUCTION_REGISTRY
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"] == "127.0.0.1:6379"
    assert repo_config(default, fs)["offline_store"] == {"type": "file"}
    offline = config["offline_store"]
    assert offline["type"] == "postgres"
    assert (offline["host"], offline["port"], offline["database"]) == (
        "127.0.0.1",
        5432,
        "test",
    )
    # The production YAML says the same as the profile's defaults.
    from_yaml = feature_store_settings(load_settings("production", home=tiny_env))
    assert (from_yaml.offline, from_yaml.offline_url) == (
        production.offline,
        production.offline_url,
    )


def test_offline_table_names_are_per_project() -> None:
    assert table_name("Run_1", "demand_series_state.parquet") == (
        "run_1__demand_series_state"
    )
    assert table_name("a", "x.parquet") != table_name("b", "x.parquet")
    with pytest.raises(ValueError, match="shorter"):
        table_name("p" * 40, "recsys_segment_item_popularity.parquet")


def test_rendered_yaml_is_the_config_and_stays_in_home(tiny_env: Path) -> None:
    settings = load_settings("default")
    path = render_yaml(settings)
    assert path == settings.home / "feature_store" / "feature_store.yaml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert loaded == repo_config(settings, feature_store_settings(settings))
    assert loaded["online_store"]["path"].startswith(str(settings.home))


def test_project_name_must_suit_feast() -> None:
    with pytest.raises(ValueError, match="project"):
        FeatureStoreSettings(project="_bad-name")


def test_rendered_yaml_never_holds_a_password(tiny_env: Path) -> None:
    settings = load_settings("default")
    fs = FeatureStoreSettings(
        online="redis",
        redis_connection_string="cache:6379,db=1,password=s3cret,ssl=true",
        registry="sql",
        registry_path="postgresql+psycopg2://feast:s3cret@db:5432/feast",
        offline="postgres",
        offline_url="postgresql://feast:s3cret@db:5432/feast?sslmode=require",
    )
    text = render_yaml(settings, fs).read_text(encoding="utf-8")
    assert "s3cret" not in text
    assert "cache:6379,db=1,password=***,ssl=true" in text
    assert "postgresql+psycopg2://feast:***@db:5432/feast" in text
    # The store itself still gets the real secrets.
    assert "s3cret" in repo_config(settings, fs)["registry"]["path"]
    offline = repo_config(settings, fs)["offline_store"]
    assert (offline["password"], offline["sslmode"]) == ("s3cret", "require")
