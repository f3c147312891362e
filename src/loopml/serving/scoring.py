"""One scoring path for every protocol and every workload with an online scorer.

Whatever the wire format (``/v1/<w>/predict``, MLflow ``/invocations``, Open
Inference Protocol v2), rows are validated by the scorer's ``row`` model,
then :class:`Service` picks the version that answers (the champion, or the
challenger for a canary share), scores, scores the challenger aside in shadow
mode, observes the primary output in ``/metrics`` and queues the request and
its answer for the inference log.

``/v1`` hands the scorer the Feast online store when it reads one, and falls
back to scoring without it when a read fails (unless
``serving.require_online_features``: then a 503). The MLflow and v2
protocols score with the model alone (``online=None``), as ``mlflow models
serve`` would answer for the same version. Errors the scorer raises
become answers: :class:`~loopml.sdk.capabilities.InvalidRowsError` a 422
naming each row's field, :class:`~loopml.sdk.capabilities.UnknownEntitiesError`
a 404 with its message.

:class:`Service` is also the :class:`~loopml.sdk.capabilities.ServingContext`
a scorer's own routes receive.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from fastapi import BackgroundTasks, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from loopml.core.memo import memoised
from loopml.data.results import batch_dir
from loopml.sdk.capabilities import (
    InvalidRowsError,
    OnlineScorer,
    Scores,
    ScoringContext,
    UnknownEntitiesError,
)
from loopml.serving.batches import Batch, BatchResults
from loopml.serving.metrics import observe_many

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.monitoring.inference_log import InferenceLog
    from loopml.serving.features import OnlineSource
    from loopml.serving.metrics import ServiceMetrics
    from loopml.serving.model_store import LoadedModel, ModelStore

log = logging.getLogger(__name__)

Loc = tuple[str | int, ...]
#: Inference-log columns of its own; an output of the same name is renamed.
LOG_COLUMNS = frozenset(
    {"ts", "request_id", "workload", "source", "model_version", "latency_seconds"}
)
NUMERIC = frozenset({"FP64", "FP32", "INT64", "INT32", "BOOL"})


def plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars unwrapped, dates as ISO text, NaN None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if value is None or isinstance(value, str | int | bool):
        return value
    if value is pd.NaT:  # a datetime too, before the dates below
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def per_row(scores: Scores, n: int, scorer: OnlineScorer) -> list[dict[str, Any]]:
    """One JSON-ready dict per row with every column of ``scores``."""
    return as_rows(plain_columns(scores, n, scorer), n)


def as_rows(columns: Mapping[str, list[Any]], n: int) -> list[dict[str, Any]]:
    """One dict per row of ``columns`` (``n`` rows, every column that long)."""
    if not columns:
        return [{} for _ in range(n)]
    return _row_maker(tuple(columns))(columns.values())


#: Columns beyond which :func:`_row_maker` does not write a function.
_MADE_UP_TO = 64


@functools.lru_cache(maxsize=64)
def _row_maker(
    names: tuple[str, ...],
) -> Callable[[Iterable[Sequence[Any]]], list[dict[str, Any]]]:
    """A function making one dict per row of columns named ``names``.

    Written for the names, as ``collections.namedtuple`` writes its class:
    ``[{"a": v0, "b": v1} for v0, v1 in zip(*columns)]``, a dict display per
    row, runs in a third of the time of ``dict(zip(names, row))`` (28 rows
    of 9 columns: 10 against 31 us). The names enter the code only through
    ``repr`` of each, a string literal.
    """
    if len(names) > _MADE_UP_TO or not all(type(n) is str for n in names):
        return lambda columns: [
            dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)
        ]
    values = [f"v{i}" for i in range(len(names))]
    pairs = ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
    rows = f"{', '.join(values)}, in zip(*columns, strict=True)"
    code = f"lambda columns: [{{{pairs}}} for {rows}]"
    made: Callable[[Iterable[Sequence[Any]]], list[dict[str, Any]]]
    made = eval(code, {})  # noqa: S307 - the names enter as string literals
    return made


def plain_columns(scores: Scores, n: int, scorer: OnlineScorer) -> dict[str, list[Any]]:
    """Every column of ``scores``, JSON-ready (:func:`plain_column`).

    Raises:
        RuntimeError: a scorer that left out an output or gave a column of
            the wrong length (a bug in the workload, not the request).
    """
    missing = [o.name for o in scorer.outputs if o.name not in scores.columns]
    short = [k for k, v in scores.columns.items() if len(v) != n]
    if missing or short:
        raise RuntimeError(
            f"{type(scorer).__name__}.score broke its contract: missing outputs "
            f"{missing}, columns without {n} values {short}"
        )
    return {name: plain_column(values) for name, values in scores.columns.items()}


#: Types :func:`plain` returns unchanged (exact types: subclasses such as
#: ``np.float64`` or ``pd.Timestamp`` take the long way).
_AS_IS = frozenset({str, int, bool, type(None)})


def plain_column(values: Sequence[Any]) -> list[Any]:
    """``[plain(v) for v in values]``, without a call per value when it can.

    A column of one kind of value (text, numbers, dates) is converted in one
    comprehension: a request's columns are all one kind, so this is what
    runs per row served.
    """
    kinds = set(map(type, values))
    if kinds <= _AS_IS:
        return list(values)
    if kinds <= _AS_IS | {float}:
        return [None if v != v else v for v in values]  # NaN is not equal to itself
    if kinds <= _DATES:
        return _iso_texts(values)
    return [plain(v) for v in values]


_DATES = frozenset({dt.date, dt.datetime, type(None)})
#: ISO text of dates and naive datetimes already written (a few hundred days
#: in practice: the days a service answers about).
_ISO: dict[dt.date, str] = {}


def _iso_texts(values: Sequence[dt.date | None]) -> list[str | None]:
    """``[None if v is None else v.isoformat() for v in values]``, memoised.

    A request's dates repeat across requests (the target days, the origin),
    and a dictionary lookup costs a seventh of ``isoformat``. Only dates and
    naive datetimes are kept: equal aware datetimes can be written with
    different offsets, so those are written each time.
    """
    return memoised(values, _ISO, _iso, _naive)


def _iso(value: dt.date) -> str:
    return value.isoformat()


def _naive(value: dt.date) -> bool:
    return not isinstance(value, dt.datetime) or value.tzinfo is None


@functools.lru_cache(maxsize=64)
def rows_adapter(row: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """Validates a list of ``row`` in one call (errors located at their row)."""
    return TypeAdapter(list[row])  # type: ignore[valid-type]


class Service:
    """Scores requests for the served workloads; the scorers' ServingContext."""

    def __init__(
        self,
        settings: Settings,
        store: ModelStore,
        online: OnlineSource,
        inference: InferenceLog,
        metrics: ServiceMetrics,
        scorers: Mapping[str, OnlineScorer],
    ) -> None:
        """Wire the parts each request needs."""
        self.settings = settings
        self.store = store
        self.online = online
        self.inference = inference
        self.metrics = metrics
        self.scorers = dict(scorers)
        cfg = settings.serving
        self.canary_share = cfg.canary_share
        self.challengers = cfg.canary_share > 0 or cfg.shadow
        self._batches: dict[tuple[str, str, str | None], BatchResults] = {}

    # ServingContext ------------------------------------------------------------

    def served(self, workload: str) -> LoadedModel:
        """The workload's champion, or a 503 that says there is none yet."""
        loaded = self.store.get(workload)
        if loaded is None:
            raise HTTPException(
                503,
                detail=f"no {workload} champion is loaded yet: run "
                f"`loopml run -w {workload}`",
            )
        return loaded

    def batch(
        self, workload: str, version: str, key: str, order: str | None = None
    ) -> Batch | None:
        """The newest batch of ``workload`` written by ``version``, by ``key``."""
        index = (workload, key, order)
        results = self._batches.get(index)
        if results is None:
            folder = batch_dir(self.settings, workload)
            results = self._batches.setdefault(index, BatchResults(folder, key, order))
        return results.for_version(version)

    def batch_in_memory(
        self, workload: str, version: str, key: str, order: str | None = None
    ) -> bool:
        """Whether :meth:`batch` would answer without reading a file."""
        results = self._batches.get((workload, key, order))
        return results is not None and results.in_memory(version)

    def log(
        self,
        workload: str,
        rows: Sequence[Any],
        outputs: Sequence[Mapping[str, Any]] | Mapping[str, list[Any]],
        version: str,
        started: float,
        source: str = "online",
    ) -> None:
        """Queue a request and its answer (rows, or columns) for the inference log."""
        if isinstance(outputs, Mapping):
            clash = LOG_COLUMNS.intersection(outputs)
            if clash:  # e.g. a per-row "source": keep the log's own column
                outputs = {
                    (f"output_{k}" if k in clash else k): v for k, v in outputs.items()
                }
        elif outputs and (clash := LOG_COLUMNS.intersection(outputs[0])):
            outputs = [
                {(f"output_{k}" if k in clash else k): v for k, v in o.items()}
                for o in outputs
            ]
        self.inference.log(workload, rows, outputs, version, started, source=source)

    # Scoring -------------------------------------------------------------------

    def parse(self, workload: str, records: Sequence[Any], loc: Loc) -> list[Any]:
        """Validate raw records with the scorer's row model; a 422 names the field."""
        if not records:
            raise RequestValidationError(
                [
                    {
                        "type": "too_short",
                        "loc": loc,
                        "msg": "no rows: give at least one row to score",
                        "input": [],
                    }
                ]
            )
        limit = self.settings.serving.max_rows
        if len(records) > limit:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": loc,
                        "msg": f"{len(records)} rows: at most {limit} per request",
                        "input": None,
                    }
                ]
            )
        try:
            return rows_adapter(self.scorers[workload].row).validate_python(
                list(records)
            )
        except ValidationError as error:
            raise RequestValidationError(  # each error's loc starts at its row
                [
                    {**err, "loc": (*loc, *err["loc"])}
                    for err in error.errors(include_url=False)
                ]
            ) from None

    def in_memory(self, workload: str, rows: Sequence[Any], online: bool) -> bool:
        """Whether ``rows`` can be scored on the event loop (no I/O, small).

        Yes when the request has at most ``serving.inline_max_rows`` rows
        and the scorer answers them from memory with every version that may
        answer (the champion, and the challenger under canary traffic); the
        online store must be open already when the scorer reads it.
        """
        if len(rows) > self.settings.serving.inline_max_rows:
            return False
        loaded = self.store.get(workload)
        if loaded is None:
            return False
        scorer = self.scorers[workload]
        store = None
        if online and scorer.uses_online_store and self.online.enabled:
            store = self.online.current()
            if store is None:  # opening it, or retrying it, waits
                return False
        models = [loaded.model]
        if self.challengers and (ch := self.store.challenger(workload)) is not None:
            models.append(ch.model)
        return all(scorer.answers_in_memory(m, rows, store) for m in models)

    async def predict_async(
        self,
        workload: str,
        rows: Sequence[Any],
        loc: Loc,
        background: BackgroundTasks | None = None,
        online: bool = True,
    ) -> tuple[LoadedModel, Scores, list[dict[str, Any]]]:
        """:meth:`predict`, on the event loop when :meth:`in_memory`, else a thread.

        A worker thread for a request that takes a fraction of a millisecond
        costs more than the request (the hop, and the GIL handed back and
        forth); one that waits on the online store must not hold the loop.
        """
        if self.in_memory(workload, rows, online):
            return self.predict(workload, rows, loc, background, online)
        return await run_in_threadpool(
            self.predict, workload, rows, loc, background, online
        )

    async def parse_and_predict(
        self,
        workload: str,
        records: Sequence[Any],
        loc: Loc,
        background: BackgroundTasks | None = None,
        online: bool = True,
    ) -> tuple[LoadedModel, Scores, list[dict[str, Any]]]:
        """:meth:`parse` raw records, then :meth:`predict_async` them.

        A request of more than ``serving.inline_max_rows`` records is
        validated and scored in a worker thread, a small one on the event
        loop when its scorer answers it from memory.
        """
        if len(records) > self.settings.serving.inline_max_rows:

            def both() -> tuple[LoadedModel, Scores, list[dict[str, Any]]]:
                rows = self.parse(workload, records, loc)
                return self.predict(workload, rows, loc, background, online)

            return await run_in_threadpool(both)
        rows = self.parse(workload, records, loc)
        return await self.predict_async(workload, rows, loc, background, online)

    def predict(
        self,
        workload: str,
        rows: Sequence[Any],
        loc: Loc,
        background: BackgroundTasks | None = None,
        online: bool = True,
        later: list[Callable[[], None]] | None = None,
    ) -> tuple[LoadedModel, Scores, list[dict[str, Any]]]:
        """Score validated rows: canary, shadow, metrics and the inference log.

        Args:
            workload: the workload asked.
            rows: rows validated by its scorer's ``row``.
            loc: where the rows are in the request (for 422s).
            background: where the shadow scoring is queued (after the answer).
            online: whether the scorer may read the online store.
            later: where to put the metrics and the inference-log entry, for
                the caller to run once the answer is sent (its latency then
                counts the sending too); None: done here, before returning.

        Returns:
            The version that answered, its scores and one JSON-ready dict per
            row (every column).
        """
        started = time.perf_counter()
        scorer = self.scorers[workload]
        loaded = self.served(workload)
        challenger = self.store.challenger(workload) if self.challengers else None
        role = "online"
        if challenger is not None and random.random() < self.canary_share:
            loaded, role = challenger, "canary"
        scores = self.score(workload, loaded, rows, loc, online)
        columns = plain_columns(scores, len(rows), scorer)
        outputs = as_rows(columns, len(rows))
        version = loaded.version

        def account() -> None:
            primary = scorer.outputs[0]
            if primary.datatype in NUMERIC:
                values = scores.columns[primary.name]
                observe_many(
                    self.metrics.predictions.labels(workload),
                    values if primary.per_row is None else _flat(values),
                )
            self.log(workload, rows, columns, version, started, source=role)

        if later is None:
            account()
        else:
            later.append(account)
        shadow = self.settings.serving.shadow and role == "online"
        if shadow and challenger is not None and background is not None:
            background.add_task(self._shadow, workload, challenger, rows, loc, online)
        return loaded, scores, outputs

    def score(
        self,
        workload: str,
        loaded: LoadedModel,
        rows: Sequence[Any],
        loc: Loc,
        online: bool = True,
    ) -> Scores:
        """Score with one version, from the online store when the scorer reads it.

        A failed online read (any error but the two the scorer raises on
        purpose) marks the store failed and scores again without it, unless
        ``serving.require_online_features``: then a 503 with ``Retry-After``.
        """
        scorer = self.scorers[workload]
        if not (online and scorer.uses_online_store):
            return self._call(scorer, loaded, rows, loc, None)
        store = self.online.get()
        if store is not None:
            try:
                return self._call(scorer, loaded, rows, loc, store)
            except (HTTPException, RequestValidationError):
                raise
            except Exception as error:  # the store failed: score without it
                self.online.failed(error)
        source = self.online
        if source.enabled and self.settings.serving.require_online_features:
            raise HTTPException(
                503,
                detail=f"online feature store unreachable ({source.error}); "
                "serving.require_online_features forbids scoring without it",
                headers={"Retry-After": str(math.ceil(source.retry_seconds))},
            )
        return self._call(scorer, loaded, rows, loc, None)

    def _call(
        self,
        scorer: OnlineScorer,
        loaded: LoadedModel,
        rows: Sequence[Any],
        loc: Loc,
        store: Any | None,
    ) -> Scores:
        context = ScoringContext(
            loaded.name, loaded.version, store, self.settings, self
        )
        try:
            return scorer.score(loaded.model, rows, context)
        except InvalidRowsError as error:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": (*loc, i, field),
                        "msg": message,
                        "input": value,
                    }
                    for i, field, message, value in error.errors
                ]
            ) from error
        except UnknownEntitiesError as error:
            raise HTTPException(404, detail=str(error)) from error

    def _shadow(
        self,
        workload: str,
        challenger: LoadedModel,
        rows: Sequence[Any],
        loc: Loc,
        online: bool,
    ) -> None:
        """Score a request with the challenger after the answer; log, return nothing."""
        started = time.perf_counter()
        try:
            scores = self.score(workload, challenger, rows, loc, online)
            outputs = per_row(scores, len(rows), self.scorers[workload])
        except Exception:  # the shadow must never affect the service
            log.exception(
                "shadow scoring by %s v%s failed", workload, challenger.version
            )
            return
        self.log(workload, rows, outputs, challenger.version, started, source="shadow")


def _flat(values: Sequence[Any]) -> list[Any]:
    return [v for row in values if row is not None for v in row]
