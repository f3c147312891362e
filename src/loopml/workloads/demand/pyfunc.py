"""The demand model as MLflow logs and serves it.

It bundles the fitted forecaster with the series state at the forecast
origin (lags, rolling means, last prices), so that ``models:/demand@champion``
alone can answer "how much of item I in store S on date D?" for any date
within the horizon. Clients send keys and dates; the model builds the
features exactly as training did (``features.build_features``), or, for a
LightGBM forecaster, with the pandas-free equivalent of
:mod:`loopml.workloads.demand.fastpath` (proven equal by a parity test), so
``mlflow models serve`` of the model gets the fast path too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from loopml.workloads.demand.fastpath import (
    FastForecaster,
    SeriesStates,
    day_number,
    fast_forecaster,
    timestamp_day,
)
from loopml.workloads.demand.features import FEATURE_COLUMNS, build_features
from loopml.workloads.demand.models import ForecastModel

REQUEST_COLUMNS = ["store_id", "item_id", "date", "price", "promo", "holiday"]


class DemandForecastModel(PythonModel):
    """A fitted forecaster plus the state it forecasts from."""

    def __init__(
        self,
        forecaster: ForecastModel,
        state: pd.DataFrame,
        origin: pd.Timestamp,
        horizon: int,
    ) -> None:
        """Bundle a fitted forecaster with the series state at ``origin``."""
        self.forecaster = forecaster
        self.state = state
        self.origin = origin
        self.horizon = horizon
        self.last_price: dict[tuple[str, str], float] = {
            (str(s), str(i)): float(p)
            for s, i, p in state[["store_id", "item_id", "last_price"]].itertuples(
                index=False
            )
        }

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled: everything but the arrays :meth:`fast` builds."""
        return {k: v for k, v in self.__dict__.items() if k != "_fast"}

    def fast(self) -> tuple[FastForecaster, SeriesStates, int] | None:
        """The pandas-free forecaster, the bundled states and the origin day.

        Built once per loaded model (the service does it when a version is
        loaded); None when the forecaster is not a fitted LightGBM model.
        """
        if "_fast" not in self.__dict__:
            forecaster = fast_forecaster(self.forecaster)
            self.__dict__["_fast"] = (
                None
                if forecaster is None
                else (
                    forecaster,
                    SeriesStates.of(self.state),
                    timestamp_day(self.origin),
                )
            )
        fast: tuple[FastForecaster, SeriesStates, int] | None = self.__dict__["_fast"]
        return fast

    def known(self, store_id: str, item_id: str) -> bool:
        """Whether the model has history for this series."""
        return (store_id, item_id) in self.last_price

    def requests_frame(
        self, rows: pd.DataFrame, last_price: dict[tuple[str, str], float] | None = None
    ) -> pd.DataFrame:
        """Normalise request rows: parse dates, fill missing price and flags.

        A missing price is the series' last known price (``last_price``, by
        default the one bundled with the model).
        """
        frame = rows.copy()
        for column, default in (("price", np.nan), ("promo", 0), ("holiday", 0)):
            if column not in frame.columns:
                frame[column] = default
        frame["store_id"] = frame["store_id"].astype(str)
        frame["item_id"] = frame["item_id"].astype(str)
        frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
        keys = list(zip(frame["store_id"], frame["item_id"], strict=True))
        prices = self.last_price if last_price is None else last_price
        fallback = pd.Series([prices.get(k, np.nan) for k in keys])
        price = pd.to_numeric(frame["price"], errors="coerce").reset_index(drop=True)
        frame["price"] = price.fillna(fallback).to_numpy(dtype=float)
        frame["promo"] = frame["promo"].fillna(0).astype("int64")
        frame["holiday"] = frame["holiday"].fillna(0).astype("int64")
        return frame[REQUEST_COLUMNS]

    def forecast(
        self,
        rows: pd.DataFrame,
        state: pd.DataFrame | None = None,
        origin: pd.Timestamp | None = None,
    ) -> npt.NDArray[np.float64]:
        """Forecast each request row (keys, target date, optional price/promo).

        Args:
            rows: request rows.
            state: the series state to forecast from, e.g. read from the
                online store (``OnlineFeatures.state_for``), with
                ``last_price``; default: the state bundled with the model.
            origin: the day ``state`` was computed at (required with it).
        """
        fast = self.fast() if state is None else None
        if fast is not None:
            return self.forecast_fast(rows, *fast)
        if state is None:
            frame = self.requests_frame(rows)
            features = build_features(self.state, frame, self.origin)
        else:
            if origin is None:
                raise ValueError("forecast from a given state needs its origin")
            prices = {
                (str(s), str(i)): float(p)
                for s, i, p in state[["store_id", "item_id", "last_price"]].itertuples(
                    index=False
                )
            }
            frame = self.requests_frame(rows, prices)
            features = build_features(state, frame, origin)
        values = self.forecaster.predict(features[FEATURE_COLUMNS])
        return np.asarray(values, dtype=np.float64)

    def forecast_fast(
        self,
        rows: pd.DataFrame,
        forecaster: FastForecaster,
        states: SeriesStates,
        origin: int,
    ) -> npt.NDArray[np.float64]:
        """``forecast`` from given states (``fast()``'s bundled ones, or others
        as the monitor's replay gives), through the float matrix."""
        n = len(rows)
        stores = rows["store_id"].astype(str).tolist()
        items = rows["item_id"].astype(str).tolist()
        dates = pd.to_datetime(pd.Series(rows["date"]).reset_index(drop=True))
        days = [day_number(d) for d in dates.dt.date]

        def column(name: str, default: float) -> npt.NDArray[np.float64]:
            if name not in rows.columns:
                return np.full(n, default)
            values = pd.to_numeric(pd.Series(rows[name]), errors="coerce")
            array: npt.NDArray[np.float64] = values.to_numpy(
                dtype=np.float64, na_value=default
            )
            return array

        prices = column("price", np.nan).tolist()
        return forecaster.forecast(
            list(zip(stores, items, strict=True)),
            days,
            prices,
            column("promo", 0.0).tolist(),
            column("holiday", 0.0).tolist(),
            states,
            origin,
        )

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """MLflow's entry point: one ``forecast`` per input row."""
        return pd.DataFrame({"forecast": self.forecast(model_input)})
