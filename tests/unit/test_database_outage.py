"""A lost database connection: told apart, said in one line, logged once."""

from __future__ import annotations

import logging

import psycopg2
import pytest
import sqlalchemy.exc
from mlflow.exceptions import MlflowException

from loopml.core.errors import StageError, database_unreachable
from loopml.core.logs import DatabaseOutageFilter
from loopml.serving import model_store
from loopml.serving.model_store import ModelStore, RegistryUnreachableError
from loopml.stages.common import database_errors

REFUSED = (
    'connection to server at "127.0.0.1", port 5999 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
)


def _as_mlflow_raises_it() -> MlflowException:
    """The chain MLflow's SQLAlchemy store raises: driver -> SQLAlchemy -> MLflow."""
    driver = psycopg2.OperationalError(REFUSED)
    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, driver)
    wrapped.__cause__ = driver
    error = MlflowException(str(wrapped), error_code="TEMPORARILY_UNAVAILABLE")
    error.__cause__ = wrapped
    return error


def test_an_outage_is_told_by_the_driver_s_first_line() -> None:
    reason = database_unreachable(_as_mlflow_raises_it())
    assert reason == REFUSED.splitlines()[0]
    assert database_unreachable(ValueError("bad value")) is None
    locked = sqlalchemy.exc.OperationalError("x", {}, Exception("database is locked"))
    assert database_unreachable(locked) is None  # SQLite's lock is no outage


def test_a_stage_says_it_in_one_line_and_other_errors_pass() -> None:
    with pytest.raises(StageError) as caught, database_errors("train"):
        raise _as_mlflow_raises_it()
    message = str(caught.value)
    assert "\n" not in message
    assert "database is unreachable" in message and "loopml train" in message
    with pytest.raises(KeyError), database_errors("train"):
        raise KeyError("not a database problem")


def test_mlflow_s_trace_per_failed_query_is_dropped() -> None:
    outage = _as_mlflow_raises_it().__cause__
    assert outage is not None

    def record(error: BaseException | None) -> logging.LogRecord:
        info = (type(error), error, None) if error is not None else None
        return logging.LogRecord(
            "mlflow.store.db.utils", logging.ERROR, __file__, 1, "x", (), info
        )

    keep = DatabaseOutageFilter()
    assert not keep.filter(record(outage))
    assert keep.filter(record(ValueError("other")))
    assert keep.filter(record(None))


def test_the_store_reports_the_registry_once_and_keeps_its_models(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(name: str, alias: str) -> None:
        raise _as_mlflow_raises_it()

    store = ModelStore()
    monkeypatch.setattr(model_store, "get_alias", unreachable)
    with caplog.at_level(logging.WARNING, logger=model_store.__name__):
        for _ in range(3):
            with pytest.raises(RegistryUnreachableError):
                store.refresh("demand")
    assert store.registry_error == REFUSED.splitlines()[0]
    warned = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warned) == 1  # once per outage, not per poll
    monkeypatch.setattr(model_store, "get_alias", lambda name, alias: None)
    assert store.refresh("demand") is None  # back, and no champion yet
    assert store.registry_error is None
