"""Which workloads are registered: entry points, then ``LOOPML_PLUGINS``.

The platform names no workload. Every workload, the two built-in ones
included, is an entry point of the ``loopml.workloads`` group::

    [project.entry-points."loopml.workloads"]
    churn = "acme.churn.workload:ChurnWorkload"

Code that is not installed can be added with ``LOOPML_PLUGINS`` (a
comma-separated list of ``name=package.module:Class``). Discovery reads
metadata only; a workload's module is imported when it is first used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: The entry-point group of workloads, and the variable for extra ones.
GROUP = "loopml.workloads"
PLUGINS_ENV = "LOOPML_PLUGINS"
#: The distribution whose workloads come first (the reference ones).
OWN_DISTRIBUTION = "loopml"


class UnknownWorkloadError(ValueError):
    """A workload name that no entry point or ``LOOPML_PLUGINS`` item registers."""


def _entry_points() -> dict[str, str]:
    """Entry points of the group: loopml's own first, then by name."""
    points = importlib.metadata.entry_points(group=GROUP)

    def order(ep: importlib.metadata.EntryPoint) -> tuple[int, str]:
        dist = ep.dist.name if ep.dist is not None else ""
        return (0 if dist == OWN_DISTRIBUTION else 1, ep.name)

    found: dict[str, str] = {}
    for ep in sorted(points, key=order):
        found.setdefault(ep.name, ep.value)
    return found


def registered(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every registered workload, name -> ``"module:Class"``, in a stable order.

    Raises:
        ValueError: for a ``LOOPML_PLUGINS`` item that is not ``name=mod:Class``.
    """
    found = _entry_points()
    listed = (os.environ if environ is None else environ).get(PLUGINS_ENV, "")
    for item in filter(None, (part.strip() for part in listed.split(","))):
        name, _, target = (s.strip() for s in item.partition("="))
        if not name.isidentifier() or ":" not in target:
            raise ValueError(
                f"{PLUGINS_ENV} item {item!r} is not like name=package.module:Class"
            )
        if name in found and found[name] != target:
            log.warning("%s=%s replaces the installed workload %s", name, target, name)
        found[name] = target
    return found


def names() -> list[str]:
    """The registered workload names."""
    return list(registered())


def load_class(name: str) -> type[Any]:
    """Import the class of a registered workload.

    Raises:
        UnknownWorkloadError: naming the known workloads.
    """
    known = registered()
    if name not in known:
        raise UnknownWorkloadError(
            f"unknown workload {name!r}; registered: {', '.join(known) or 'none'}"
        )
    module_name, _, class_name = known[name].partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls
