"""Online reads for serving, and pushes of fresh events.

The service asks :class:`OnlineFeatures` for the state of the series in a
request and builds model inputs with ``features.build_features``, the code
training used, so online and offline features share one definition.

Defaults for a series the online store does not know (never materialized,
or a typo): every state feature and ``last_price`` is NaN, ``origin`` is NaT
and its found flag is False. Nothing raises; the caller decides (the API
answers 404 for an unknown series).

Feast does not apply a view's TTL to online reads, so a found state may be
old: compare its ``origin`` with the origin the model expects.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from loopml.sdk.feast import online_values
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    PRICE_VIEW,
    PUSH_SOURCE,
    STATE_FEATURES,
    STATE_VIEW,
    TIMESTAMP,
    TODAY_VIEW,
)

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

#: Columns of :meth:`OnlineFeatures.state_for`: ``origin_state``'s, plus
#: ``last_price`` (the default price of a request without one).
STATE_COLUMNS: list[str] = ["store_id", "item_id", "origin", *STATE_FEATURES]
STATE_COLUMNS += ["last_price"]
_NUMERIC = [*STATE_FEATURES, "last_price"]
_NULL_STAMP = int(np.iinfo(np.int64).min)
_REFS = [f"{STATE_VIEW}:origin", *(f"{STATE_VIEW}:{name}" for name in STATE_FEATURES)]
_REFS += [f"{PRICE_VIEW}:last_price"]
_TODAY_REF = f"{TODAY_VIEW}:sales_today"
_EPOCH = dt.datetime(1970, 1, 1)
#: Pushes made by this process so far (caches of online reads compare it).
PUSHES = [0]


@dataclass(frozen=True)
class StateRows:
    """Online reads as arrays, one entry per pair asked (no frame).

    ``values`` has one row of ``_NUMERIC`` (``STATE_FEATURES`` then
    ``last_price``) per pair, NaN when missing; ``origins`` the origin as
    Unix seconds (None: no state); ``sales_today`` and ``as_of`` as
    :meth:`OnlineFeatures.sales_today` (None when unknown; naive UTC).
    """

    values: np.ndarray
    origins: list[int | None]
    sales_today: list[float | None]
    as_of: list[dt.datetime | None]


def _pushed() -> None:
    PUSHES[0] += 1


class OnlineFeatures:
    """The demand state of series, read from the online store."""

    def __init__(self, store: FeatureStore) -> None:
        """Read through an open store (``loopml.sdk.feast.open_store``).

        Cheap: reads reuse the store's connections, so the service wraps the
        store it holds once per request.
        """
        self.store = store

    def state_for(
        self, series_keys: list[tuple[str, str]]
    ) -> tuple[pd.DataFrame, list[bool]]:
        """The origin state of each (store_id, item_id) pair, in order.

        Args:
            series_keys: the pairs to read (duplicates allowed).

        Returns:
            A frame with :data:`STATE_COLUMNS`, one row per pair (defaults
            when missing, see the module docstring), and the found flags.
        """
        if not series_keys:
            return _empty_state(), []
        ids = [f"{store}:{item}" for store, item in series_keys]
        response = self.store.get_online_features(
            features=_REFS, entity_rows={JOIN_KEY: ids}
        )
        values = online_values(response.proto)
        # Feast writes a missing timestamp as int64 min (NaT) or leaves it unset.
        origins = [None if o == _NULL_STAMP else o for o in values["origin"]]
        found = [origin is not None for origin in origins]
        nat = np.datetime64("NaT", "s")
        days = [nat if s is None else np.datetime64(s, "s") for s in origins]
        matrix = np.array([values[name] for name in _NUMERIC], dtype=np.float64)
        keys = pd.DataFrame(
            {
                "store_id": np.array([s for s, _ in series_keys], dtype=object),
                "item_id": np.array([i for _, i in series_keys], dtype=object),
                "origin": np.array(days, dtype="datetime64[ns]"),
            }
        )
        # One float block glued to the keys: cheaper than to_df(), a dict of
        # 46 columns or DataFrame.insert for the few rows a request has.
        numbers = pd.DataFrame(
            matrix.reshape(len(_NUMERIC), len(ids)).T, columns=_NUMERIC
        )
        return pd.concat([keys, numbers], axis=1, copy=False), found

    def state_rows(self, series_keys: list[tuple[str, str]]) -> StateRows:
        """:meth:`state_for` and :meth:`sales_today` in one read, as arrays."""
        ids = [f"{store}:{item}" for store, item in series_keys]
        proto = self.store.get_online_features(
            features=[*_REFS, _TODAY_REF], entity_rows={JOIN_KEY: ids}
        ).proto
        values = online_values(proto)
        origins = [None if o == _NULL_STAMP else o for o in values["origin"]]
        matrix = np.array([values[name] for name in _NUMERIC], dtype=np.float64)
        names = list(proto.metadata.feature_names.val)
        stamps = proto.results[names.index("sales_today")].event_timestamps
        sales = values["sales_today"]
        as_of = [
            None
            if v is None
            else _EPOCH + dt.timedelta(seconds=t.seconds, microseconds=t.nanos // 1000)
            for v, t in zip(sales, stamps, strict=True)
        ]
        return StateRows(
            matrix.reshape(len(_NUMERIC), len(ids)).T,
            origins,
            [None if v is None else float(v) for v in sales],
            as_of,
        )

    def sales_today(self, series_keys: list[tuple[str, str]]) -> pd.DataFrame:
        """The latest ``sales_today`` of each pair and the time it refers to.

        After materialization this is the last validated day's total (stamped
        that day); a push replaces it with the running total of its day.

        Returns:
            ``store_id, item_id, sales_today`` (NaN when unknown) and ``as_of``
            (naive UTC event time, NaT when unknown), one row per pair.
        """
        ids = [f"{store}:{item}" for store, item in series_keys]
        values = self.store.get_online_features(
            features=[f"{TODAY_VIEW}:sales_today"], entity_rows={JOIN_KEY: ids}
        ).to_dict(include_event_timestamps=True)
        sales = [np.nan if v is None else float(v) for v in values["sales_today"]]
        seconds = [
            s if v is not None else None
            for s, v in zip(
                values["sales_today__ts"], values["sales_today"], strict=True
            )
        ]
        return pd.DataFrame(
            {
                "store_id": [store for store, _ in series_keys],
                "item_id": [item for _, item in series_keys],
                "sales_today": sales,
                "as_of": pd.to_datetime(pd.Series(seconds, dtype="float64"), unit="s"),
            }
        )

    def push_sales(
        self,
        store_id: str,
        item_id: str,
        sales: float,
        at: dt.datetime | None = None,
    ) -> None:
        """Push today's sales so far of one series to the online store now.

        Args:
            store_id: the store.
            item_id: the item.
            sales: sales of the day so far (not an increment).
            at: event time (default now, UTC); naive times are taken as UTC.
        """
        when = pd.Timestamp(at or dt.datetime.now(dt.UTC))
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        row = pd.DataFrame(
            {
                JOIN_KEY: [f"{store_id}:{item_id}"],
                TIMESTAMP: [when],
                "sales_today": [float(sales)],
            }
        )
        from feast.data_source import PushMode

        self.store.push(PUSH_SOURCE, row, to=PushMode.ONLINE)
        _pushed()
        log.info(
            "pushed sales_today=%s for %s/%s at %s", sales, store_id, item_id, when
        )

    def push_interactions(
        self,
        user_id: str,
        item_id: str,
        interactions: float,
        at: dt.datetime | None = None,
    ) -> None:
        """Push a recsys user's interactions of the day so far (``recsys_user_today``).

        Args:
            user_id: the user.
            item_id: the item of the latest interaction.
            interactions: interactions of the day so far (not an increment).
            at: event time (default now, UTC); naive times are taken as UTC.
        """
        from feast.data_source import PushMode

        from loopml.workloads.recsys import feature_views as recsys

        when = pd.Timestamp(at or dt.datetime.now(dt.UTC))
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        row = pd.DataFrame(
            {
                recsys.USER_KEY: [user_id],
                TIMESTAMP: [when],
                "interactions_today": [float(interactions)],
                "last_item_id": [item_id],
            }
        )
        self.store.push(recsys.PUSH_SOURCE, row, to=PushMode.ONLINE)
        _pushed()
        log.info(
            "pushed interactions_today=%s for %s at %s", interactions, user_id, when
        )


def _empty_state() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in STATE_COLUMNS})
    return frame.astype(
        {"store_id": object, "item_id": object, "origin": "datetime64[ns]"}
    )
