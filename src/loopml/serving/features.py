"""The service's handle on the Feast online store: opened lazily, retried.

Opening a Feast store imports Feast (seconds) and reads its registry; a
service must start, and keep answering, when the store is not there yet or
goes away. :class:`OnlineSource` opens it on first use, and after a failure
tries again at most every ``retry_seconds``; callers fall back to the state
bundled with the model while it is unavailable, and ``/readyz`` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.workloads.demand.online import OnlineFeatures

log = logging.getLogger(__name__)

#: An entity nobody has: a lookup that reaches the online store, finds nothing.
_PROBE = [("__loopml_probe__", "__loopml_probe__")]


class OnlineSource:
    """Lazily opened :class:`OnlineFeatures`, or None while unavailable."""

    def __init__(
        self, settings: Settings, enabled: bool = True, retry_seconds: float = 30.0
    ) -> None:
        """Remember how to open the store; nothing is opened yet."""
        self._settings = settings
        self.enabled = enabled
        self.retry_seconds = retry_seconds
        self._online: OnlineFeatures | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        self.error: str | None = None if enabled else "online features disabled"

    def get(self) -> OnlineFeatures | None:
        """The open store, opening it if due; None when disabled or failing."""
        if self._online is not None or not self.enabled:
            return self._online
        due = (
            self._failed_at is None
            or time.monotonic() - self._failed_at >= self.retry_seconds
        )
        if not due:
            return None
        with self._lock:
            if self._online is None:
                self._open()
        return self._online

    def _open(self) -> None:
        from loopml.workloads.demand.online import OnlineFeatures

        try:
            online = OnlineFeatures(self._settings)
            online.state_for(_PROBE)
        except Exception as error:  # any backend error: serve without it
            self._failed_at = time.monotonic()
            self.error = f"{type(error).__name__}: {error}"
            log.warning("online feature store unavailable: %s", self.error)
            return
        self._online, self.error = online, None
        log.info("online feature store open")

    def failed(self, error: Exception) -> None:
        """Report a failed read: drop the handle and retry later."""
        self._online = None
        self._failed_at = time.monotonic()
        self.error = f"{type(error).__name__}: {error}"
        log.warning("online feature read failed, serving model state: %s", self.error)

    def reachable(self) -> bool:
        """Whether a probe lookup reaches the online store now."""
        online = self.get()
        if online is None:
            return False
        try:
            online.state_for(_PROBE)
        except Exception as error:  # any backend error means unreachable
            self.failed(error)
            return False
        return True
