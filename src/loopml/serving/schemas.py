"""Request and response bodies of the online API.

Field constraints mirror the raw-table schema (prices > 0, flags 0/1), so a
request that training data would reject is rejected here too, with a 422
that names the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS = 1000


class DemandRow(BaseModel):
    """One (store, item, date) to forecast."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1, max_length=64, examples=["S01"])
    item_id: str = Field(min_length=1, max_length=64, examples=["I001"])
    date: dt.date = Field(description="Target date, 1..horizon days after origin.")
    price: float | None = Field(
        None, gt=0, description="Planned price; default: the last known price."
    )
    promo: Literal[0, 1] = 0
    holiday: Literal[0, 1] = 0


class DemandRequest(BaseModel):
    """A batch of rows to forecast."""

    model_config = ConfigDict(extra="forbid")

    rows: list[DemandRow] = Field(min_length=1, max_length=MAX_ROWS)


class DemandForecast(BaseModel):
    """The forecast for one requested row."""

    store_id: str
    item_id: str
    date: dt.date
    horizon: int
    forecast: float
    origin: dt.date | None = Field(
        None, description="The day whose state the forecast started from."
    )
    features: Literal["online", "model"] = Field(
        "model",
        description="Where the series state came from: the Feast online store, "
        "or the state bundled with the model (store unavailable or stale).",
    )
    sales_today: float | None = Field(
        None,
        description="Latest sales so far of the series' current day in the "
        "online store (pushed events included); null when unknown.",
    )
    sales_today_as_of: dt.datetime | None = None


class DemandResponse(BaseModel):
    """Forecasts in request order, with the model that made them."""

    model: str
    model_version: str
    origin: dt.date
    forecasts: list[DemandForecast]


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    models: dict[str, str] = Field(default_factory=dict)
    detail: str | None = None


class RecsysItem(BaseModel):
    """One recommended item, with why."""

    rank: int = Field(ge=1, description="1 is the best.")
    item_id: str
    score: float = Field(description="The model's score (higher is better).")
    reason: str = Field(examples=["because you took SQL Bootcamp (Practitioner)"])


class RecsysResponse(BaseModel):
    """A user's recommendations and where they came from."""

    user_id: str
    model: Literal["recsys"] = "recsys"
    model_version: str
    source: Literal["batch", "live"] = Field(
        description="`batch`: the served version's latest daily batch; `live`: "
        "scored now (no batch for that version, a new user, a segment other "
        "than the user's, or more items than the batch keeps)."
    )
    batch_date: dt.date | None = Field(
        None, description="The day of the batch the items come from."
    )
    segment: str | None = Field(
        None, description="The segment (job role) used: the one given, else the user's."
    )
    items: list[RecsysItem]
