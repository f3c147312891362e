"""The production profile's PostgreSQL killed with ``kill -9``, and back.

A private PostgreSQL cluster (``initdb`` in a temp folder, its own port, so
the shared server and the tests beside this one are untouched) holds the
MLflow tracking store and registry, the Feast SQL registry and the batch
results table; Redis stays the shared one, under a project of this test's
own. The postmaster is SIGKILLed at fixed points (a hook on the function a
stage calls next, never a timer):

* while the service runs: the loaded champion keeps answering, ``/readyz``
  says ``degraded`` and why, and when the database is back the poller
  recovers by itself and picks up a promotion made after it;
* inside ``train``, before the model is logged (no new version) and once
  its version is registered (a whole version, named by no alias), and inside
  ``promote`` before the alias moves: a one-line :class:`StageError`, the
  champion unchanged; the CLI says it in one line, without a trace;
* inside ``batch``: the previous results (file and table) stay whole, and
  the re-run writes the same rows.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

import conftest
from loopml.core.config import Settings, load_settings
from loopml.core.errors import StageError
from loopml.models.registry import CHALLENGER, CHAMPION, get_alias
from loopml.stages.runner import run_stage

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TOKEN = "pg-fault-test-token"


class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``initdb`` once, start, ``kill -9``."""

    def __init__(self, folder: Path, port: int) -> None:
        """Create the cluster in ``folder/data`` (trust auth, no fsync)."""
        self.folder = folder
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        # initdb refuses root: run the server as the postgres user then.
        self.user = "postgres" if os.geteuid() == 0 else None
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust"]
            + ["-U", "postgres", "--no-sync", "-E", "UTF8"],
            user=self.user,
            cwd=folder,
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _accepts(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ).close()
        except psycopg2.OperationalError:
            return False
        return True

    def start(self) -> None:
        """Start the postmaster (crash recovery after a kill) and wait for it."""
        deadline = time.monotonic() + 60
        while True:
            # After a kill -9 its backends may still hold the shared memory
            # for a moment: the postmaster then exits, and is started again.
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.folder / "data")]
                + ["-p", str(self.port), "-k", str(self.folder)]
                + ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                user=self.user,
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self._accepts():
                    return
                time.sleep(0.1)
            assert time.monotonic() < deadline, "postgres did not start in 60 s"
            time.sleep(0.5)

    def kill(self) -> None:
        """``kill -9`` the postmaster, and wait until nothing answers."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=20)
        assert not self._accepts()

    def stop(self) -> None:
        """Stop it (fast shutdown: clients disconnected), if running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def _skip_reason() -> str | None:
    if not (PG_BIN / "initdb").is_file():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user for initdb"
    return None


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PrivatePostgres, Settings]]:
    """A private cluster and production settings on it, demand v1 champion."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # Not under pytest's tmp (mode 0700, root's): the postgres user owns it.
    folder = Path(tempfile.mkdtemp(prefix="loopml-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    monkeypatch = pytest.MonkeyPatch()
    pg: PrivatePostgres | None = None
    settings: Settings | None = None
    try:
        try:
            pg = PrivatePostgres(folder, conftest.free_port())
        except subprocess.CalledProcessError as error:
            pytest.skip(f"initdb failed: {error.stderr.decode()[-300:]}")
        pg.start()
        home = tmp_path_factory.mktemp("pgfault") / "home"
        conftest.set_tiny_env(monkeypatch, home)
        monkeypatch.setenv("LOOPML_PROFILE", "production")
        monkeypatch.setenv("LOOPML_MLFLOW__TRACKING_URI", pg.url)
        monkeypatch.setenv("LOOPML_FEATURE_STORE__REGISTRY_PATH", pg.url)
        project = f"pgfault_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("LOOPML_FEATURE_STORE__PROJECT", project)
        monkeypatch.setenv("LOOPML_ADMIN_TOKEN", TOKEN)
        monkeypatch.setenv("LOOPML_SERVING__POLL_SECONDS", "0.3")
        # v1: a deliberately small model, so that a normal one beats it.
        monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS", "20")
        small = load_settings("production", home=home)
        assert small.tracking_uri == pg.url
        conftest.demand_champion(small)
        monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS", "60")
        settings = load_settings("production", home=home)
        yield pg, settings
    finally:
        if pg is not None and settings is not None:
            from loopml.feature_store.store import drop_project
            from loopml.sdk.feast import open_store

            if pg.proc is None or pg.proc.poll() is not None:
                pg.start()
            drop_project(open_store(settings))  # its keys in the shared Redis
        if pg is not None:
            pg.stop()
        monkeypatch.undo()
        shutil.rmtree(folder, ignore_errors=True)


def _until(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _killing_first(pg: PrivatePostgres, call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, but the database is killed just before it runs."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        pg.kill()
        return call(*args, **kwargs)

    return wrapper


def _versions() -> list[str]:
    found = MlflowClient().search_model_versions("name = 'demand'")
    return sorted(str(v.version) for v in found)


def _champion() -> str:
    champion = get_alias("demand", CHAMPION)
    assert champion is not None
    return str(champion.version)


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_registry_killed_while_serving_training_and_promoting(
    cluster: tuple[PrivatePostgres, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg, settings = cluster
    import mlflow.pyfunc

    from loopml.core.io import read_json
    from loopml.models.integrity import CHECKSUM_TAG, load_verified
    from loopml.serving.app import create_app
    from loopml.stages import promote, train

    validated = pd.read_parquet(settings.data_dir("demand") / "validated.parquet")
    origin = pd.Timestamp(validated["date"].max())
    tomorrow = f"{origin + pd.Timedelta(days=1):%Y-%m-%d}"
    rows = [{"store_id": "S01", "item_id": "I001", "date": tomorrow}]
    versions, champion = _versions(), _champion()

    def state() -> tuple[str, dict[str, str], str | None]:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # degraded is still ready
        body = ready.json()
        return body["status"], body["models"], body["detail"]

    with TestClient(create_app(settings, ["demand"])) as client:
        assert state() == ("ok", {"demand": champion}, None)
        before = client.post("/v1/demand/predict", json={"rows": rows})
        assert before.status_code == 200, before.text

        # train: the database dies just before the model is logged (its
        # first write to the registry's database).
        real_log_model = mlflow.pyfunc.log_model
        monkeypatch.setattr(
            mlflow.pyfunc, "log_model", _killing_first(pg, real_log_model)
        )
        with pytest.raises(StageError, match="database is unreachable") as failed:
            run_stage("train", settings, "demand")
        monkeypatch.setattr(mlflow.pyfunc, "log_model", real_log_model)
        assert "\n" not in str(failed.value)
        assert "run `loopml train` again" in str(failed.value)

        # The service: degraded, not down; the champion still answers.
        assert _until(lambda: state()[0] == "degraded")
        status, models, detail = state()
        assert status == "degraded" and models == {"demand": champion}
        assert detail is not None and "model registry unreachable" in detail
        during = client.post("/v1/demand/predict", json={"rows": rows})
        assert during.status_code == 200, during.text
        assert during.json()["predictions"] == before.json()["predictions"]
        assert during.json()["predictions"][0]["features"] == "online"  # Redis

        # The CLI: one line on stderr, exit 1, no trace.
        cli = subprocess.run(
            [sys.executable, "-m", "loopml.cli", "promote", "-w", "demand"],
            env=conftest.subprocess_env(
                settings.home,
                LOOPML_PROFILE="production",
                LOOPML_MLFLOW__TRACKING_URI=pg.url,
                LOOPML_FEATURE_STORE__REGISTRY_PATH=pg.url,
                LOOPML_FEATURE_STORE__PROJECT=settings.feature_store.project,  # type: ignore[union-attr]
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 1, cli.stderr
        assert "Traceback" not in cli.stderr, cli.stderr
        lines = [line for line in cli.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, cli.stderr
        assert "promote failed" in lines[0] and "unreachable" in lines[0]

        # Back: the poller recovers without a restart; nothing registered.
        pg.start()
        assert _until(lambda: state()[0] == "ok")
        assert _versions() == versions
        assert _champion() == champion
        challenger_before = get_alias("demand", CHALLENGER)
        assert challenger_before is not None

        # train: the database dies once the version is registered, before the
        # challenger alias moves. The version is whole (artefacts, checksum
        # and lineage tags came in its one registry write) and named by
        # nothing: no alias, no train.json for evaluate and promote.
        monkeypatch.setattr(train, "set_alias", _killing_first(pg, train.set_alias))
        with pytest.raises(StageError, match="database is unreachable"):
            run_stage("train", settings, "demand")
        monkeypatch.undo()
        pg.start()
        (orphan,) = sorted(set(_versions()) - set(versions), key=int)
        registered = MlflowClient().get_model_version("demand", orphan)
        assert registered.aliases == []
        assert registered.tags[CHECKSUM_TAG] and registered.tags["loopml.data_version"]
        assert load_verified("demand", orphan) is not None  # checksum matches
        challenger_after = get_alias("demand", CHALLENGER)
        assert challenger_after is not None
        assert challenger_after.version == challenger_before.version
        trained = read_json(settings.state_dir("demand") / "train.json", "train")
        assert str(trained["version"]) == str(challenger_before.version)
        assert _champion() == champion
        versions = _versions()

        # promote: the database dies just before the champion alias moves.
        run_stage("train", settings, "demand")
        run_stage("evaluate", settings, "demand")
        challenger = get_alias("demand", CHALLENGER)
        assert challenger is not None and str(challenger.version) not in versions
        monkeypatch.setattr(promote, "set_alias", _killing_first(pg, promote.set_alias))
        with pytest.raises(StageError, match="database is unreachable"):
            run_stage("promote", settings, "demand")
        monkeypatch.undo()
        assert _until(lambda: state()[0] == "degraded")
        pg.start()
        assert _champion() == champion
        assert _until(lambda: state() == ("ok", {"demand": champion}, None))

        # A promotion after recovery is picked up by the running service.
        result = run_stage("promote", settings, "demand").result
        assert result.status == "ok", result.summary
        new = str(challenger.version)
        assert _champion() == new
        assert _until(lambda: state() == ("ok", {"demand": new}, None))
        after = client.post("/v1/demand/predict", json={"rows": rows})
        assert after.status_code == 200, after.text


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_batch_killed_keeps_the_previous_results_whole(
    cluster: tuple[PrivatePostgres, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg, settings = cluster
    from sqlalchemy import create_engine

    from loopml.stages import batch

    first = run_stage("batch", settings, "demand").result
    path = Path(first.details["path"])
    table = first.details["table"]
    day = first.details["date"]

    def stored() -> tuple[bytes, pd.DataFrame]:
        engine = create_engine(settings.tracking_uri)
        try:
            rows = pd.read_sql(f"SELECT * FROM {table} WHERE date = '{day}'", engine)
        finally:
            engine.dispose()
        keys = [c for c in rows.columns if c != "created_at"]
        return path.read_bytes(), rows[keys].sort_values(keys).reset_index(drop=True)

    file_before, table_before = stored()
    assert len(table_before) == first.details["rows"] > 0

    # The database dies while the batch scores, before its transaction.
    monkeypatch.setattr(batch, "_frames", _killing_first(pg, batch._frames))
    with pytest.raises(StageError, match="database is unreachable"):
        run_stage("batch", settings, "demand")
    monkeypatch.undo()
    assert path.read_bytes() == file_before  # untouched while it is down
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temp file left

    pg.start()
    file_after, table_after = stored()
    assert file_after == file_before
    pd.testing.assert_frame_equal(table_after, table_before)
    again = run_stage("batch", settings, "demand").result  # idempotent re-run
    assert again.details["rows"] == first.details["rows"]
    pd.testing.assert_frame_equal(stored()[1], table_before)
    pd.testing.assert_frame_equal(
        pd.read_parquet(path), pd.read_parquet(io.BytesIO(file_before))
    )
