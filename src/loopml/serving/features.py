"""The service's handle on the Feast online store: opened lazily, retried.

Opening a Feast store imports Feast (seconds) and reads its registry; a
service must start, and keep answering, when the store is not there yet or
goes away. :class:`OnlineSource` opens it on first use
(``loopml.sdk.feast.open_store``) and checks it with the probes of the
scorers that read it (:meth:`~loopml.sdk.capabilities.OnlineScorer.probe`,
a lookup of an entity nobody has); after a failure it tries again at most
every ``retry_seconds``. Scorers are asked without the store while it is
unavailable, and ``/readyz`` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.core.config import Settings

log = logging.getLogger(__name__)

#: A check that reaches the store (raises when it cannot).
Probe = Callable[[Any], None]


class OnlineSource:
    """The lazily opened Feast store, or None while unavailable."""

    def __init__(
        self,
        settings: Settings,
        probes: Sequence[Probe] = (),
        enabled: bool = True,
        retry_seconds: float = 30.0,
    ) -> None:
        """Remember how to open and check the store; nothing is opened yet.

        Args:
            settings: the service's settings (the profile's store).
            probes: lookups that must succeed for the store to count as
                reachable (one per scorer that reads it).
            enabled: ``False``: never open it (``get`` is always None).
            retry_seconds: after a failure, wait this long before reopening.
        """
        self._settings = settings
        self._probes = list(probes)
        self.enabled = enabled
        self.retry_seconds = retry_seconds
        self._store: Any | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        self.error: str | None = None if enabled else "online features disabled"

    def get(self) -> Any | None:
        """The open store, opening it if due; None when disabled or failing."""
        if self._store is not None or not self.enabled:
            return self._store
        due = (
            self._failed_at is None
            or time.monotonic() - self._failed_at >= self.retry_seconds
        )
        if not due:
            return None
        with self._lock:
            if self._store is None:
                self._open()
        return self._store

    def current(self) -> Any | None:
        """The store if it is open now (never opens it)."""
        return self._store

    def _open(self) -> None:
        from loopml.sdk.feast import open_store

        try:
            store = open_store(self._settings)
            self._probe(store)
        except Exception as error:  # any backend error: serve without it
            self._failed_at = time.monotonic()
            self.error = f"{type(error).__name__}: {error}"
            log.warning("online feature store unavailable: %s", self.error)
            return
        self._store, self.error = store, None
        log.info("online feature store open")

    def _probe(self, store: Any) -> None:
        for probe in self._probes:
            probe(store)

    def failed(self, error: Exception) -> None:
        """Report a failed read: drop the handle and retry later."""
        self._store = None
        self._failed_at = time.monotonic()
        self.error = f"{type(error).__name__}: {error}"
        log.warning("online feature read failed, scoring without it: %s", self.error)

    def reachable(self) -> bool:
        """Whether the probes reach the online store now."""
        store = self.get()
        if store is None:
            return False
        try:
            self._probe(store)
        except Exception as error:  # any backend error means unreachable
            self.failed(error)
            return False
        return True
