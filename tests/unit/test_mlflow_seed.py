"""A new home's MLflow database is a copy of an empty one MLflow made once.

``loopml.models.tracking.seed_sqlite``: the copy must be the database MLflow
would have created (same tables, indexes and schema revision; its own
``Default`` experiment added on first open), must never replace a file that
exists, and must fall back to MLflow when the cache cannot be written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

import conftest
from loopml.core.config import load_settings
from loopml.models import tracking


@pytest.fixture(autouse=True)
def _mlflow_uris_put_back() -> Iterator[None]:
    with conftest._kept_process_state():
        yield


def _schema(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT type, name, COALESCE(sql, '') FROM sqlite_master"
            " ORDER BY type, name"
        ).fetchall()
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return [*rows, ("alembic", "version", str(revision))]


def _experiments(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, artifact_location FROM experiments ORDER BY experiment_id"
        ).fetchall()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "loopml" / f"mlflow-{mlflow.__version__}-empty.db"


def _setup(tiny_env: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPML_HOME", str(home))
    settings = load_settings("default")
    tracking.setup_mlflow(settings)
    db = home / "mlflow.db"
    # loopml's experiment keeps its artefacts in this home.
    assert dict(_experiments(db))["loopml"] == settings.artifact_root.as_uri()
    return db


def test_a_seeded_database_is_the_one_mlflow_makes(
    tiny_env: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's own: created by its store, as without the seed.
    control = tmp_path / "control" / "mlflow.db"
    control.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{control}").search_experiments()

    seeded = _setup(tiny_env, tmp_path / "a", monkeypatch)
    assert cache.is_file()
    assert _schema(seeded) == _schema(control)
    names = [name for name, _ in _experiments(seeded)]
    assert names == ["Default", "loopml"]
    # A second home copies the same template; the first is not touched.
    made = cache.stat().st_mtime_ns
    other = _setup(tiny_env, tmp_path / "b", monkeypatch)
    assert cache.stat().st_mtime_ns == made
    assert _schema(other) == _schema(control)
    # No copy left behind beside either database.
    assert sorted(p.name for p in other.parent.iterdir() if "part" in p.name) == []


def test_an_existing_file_is_never_replaced(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"someone else's")
    tracking.seed_sqlite(f"sqlite:///{db}")
    assert db.read_bytes() == b"someone else's"
    assert not cache.exists()  # nothing to do: no template made either


def test_a_server_database_is_left_to_mlflow(tmp_path: Path, cache: Path) -> None:
    tracking.seed_sqlite("postgresql://127.0.0.1:5432/test")
    assert not cache.exists()


def test_an_unwritable_cache_falls_back_to_mlflow(
    tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    db = _setup(tiny_env, tmp_path / "home", monkeypatch)
    assert [name for name, _ in _experiments(db)] == ["Default", "loopml"]
