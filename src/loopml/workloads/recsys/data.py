"""Recsys data: every source returns :class:`RecsysData`; :func:`load` picks one.

Sources: the seeded learning-platform generator (the embedded default), UCI
Online Retail and the MovieLens 100K file format. The three tables and their
flat event-log form are defined in ``tables.py``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopml.workloads.recsys.generator import generate
from loopml.workloads.recsys.movielens import load_movielens
from loopml.workloads.recsys.online_retail import load_online_retail
from loopml.workloads.recsys.tables import EVENT_COLUMNS, RecsysData

__all__ = [
    "DATASETS",
    "EVENT_COLUMNS",
    "RecsysData",
    "generate",
    "load",
    "load_movielens",
    "load_online_retail",
]

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("generated", "online-retail", "movielens")
_SOURCES: dict[str, Callable[..., RecsysData]] = {
    "generated": generate,
    "online-retail": load_online_retail,
    "movielens": load_movielens,
}
# The argument of each file-based source that receives ``data_path``.
_PATH_ARGUMENT = {"online-retail": "path", "movielens": "folder"}


def load(dataset: str, data_path: Path | None = None, **options: Any) -> RecsysData:
    """Load the tables of a named dataset.

    Args:
        dataset: ``generated``, ``online-retail`` or ``movielens``.
        data_path: the Online Retail parquet or the MovieLens folder; unused
            for ``generated``.
        **options: options of any source; each source takes those it accepts,
            so a caller can pass the whole workload config whatever the source.

    Returns:
        The three canonical tables.

    Raises:
        ValueError: for an unknown dataset, or options no source accepts.
        FileNotFoundError: when a file-based dataset has no ``data_path`` or
            nothing at it.
    """
    if dataset not in _SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    known = {
        name
        for source in _SOURCES.values()
        for name in inspect.signature(source).parameters
    } - set(_PATH_ARGUMENT.values())
    if unknown := sorted(set(options) - known):
        raise ValueError(f"unknown data options {unknown}; valid: {sorted(known)}")
    source = _SOURCES[dataset]
    accepted = set(inspect.signature(source).parameters)
    kwargs = {k: v for k, v in options.items() if k in accepted}
    if dataset in _PATH_ARGUMENT:
        if data_path is None:
            raise FileNotFoundError(
                f"dataset {dataset!r} needs a data path: set recsys.data_path "
                "(env LOOPML_WORKLOADS__RECSYS__DATA_PATH), or use dataset 'generated'"
            )
        kwargs[_PATH_ARGUMENT[dataset]] = Path(data_path)
    log.info("loading recsys dataset %s", dataset)
    return source(**kwargs)
