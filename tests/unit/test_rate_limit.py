"""The per-client rate limit: token bucket arithmetic and the 429 it answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopml.core.config import load_settings
from loopml.serving.app import create_app
from loopml.serving.limits import RateLimitMiddleware


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")


def test_bucket_allows_the_burst_then_the_rate() -> None:
    limit = RateLimitMiddleware(_app, rate=2.0, burst=3)
    assert [limit.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a", 100.0) == pytest.approx(0.5)  # one token in 1/2 s
    assert limit.take("b", 100.0) == 0.0  # another client has its own bucket
    assert limit.take("a", 100.5) == 0.0  # refilled at 2 per second
    assert limit.take("a", 100.5) > 0


def test_buckets_are_bounded() -> None:
    limit = RateLimitMiddleware(_app, rate=1.0, burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        limit.take(client, 0.0)
    assert limit.take("a", 0.0) == 0.0  # "a" was evicted: a fresh bucket


def test_service_answers_429_with_retry_after_and_counts_it(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_SERVING__RATE_LIMIT_PER_SECOND", "0.5")
    monkeypatch.setenv("LOOPML_SERVING__RATE_LIMIT_BURST", "3")
    client = TestClient(create_app(load_settings("default")))

    codes = [client.get("/version").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    refused = client.get("/version")
    assert refused.status_code == 429
    assert "at most 0.5 requests per second" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    for _ in range(5):  # health and metrics are never limited
        assert client.get("/healthz").status_code == 200
    assert 'status="429"' in client.get("/metrics").text


def test_no_limit_by_default(tiny_env: Path) -> None:
    settings = load_settings("default")
    assert settings.serving.rate_limit_per_second is None
    assert load_settings("production").serving.rate_limit_per_second == 200
    client = TestClient(create_app(settings))
    assert {client.get("/version").status_code for _ in range(60)} == {200}
