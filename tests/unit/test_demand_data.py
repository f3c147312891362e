"""Raw demand data: generator, Online Retail loader, dispatch and schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core.errors import DataValidationError
from loopml.workloads.demand import data
from loopml.workloads.demand.schema import validate_raw

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
ONLINE_RETAIL = DATASETS / "online_retail" / "online_retail.parquet"
DTYPES = {
    "date": "datetime64[ns]",
    "store_id": "object",
    "item_id": "object",
    "sales": "float64",
    "price": "float64",
    "promo": "int64",
    "holiday": "int64",
}


def _assert_canonical(df: pd.DataFrame) -> None:
    assert list(df.columns) == data.RAW_COLUMNS == list(DTYPES)
    assert {c: str(t) for c, t in df.dtypes.items()} == DTYPES
    keys = ["store_id", "item_id", "date"]
    assert df.equals(df.sort_values(keys).reset_index(drop=True))
    assert not df.duplicated(keys).any()
    assert (df["sales"] >= 0).all() and (df["price"] > 0).all()
    spans = df.groupby(["store_id", "item_id"])["date"].agg(["min", "max", "size"])
    assert ((spans["max"] - spans["min"]).dt.days + 1 == spans["size"]).all()


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return data.generate(n_stores=2, n_items=3, n_days=120, seed=7)


def test_generate_is_canonical_and_valid(small: pd.DataFrame) -> None:
    _assert_canonical(small)
    assert sorted(small["store_id"].unique()) == ["S01", "S02"]
    assert sorted(small["item_id"].unique()) == ["I001", "I002", "I003"]
    assert len(small) == 2 * 3 * 120
    assert set(small["promo"]) == {0, 1} and 0.03 < small["promo"].mean() < 0.2
    assert small["sales"].eq(small["sales"].round()).all()  # counts
    validate_raw(small)


def test_generate_is_deterministic_per_seed(small: pd.DataFrame) -> None:
    again = data.generate(n_stores=2, n_items=3, n_days=120, seed=7)
    pd.testing.assert_frame_equal(small, again)
    other = data.generate(n_stores=2, n_items=3, n_days=120, seed=8)
    assert not small["sales"].equals(other["sales"])


def test_generate_has_weekly_promo_and_holiday_structure() -> None:
    df = data.generate(n_stores=3, n_items=10, n_days=730)
    weekend = df["date"].dt.dayofweek >= 5
    assert df.loc[weekend, "sales"].mean() > 1.1 * df.loc[~weekend, "sales"].mean()
    promo = df.groupby("promo")["sales"].mean()
    assert promo[1] > 1.2 * promo[0]
    christmas = df[(df["date"].dt.month == 12) & (df["date"].dt.day == 25)]
    assert christmas["holiday"].eq(1).all()
    levels = df.groupby(["store_id", "item_id"])["sales"].mean()
    assert levels.max() > 5 * levels.min()  # very different scales


def test_drift_changes_demand_from_the_given_day_only() -> None:
    base = data.generate(n_stores=2, n_items=5, n_days=300, seed=3)
    drifted = data.generate(
        n_stores=2, n_items=5, n_days=300, seed=3, drift_from_day=200
    )
    cut = base["date"].min() + pd.Timedelta(days=200)
    before, after = base["date"] < cut, base["date"] >= cut
    pd.testing.assert_frame_equal(base[before], drifted[before])
    ratio = drifted.loc[after, "sales"].sum() / base.loc[after, "sales"].sum()
    assert 1.4 < ratio < 1.8


def test_generate_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_days"):
        data.generate(n_days=0)


def _write_transactions(path: Path) -> None:
    rows = [
        # InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID
        ("536365", "10001", 4, "2011-01-03 09:00", 2.0, 17850.0),
        ("536366", "10001", 2, "2011-01-03 15:00", 5.0, np.nan),  # kept
        ("C536367", "10001", -3, "2011-01-04 10:00", 2.0, 17850.0),  # cancelled
        ("536368", "10001", 0, "2011-01-05 10:00", 2.0, 17850.0),
        ("536369", "10001", 1, "2011-01-06 10:00", 3.0, 12000.0),
        ("536370", "10002", 5, "2011-01-04 11:00", 1.0, 12000.0),
        ("536371", "10002", 1, "2011-01-05 11:00", 0.0, 12000.0),  # free
        ("536374", "10002", 2, "2011-01-06 11:00", 1.5, np.nan),
        ("536372", "POST", 1, "2011-01-05 11:00", 18.0, 12000.0),  # postage
        ("536373", "10003", 1, "2011-01-05 11:00", 1.0, 12000.0),  # 1 day only
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "InvoiceNo",
            "StockCode",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
        ],
    )
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).astype("datetime64[us]")
    frame["Description"] = "x"
    frame["Country"] = "United Kingdom"
    frame.to_parquet(path)


def test_load_online_retail_handling(tmp_path: Path) -> None:
    path = tmp_path / "retail.parquet"
    _write_transactions(path)
    df = data.load_online_retail(path, top_n_items=5, min_selling_days=2)
    _assert_canonical(df)
    assert sorted(df["item_id"].unique()) == ["10001", "10002"]
    assert (df["store_id"] == "online").all() and (df["promo"] == 0).all()
    first = df[df["item_id"] == "10001"].set_index("date")
    assert first["sales"].tolist() == [6.0, 0.0, 0.0, 1.0]  # Jan 3..6
    # Quantity-weighted price (4 x 2.0 + 2 x 5.0) / 6, carried over gaps.
    assert first["price"].tolist() == pytest.approx([3.0, 3.0, 3.0, 3.0])
    assert first.loc["2011-01-03", "holiday"] == 1  # New Year substitute day
    second = df[df["item_id"] == "10002"]
    assert second["sales"].tolist() == [0.0, 5.0, 0.0, 2.0]
    assert second["price"].tolist() == pytest.approx([1.0, 1.0, 1.0, 1.5])
    validate_raw(df)
    top = data.load_online_retail(path, top_n_items=1, min_selling_days=1)
    assert top["item_id"].unique().tolist() == ["10001"]


@pytest.mark.skipif(
    not ONLINE_RETAIL.is_file(),
    reason=f"real Online Retail data not found at {ONLINE_RETAIL} (fresh clone)",
)
def test_load_online_retail_real_file() -> None:
    df = data.load(
        "online-retail", ONLINE_RETAIL, top_n_items=5, n_stores=3
    )  # n_stores is a generator option, ignored here
    _assert_canonical(df)
    assert df["item_id"].nunique() == 5
    assert df["date"].min() == pd.Timestamp("2010-12-01")
    assert df["date"].max() == pd.Timestamp("2011-12-09")
    assert df.groupby("item_id").size().nunique() == 1  # all span the whole period
    assert df.loc[df["date"].dt.dayofweek == 5, "sales"].eq(0).all()  # no Saturdays
    validate_raw(df)


def test_load_dispatches_and_explains_errors(tmp_path: Path) -> None:
    df = data.load("generated", None, n_stores=1, n_items=2, n_days=30, top_n_items=9)
    assert df["item_id"].nunique() == 2 and len(df) == 60
    with pytest.raises(ValueError, match="generated.*online-retail"):
        data.load("nope", None)
    with pytest.raises(ValueError, match="n_shops"):
        data.load("generated", None, n_shops=2)
    with pytest.raises(FileNotFoundError, match="data_path"):
        data.load("online-retail", tmp_path / "missing.parquet")
    with pytest.raises(FileNotFoundError, match="data_path"):
        data.load("online-retail", None)


@pytest.mark.parametrize(
    ("column", "corrupt", "check"),
    [
        (
            "sales",
            lambda d: d.assign(sales=d["sales"].where(d.index != 3, -1.0)),
            "greater_than_or_equal",
        ),
        (
            "price",
            lambda d: d.assign(price=d["price"].where(d.index != 3)),
            "not_nullable",
        ),
        (
            "store_id",
            lambda d: d.assign(store_id=d["store_id"].where(d.index != 3)),
            "not_nullable",
        ),
        ("promo", lambda d: d.assign(promo=d["promo"].astype("int32")), "dtype"),
        ("sales", lambda d: d.assign(sales=d["sales"].astype("int64")), "dtype"),
        (
            "holiday",
            lambda d: d.assign(holiday=d["holiday"].where(d.index != 3, 2)),
            "isin",
        ),
        ("key", lambda d: pd.concat([d, d.iloc[[3]]]), "uniqueness"),
        ("table", lambda d: d.drop(index=5), "series_complete"),
        ("extra", lambda d: d.assign(extra=1), "column_in_schema"),
    ],
)
def test_schema_rejects_corrupted_frames(
    small: pd.DataFrame, column: str, corrupt: object, check: str
) -> None:
    assert callable(corrupt)
    with pytest.raises(DataValidationError) as caught:
        validate_raw(corrupt(small.copy()))
    message = str(caught.value)
    assert column in message and check in message
    assert isinstance(caught.value.failure_cases, pd.DataFrame)
    assert len(caught.value.failure_cases) > 0


def test_schema_reports_every_failure_at_once(small: pd.DataFrame) -> None:
    bad = small.copy()
    bad.loc[1, "sales"] = -2.0
    bad.loc[2, "price"] = 0.0
    with pytest.raises(DataValidationError) as caught:
        validate_raw(bad)
    assert "'sales'" in str(caught.value) and "'price'" in str(caught.value)
