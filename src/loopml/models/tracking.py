"""MLflow set-up and lineage: which data, code and lock made a run."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from loopml.core.config import Settings
from loopml.core.errors import StageError, database_unreachable
from loopml.core.io import file_hash

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
#: Model version tag: the last day of the training data (``YYYY-MM-DD``), set
#: by ``train``; the monitor's reference ends there and the model's age counts
#: from it.
DATA_END_TAG = "loopml.data_end"
#: Model version tag: what made the model (data, parameters, code, lock);
#: ``loopml run`` skips training when the champion or challenger has it.
FINGERPRINT_TAG = "loopml.fingerprint"
#: Database URIs MLflow opens with SQLAlchemy (not ``sqlite``: a local file).
SERVER_DATABASES = ("postgresql", "mysql", "mssql")


def check_database(uri: str) -> None:
    """Fail at once, in one line, when the tracking database does not answer.

    Opening its store, MLflow retries a database that refuses connections
    for about 100 s (10 attempts with backoff) before it raises a multi-line
    error; one connection attempt here says it in a second.

    Raises:
        StageError: the database refused or dropped the connection.
    """
    if not uri.startswith(SERVER_DATABASES):
        return
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": 10} if uri.startswith("postgresql") else {}
    engine = create_engine(uri, poolclass=NullPool, connect_args=timeout)
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        first = (str(error.orig).strip().splitlines() or [""])[0]
        reason = database_unreachable(error) or first
        shown = engine.url.render_as_string(hide_password=True)
        raise StageError(
            f"the MLflow database {shown} is unreachable ({reason}); start it "
            "(or fix mlflow.tracking_uri) and run again"
        ) from error
    finally:
        engine.dispose()


def setup_mlflow(settings: Settings) -> str:
    """Point MLflow at the profile's store and make sure the experiment exists.

    Args:
        settings: the active settings.

    Returns:
        The experiment id.

    Raises:
        StageError: the tracking database does not answer.
    """
    check_database(settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient()
    name = settings.mlflow.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        experiment_id = client.create_experiment(
            name, artifact_location=settings.artifact_root.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def _git(*args: str, where: Path = REPO_ROOT) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def lineage_tags(data_path: Path, code: Path | None = None) -> dict[str, str]:
    """Tags that name the data version, the git commit and the lock file.

    The commit is the one of the repository holding the workload's code: a
    project made by ``loopml new`` records its own commit (and whether its
    tree has uncommitted changes), with loopml's in ``loopml.platform_commit``
    when loopml comes from another checkout. The lock is the code
    repository's ``requirements.lock``, else loopml's (a new project runs on
    loopml's lock).

    Args:
        data_path: the exact input file the run trained on.
        code: the folder of the workload's code (default: loopml's own).

    Returns:
        Tags ready for ``mlflow.set_tags``; unknown values are ``"unknown"``.
    """
    where = REPO_ROOT if code is None else code
    top = _git("rev-parse", "--show-toplevel", where=where)
    commit = _git("rev-parse", "HEAD", where=where) or "unknown"
    status = _git("status", "--porcelain", where=where)
    lock = Path(top) / "requirements.lock" if top else where / "requirements.lock"
    if not lock.is_file():
        lock = REPO_ROOT / "requirements.lock"
    tags = {
        "loopml.data_version": file_hash(data_path),
        "loopml.data_path": str(data_path),
        "loopml.git_commit": commit,
        "loopml.git_dirty": "unknown" if status is None else str(bool(status)),
        "loopml.lock_hash": file_hash(lock) if lock.is_file() else "unknown",
    }
    if where != REPO_ROOT:
        own_top = _git("rev-parse", "--show-toplevel")
        if own_top != top:
            tags["loopml.platform_commit"] = _git("rev-parse", "HEAD") or "unknown"
    return tags


def _source_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def fingerprint(
    data_path: Path, section: dict[str, object], seed: int, code: list[Path]
) -> str:
    """A digest of everything that makes a model: data, parameters, code, lock.

    Args:
        data_path: the validated table training reads.
        section: the workload's settings section (tuned parameters applied).
        seed: the run's seed.
        code: source folders (loopml's package and the workload's).

    Returns:
        The SHA-256, hex; equal digests mean training would redo the same model.
    """
    digest = hashlib.sha256()
    digest.update(file_hash(data_path).encode())
    digest.update(
        json.dumps({"seed": seed, **section}, sort_keys=True, default=str).encode()
    )
    for folder in code:
        for path in _source_files(folder):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    lock = REPO_ROOT / "requirements.lock"
    digest.update(file_hash(lock).encode() if lock.is_file() else b"no lock")
    return digest.hexdigest()
