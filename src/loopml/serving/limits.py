"""Per-client rate limit: a token bucket per client address, 429 when empty.

Each client address gets ``burst`` tokens, refilled at ``rate`` per second;
a request takes one, and a client with none left gets a 429 with
``Retry-After`` and a ``detail`` saying the limit. Health, readiness and
metrics routes are never limited (orchestrators and Prometheus poll them).
At most ``max_clients`` buckets are kept; the least recently seen go first.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths that are never limited.
EXEMPT = ("/healthz", "/readyz", "/ping", "/health", "/metrics", "/v2/health/")


class RateLimitMiddleware:
    """Refuse a client's requests above ``rate`` per second (plus ``burst``)."""

    def __init__(
        self, app: ASGIApp, rate: float, burst: int, max_clients: int = 10_000
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """Take a token for ``client``; 0 when allowed, else seconds to wait."""
        tokens, seen = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - seen) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)  # most recently seen last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 429."""
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.take(client[0] if client else "-", time.monotonic())
        if not wait:
            await self.app(scope, receive, send)
            return
        retry = math.ceil(wait)
        detail = (
            f"rate limit: at most {self.rate:g} requests per second per client "
            f"(burst {self.burst:g}); retry after {retry} s"
        )
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(retry).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
