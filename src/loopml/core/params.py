"""``params.yaml``: the data and model parameters DVC tracks, laid over Settings.

DVC runs each stage as ``LOOPML_PARAMS_FILE=params.yaml loopml <stage>`` and
records the values of ``params.yaml`` in ``dvc.lock``. So that the record
tells the truth, the file's values win over the profile's YAML and over
``LOOPML_*`` variables; only options given on the command line win over it.
Without ``LOOPML_PARAMS_FILE`` nothing is read.

Accepted keys: ``seed`` and ``workloads.<name>``, the settings section of a
registered workload (``workloads.demand``: ``n_items``, ``horizon``,
``model.n_estimators``, ...), checked against its settings class. Anything
else (a typo, ``home``, ``mlflow``) is refused with the list of known keys:
infrastructure belongs in the profile, not in the versioned parameters.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from loopml.core import plugins

log = logging.getLogger(__name__)

PARAMS_ENV = "LOOPML_PARAMS_FILE"


#: The top-level keys of a params file.
SECTIONS = ("seed", "workloads")


def _check_keys(
    values: dict[str, Any], model: type[BaseModel], where: str, path: Path
) -> None:
    for key, value in values.items():
        field = model.model_fields.get(key)
        if field is None:
            known = sorted(model.model_fields)
            raise ValueError(
                f"unknown parameter {where}{key!r} in {path}; known here: {known}"
            )
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if not isinstance(value, dict):
                raise ValueError(
                    f"parameter {where}{key!r} in {path} must be a mapping"
                )
            _check_keys(value, sub, f"{where}{key}.", path)


def load_params(path: Path) -> dict[str, Any]:
    """Read and check a params file.

    Args:
        path: a YAML mapping such as the repository's ``params.yaml``.

    Returns:
        The parameters, shaped like ``Settings`` keyword arguments.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for invalid YAML, or a key that is not a parameter.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{PARAMS_ENV} points at {path}, which does not exist")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of parameters")
    if unknown := sorted(set(params) - set(SECTIONS)):
        raise ValueError(
            f"{path} has keys {unknown} that are not parameters; "
            f"use {list(SECTIONS)} (infrastructure goes in configs/<profile>.yaml)"
        )
    if not isinstance(params.get("seed", 0), int):
        raise ValueError(f"parameter 'seed' in {path} must be an integer")
    sections = params.get("workloads") or {}
    if not isinstance(sections, dict):
        raise ValueError(f"parameter 'workloads' in {path} must be a mapping")
    known = plugins.names()
    for name, values in sections.items():
        if name not in known:
            raise ValueError(
                f"unknown workload 'workloads.{name}' in {path}; registered: {known}"
            )
        if not isinstance(values, dict):
            raise ValueError(f"parameter 'workloads.{name}' in {path} is no mapping")
        model = getattr(plugins.load_class(name), "settings_class", None)
        if model is not None:
            _check_keys(values, model, f"workloads.{name}.", path)
    return params


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_params_file(overrides: dict[str, Any]) -> dict[str, Any]:
    """Lay the params file named by ``LOOPML_PARAMS_FILE`` under ``overrides``.

    Args:
        overrides: ``load_settings`` keyword arguments from the command line.

    Returns:
        The keyword arguments for ``load_settings``: the file's parameters,
        with ``overrides`` on top; ``overrides`` alone when the variable is
        unset or empty.

    Raises:
        FileNotFoundError: when the variable names a missing file.
        ValueError: when the file is not a valid params file.
    """
    name = os.environ.get(PARAMS_ENV)
    if not name:
        return overrides
    path = Path(name)
    params = load_params(path)
    log.debug("parameters from %s: %s", path, params)
    return _merge(params, overrides)
