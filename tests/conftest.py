"""Shared fixtures: a temp loopml home and tiny settings for fast loops."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from loopml.core.config import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

# Tiny but realistic: 2 stores x 4 items x 400 days, a 14-day horizon.
TINY_ENV = {
    "LOOPML_WORKLOADS__DEMAND__N_STORES": "2",
    "LOOPML_WORKLOADS__DEMAND__N_ITEMS": "4",
    "LOOPML_WORKLOADS__DEMAND__N_DAYS": "400",
    "LOOPML_WORKLOADS__DEMAND__HORIZON": "14",
    "LOOPML_WORKLOADS__DEMAND__N_FOLDS": "2",
    "LOOPML_WORKLOADS__DEMAND__FOLD_STEP": "14",
    "LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS": "60",
    # recsys: 150 employees x 40 courses x 120 days, a small ranker.
    "LOOPML_WORKLOADS__RECSYS__N_USERS": "150",
    "LOOPML_WORKLOADS__RECSYS__N_ITEMS": "40",
    "LOOPML_WORKLOADS__RECSYS__N_DAYS": "120",
    "LOOPML_WORKLOADS__RECSYS__ALS_ITERATIONS": "8",
    "LOOPML_WORKLOADS__RECSYS__RANKER_N_ESTIMATORS": "40",
    # The monitor stage has its own tests; tiny loops skip it (Evidently import).
    "LOOPML_MONITOR__IN_RUN": "false",
    # So has tuning (Ray start-up); tests/integration/test_tune.py runs it in a loop.
    "LOOPML_TUNE__IN_RUN": "false",
}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Slowest test files first, so that no worker starts a long file last.

    ``make test`` distributes whole files (``--dist loadfile``) in collection
    order (``--no-loadscope-reorder``); ``tests/durations.json`` holds each
    file's measured seconds (``python tests/durations.py JUNIT_XML``
    refreshes it). Files not in it count as short.
    """
    try:
        seconds = json.loads((REPO / "tests" / "durations.json").read_text("utf-8"))
    except (OSError, ValueError):
        return
    rank = {Path(REPO, name): float(value) for name, value in seconds.items()}
    items.sort(key=lambda item: -rank.get(Path(item.path), 0.0))


@pytest.fixture()
def tiny_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point LOOPML_HOME at a temp folder and shrink the workloads."""
    yield set_tiny_env(monkeypatch, tmp_path / "home")


def set_tiny_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Set the tiny environment with ``home`` as LOOPML_HOME (module fixtures)."""
    monkeypatch.setenv("LOOPML_HOME", str(home))
    monkeypatch.setenv("LOOPML_PROFILE", "default")
    monkeypatch.setenv("LOOPML_CONFIG_DIR", str(REPO / "configs"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    return home


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for running the ``loopml`` CLI in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(TINY_ENV)
    env.update(
        {
            "LOOPML_HOME": str(home),
            "LOOPML_CONFIG_DIR": str(REPO / "configs"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    env.update(extra)
    return env


def loopml(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """``loopml ARGS`` run in this process, as a subprocess would run it.

    What a ``python -m loopml.cli`` subprocess costs is mostly its imports
    (MLflow, Feast, LightGBM: 4-15 CPU-s a call); here they are paid once per
    test process. The command goes through :func:`loopml.cli.main`, the
    installed entry point (its one-line errors and exit codes), sees exactly
    :func:`subprocess_env` (``home``, the tiny settings, ``extra``) and writes
    to captured, piped output. What it changes in this process is put back
    after: environment variables, MLflow's tracking and registry URIs and
    active experiment, loggers, warning filters, the working directory.
    Servers, kills and signals need a real subprocess.

    Returns:
        The exit code and the output, as :func:`subprocess.run` gives them.
    """
    from rich.console import Console
    from typer.testing import CliRunner

    from loopml import cli

    with _kept_process_state():
        os.environ.clear()
        os.environ.update(subprocess_env(home, **extra))
        sys.argv = ["loopml", *args]
        with CliRunner().isolation() as (stdout, stderr, _):
            # As piped: plain lines, never wrapped, no colour (the import-time
            # choice depends on whether pytest's stdout is a terminal).
            cli._PIPED = True
            cli.console = Console(width=200, soft_wrap=True)
            cli.err_console = Console(stderr=True, soft_wrap=True)
            try:
                cli.main()
            except SystemExit as end:
                code = end.code if isinstance(end.code, int) else 1
            else:  # pragma: no cover - main() always exits
                code = 0
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = stdout.getvalue(), stderr.getvalue()
    return subprocess.CompletedProcess(
        ["loopml", *args], code, out.decode("utf-8"), err.decode("utf-8")
    )


@contextlib.contextmanager
def _kept_process_state() -> Iterator[None]:
    """Undo what a command run in this process changed in it (see ``loopml``)."""
    import logging

    import mlflow.tracking._model_registry.utils as registry_uri
    import mlflow.tracking._tracking_service.utils as tracking_uri
    import mlflow.tracking.fluent as fluent

    from loopml import cli

    environ, argv, cwd = dict(os.environ), sys.argv, os.getcwd()
    uris = (
        tracking_uri._tracking_uri,
        registry_uri._registry_uri,
        fluent._active_experiment_id,
    )
    shown = (cli._PIPED, cli.console, cli.err_console)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    kept = [
        (logger, logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
        for logger in loggers
    ]
    before = {id(h) for logger in loggers for h in logger.handlers}
    captured = logging._warnings_showwarning  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings():  # restores warnings.showwarning too
            yield
    finally:
        logging._warnings_showwarning = captured  # type: ignore[attr-defined]
        os.environ.clear()
        os.environ.update(environ)
        sys.argv = argv
        os.chdir(cwd)
        (
            tracking_uri._tracking_uri,
            registry_uri._registry_uri,
            fluent._active_experiment_id,
        ) = uris
        cli._PIPED, cli.console, cli.err_console = shown
        for logger in [
            logging.getLogger(),
            *logging.Logger.manager.loggerDict.values(),
        ]:
            if isinstance(logger, logging.Logger):
                for handler in logger.handlers:
                    if id(handler) not in before:
                        handler.close()  # the command's log file, its stderr
        for logger, handlers, filters, level, propagate in kept:
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.setLevel(level)
            logger.propagate = propagate


#: The shared trained homes: per workload, the extra environment of its build.
TRAINED = {
    # A deliberately small demand model (TINY_ENV says 60 trees), so that a
    # normal run makes a challenger that beats it (hot swap, faults).
    "demand": {"LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS": "20"},
    "recsys": {},
}


class TrainedHomes:
    """Homes on which ``loopml run -w WORKLOAD`` completed, copied per test.

    Each is built once per test session (whichever pytest-xdist worker asks
    first builds it, in process, the others wait on a file lock) and never
    used itself: :meth:`copy` gives a test its own home, relocated. The
    tests of ``loopml run`` itself (tests/e2e/test_loop.py) build their own.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def template(self, workload: str) -> Path:
        """The built home of ``workload`` (built now if no worker has yet)."""
        home = self.root / workload / "home"
        ready = self.root / f"{workload}.ready"
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{workload}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready.exists():
                shutil.rmtree(home.parent, ignore_errors=True)
                result = loopml(home, "run", "-w", workload, **TRAINED[workload])
                assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
                assert f"{workload} champion: version 1" in result.stdout
                lines = result.stdout.splitlines()
                assert any(line.startswith("batch") for line in lines), result.stdout
                ready.touch()
        return home

    def copy(self, workload: str, home: Path) -> Path:
        """Copy the trained home of ``workload`` to ``home`` (absent), relocated.

        Version 1 is champion (demand: 20 trees, see ``TRAINED``), the batch
        of the day after the data is scored, the feature store published.
        """
        template = self.template(workload)
        shutil.copytree(template, home)
        relocate_home(home, template)
        return home


def relocate_home(home: Path, old: Path) -> None:
    """Point a copied home's records at itself instead of at ``old``.

    MLflow stores absolute artifact URIs (experiments, runs, logged models,
    model versions) and path tags in its SQLite database; Feast's file
    registry holds the paths of the offline tables; the stage records name
    their files. Model artefacts are left as they are: their bytes are
    checksummed at registration (a MLmodel file names where it was logged,
    which nothing loads from), and so are logs.

    Raises:
        AssertionError: a file still names ``old`` (a format not handled here).
    """
    before, after = str(old), str(home)
    for path in sorted(home.rglob("*")):
        top = path.relative_to(home).parts[0]
        if not path.is_file() or top in ("mlartifacts", "logs"):
            continue
        data = path.read_bytes()
        if before.encode() not in data:
            continue
        if data.startswith(b"SQLite format 3\x00"):
            if _relocate_sqlite(path, before, after):
                raise AssertionError(f"{path} still names {old}")
            continue
        if path.name == "registry.db":  # Feast's file registry
            _relocate_feast_registry(path, before, after)
        else:
            path.write_text(data.decode("utf-8").replace(before, after), "utf-8")
        if before.encode() in path.read_bytes():
            raise AssertionError(f"{path} still names {old}")


def _relocate_sqlite(path: Path, before: str, after: str) -> int:
    """Replace ``before`` in every text value; the values still naming it."""
    left = 0
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        tables = [
            row[0]
            for row in db.execute("select name from sqlite_master where type='table'")
        ]
        for table in tables:
            for column in [
                row[1] for row in db.execute(f'pragma table_info("{table}")')
            ]:
                where = f'typeof("{column}") = \'text\' and instr("{column}", ?) > 0'
                db.execute(
                    f'update "{table}" set "{column}" = replace("{column}", ?, ?) '
                    f"where {where}",
                    (before, after, before),
                )
                left += db.execute(
                    f'select count(*) from "{table}" where {where}', (before,)
                ).fetchone()[0]
    return left


def _relocate_feast_registry(path: Path, before: str, after: str) -> None:
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    registry.ParseFromString(path.read_bytes())
    _relocate_message(registry, before, after)
    path.write_bytes(registry.SerializeToString())


def _relocate_message(message: Message, before: str, after: str) -> None:
    """Replace ``before`` in every string of a protobuf message, recursively."""
    from collections.abc import Mapping, MutableSequence

    from google.protobuf.message import Message

    if message.DESCRIPTOR.full_name == "feast.core.FeatureViewVersionRecord":
        # A past version of a feature view, kept serialized: its sources too.
        from feast.protos.feast.core import FeatureView_pb2, StreamFeatureView_pb2

        kinds = {
            "feature_view": FeatureView_pb2.FeatureView,
            "stream_feature_view": StreamFeatureView_pb2.StreamFeatureView,
        }
        kind = kinds.get(message.feature_view_type)  # type: ignore[attr-defined]
        if kind is not None:
            view = kind.FromString(message.feature_view_proto)  # type: ignore[attr-defined]
            _relocate_message(view, before, after)
            message.feature_view_proto = view.SerializeToString()  # type: ignore[attr-defined]
    for field, value in message.ListFields():
        if isinstance(value, str):
            setattr(message, field.name, value.replace(before, after))
        elif isinstance(value, Message):
            _relocate_message(value, before, after)
        elif isinstance(value, Mapping):  # a map field
            for key, item in value.items():
                if isinstance(item, str):
                    value[key] = item.replace(before, after)
                elif isinstance(item, Message):
                    _relocate_message(item, before, after)
        elif isinstance(value, MutableSequence):  # a repeated field
            for index, item in enumerate(value):
                if isinstance(item, str):
                    value[index] = item.replace(before, after)
                elif isinstance(item, Message):
                    _relocate_message(item, before, after)


@pytest.fixture(scope="session")
def trained_homes(tmp_path_factory: pytest.TempPathFactory) -> TrainedHomes:
    """The shared trained homes (one folder for every pytest-xdist worker)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    return TrainedHomes(root / "trained-homes")


@pytest.fixture()
def demand_home(tiny_env: Path, trained_homes: TrainedHomes) -> Path:
    """``tiny_env``'s home, a copy of the trained demand home (version 1 champion)."""
    return trained_homes.copy("demand", tiny_env)


@pytest.fixture()
def recsys_home(tiny_env: Path, trained_homes: TrainedHomes) -> Path:
    """``tiny_env``'s home, a copy of the trained recsys home (version 1 champion)."""
    return trained_homes.copy("recsys", tiny_env)


def free_port() -> int:
    """An ephemeral TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    """Wait until ``url/readyz`` answers 200, failing early if ``proc`` exits."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError(f"{url} did not become ready in {seconds:.0f} s")


def postgres_unreachable() -> str | None:
    """Why the local PostgreSQL (database ``test``) can't be used, or None."""
    try:
        import psycopg2

        psycopg2.connect(
            host="127.0.0.1",
            port=5432,
            user="postgres",
            dbname="test",
            connect_timeout=3,
        ).close()
    except Exception as error:  # noqa: BLE001 - any failure means "skip"
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable: {error}"
    return None


def demand_champion(settings: Settings) -> pd.Timestamp:
    """Run ingest .. promote for demand in this process: version 1 is champion.

    Returns:
        The forecast origin: the last validated day.
    """
    from loopml.core.runtime import configure_environment
    from loopml.stages.runner import run_stage

    configure_environment(settings.home)
    for stage in ("ingest", "validate", "features", "train", "evaluate", "promote"):
        run_stage(stage, settings, "demand")
    return demand_origin(settings)


def demand_origin(settings: Settings) -> pd.Timestamp:
    """The forecast origin of a demand home: the last validated day."""
    validated = settings.data_dir("demand") / "validated.parquet"
    return pd.Timestamp(pd.read_parquet(validated, columns=["date"])["date"].max())


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def offline(request: pytest.FixtureRequest) -> str:
    """The offline store a Feast test runs against: Feast's parquet ``file``
    store (default profile) and its PostgreSQL store (production profile),
    skipped with the reason when the local PostgreSQL is unreachable."""
    kind = str(request.param)
    if kind == "postgres" and (reason := postgres_unreachable()):
        pytest.skip(reason)
    return kind
