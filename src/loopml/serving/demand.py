"""Demand scoring shared by every protocol (v1, MLflow ``/invocations``, v2).

Whatever the wire format, rows are validated by the same ``DemandRow`` model
(the same invariants as the raw-data schema), then checked against the
served model's horizon and known series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from loopml.serving.model_store import LoadedModel, ModelStore
from loopml.serving.schemas import DemandRow


def parse_rows(records: Sequence[Any], loc: tuple[str | int, ...]) -> list[DemandRow]:
    """Validate raw records as ``DemandRow``; a 422 names the failing field."""
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
    origin: pd.Timestamp = model.origin
    horizons = [(pd.Timestamp(r.date) - origin).days for r in rows]
    errors = [
        {
            "type": "value_error",
            "loc": (*loc, i, "date"),
            "msg": f"date must be 1..{model.horizon} days after the forecast "
            f"origin {origin.date()}, got {rows[i].date} ({days} days)",
            "input": str(rows[i].date),
        }
        for i, days in enumerate(horizons)
        if not 1 <= days <= model.horizon
    ]
    if errors:
        raise RequestValidationError(errors)
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
