"""The raw demand contract holds on generated data and on the real datasets.

The real datasets live beside the project in ``../shared/datasets`` (never in
it); these tests skip, saying so, only when that folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.workloads.demand import data
from loopml.workloads.demand.schema import RAW_SCHEMA, validate_raw

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ONLINE_RETAIL = DATASETS / "online_retail" / "online_retail.parquet"
BIKE_SHARING = DATASETS / "bike_sharing" / "day.csv"


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"real dataset not found at {path} (a fresh clone has none)")


def _assert_contract(df: pd.DataFrame) -> None:
    validate_raw(df)
    assert list(df.columns) == list(RAW_SCHEMA.columns)
    keys = ["store_id", "item_id", "date"]
    assert df.equals(df.sort_values(keys).reset_index(drop=True))
    # One row per series and day, every series gap-free.
    spans = df.groupby(["store_id", "item_id"])["date"].agg(["min", "max", "size"])
    assert ((spans["max"] - spans["min"]).dt.days + 1 == spans["size"]).all()


@pytest.mark.parametrize("seed", [1, 42])
def test_generated_data_meets_the_contract(seed: int) -> None:
    df = data.generate(n_stores=3, n_items=5, n_days=150, seed=seed)
    _assert_contract(df)
    assert len(df) == 3 * 5 * 150


def test_generated_days_replay_one_by_one() -> None:
    # Daily ingestion cuts days out of a longer world: earlier days never move.
    short = data.generate(n_stores=2, n_items=3, n_days=120, seed=5)
    longer = data.generate(n_stores=2, n_items=3, n_days=121, seed=5)
    kept = longer[longer["date"] <= short["date"].max()].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, short)
    new_day = longer[longer["date"] > short["date"].max()]
    validate_raw(
        pd.concat([short, new_day]).sort_values(["store_id", "item_id", "date"]),
        new_days=[new_day["date"].iloc[0]],
        reference_rows_per_day=6,
    )


def test_online_retail_meets_the_contract() -> None:
    _need(ONLINE_RETAIL)
    df = data.load_online_retail(ONLINE_RETAIL, top_n_items=20)
    _assert_contract(df)
    assert df["item_id"].nunique() == 20
    assert (df["store_id"] == "online").all()
    # Replaying it day by day gives the same table, one batch per InvoiceDate.
    days = sorted(df["date"].unique())
    assert len(days) == (days[-1] - days[0]).days + 1


def test_bike_sharing_meets_the_contract() -> None:
    _need(BIKE_SHARING)
    df = data.load("bike-sharing", BIKE_SHARING, n_items=7)  # n_items: ignored
    _assert_contract(df)
    raw = pd.read_csv(BIKE_SHARING)
    assert len(df) == len(raw) == 731
    assert df[["store_id", "item_id"]].drop_duplicates().values.tolist() == [
        ["dc", "bikes"]
    ]
    assert df["sales"].tolist() == raw["cnt"].astype(float).tolist()
    assert df["holiday"].tolist() == raw["holiday"].tolist()
    assert (df["price"] == 1.0).all() and (df["promo"] == 0).all()
    assert df["date"].min() == pd.Timestamp("2011-01-01")
