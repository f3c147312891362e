"""The FastAPI application: forecasts, health, metrics, admin and hot reload."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopml import __version__
from loopml.config import Settings, load_settings
from loopml.runtime import configure_environment
from loopml.serving import demand
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
    Health,
)
from loopml.tracking import setup_mlflow

log = logging.getLogger(__name__)

WORKLOADS = ("demand",)


def _refresh_all(store: ModelStore, metrics: ServiceMetrics) -> None:
    for name in WORKLOADS:
        try:
            store.refresh(name)
        except Exception:  # a bad new version must not take the service down
            log.exception("reload of %s failed; still serving the old model", name)
            metrics.reloads.labels(name, "error").inc()


async def _poll(store: ModelStore, metrics: ServiceMetrics, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(_refresh_all, store, metrics)


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

    def on_swap(loaded: LoadedModel) -> None:
        metrics.set_version(loaded.name, loaded.version)
        metrics.reloads.labels(loaded.name, "ok").inc()

    store = ModelStore(on_swap=on_swap)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_mlflow(settings)
        await asyncio.to_thread(_refresh_all, store, metrics)
        poller = asyncio.create_task(
            _poll(store, metrics, settings.serving.poll_seconds)
        )
        yield
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller

    app = FastAPI(
        title="loopml",
        version=__version__,
        description="Champion models from the MLflow registry, served online. "
        "Models follow the registry's `champion` alias without a restart.",
        lifespan=lifespan,
    )
    app.state.store = store
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

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["ops"])
    def readyz() -> Health:
        """Every workload has a loaded champion."""
        versions = store.versions()
        missing = [w for w in WORKLOADS if w not in versions]
        if missing:
            raise HTTPException(503, detail=f"no champion loaded for {missing}")
        return Health(status="ok", models=versions)

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
        _refresh_all(store, metrics)
        return store.versions()

    @app.post("/v1/demand/predict", response_model=DemandResponse, tags=["demand"])
    def predict_demand(body: DemandRequest) -> DemandResponse:
        """Forecast demand for store/item/date rows within the model's horizon.

        Missing prices default to the last known price. An unknown store/item
        pair is a 404 that names it; a date outside the horizon is a 422.
        """
        loaded = demand.served(store)
        values, horizons = demand.score(loaded, body.rows, ("body", "rows"))
        for value in values:
            metrics.predictions.labels("demand").observe(float(value))
        return DemandResponse(
            model="demand",
            model_version=loaded.version,
            origin=loaded.model.origin.date(),
            forecasts=[
                DemandForecast(
                    store_id=r.store_id,
                    item_id=r.item_id,
                    date=r.date,
                    horizon=h,
                    forecast=float(v),
                )
                for r, v, h in zip(body.rows, values, horizons, strict=True)
            ],
        )

    app.include_router(build_router(store))
    return app
