"""The FastAPI application: forecasts, health, metrics, admin and hot reload."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopml import __version__
from loopml.core.config import Settings, load_settings
from loopml.core.runtime import configure_environment
from loopml.models.tracking import setup_mlflow
from loopml.monitoring import status
from loopml.monitoring.collector import MonitorCollector
from loopml.monitoring.inference_log import InferenceLog
from loopml.serving import demand, recsys
from loopml.serving.demand import OnlineScore
from loopml.serving.features import OnlineSource
from loopml.serving.limits import RateLimitMiddleware
from loopml.serving.metrics import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    ServiceMetrics,
)
from loopml.serving.model_store import LoadedModel, ModelStore
from loopml.serving.protocols import build_router
from loopml.serving.schemas import (
    DemandForecast,
    DemandRequest,
    DemandResponse,
    DemandRow,
    Health,
)

log = logging.getLogger(__name__)

#: Workloads whose champion is served (and hot-reloaded).
WORKLOADS = ("demand", "recsys")


def _refresh_all(
    store: ModelStore, metrics: ServiceMetrics, challengers: bool = False
) -> None:
    for name in WORKLOADS:
        try:
            store.refresh(name)
            if challengers and name == "demand":  # canary / shadow traffic
                store.refresh_challenger(name)
        except Exception:  # a bad new version must not take the service down
            log.exception("reload of %s failed; still serving the old model", name)
            metrics.reloads.labels(name, "error").inc()


async def _poll(
    store: ModelStore, metrics: ServiceMetrics, seconds: float, challengers: bool
) -> None:
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(_refresh_all, store, metrics, challengers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for the given (or the environment's) settings.

    Raises:
        ValueError: outside the default profile when no admin token is set.
    """
    settings = settings or load_settings()
    if settings.profile != "default" and settings.admin_token is None:
        raise ValueError("set LOOPML_ADMIN_TOKEN: the production profile needs one")
    configure_environment(settings.home)
    metrics = ServiceMetrics()
    inference = InferenceLog(settings.home / "inference")
    metrics.registry.register(MonitorCollector(settings, inference))

    def on_swap(loaded: LoadedModel) -> None:
        metrics.set_version(loaded.name, loaded.version)
        metrics.reloads.labels(loaded.name, "ok").inc()

    store = ModelStore(on_swap=on_swap)
    canary_share = settings.serving.canary_share
    challengers = canary_share > 0 or settings.serving.shadow
    online = OnlineSource(
        settings,
        enabled=settings.serving.online_features,
        retry_seconds=settings.serving.online_retry_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_mlflow(settings)
        await asyncio.to_thread(_refresh_all, store, metrics, challengers)
        await asyncio.to_thread(online.get)
        poller = asyncio.create_task(
            _poll(store, metrics, settings.serving.poll_seconds, challengers)
        )
        inference.start()
        yield
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await asyncio.to_thread(inference.close)  # nothing logged is lost

    app = FastAPI(
        title="loopml",
        version=__version__,
        description="Champion models from the MLflow registry, served online. "
        "Models follow the registry's `champion` alias without a restart.",
        lifespan=lifespan,
    )
    app.state.store = store
    # Inner to outer: the rate limit's 429s are counted in /metrics.
    if settings.serving.rate_limit_per_second is not None:
        app.add_middleware(
            RateLimitMiddleware,
            rate=settings.serving.rate_limit_per_second,
            burst=settings.serving.rate_limit_burst,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.serving.max_body_bytes
    )

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        token = settings.admin_token
        expected = f"Bearer {token.get_secret_value()}" if token else None
        if expected is None or not hmac.compare_digest(
            (authorization or "").encode(), expected.encode()
        ):
            raise HTTPException(
                401,
                detail="admin routes need 'Authorization: Bearer <LOOPML_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/", response_class=HTMLResponse, tags=["ops"])
    def status_page() -> HTMLResponse:
        """The status page: champion, drift, last run and history per workload.

        One place to look: the champion and its metrics, the latest monitor
        verdict with links to its reports, the last run's stages and the
        last promotion decisions (``loopml status --json`` has the same).
        """
        return HTMLResponse(status.render_html(status.collect(settings)))

    @app.get("/reports/{workload}/{name}", tags=["ops"])
    def report(workload: str, name: str) -> FileResponse:
        """A ``loopml monitor`` report (``monitor-<date>.html`` or ``.json``)."""
        path = status.report_file(settings, workload, name)
        if path is None:
            raise HTTPException(
                404, detail=f"no report {name!r} for workload {workload!r}"
            )
        return FileResponse(path)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["ops"])
    def readyz() -> Health:
        """Some champion is loaded and, when demand is served, its online store.

        Ready as soon as one workload has a champion: ``models`` lists what is
        served and ``detail`` the workloads without a champion yet, whose
        routes answer 503 until one is promoted. The online feature store
        (demand's) is checked unless ``serving.online_features`` is false.
        """
        versions = store.versions()
        missing = [w for w in WORKLOADS if w not in versions]
        if not versions:
            raise HTTPException(503, detail=f"no champion loaded for {missing}")
        if "demand" in versions and online.enabled and not online.reachable():
            raise HTTPException(
                503, detail=f"online feature store unreachable: {online.error}"
            )
        detail = f"no champion yet for {missing}" if missing else None
        return Health(status="ok", models=versions, detail=detail)

    @app.get("/version", tags=["ops"])
    def version() -> dict[str, Any]:
        """loopml's version and the model version served per workload."""
        return {"loopml": __version__, "models": store.versions()}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus exposition of the service's metrics."""
        return Response(
            generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @app.post("/admin/reload", tags=["admin"], dependencies=[Depends(require_admin)])
    def reload() -> dict[str, str]:
        """Check the registry now instead of waiting for the next poll."""
        _refresh_all(store, metrics, challengers)
        return store.versions()

    @app.post("/v1/demand/predict", response_model=DemandResponse, tags=["demand"])
    def predict_demand(
        body: DemandRequest, background: BackgroundTasks
    ) -> DemandResponse:
        """Forecast demand for store/item/date rows within the model's horizon.

        Each series' state (lags, rolling means, last price) is read from the
        Feast online store, so a new day published by `loopml features` is
        used without retraining; `features` says which state a forecast used.
        Missing prices default to the last known price. An unknown store/item
        pair is a 404 that names it; a date outside the horizon is a 422.
        """
        started = time.perf_counter()
        loaded = demand.served(store)
        challenger = store.challenger("demand") if challengers else None
        role = "online"
        if challenger is not None and canary_share and random.random() < canary_share:
            loaded, role = challenger, "canary"
        scored = _score_demand(loaded, body.rows)
        if challenger is not None and settings.serving.shadow and role == "online":
            background.add_task(_shadow, challenger, body.rows, time.perf_counter())
        for value in scored.values:
            metrics.predictions.labels("demand").observe(float(value))
        today = scored.sales_today.set_index(["store_id", "item_id"])
        forecasts = []
        for i, row in enumerate(body.rows):
            key = (row.store_id, row.item_id)
            sales = today["sales_today"].get(key, float("nan"))
            as_of = today["as_of"].get(key, pd.NaT)
            forecasts.append(
                DemandForecast(
                    store_id=row.store_id,
                    item_id=row.item_id,
                    date=row.date,
                    horizon=scored.horizons[i],
                    forecast=float(scored.values[i]),
                    origin=scored.origins[i].date(),
                    features=scored.sources[i],
                    sales_today=None if pd.isna(sales) else float(sales),
                    sales_today_as_of=None if pd.isna(as_of) else as_of,
                )
            )
        inference.log(
            "demand", body.rows, forecasts, loaded.version, started, source=role
        )
        return DemandResponse(
            model="demand",
            model_version=loaded.version,
            origin=loaded.model.origin.date(),
            forecasts=forecasts,
        )

    def _shadow(challenger: LoadedModel, rows: list[DemandRow], started: float) -> None:
        """Score a request with the challenger after the answer; log, return nothing."""
        try:
            scored = _score_demand(challenger, rows)
        except Exception:  # the shadow must never affect the service
            log.exception("shadow scoring by demand v%s failed", challenger.version)
            return
        outputs = [
            {
                "store_id": r.store_id,
                "item_id": r.item_id,
                "date": r.date,
                "forecast": v,
            }
            for r, v in zip(rows, scored.values, strict=True)
        ]
        inference.log(
            "demand", rows, outputs, challenger.version, started, source="shadow"
        )

    def _score_demand(loaded: LoadedModel, rows: list[DemandRow]) -> OnlineScore:
        loc = ("body", "rows")
        source = online.get()
        if source is not None:
            try:
                return demand.score_online(loaded, rows, loc, source)
            except (HTTPException, RequestValidationError):
                raise
            except Exception as error:  # the store failed: use the model's state
                online.failed(error)
        if online.enabled and settings.serving.require_online_features:
            raise HTTPException(
                503,
                detail=f"online feature store unreachable ({online.error}); "
                "serving.require_online_features forbids forecasting from the "
                "model's own state",
                headers={"Retry-After": str(math.ceil(online.retry_seconds))},
            )
        values, horizons = demand.score(loaded, rows, loc)
        n = len(rows)
        return OnlineScore(
            values,
            horizons,
            [loaded.model.origin] * n,
            ["model"] * n,
            pd.DataFrame(
                {
                    "store_id": [r.store_id for r in rows],
                    "item_id": [r.item_id for r in rows],
                    "sales_today": np.nan,
                    "as_of": pd.NaT,
                }
            ),
        )

    app.include_router(build_router(store))
    app.include_router(recsys.build_router(store, settings))
    return app
