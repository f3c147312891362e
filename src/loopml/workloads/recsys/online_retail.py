"""UCI Online Retail as implicit customer x product feedback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.workloads.recsys.splits import test_cut
from loopml.workloads.recsys.tables import (
    UNKNOWN_AGE_BAND,
    RecsysData,
    as_ns,
    require_file,
)

log = logging.getLogger(__name__)

# Postage, fees, manual adjustments, charity and vouchers are not products.
_NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE"}
    | {"CRUK", "PADS"}
)
# A derived category needs this many items, else it becomes "other".
_MIN_CATEGORY_ITEMS = 5


def load_online_retail(
    path: Path, min_user_items: int = 5, top_items: int = 1000, test_days: int = 28
) -> RecsysData:
    """Turn UCI Online Retail transactions into implicit customer x product feedback.

    Deliberate choices:
    * cancellations (``InvoiceNo`` starting with ``C``), ``Quantity <= 0``,
      rows without ``CustomerID`` and service codes (postage, fees, manual
      adjustments, vouchers) are dropped;
    * one ``purchase`` interaction (weight 1, the day's first invoice time)
      per customer, product and day, whatever the quantity, so bulk buyers do
      not dominate;
    * every selection looks only at the training period, before the
      evaluation's cut (``splits.test_cut``: ``test_days`` before the end),
      so the test period never decides what is in the data: the
      ``top_items`` products with most distinct buyers before the cut are
      kept (ties by ``StockCode``), then the customers with at least
      ``min_user_items`` distinct kept products before the cut, and every
      customer whose first purchase is after the cut (a new customer: how
      much they will buy is not known at the cut); customers with a thinner
      history before the cut are dropped;
    * ``user_id`` is the integer ``CustomerID`` as text; ``segment`` is the
      customer's most frequent ``Country`` before the cut (a new customer's
      on their first purchase day); ``hire_date`` is the first purchase day
      (the customer's "joining" date); seniority, department and age band
      are unknown (-1, ``unknown``, ``unknown``);
    * ``title`` is the product's most frequent ``Description`` before the
      cut; ``category`` is the description's last word (mostly the product
      type: ``HOLDER``, ``BAG``, ``MUG``...) lower-cased, or ``other`` when
      fewer than five products share it; ``created`` is the first sale day;
      level, duration and roles are unknown (0, 0.0, "").

    Args:
        path: the Online Retail parquet file (read only).
        min_user_items: minimum distinct products per kept customer, before
            the cut.
        top_items: how many products to keep.
        test_days: the evaluation's test period (``recsys.test_days``).

    Returns:
        The three canonical tables.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    require_file(
        Path(path),
        "the UCI Online Retail parquet",
        "Point --data-path (or workloads.recsys.data_path) at your copy, e.g. "
        "../shared/datasets/online_retail/online_retail.parquet, or use dataset "
        "'generated'.",
    )
    columns = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"]
    raw = pd.read_parquet(path, columns=[*columns, "CustomerID", "Country"])
    code = raw["StockCode"].astype(str)
    keep = (
        ~raw["InvoiceNo"].astype(str).str.startswith("C")
        & (raw["Quantity"] > 0)
        & raw["CustomerID"].notna()
        & ~code.isin(_NON_PRODUCT_CODES)
        & ~code.str.startswith("gift_")
    )
    sold = pd.DataFrame(
        {
            "user_id": raw.loc[keep, "CustomerID"].astype(np.int64).astype(str),
            "item_id": code[keep],
            "timestamp": as_ns(raw.loc[keep, "InvoiceDate"]),
            "description": raw.loc[keep, "Description"],
            "country": raw.loc[keep, "Country"].astype(str),
        }
    )
    log.info("online retail: kept %d of %d transaction rows", len(sold), len(raw))
    cut = test_cut(sold["timestamp"], test_days)
    sold = select_before_cut(sold, cut, min_user_items, top_items)

    daily = (
        sold.assign(day=sold["timestamp"].dt.normalize())
        .groupby(["user_id", "item_id", "day"], as_index=False)["timestamp"]
        .min()
    )
    interactions = daily.assign(event="purchase", weight=1.0)
    interactions = interactions.sort_values(["timestamp", "user_id", "item_id"])
    interactions = interactions[["user_id", "item_id", "timestamp", "event", "weight"]]

    first_day = daily.groupby("user_id")["day"].min()
    country = _countries(sold, cut)
    users = pd.DataFrame(
        {
            "user_id": first_day.index.astype(str),
            "segment": country.reindex(first_day.index).to_numpy(),
            "seniority": np.int64(-1),
            "department": "unknown",
            "hire_date": as_ns(first_day).to_numpy(),
            "age_band": UNKNOWN_AGE_BAND,
        }
    )
    items = _retail_items(sold, daily, cut)
    log.info(
        "online retail: %d customers x %d products, %d interactions",
        len(users),
        len(items),
        len(interactions),
    )
    return RecsysData(users, items, interactions.reset_index(drop=True))


def select_before_cut(
    sold: pd.DataFrame, cut: pd.Timestamp, min_user_items: int, top_items: int
) -> pd.DataFrame:
    """Keep the top products and the customers, judged before the cut only.

    Args:
        sold: one row per sold line: ``user_id, item_id, timestamp`` at least.
        cut: the start of the test period (``splits.test_cut``).
        min_user_items: distinct kept products a customer with a history
            before the cut needs.
        top_items: how many products (most distinct buyers before the cut).

    Returns:
        The rows of the kept products bought by kept customers (see
        :func:`load_online_retail`), test period included.
    """
    before = sold[sold["timestamp"] < cut]
    buyers = before.groupby("item_id")["user_id"].nunique().reset_index(name="n")
    buyers = buyers.sort_values(["n", "item_id"], ascending=[False, True])
    sold = sold[sold["item_id"].isin(buyers["item_id"].head(top_items))]
    known = before["user_id"].unique()
    per_user = sold[sold["timestamp"] < cut].groupby("user_id")["item_id"].nunique()
    regular = per_user.index[per_user >= min_user_items]
    newcomer = ~sold["user_id"].isin(known)
    kept = sold[sold["user_id"].isin(regular) | newcomer]
    log.info(
        "online retail: cut %s; %d products, %d customers with a history, "
        "%d new after the cut",
        cut.date(),
        kept["item_id"].nunique(),
        len(regular),
        kept.loc[newcomer, "user_id"].nunique(),
    )
    return kept


def _countries(sold: pd.DataFrame, cut: pd.Timestamp) -> pd.Series:
    """Most frequent country before the cut, else on the first purchase day."""
    day = sold["timestamp"].dt.normalize()
    first_day = day.groupby(sold["user_id"]).transform("min")
    known = (sold["timestamp"] < cut).groupby(sold["user_id"]).transform("any")
    basis = sold[(sold["timestamp"] < cut) | (~known & (day == first_day))]
    return _mode(basis, "user_id", "country")


def _mode(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Most frequent ``column`` per ``key``; ties go to the smallest value."""
    return (
        frame.groupby([key, column])
        .size()
        .reset_index(name="n")
        .sort_values([key, "n", column], ascending=[True, False, True])
        .drop_duplicates(key)
        .set_index(key)[column]
    )


def _retail_items(
    sold: pd.DataFrame, daily: pd.DataFrame, cut: pd.Timestamp
) -> pd.DataFrame:
    """One row per product: most frequent description before the cut, category."""
    described = sold[sold["timestamp"] < cut].dropna(subset=["description"])
    title = _mode(described, "item_id", "description")
    created = daily.groupby("item_id")["day"].min()
    titles = title.reindex(created.index).fillna(created.index.to_series())
    titles = titles.astype(str).str.strip()
    last_word = titles.str.split().str[-1].fillna("other").str.lower()
    sizes = last_word.map(last_word.value_counts())
    category = last_word.where(sizes >= _MIN_CATEGORY_ITEMS, "other")
    return pd.DataFrame(
        {
            "item_id": created.index.astype(str),
            "title": titles.to_numpy(),
            "category": category.to_numpy(),
            "level": np.int64(0),
            "duration_hours": 0.0,
            "roles": "",
            "created": as_ns(created).to_numpy(),
        }
    )
