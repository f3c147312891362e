"""Atomic hand-over files: readers see the old content or the new, never half."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.core.errors import StageError

if TYPE_CHECKING:
    import pyarrow as pa


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see the old content or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    """Atomically write a data frame (or an Arrow table) as parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        if isinstance(frame, pd.DataFrame):
            frame.to_parquet(tmp, index=False)
        else:
            import pyarrow.parquet as pq

            pq.write_table(frame, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(payload: dict[str, Any], path: Path) -> None:
    """Atomically write a JSON hand-over record."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: Path, produced_by: str) -> dict[str, Any]:
    """Read a hand-over record, explaining which stage must run first.

    Raises:
        StageError: when the record does not exist yet, or is not a JSON
            object (cut short, edited by hand): the message names the file.
    """
    if not path.is_file():
        raise StageError(
            f"{path} is missing: run `loopml {produced_by}` first "
            "(or `loopml run` for the whole loop)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StageError(
            f"{path} is not valid JSON ({error}): run `loopml {produced_by}` "
            "again to write it afresh"
        ) from error
    if not isinstance(data, dict):
        raise StageError(
            f"{path} holds no JSON object: run `loopml {produced_by}` again "
            "to write it afresh"
        )
    return data


def read_table(path: Path, produced_by: str, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_parquet(path)`` of a table a stage wrote, naming it if damaged.

    pyarrow's own message names no file ("Could not open Parquet input
    source '<Buffer>'"); a table cut short or overwritten is named here with
    the stage that writes it.

    Raises:
        StageError: the file is missing or not a readable parquet table.
    """
    require_file(path, produced_by)
    try:
        return pd.read_parquet(path, **kwargs)
    except (OSError, ValueError) as error:  # pyarrow's errors are both kinds
        raise StageError(
            f"{path} cannot be read as a parquet table ({error}): run "
            f"`loopml {produced_by}` again to write it afresh"
        ) from error


def require_file(path: Path, produced_by: str) -> Path:
    """Return ``path`` if it exists, else explain which stage makes it."""
    if not path.is_file():
        raise StageError(
            f"{path} is missing: run `loopml {produced_by}` first "
            "(or `loopml run` for the whole loop)"
        )
    return path


def file_hash(path: Path) -> str:
    """Return the md5 of a file's bytes (the same digest DVC records)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
