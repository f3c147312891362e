"""UCI Online Retail as implicit customer x product feedback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.workloads.recsys.tables import RecsysData, as_ns, require_file

log = logging.getLogger(__name__)

# Postage, fees, manual adjustments, charity and vouchers are not products.
_NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE"}
    | {"CRUK", "PADS"}
)
# A derived category needs this many items, else it becomes "other".
_MIN_CATEGORY_ITEMS = 5


def load_online_retail(
    path: Path, min_user_items: int = 5, top_items: int = 1000
) -> RecsysData:
    """Turn UCI Online Retail transactions into implicit customer x product feedback.

    Deliberate choices:
    * cancellations (``InvoiceNo`` starting with ``C``), ``Quantity <= 0``,
      rows without ``CustomerID`` and service codes (postage, fees, manual
      adjustments, vouchers) are dropped;
    * one ``purchase`` interaction (weight 1, the day's first invoice time)
      per customer, product and day, whatever the quantity, so bulk buyers do
      not dominate;
    * the ``top_items`` products with most distinct buyers are kept (ties by
      ``StockCode``), then customers with at least ``min_user_items`` distinct
      kept products;
    * ``user_id`` is the integer ``CustomerID`` as text; ``segment`` is the
      customer's most frequent ``Country``; ``hire_date`` is the first
      purchase day (the customer's "joining" date); seniority and department
      are unknown (-1, ``unknown``);
    * ``title`` is the product's most frequent ``Description``; ``category``
      is the description's last word (mostly the product type: ``HOLDER``,
      ``BAG``, ``MUG``...) lower-cased, or ``other`` when fewer than five
      products share it; ``created`` is the first sale day; level, duration
      and roles are unknown (0, 0.0, "").

    Args:
        path: the Online Retail parquet file (read only).
        min_user_items: minimum distinct products per kept customer.
        top_items: how many products to keep.

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
    buyers = sold.groupby("item_id")["user_id"].nunique().reset_index(name="n")
    buyers = buyers.sort_values(["n", "item_id"], ascending=[False, True])
    sold = sold[sold["item_id"].isin(buyers["item_id"].head(top_items))]
    per_user = sold.groupby("user_id")["item_id"].nunique()
    sold = sold[sold["user_id"].isin(per_user.index[per_user >= min_user_items])]

    daily = (
        sold.assign(day=sold["timestamp"].dt.normalize())
        .groupby(["user_id", "item_id", "day"], as_index=False)["timestamp"]
        .min()
    )
    interactions = daily.assign(event="purchase", weight=1.0)
    interactions = interactions.sort_values(["timestamp", "user_id", "item_id"])
    interactions = interactions[["user_id", "item_id", "timestamp", "event", "weight"]]

    first_day = daily.groupby("user_id")["day"].min()
    country = (
        sold.groupby(["user_id", "country"])
        .size()
        .reset_index(name="n")
        .sort_values(["user_id", "n", "country"], ascending=[True, False, True])
        .drop_duplicates("user_id")
        .set_index("user_id")["country"]
    )
    users = pd.DataFrame(
        {
            "user_id": first_day.index.astype(str),
            "segment": country.reindex(first_day.index).to_numpy(),
            "seniority": np.int64(-1),
            "department": "unknown",
            "hire_date": as_ns(first_day).to_numpy(),
        }
    )
    items = _retail_items(sold, daily)
    log.info(
        "online retail: %d customers x %d products, %d interactions",
        len(users),
        len(items),
        len(interactions),
    )
    return RecsysData(users, items, interactions.reset_index(drop=True))


def _retail_items(sold: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """One row per product: most frequent description, derived category."""
    described = sold.dropna(subset=["description"])
    title = (
        described.groupby(["item_id", "description"])
        .size()
        .reset_index(name="n")
        .sort_values(["item_id", "n", "description"], ascending=[True, False, True])
        .drop_duplicates("item_id")
        .set_index("item_id")["description"]
    )
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
