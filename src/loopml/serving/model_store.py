"""Loads champion models from the MLflow registry, and only from there.

Hot reload: :meth:`ModelStore.refresh` resolves the ``champion`` alias; when
it points at another version, the new model is loaded, warmed with its
input example and prepared by the workload's scorer (``prepare``, e.g.
``OnlineScorer.warm``) *before* it replaces the old one in a single
reference swap.
Requests that already hold the old model finish on it. A version whose
artefacts do not match their recorded checksum is refused
(:mod:`loopml.models.integrity`) and the old model stays in service.

When the registry cannot be read (its database down, its server gone),
:meth:`ModelStore.refresh` raises :class:`RegistryUnreachableError`, the loaded
models stay in service and :attr:`ModelStore.registry_error` says why until a
read succeeds again (``/readyz`` reports it as ``degraded``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.core.errors import database_unreachable
from loopml.models.integrity import load_verified
from loopml.models.registry import CHALLENGER, CHAMPION, get_alias

log = logging.getLogger(__name__)


class RegistryUnreachableError(RuntimeError):
    """The registry could not be read; the loaded models stay in service."""


@dataclass(frozen=True)
class LoadedModel:
    """A model version as served: its version and its (prepared) python model.

    Implements :class:`loopml.sdk.capabilities.ServedModel`.
    """

    name: str
    version: str
    model: Any


class ModelStore:
    """Holds the loaded champion of each workload."""

    def __init__(
        self,
        on_swap: Callable[[LoadedModel], None] | None = None,
        prepare: Callable[[str, Any], Any] | None = None,
    ) -> None:
        """Start empty.

        Args:
            on_swap: told of every model put in service.
            prepare: ``(workload, python model) -> what is served``, called
                once per loaded version before it takes traffic.
        """
        self._models: dict[str, LoadedModel] = {}
        self._challengers: dict[str, LoadedModel] = {}
        self._on_swap = on_swap
        self._prepare = prepare
        #: Why the last registry read failed; ``None`` once one succeeds.
        self.registry_error: str | None = None

    def _alias(self, name: str, alias: str) -> Any:
        """The version ``alias`` points at (``None`` when unset).

        Raises:
            RegistryUnreachableError: the registry failed; logged once per outage.
        """
        try:
            version = get_alias(name, alias)
        except Exception as error:
            first = (str(error).strip().splitlines() or [""])[0]
            reason = database_unreachable(error) or f"{type(error).__name__}: {first}"
            if self.registry_error is None:
                log.warning(
                    "model registry unreachable (%s): serving the loaded models "
                    "until it is back",
                    reason,
                )
            self.registry_error = reason
            raise RegistryUnreachableError(reason) from error
        if self.registry_error is not None:
            log.warning("model registry reachable again")
            self.registry_error = None
        return version

    def refresh(self, name: str) -> LoadedModel | None:
        """Serve the version ``champion`` points at, loading it if it changed.

        Returns:
            The model now served, or ``None`` when there is no champion yet.

        Raises:
            RegistryUnreachableError: the registry failed; the old model stays.
        """
        version = self._alias(name, CHAMPION)
        if version is None:
            return self._models.get(name)
        current = self._models.get(name)
        if current is not None and current.version == str(version.version):
            return current
        loaded = self._load(name, str(version.version))
        self._models[name] = loaded  # one reference swap: atomic for readers
        log.info(
            "serving %s version %s (was %s)",
            name,
            loaded.version,
            current.version if current else "none",
        )
        if self._on_swap:
            self._on_swap(loaded)
        return loaded

    def refresh_challenger(self, name: str) -> LoadedModel | None:
        """Load the ``challenger`` for canary and shadow traffic, if it differs.

        Returns:
            The challenger, or ``None`` when there is none or it is the champion.

        Raises:
            RegistryUnreachableError: the registry failed; the old challenger stays.
        """
        version = self._alias(name, CHALLENGER)
        champion = self._models.get(name)
        if version is None or (
            champion is not None and champion.version == str(version.version)
        ):
            self._challengers.pop(name, None)
            return None
        current = self._challengers.get(name)
        if current is not None and current.version == str(version.version):
            return current
        loaded = self._load(name, str(version.version))
        self._challengers[name] = loaded
        log.info("challenger %s version %s loaded", name, loaded.version)
        return loaded

    def _load(self, name: str, version: str) -> LoadedModel:
        """Load a version (checksum checked), warm it with its example, prepare it."""
        # Checked against the checksum recorded at registration (IntegrityError).
        pyfunc = load_verified(name, version)
        example = pyfunc.input_example
        if example is not None:
            pyfunc.predict(example)  # warm caches before taking traffic
        model = pyfunc.unwrap_python_model()
        if self._prepare is not None:
            model = self._prepare(name, model)
        return LoadedModel(name, version, model)

    def challenger(self, name: str) -> LoadedModel | None:
        """The loaded challenger of ``name`` (canary / shadow), if any."""
        return self._challengers.get(name)

    def get(self, name: str) -> LoadedModel | None:
        """The model currently served for ``name``."""
        return self._models.get(name)

    def versions(self) -> dict[str, str]:
        """Served version per workload."""
        return {name: m.version for name, m in self._models.items()}
