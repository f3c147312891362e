"""Per-client rate limit: a token bucket per client address, 429 when empty.

Each client address gets ``burst`` tokens, refilled at ``rate`` per second;
a request takes one, and a client with none left gets a 429 with
``Retry-After`` and a ``detail`` saying the limit. Health, readiness and
metrics routes are never limited (orchestrators and Prometheus poll them).

The buckets live in this process (at most ``max_clients``, the least
recently seen dropped first), or, given ``serving.rate_limit_redis_url``, in
Redis, so every uvicorn worker and replica shares them: one atomic script per
request keeps a bucket as its "theoretical arrival time" (GCRA, the same
arithmetic as the token bucket) on Redis' clock. While Redis cannot be
reached requests pass (logged): the limit protects the service, it must
not take it down.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Paths that are never limited.
EXEMPT = ("/healthz", "/readyz", "/ping", "/health", "/metrics", "/v2/health/")

#: KEYS[1]: the bucket; ARGV: seconds per token, burst. Returns the seconds
#: to wait ("0": allowed and taken), as text (Lua numbers become integers).
GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return tostring(wait) end
local ttl = math.ceil((tat + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return '0'
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every process that uses the same one."""

    def __init__(self, url: str, rate: float, burst: int, prefix: str) -> None:
        """Connect lazily to ``url`` (``redis://host:port/db``)."""
        self.client = aioredis.Redis.from_url(url, socket_timeout=1)
        self.script = self.client.register_script(GCRA)
        self.interval = 1.0 / rate
        self.burst = burst
        self.prefix = prefix
        self._warned = 0.0

    async def take(self, client: str) -> float:
        """Take a token for ``client``; 0 when allowed, else seconds to wait."""
        try:
            wait = await self.script(
                keys=[f"{self.prefix}{client}"], args=[self.interval, self.burst]
            )
        except (RedisError, OSError) as error:
            now = time.monotonic()
            if now - self._warned > 60:  # once a minute, not once a request
                log.warning("rate limit off: Redis unreachable (%s)", error)
                self._warned = now
            return 0.0
        return float(wait)


class RateLimitMiddleware:
    """Refuse a client's requests above ``rate`` per second (plus ``burst``)."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        max_clients: int = 10_000,
        redis_url: str | None = None,
        prefix: str = "loopml:rate-limit:",
    ) -> None:
        """Wrap ``app``; buckets in Redis when ``redis_url`` is given."""
        self.app = app
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.redis = RedisBuckets(redis_url, rate, burst, prefix) if redis_url else None

    def take(self, client: str, now: float) -> float:
        """Take a token for ``client`` in memory; 0 when allowed, else seconds."""
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
        address = client[0] if client else "-"
        if self.redis is not None:
            wait = await self.redis.take(address)
        else:
            wait = self.take(address, time.monotonic())
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
