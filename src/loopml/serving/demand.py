"""Demand scoring shared by every protocol (v1, MLflow ``/invocations``, v2).

Whatever the wire format, rows are validated by the same ``DemandRow`` model
(the same invariants as the raw-data schema), then checked against the
served model's horizon and known series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from loopml.serving.model_store import LoadedModel, ModelStore
from loopml.serving.schemas import DemandRow

if TYPE_CHECKING:
    from loopml.workloads.demand.online import OnlineFeatures


def parse_rows(records: Sequence[Any], loc: tuple[str | int, ...]) -> list[DemandRow]:
    """Validate raw records as ``DemandRow``; a 422 names the failing field."""
    if not records:
        raise RequestValidationError(
            [
                {
                    "type": "too_short",
                    "loc": loc,
                    "msg": "no rows: give at least one row to forecast",
                    "input": [],
                }
            ]
        )
    rows: list[DemandRow] = []
    errors: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        try:
            rows.append(DemandRow.model_validate(record))
        except ValidationError as error:
            for err in error.errors(include_url=False):
                errors.append({**err, "loc": (*loc, i, *err["loc"])})
    if errors:
        raise RequestValidationError(errors)
    return rows


def served(store: ModelStore) -> LoadedModel:
    """The demand champion, or a 503 that says there is none yet."""
    loaded = store.get("demand")
    if loaded is None:
        raise HTTPException(503, detail="no demand champion is loaded yet")
    return loaded


def _horizons(
    rows: list[DemandRow],
    origins: list[pd.Timestamp],
    horizon: int,
    loc: tuple[str | int, ...],
) -> list[int]:
    """Days from each row's origin to its date; a 422 when out of 1..horizon."""
    days = [(pd.Timestamp(r.date) - o).days for r, o in zip(rows, origins, strict=True)]
    errors = [
        {
            "type": "value_error",
            "loc": (*loc, i, "date"),
            "msg": f"date must be 1..{horizon} days after the forecast "
            f"origin {origins[i].date()}, got {rows[i].date} ({d} days)",
            "input": str(rows[i].date),
        }
        for i, d in enumerate(days)
        if not 1 <= d <= horizon
    ]
    if errors:
        raise RequestValidationError(errors)
    return days


def score(
    loaded: LoadedModel, rows: list[DemandRow], loc: tuple[str | int, ...]
) -> tuple[npt.NDArray[np.float64], list[int]]:
    """Forecast validated rows with one model.

    Returns:
        The forecasts and each row's horizon in days.

    Raises:
        RequestValidationError: a date outside 1..horizon days after origin.
        HTTPException: 404 naming store/item pairs the model has no history for.
    """
    model = loaded.model
    horizons = _horizons(rows, [model.origin] * len(rows), model.horizon, loc)
    unknown = sorted(
        {
            (r.store_id, r.item_id)
            for r in rows
            if not model.known(r.store_id, r.item_id)
        }
    )
    if unknown:
        shown = ", ".join(f"{s}/{i}" for s, i in unknown[:10])
        raise HTTPException(
            404, detail=f"unknown store_id/item_id (no history): {shown}"
        )
    frame = pd.DataFrame([r.model_dump() for r in rows])
    return model.forecast(frame), horizons


@dataclass
class OnlineScore:
    """Forecasts of one request made from online-store features."""

    values: npt.NDArray[np.float64]
    horizons: list[int]
    origins: list[pd.Timestamp]
    sources: list[str]
    sales_today: pd.DataFrame


def score_online(
    loaded: LoadedModel,
    rows: list[DemandRow],
    loc: tuple[str | int, ...],
    online: OnlineFeatures,
) -> OnlineScore:
    """Forecast validated rows from the series state in the online store.

    Each series is forecast from its online state when the store has one at
    the model's origin or later (``loopml features`` after a new day moves it
    forward without retraining); otherwise from the state bundled with the
    model. Horizons count from the origin actually used.

    Raises:
        RequestValidationError: a date outside 1..horizon days after origin.
        HTTPException: 404 naming series neither the store nor the model know.
    """
    model = loaded.model
    keys = list(dict.fromkeys((r.store_id, r.item_id) for r in rows))
    state, found = online.state_for(keys)
    fresh = state[np.asarray(found, dtype=bool) & (state["origin"] >= model.origin)]
    origin_of: dict[tuple[str, str], pd.Timestamp] = {
        (str(s), str(i)): pd.Timestamp(o)
        for s, i, o in fresh[["store_id", "item_id", "origin"]].itertuples(index=False)
    }
    unknown = sorted(k for k in keys if k not in origin_of and not model.known(*k))
    if unknown:
        shown = ", ".join(f"{s}/{i}" for s, i in unknown[:10])
        raise HTTPException(
            404, detail=f"unknown store_id/item_id (no history): {shown}"
        )
    origins = [origin_of.get((r.store_id, r.item_id), model.origin) for r in rows]
    horizons = _horizons(rows, origins, model.horizon, loc)
    frame = pd.DataFrame([r.model_dump() for r in rows])
    values = np.empty(len(rows), dtype=np.float64)
    sources = [
        "online" if (r.store_id, r.item_id) in origin_of else "model" for r in rows
    ]
    columns = list(model.state.columns)
    fresh = fresh.set_index(["store_id", "item_id"], drop=False)
    bundled = model.state.set_index(["store_id", "item_id"], drop=False)
    for origin, positions in pd.Series(origins).groupby(origins).groups.items():
        idx = np.asarray(positions)
        part = frame.iloc[idx]
        wanted = list(
            dict.fromkeys(zip(part["store_id"], part["item_id"], strict=True))
        )
        online_keys = [k for k in wanted if k in origin_of]
        model_keys = [k for k in wanted if k not in origin_of]
        state = pd.concat(
            [fresh.loc[online_keys, columns], bundled.loc[model_keys, columns]],
            ignore_index=True,
        )
        values[idx] = model.forecast(part, state=state, origin=origin)
    return OnlineScore(values, horizons, origins, sources, online.sales_today(keys))
