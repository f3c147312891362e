"""A model artefact changed after registration is refused at load.

``train`` records the SHA-256 of each version's artefacts as a version tag;
the service, the batch and the gate load through
:func:`loopml.models.integrity.load_verified`, which refuses a mismatch before
anything is unpickled. Here a registered version's pickle is altered in the
artefact store: the service keeps its old champion, the gate refuses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.models.integrity import CHECKSUM_TAG, IntegrityError, load_verified
from loopml.models.registry import CHAMPION, set_alias
from loopml.models.tracking import setup_mlflow
from loopml.serving.model_store import ModelStore
from loopml.stages.runner import run_stage


def _artefact_files(name: str, version: str, home: Path) -> list[Path]:
    """The files of a version in the local artefact store (under the home)."""
    uri = MlflowClient().get_model_version_download_uri(name, version)
    folder = Path(uri.removeprefix("file://"))
    assert folder.is_dir() and home in folder.parents, uri
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_a_changed_artefact_is_refused_and_the_old_model_kept(
    demand_home: Path,
) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    setup_mlflow(settings)  # version 1 is champion (conftest.TRAINED)
    client = MlflowClient()
    first = client.get_model_version("demand", "1")
    assert len(first.tags[CHECKSUM_TAG]) == 64
    served = ModelStore()
    assert served.refresh("demand").version == "1"  # type: ignore[union-attr]

    # Version 2, then its pickled model altered in the artefact store.
    run_stage("train", settings, "demand")
    pickles = [
        p for p in _artefact_files("demand", "2", settings.home) if p.suffix == ".pkl"
    ]
    assert pickles
    with pickles[0].open("ab") as handle:
        handle.write(b"\0")
    set_alias("demand", CHAMPION, "2")  # as a promotion (or an intruder) would

    with pytest.raises(IntegrityError, match="demand version 2"):
        load_verified("demand", "2")
    with pytest.raises(IntegrityError):
        served.refresh("demand")
    assert served.versions() == {"demand": "1"}  # still serving the old model
    assert load_verified("demand", "1") is not None  # untouched versions load
