"""Optional capabilities a workload declares, and the platform discovers.

A :class:`~loopml.sdk.workload.Workload` returns each capability it has from
a method (``online_scorer()``, ``batch_scorer()``, ...; ``None``: not
offered), much as an MLflow flavor or a scikit-learn estimator tag tells
tools what a model can do. The platform iterates over the registered
workloads and uses what each one offers:

* :class:`FeatureViews`: Feast objects, the tables behind them, a push row;
* :class:`OnlineScorer`: the request row, the outputs and one ``score``
  used by every protocol (``/v1/<w>/predict``, MLflow ``/invocations``, Open
  Inference Protocol v2), plus any extra routes;
* :class:`BatchScorer`: what the daily batch scores for every entity, and
  the shape of its result table;
* :class:`Monitor`: the drift columns, data quality and live performance;
* :class:`DaySource`: new days of the source for ``replay``.

:func:`require` turns a missing capability into :class:`MissingCapabilityError`
with a message that names the workload and what it lacks.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa
    from fastapi import APIRouter
    from pydantic import BaseModel

    from loopml.core.config import MonitorSettings, Settings
    from loopml.sdk.workload import Workload

#: What each capability is called in messages, by its method name.
CAPABILITIES: dict[str, str] = {
    "feature_views": "feature views",
    "online_scorer": "online scorer",
    "batch_scorer": "batch scorer",
    "monitor": "monitor",
    "day_source": "day source",
}
CapabilityT = TypeVar("CapabilityT")


class MissingCapabilityError(LookupError):
    """A workload lacks the capability a command needs (nothing to do)."""


def require(workload: Workload, capability: str) -> Any:
    """The capability, or :class:`MissingCapabilityError` that names it.

    Args:
        workload: the workload asked.
        capability: the method's name, e.g. ``"batch_scorer"``.

    Raises:
        MissingCapabilityError: e.g. "shop has no batch scorer: nothing to do".
    """
    found = getattr(workload, capability)()
    if found is None:
        raise MissingCapabilityError(
            f"{workload.name} has no {CAPABILITIES[capability]}: nothing to do"
        )
    return found


# Feature store -------------------------------------------------------------


class FeatureViews(ABC):
    """A workload's Feast objects and the offline tables behind them."""

    #: views ``loopml features`` loads into the online store.
    materialized: ClassVar[tuple[str, ...]] = ()
    #: views the training set is read from (recorded with the MLflow run).
    training: ClassVar[tuple[str, ...]] = ()
    #: the push source of ``loopml features push`` (None: no push).
    push_source: ClassVar[str | None] = None

    @abstractmethod
    def offline_tables(
        self, validated: pd.DataFrame, settings: Settings
    ) -> dict[str, pd.DataFrame]:
        """Parquet tables (by file name) behind the batch sources."""

    @abstractmethod
    def objects(self, data_dir: Path, settings: Settings) -> list[Any]:
        """Entities, sources and feature views to apply."""

    def push_row(self, fields: Mapping[str, str], at: pd.Timestamp) -> pd.DataFrame:
        """One row for :attr:`push_source` from ``key=value`` fields.

        Raises:
            ValueError: a missing or invalid field, named.
        """
        raise ValueError("this workload has no push source")


# Serving -------------------------------------------------------------------

#: Open Inference Protocol datatypes of an output.
Datatype = Literal["FP64", "FP32", "INT64", "INT32", "BOOL", "BYTES"]


@dataclass(frozen=True)
class Output:
    """One output of an online scorer.

    Attributes:
        name: the column in :class:`Scores` and the tensor's name.
        datatype: its Open Inference Protocol datatype.
        per_row: ``None`` for one value per row, else the length of the list
            each row gets (``0``: as many as the request asked).
    """

    name: str
    datatype: Datatype
    per_row: int | None = None


@dataclass
class Scores:
    """The answer to one request, column by column (one entry per row).

    ``columns`` holds every :attr:`OnlineScorer.outputs` column and any
    other per-row field ``/v1`` returns (e.g. the horizon of a forecast);
    ``extra`` adds response-level fields to ``/v1``.
    """

    columns: dict[str, Sequence[Any]]
    extra: dict[str, Any] = field(default_factory=dict)


class InvalidRowsError(ValueError):
    """Rows that parse but cannot be scored; the service answers 422.

    Attributes:
        errors: ``(row index, field, message, input)`` per problem.
    """

    def __init__(self, errors: list[tuple[int, str, str, Any]]) -> None:
        """Keep every problem; the message shows the first."""
        first = errors[0]
        super().__init__(f"row {first[0]}, {first[1]}: {first[2]}")
        self.errors = errors


class UnknownEntitiesError(LookupError):
    """Keys the model and the online store do not know; the service answers 404."""


@dataclass
class ScoringContext:
    """What the platform hands a scorer with each request.

    Attributes:
        workload: the workload's name.
        version: the model version scoring.
        online: the open Feast store, or ``None``: disabled, unreachable, the
            scorer asked again without it after a failed read, or a protocol
            that answers with the model alone (MLflow ``/invocations`` and
            Open Inference Protocol v2, like the model's own MLflow server).
        settings: the service's settings.
        serving: the service (e.g. for :meth:`ServingContext.batch`), or
            ``None`` when scoring outside it.
    """

    workload: str
    version: str
    online: Any | None
    settings: Settings
    serving: ServingContext | None = None


class ServedModel(Protocol):
    """A loaded model version, as the service holds it."""

    @property
    def name(self) -> str:
        """The workload."""

    @property
    def version(self) -> str:
        """The registry version."""

    @property
    def model(self) -> Any:
        """The python model, as :meth:`OnlineScorer.warm` returned it."""


class BatchIndex(Protocol):
    """The newest daily batch of a served version, looked up by a key."""

    @property
    def day(self) -> dt.date:
        """The day the batch is for."""

    @property
    def version(self) -> str:
        """The model version that wrote it."""

    @property
    def per_key(self) -> int:
        """The most rows one key has (e.g. the ``k`` the batch kept per user)."""

    def rows(self, key: str) -> pd.DataFrame | None:
        """The rows of ``key`` (in the batch's order), or ``None``."""

    def records(
        self, key: str, columns: Sequence[str], limit: int | None = None
    ) -> list[tuple[Any, ...]] | None:
        """The first ``limit`` rows of ``key`` as tuples of plain values of
        ``columns`` (no frame: for a request's lookup), or ``None``."""


class ServingContext(Protocol):
    """What a scorer's own routes may use (see :meth:`OnlineScorer.routes`)."""

    settings: Settings

    def served(self, workload: str) -> ServedModel:
        """The workload's champion; a 503 when none is loaded yet."""

    def batch(
        self, workload: str, version: str, key: str, order: str | None = None
    ) -> BatchIndex | None:
        """The newest batch written by ``version``, indexed by column ``key``.

        Args:
            workload: whose batch results (``<home>/batch/<workload>``).
            version: the model version that must have written the file.
            key: the column rows are looked up by (e.g. ``user_id``).
            order: the column a key's rows are sorted by (e.g. ``rank``).
        """

    def batch_in_memory(
        self, workload: str, version: str, key: str, order: str | None = None
    ) -> bool:
        """Whether :meth:`batch` would answer without reading a file.

        True when the newest batch file of ``version`` is the one already in
        memory, or when there is none; a route may then answer on the event
        loop (a listing of the folder is all it costs).
        """

    def log(
        self,
        workload: str,
        rows: Sequence[Mapping[str, Any]],
        outputs: Sequence[Mapping[str, Any]],
        version: str,
        started: float,
        source: str = "online",
    ) -> None:
        """Queue a request and its answer for the inference log."""


RowT = TypeVar("RowT", bound="BaseModel")


class OnlineScorer(ABC):
    """One scoring path for every protocol the service speaks.

    The platform validates each request row with :attr:`row` (a 422 names the
    field), calls :meth:`score`, and shapes the answer for ``/v1/<w>/predict``
    (every column of :class:`Scores`), MLflow ``/invocations`` and the Open
    Inference Protocol v2 (the :attr:`outputs`).
    """

    #: one input row (pydantic): the same invariants as the raw schema.
    row: ClassVar[type[BaseModel]]
    #: the outputs, the primary one first.
    outputs: ClassVar[tuple[Output, ...]]
    #: reads the Feast online store per request (``/readyz`` checks it with
    #: :meth:`probe`).
    uses_online_store: ClassVar[bool] = False

    @abstractmethod
    def score(self, model: Any, rows: Sequence[Any], context: ScoringContext) -> Scores:
        """Score validated rows with one model version.

        Raises:
            InvalidRowsError: rows the model cannot score (422).
            UnknownEntitiesError: keys nobody knows (404).
        """

    @abstractmethod
    def example_rows(self, model: Any) -> list[dict[str, Any]]:
        """Valid request rows for this model (for smoke tests and docs)."""

    def routes(self, context: ServingContext) -> APIRouter | None:
        """Extra routes, mounted under ``/v1/<workload>`` (e.g. a lookup by user).

        The router's paths are relative: ``/users/{user_id}`` is served as
        ``/v1/<workload>/users/{user_id}``.
        """
        return None

    def probe(self, store: Any) -> None:
        """Reach the online store with a read of an entity nobody has.

        The service calls it when it opens the store and for ``/readyz``, for
        scorers with :attr:`uses_online_store`; opening a Feast store does
        not connect to it, so without a probe an unreachable store is only
        noticed by the first request.

        Raises:
            Exception: any error means the store is unreachable.
        """
        return None

    def answers_in_memory(
        self, model: Any, rows: Sequence[Any], store: Any | None
    ) -> bool:
        """Whether :meth:`score` would answer ``rows`` from memory alone.

        When it would (no read of the online store or anything else that
        waits, and well under a millisecond of work), the service scores the
        request on its event loop; otherwise in a worker thread. The hop to
        a thread costs more than such a request itself (docs/benchmarks.md),
        but while the event loop scores, no other request moves, so say yes
        only for what is already in memory (e.g. a cache hit). ``store`` is
        the open online store (None when there is none or the scorer does
        not read it), as :meth:`score` would receive it. Default: False.
        """
        return False

    def warm(self, model: Any) -> Any:
        """Prepare a freshly loaded model for fast requests.

        Returns:
            What :meth:`score` receives as ``model`` from then on (default:
            the model itself), e.g. arrays built once per version.
        """
        return model


# Batch ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchWork:
    """What a day's batch scores, as keys that can be cut into blocks.

    Attributes:
        keys: one row per entity (user, series, order...), in output order;
            a block is a range of these rows.
        shared: what every block needs besides the model (e.g. ``k``, the
            forecast origin); the Ray engine puts it in the object store once.
    """

    keys: pd.DataFrame
    shared: Any = None


class BatchScorer(ABC):
    """The daily batch: results for every entity, stored per day.

    The platform loads the champion, asks :meth:`work` for the day's keys,
    cuts them into blocks of :attr:`block_rows` (or ``batch.block_rows``)
    and calls :meth:`score_block` on each: in order in one process (``batch.
    engine: local``), or as Ray tasks (``ray``), the model and
    :attr:`BatchWork.shared` sent once through the object store. The blocks'
    frames (with ``date`` and ``model_version`` added) go to
    ``<home>/batch/<workload>/date=D.parquet`` and the SQL table
    :attr:`table`, both replaced whole for the day. A block's result may
    depend only on the model, the shared part and its own keys, so both
    engines write the same rows.

    A scorer that overrides :meth:`score` instead (one iterator, no blocks)
    still runs locally; the Ray engine then scores it in one process.
    """

    #: SQL table of the results.
    table: ClassVar[str]
    #: the result columns (without ``date`` and ``model_version``).
    schema: ClassVar[pa.Schema]
    #: primary key after ``date``.
    key_columns: ClassVar[tuple[str, ...]]
    #: another uniqueness rule after ``date`` (e.g. distinct items per user).
    unique_columns: ClassVar[tuple[str, ...]] = ()
    #: column the service looks batch rows up by (None: no lookups).
    lookup_key: ClassVar[str | None] = None
    #: order of a key's rows (e.g. ``rank``).
    order_column: ClassVar[str | None] = None
    #: keys per block: bounds memory, and is the unit of work on Ray.
    block_rows: ClassVar[int] = 50_000

    def default_day(
        self, settings: Settings, data: pd.DataFrame, time_column: str
    ) -> dt.date:
        """The day results are for by default: after the last validated day."""
        last = pd.Timestamp(data[time_column].max()).normalize()
        day: dt.date = (last + pd.Timedelta(days=1)).date()
        return day

    def work(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> BatchWork:
        """The day's keys and what every block shares (runs on the driver)."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither work() and score_block() "
            "nor score()"
        )

    def score_block(self, model: Any, shared: Any, keys: pd.DataFrame) -> pd.DataFrame:
        """The results of one block of keys (runs on a worker with the Ray engine).

        Args:
            model: the champion's python model.
            shared: :attr:`BatchWork.shared`.
            keys: a range of :attr:`BatchWork.keys` rows (its index may be
                renumbered).
        """
        raise NotImplementedError(f"{type(self).__name__} has no score_block()")

    @property
    def splits(self) -> bool:
        """Whether the scorer works in blocks (:meth:`work`, :meth:`score_block`)."""
        return type(self).score_block is not BatchScorer.score_block

    def score(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> Iterator[pd.DataFrame]:
        """The day's results, block by block (bounded memory at any scale)."""
        work = self.work(model, settings, data, day)
        for keys in blocks(work.keys, settings.batch.block_rows or self.block_rows):
            yield self.score_block(model, work.shared, keys)

    def count(self, model: Any, data: pd.DataFrame) -> int:
        """How many entities a batch scores (for progress); 0: unknown."""
        return 0


def blocks(keys: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """``keys`` cut into consecutive ranges of ``rows`` rows (at least one)."""
    return [keys.iloc[start : start + rows] for start in range(0, len(keys), rows)]


# Monitoring ------------------------------------------------------------------


@dataclass
class MonitorContext:
    """What the monitor stage hands a workload's :class:`Monitor`.

    Attributes:
        settings: the active settings.
        data: the validated table.
        day: the monitored day.
        reference_end: the last day of the reference window.
        version: the champion's version.
        tags: the champion version's tags (``metric.<name>`` holds the
            metrics the gate saw).
        model: loads the champion's python model (checksum-checked).
        logged: the inference log rows of the workload over the last N days
            up to ``day`` (empty frame: none).
        detect: the drift test of the data drift (``reference, current,
            numerical, categorical``), judged by the monitor's thresholds:
            ``{"share", "dataset_drift", "drifted", "columns": {name:
            verdict}}``, each verdict with ``method``, ``threshold``,
            ``score``, ``judged``, ``drifted`` and both sample sizes.
    """

    settings: Settings
    data: pd.DataFrame
    day: pd.Timestamp
    reference_end: pd.Timestamp
    version: str
    tags: dict[str, str]
    model: Callable[[], Any]
    logged: Callable[[int], pd.DataFrame]
    detect: Callable[[pd.DataFrame, pd.DataFrame, list[str], list[str]], dict[str, Any]]


class Monitor(ABC):
    """What ``loopml monitor`` watches for a workload."""

    #: numeric and categorical drift columns of :meth:`samples`.
    numerical: ClassVar[tuple[str, ...]] = ()
    categorical: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def samples(
        self,
        data: pd.DataFrame,
        reference_end: pd.Timestamp,
        day: pd.Timestamp,
        cfg: MonitorSettings,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The reference and current samples of the drift columns."""

    @abstractmethod
    def quality(
        self, data: pd.DataFrame, day: pd.Timestamp, window_days: int
    ) -> dict[str, Any]:
        """Data quality of the current window (missing values, rows per day)."""

    def live(self, context: MonitorContext) -> dict[str, Any]:
        """Prediction drift, live performance and challengers' performance.

        Returns:
            Any of ``prediction_drift`` (a column verdict plus ``source``),
            ``performance`` (``metric``, ``value``, ``n``, optionally
            ``backtest`` and ``ratio``), ``challengers`` (version ->
            performance); what is absent is reported as not measured.
        """
        return {}


# Replay ----------------------------------------------------------------------


class DaySource(ABC):
    """New days of a workload's source, for ``loopml replay``."""

    #: whether :meth:`days` can inject drift (``replay --drift-from``).
    can_drift: ClassVar[bool] = False

    def check(self, settings: Settings) -> None:
        """Refuse, before anything runs, a configuration with no new days.

        Raises:
            ValueError: e.g. a real dataset, which has no days after its end.
        """
        return None

    @abstractmethod
    def days(
        self,
        settings: Settings,
        first: pd.Timestamp,
        n_days: int,
        drift_from: int | None = None,
    ) -> pd.DataFrame:
        """Raw rows of ``n_days`` days from ``first``, drifting from replay
        day ``drift_from`` (1-based) when given."""

    def daily_predictions(
        self,
        model: Any,
        data: pd.DataFrame,
        next_rows: pd.DataFrame,
        day: pd.Timestamp,
    ) -> pd.DataFrame | None:
        """What a daily job would have answered for the day after ``day``.

        Logged to the inference log (``source=batch``), so the monitor has
        served predictions to judge; ``None``: nothing to log.
        """
        return None


class LoadDaySource(DaySource):
    """A :class:`DaySource` from a workload's ``load_day`` (no drift)."""

    def __init__(self, load_day: Callable[[Settings, pd.Timestamp], pd.DataFrame]):
        """Wrap ``load_day(settings, day)``."""
        self._load_day = load_day

    def days(
        self,
        settings: Settings,
        first: pd.Timestamp,
        n_days: int,
        drift_from: int | None = None,
    ) -> pd.DataFrame:
        """Every day's rows, one ``load_day`` call each."""
        if drift_from is not None:
            raise ValueError("this workload's source cannot inject drift")
        frames = [
            self._load_day(settings, first + pd.Timedelta(days=i))
            for i in range(n_days)
        ]
        return pd.concat(frames, ignore_index=True)
