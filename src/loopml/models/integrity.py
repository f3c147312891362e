"""Model artefact checksums: recorded at registration, checked at every load.

``loopml train`` registers each version with the SHA-256 of its model
folder (``loopml.model_sha256``: every file's relative path and bytes, in
path order). :func:`load_verified` downloads a version's artefacts, hashes
what it got and loads the model from exactly those files only when the hash
matches the tag, so an artefact changed in the store after registration
(tampered with, or half-copied) is refused with :class:`IntegrityError`
instead of being unpickled. The service, the batch and the gate load models
through it. A version without the tag (registered before loopml recorded
checksums) loads with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow.artifacts
import mlflow.pyfunc
from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHECKSUM_TAG = "loopml.model_sha256"


class IntegrityError(RuntimeError):
    """A model version's artefacts do not match the checksum recorded for it."""


#: Written by MLflow into every ``models:/<name>/<version>`` download (the name
#: and version), not stored with the artefacts: left out of the checksum, so
#: that it can be computed before the version exists.
DOWNLOAD_META = "registered_model_meta"


def folder_sha256(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """SHA-256 over every file of a folder: relative path and bytes, in order.

    Args:
        folder: the model folder.
        skip: top-level file names left out.
    """
    digest = hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file())
    for path in sorted(
        p for p in files if p.relative_to(folder).as_posix() not in skip
    ):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _download(name: str, version: str, into: Path) -> Path:
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(into)
        )
    )


def model_checksum(model_uri: str) -> str:
    """The SHA-256 of a logged model's artefacts, as :func:`load_verified` checks it.

    ``loopml train`` registers the version with it as its ``loopml.model_sha256``
    tag, in the same registry write that creates the version.
    """
    with tempfile.TemporaryDirectory(prefix="loopml-sha-") as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=scratch
        )
        return folder_sha256(Path(local), skip=(DOWNLOAD_META,))


def load_verified(name: str, version: str) -> Any:
    """Load ``models:/name/version`` as a pyfunc after checking its checksum.

    Raises:
        IntegrityError: the downloaded artefacts do not hash to the version's
            ``loopml.model_sha256`` tag; nothing of them was unpickled.
    """
    expected = (MlflowClient().get_model_version(name, version).tags or {}).get(
        CHECKSUM_TAG
    )
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as scratch:
        local = _download(name, version, Path(scratch))
        if expected is None:
            log.warning(
                "%s version %s has no %s tag: loaded unchecked",
                name,
                version,
                CHECKSUM_TAG,
            )
        else:
            actual = folder_sha256(local, skip=(DOWNLOAD_META,))
            # Versions registered before the checksum left DOWNLOAD_META out
            # were hashed with it.
            if actual != expected and folder_sha256(local) != expected:
                raise IntegrityError(
                    f"{name} version {version}: its artefacts hash to {actual[:12]}, "
                    f"not the {expected[:12]} recorded at registration; refusing to "
                    "load it (changed in the artefact store?)"
                )
        return mlflow.pyfunc.load_model(str(local))
