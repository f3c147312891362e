"""Train: fit the production model, log it to MLflow and register it.

The new version gets the ``challenger`` alias; only ``promote`` may make it
``champion``. Lineage (data version, git commit, lock hash) is tagged on the
run and on the model version.

Registration is one registry write: the model is logged first (artefacts in
the run), its checksum computed from them, then the version is created with
its checksum and lineage tags in the same transaction. If the registry
dies at any point, there is either no new version or a whole one; the
``challenger`` alias (the next write) and ``train.json`` only ever name a
whole version.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from loopml.core.config import Settings
from loopml.core.errors import DataValidationError, StageError
from loopml.core.io import file_hash, read_json, read_table, require_file, write_json
from loopml.core.logs import mlflow_notices_hidden
from loopml.models.integrity import CHECKSUM_TAG, model_checksum
from loopml.models.registry import CHALLENGER, set_alias
from loopml.models.tracking import (
    DATA_END_TAG,
    FINGERPRINT_TAG,
    fingerprint,
    lineage_tags,
    setup_mlflow,
)
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult, workload_code

log = logging.getLogger(__name__)

# Passed explicitly: MLflow's requirement inference costs seconds per model.
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "lightgbm",
    "pandas<3",
    "numpy",
    "loopml",
]


def _feature_views(settings: Settings, names: tuple[str, ...]) -> dict[str, Any]:
    """Describe the Feast views a training set came from (empty: none)."""
    if not names:
        return {}
    from loopml.feature_store.store import describe_views
    from loopml.sdk.feast import open_store

    return describe_views(open_store(settings), names)


def model_fingerprint(settings: Settings, workload_name: str) -> str:
    """What a training of ``workload_name`` would be made of, as one digest.

    The validated data, the workload's settings section (as train reads it),
    the seed, the source of loopml and of the workload's package, the lock.
    """
    import loopml

    workload = get_workload(workload_name)
    model = workload.settings_class
    section: dict[str, object] = (
        settings.section(workload_name, model).model_dump(mode="json")
        if model is not None
        else dict(settings.workloads.get(workload_name, {}))
    )
    own = Path(loopml.__file__).resolve().parent
    folders = [own]
    package = workload_code(workload_name)
    if own not in package.parents and package != own:
        folders.append(package)
    data_path = settings.data_dir(workload_name) / "validated.parquet"
    return fingerprint(data_path, section, settings.seed, folders)


def _refuse_stale_features(settings: Settings, workload: str, data: Path) -> None:
    """Refuse to train from a feature store built of another validated table.

    A workload with feature views trains on the store's offline tables:
    after a new ``validate`` without ``features`` they hold the previous
    data's values, and the model would be tagged with a data version it was
    not trained on.

    Raises:
        StageError: naming the stage to run.
    """
    record = settings.state_dir(workload) / "features.json"
    if get_workload(workload).feature_views() is None or not record.is_file():
        return
    built_from = read_json(record, "features").get("data_version")
    if built_from is not None and built_from != file_hash(data):
        raise StageError(
            f"the feature store holds features of another version of {data.name} "
            f"(validated since `loopml features` last ran): run `loopml features "
            f"-w {workload}` first"
        )


def run(settings: Settings, workload_name: str) -> StageResult:
    """Fit on all validated data, log and register the model as challenger."""
    workload = get_workload(workload_name)
    data_path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    _refuse_stale_features(settings, workload_name, data_path)
    data = read_table(data_path, "validate")
    setup_mlflow(settings)
    started = time.perf_counter()
    try:
        output = workload.train(settings, data)
    except DataValidationError as error:
        raise StageError(f"the training set failed its schema: {error}") from error
    fit_seconds = time.perf_counter() - started
    tags = lineage_tags(data_path, workload_code(workload_name))
    tags[FINGERPRINT_TAG] = model_fingerprint(settings, workload_name)
    column = workload.batch_spec.time_column
    if column in data.columns and len(data):
        # The last day the model saw: the monitor's reference and its age.
        tags[DATA_END_TAG] = str(pd.Timestamp(data[column].max()).date())
    example = output.input_example
    prediction = output.model.predict(None, example)
    with warnings.catch_warnings():
        # Our integer flags are never missing; MLflow's hint does not apply.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains")
        signature = infer_signature(example, prediction)
    capability = workload.feature_views()
    views = _feature_views(settings, capability.training if capability else ())
    tags.update(
        {
            f"loopml.feature_view.{name}": v["definition_sha256"][:12]
            for name, v in views.items()
        }
    )
    with mlflow.start_run(run_name=f"{workload_name}-train") as active:
        mlflow.set_tags({**tags, "loopml.workload": workload_name})
        mlflow.log_params(output.params)
        if views:
            mlflow.log_param("feature_views", ",".join(views))
            mlflow.log_dict(views, "feature_views.json")
        mlflow.log_metrics({**output.metrics, "fit_seconds": fit_seconds})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=output.model,
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )
        run_id = active.info.run_id
    checksum = model_checksum(info.model_uri)  # before it can be used
    with mlflow_notices_hidden():
        registered = mlflow.register_model(
            info.model_uri, workload_name, tags={**tags, CHECKSUM_TAG: checksum}
        )
    version = str(registered.version)
    set_alias(workload_name, CHALLENGER, version)
    details = {
        "run_id": run_id,
        "version": version,
        "data_version": tags["loopml.data_version"],
        "fit_seconds": round(fit_seconds, 2),
        "model_sha256": checksum,
        "feature_views": views,
    }
    write_json(details, settings.state_dir(workload_name) / "train.json")
    log.info("registered %s version %s (run %s)", workload_name, version, run_id)
    return StageResult(
        "train",
        workload_name,
        summary=f"version {version} registered as {CHALLENGER}",
        details=details,
    )
