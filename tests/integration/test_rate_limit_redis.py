"""The production rate limit is one limit for every worker: buckets in Redis.

Two app instances (as two uvicorn workers would be) pointed at the same
Redis share a client's bucket; in memory each has its own. While Redis is
unreachable requests pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from conftest import free_port
from loopml.core.config import load_settings
from loopml.serving.app import create_app

# Not database 0, which the production profile's tests use for the same key.
REDIS = "redis://127.0.0.1:6379/15"
KEY = "loopml:rate-limit:testclient"  # TestClient's client address


def _redis_unreachable() -> str | None:
    try:
        redis.Redis.from_url(REDIS, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {REDIS} is unreachable: {error}"
    return None


def _codes(monkeypatch: pytest.MonkeyPatch, url: str | None) -> list[int]:
    """Statuses of 6 requests sent in turns to two apps (rate 0.5/s, burst 4)."""
    monkeypatch.setenv("LOOPML_SERVING__RATE_LIMIT_PER_SECOND", "0.5")
    monkeypatch.setenv("LOOPML_SERVING__RATE_LIMIT_BURST", "4")
    if url:
        monkeypatch.setenv("LOOPML_SERVING__RATE_LIMIT_REDIS_URL", url)
    settings = load_settings("default")
    with (
        TestClient(create_app(settings)) as one,
        TestClient(create_app(settings)) as two,
    ):
        return [c.get("/version").status_code for c in (one, two) * 3]


@pytest.mark.skipif(_redis_unreachable() is not None, reason="needs local Redis")
def test_two_workers_share_one_bucket_in_redis(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis.Redis.from_url(REDIS).delete(KEY)
    try:
        assert _codes(monkeypatch, REDIS) == [200, 200, 200, 200, 429, 429]
        assert redis.Redis.from_url(REDIS).pttl(KEY) > 0  # the bucket expires
    finally:
        redis.Redis.from_url(REDIS).delete(KEY)


def test_in_memory_each_worker_has_its_own_bucket(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _codes(monkeypatch, None) == [200] * 6


def test_requests_pass_while_redis_is_unreachable(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    assert _codes(monkeypatch, closed) == [200] * 6


def test_production_shares_its_limit_in_redis(tiny_env: Path) -> None:
    serving = load_settings("production").serving
    assert serving.rate_limit_redis_url == "redis://127.0.0.1:6379/0"
    assert (serving.rate_limit_per_second, serving.rate_limit_burst) == (200, 400)
