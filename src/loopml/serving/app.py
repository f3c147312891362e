"""The FastAPI application: every workload's scoring routes, ops, admin, reload.

The service names no workload. It serves the registered ones
(``loopml.sdk.workload.workload_names()``, or ``serving.workloads``): it
loads and hot-reloads each champion, and for each workload with an online
scorer mounts ``/v1/<w>/predict``, MLflow ``/v1/<w>/invocations``, the Open
Inference Protocol v2 ``/v2/models/<w>`` routes and the scorer's own routes
(``loopml.serving.protocols``, ``loopml.serving.oip``); MLflow's
``POST /invocations``, ``/ping`` and ``/health`` answer for the first of them.
Canary and shadow traffic, the online store and the inference log are shared
by all (``loopml.serving.scoring``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse
from mlflow.version import VERSION as MLFLOW_VERSION
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopml import __version__
from loopml.core.config import Settings, load_settings
from loopml.core.logs import quiet_database_outages
from loopml.core.runtime import configure_environment, end_with_parent
from loopml.models.tracking import setup_mlflow
from loopml.monitoring import status
from loopml.monitoring.collector import MonitorCollector
from loopml.monitoring.inference_log import InferenceLog
from loopml.monitoring.log_process import InferenceLogProcess
from loopml.sdk.capabilities import OnlineScorer
from loopml.sdk.workload import get_workload, workload_names
from loopml.serving.bodies import validation_error
from loopml.serving.docs import mount_offline_docs
from loopml.serving.fastlane import Lane, PredictFastLane, lane
from loopml.serving.features import OnlineSource
from loopml.serving.limits import RateLimitMiddleware
from loopml.serving.metrics import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    ServiceMetrics,
)
from loopml.serving.model_store import LoadedModel, ModelStore, RegistryUnreachableError
from loopml.serving.oip import v2_router
from loopml.serving.protocols import mlflow_router, v1_request_model, v1_router
from loopml.serving.schemas import Health
from loopml.serving.scoring import Service

log = logging.getLogger(__name__)


def _refresh_all(
    store: ModelStore,
    metrics: ServiceMetrics,
    names: Sequence[str],
    challengers: Sequence[str] = (),
) -> None:
    for name in names:
        try:
            store.refresh(name)
            if name in challengers:  # canary / shadow traffic
                store.refresh_challenger(name)
        except RegistryUnreachableError:  # logged once by the store; readyz says so
            metrics.reloads.labels(name, "error").inc()
        except Exception:  # a bad new version must not take the service down
            log.exception("reload of %s failed; still serving the old model", name)
            metrics.reloads.labels(name, "error").inc()


async def _poll(
    store: ModelStore,
    metrics: ServiceMetrics,
    seconds: float,
    names: Sequence[str],
    challengers: Sequence[str],
) -> None:
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(_refresh_all, store, metrics, names, challengers)


def _settle_heap() -> None:
    """Keep what is loaded at start-up out of the cyclic collector's passes.

    The modules and champions loaded by now live as long as the service:
    ``gc.freeze`` moves them (about 440,000 objects) to the permanent
    generation. Without it, the requests' short-lived objects that survive
    a young collection (an inference-log entry waits up to
    ``flush_seconds``) set off a full collection every few seconds under
    load, each a pause of about 0.25 s with the GIL held (measured with
    ``gc.callbacks``; docs/benchmarks.md). Refcounting still frees frozen
    objects, so a start-up champion replaced later is freed unless it holds
    a reference cycle; champions loaded later are collected as before.
    """
    gc.collect()
    gc.freeze()


def served_workloads(settings: Settings, workloads: Sequence[str] | None) -> list[str]:
    """The workloads to serve: given, else ``serving.workloads``, else all.

    Returns:
        The names in registration order (the first with an online scorer
        answers ``POST /invocations``).

    Raises:
        ValueError: naming an unregistered workload and the registered ones.
    """
    registered = workload_names()
    chosen = set(workloads or settings.serving.workloads or registered)
    unknown = sorted(chosen - set(registered))
    if unknown:
        raise ValueError(
            f"cannot serve unregistered workload(s) {unknown}; registered: "
            f"{', '.join(registered) or 'none'}"
        )
    return [n for n in registered if n in chosen]


def _scorers(names: Sequence[str]) -> dict[str, OnlineScorer]:
    """The online scorer of each workload that has one, in order."""
    found = {}
    for name in names:
        scorer = get_workload(name).online_scorer()
        if scorer is not None:
            found[name] = scorer
    return found


def worker_app() -> FastAPI:
    """:func:`create_app` for ``loopml serve``'s uvicorn, from the environment.

    In a worker process of ``--workers N`` (started by uvicorn's supervisor
    through :mod:`multiprocessing`), the worker also ends with its
    supervisor (:func:`~loopml.core.runtime.end_with_parent`). With one
    worker, uvicorn serves in the command's own process: nothing to do.
    """
    import multiprocessing

    supervisor = multiprocessing.parent_process()
    if supervisor is not None and supervisor.pid is not None:
        end_with_parent(supervisor.pid)
    return create_app()


def create_app(
    settings: Settings | None = None, workloads: Sequence[str] | None = None
) -> FastAPI:
    """Build the service for the given (or the environment's) settings.

    Args:
        settings: the settings (default: the environment's).
        workloads: the workloads to serve (default: ``serving.workloads``, or
            every registered one).

    Raises:
        ValueError: outside the default profile when no admin token is set;
            for an unregistered workload.
    """
    settings = settings or load_settings()
    if settings.profile != "default" and settings.admin_token is None:
        raise ValueError("set LOOPML_ADMIN_TOKEN: the production profile needs one")
    configure_environment(settings.home)
    quiet_database_outages()  # uvicorn's worker processes too
    names = served_workloads(settings, workloads)
    scorers = _scorers(names)
    metrics = ServiceMetrics()
    writer = settings.serving.inference_log_writer
    kind = InferenceLogProcess if writer == "process" else InferenceLog
    inference = kind(settings.home / "inference")
    metrics.registry.register(MonitorCollector(settings, inference))

    def on_swap(loaded: LoadedModel) -> None:
        metrics.set_version(loaded.name, loaded.version)
        metrics.reloads.labels(loaded.name, "ok").inc()

    def prepare(name: str, model: Any) -> Any:
        scorer = scorers.get(name)
        return model if scorer is None else scorer.warm(model)

    store = ModelStore(on_swap=on_swap, prepare=prepare)
    readers = {n: s for n, s in scorers.items() if s.uses_online_store}
    online = OnlineSource(
        settings,
        probes=[s.probe for s in readers.values()],
        enabled=settings.serving.online_features and bool(readers),
        retry_seconds=settings.serving.online_retry_seconds,
    )
    service = Service(settings, store, online, inference, metrics, scorers)
    challengers = list(scorers) if service.challengers else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_mlflow(settings)
        await asyncio.to_thread(_refresh_all, store, metrics, names, challengers)
        await asyncio.to_thread(online.get)
        poller = asyncio.create_task(
            _poll(store, metrics, settings.serving.poll_seconds, names, challengers)
        )
        inference.start()
        await asyncio.to_thread(_settle_heap)
        yield
        gc.unfreeze()  # another app of this process (tests) starts afresh
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
        docs_url=None,  # a CDN's Swagger UI; served from the package below
        redoc_url=None,
    )
    mount_offline_docs(app)
    app.state.store = store
    # Inner to outer: the fast lane (its lanes added with the routes below), then
    # the rate limit, whose 429s are counted in /metrics.
    lanes: dict[str, Lane] = {}
    app.add_middleware(PredictFastLane, service=service, lanes=lanes)
    if settings.serving.rate_limit_per_second is not None:
        app.add_middleware(
            RateLimitMiddleware,
            rate=settings.serving.rate_limit_per_second,
            burst=settings.serving.rate_limit_burst,
            redis_url=settings.serving.rate_limit_redis_url,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.serving.max_body_bytes
    )

    async def require_admin(
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
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
        """Some champion is loaded and, when its scorer reads it, the online store.

        Ready as soon as one workload has a champion: ``models`` lists what is
        served and ``detail`` the workloads without a champion yet, whose
        routes answer 503 until one is promoted. The online feature store is
        checked while a loaded workload's scorer reads it, unless
        ``serving.online_features`` is false. When the last registry read
        failed, the status is ``degraded`` (still 200: the loaded champions
        answer) and ``detail`` says why; no promotion is picked up until the
        registry is back.
        """
        versions = store.versions()
        missing = [w for w in names if w not in versions]
        if not versions:
            error = store.registry_error
            why = f"; model registry unreachable ({error})" if error else ""
            raise HTTPException(503, detail=f"no champion loaded for {missing}{why}")
        if online.enabled and readers.keys() & versions and not online.reachable():
            raise HTTPException(
                503, detail=f"online feature store unreachable: {online.error}"
            )
        notes = [f"no champion yet for {missing}"] if missing else []
        if store.registry_error is not None:
            notes.append(
                f"model registry unreachable ({store.registry_error}); "
                "serving the loaded champions"
            )
            return Health(status="degraded", models=versions, detail="; ".join(notes))
        return Health(status="ok", models=versions, detail="; ".join(notes) or None)

    @app.get("/version", tags=["ops"])
    def version() -> dict[str, Any]:
        """loopml's and MLflow's versions and the model version per workload."""
        return {
            "loopml": __version__,
            "mlflow": MLFLOW_VERSION,
            "models": store.versions(),
        }

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus exposition of the service's metrics."""
        return Response(
            generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @app.post("/admin/reload", tags=["admin"], dependencies=[Depends(require_admin)])
    async def reload() -> dict[str, str]:
        """Check the registry now instead of waiting for the next poll."""
        # Not in the request thread pool: under load it would wait its turn
        # behind every queued request.
        await asyncio.to_thread(_refresh_all, store, metrics, names, challengers)
        return store.versions()

    for name, scorer in scorers.items():
        body = v1_request_model(service, name)
        router = v1_router(service, name, scorer, body)
        app.include_router(router)
        path = f"/v1/{name}/predict"
        for route in router.routes:
            if getattr(route, "path", None) == path:
                lanes[path] = lane(name, body, route)
        extra = scorer.routes(service)
        if extra is not None:
            app.include_router(extra, prefix=f"/v1/{name}", tags=[name])
    if scorers:
        app.include_router(mlflow_router(service, next(iter(scorers))))
    app.include_router(v2_router(service))
    app.add_exception_handler(RequestValidationError, validation_error)
    return app
