"""Alerts: one POST per incident within the cool-down, payloads, no URL."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from loopml.core.config import Settings
from loopml.monitoring import alerts
from loopml.stages.monitor import open_incidents

NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
ALERT = alerts.Alert("demand", "drift", "loopml: drift on demand", "share 67 %")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.received.append({"path": self.path, "body": body})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on a free loopback port; yields its URL and posts."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _settings(home: Path, url: str | None, kind: str = "slack") -> Settings:
    return Settings(
        home=home,
        alert_webhook_url=url,
        alert_kind=kind,
        monitor={"alert_cooldown_hours": 24},
    )


def test_one_incident_posts_once_within_the_cooldown(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    settings = _settings(tmp_path, url)
    sent = [
        alerts.notify(settings, ALERT, NOW + dt.timedelta(hours=h)) for h in (0, 1, 23)
    ]
    assert sent == [True, False, False]
    assert len(received) == 1
    assert received[0]["path"] == "/hook"
    assert received[0]["body"] == {"text": "*loopml: drift on demand*\nshare 67 %"}
    # Still open after the cool-down: announced again, once.
    assert alerts.notify(settings, ALERT, NOW + dt.timedelta(hours=25)) is True
    assert len(received) == 2


def test_another_kind_or_a_resolved_incident_posts_at_once(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    settings = _settings(tmp_path, url)
    assert alerts.notify(settings, ALERT, NOW)
    other = alerts.Alert("demand", "performance", "loopml: performance", "x2")
    assert alerts.notify(settings, other, NOW)
    alerts.resolve(settings, "demand", "drift")
    assert alerts.notify(settings, ALERT, NOW + dt.timedelta(hours=1))
    assert len(received) == 3


def test_teams_gets_an_adaptive_card(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    assert alerts.notify(_settings(tmp_path, url, "teams"), ALERT, NOW)
    body = received[0]["body"]
    assert body["type"] == "message"
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [block["text"] for block in attachment["content"]["body"]]
    assert texts == [ALERT.title, ALERT.text]


def test_no_url_logs_and_sends_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, None)
    with caplog.at_level(logging.WARNING, logger="loopml.monitoring.alerts"):
        assert alerts.notify(settings, ALERT, NOW) is False
    assert "LOOPML_ALERT_WEBHOOK_URL is not set" in caplog.text
    assert not (settings.state_dir("demand") / "alerts.json").exists()


def test_unreachable_receiver_is_logged_and_retried(
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = receiver
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = _settings(tmp_path, f"http://127.0.0.1:{closed}/hook")
    with caplog.at_level(logging.ERROR, logger="loopml.monitoring.alerts"):
        assert alerts.notify(down, ALERT, NOW) is False
    assert "could not post" in caplog.text
    assert alerts.notify(_settings(tmp_path, url), ALERT, NOW) is True
    assert len(received) == 1


def _doc(drifted: list[str], ratio: float | None) -> dict[str, Any]:
    """The parts of a monitor document the stage's alerting reads."""
    return {
        "date": "2026-03-02",
        "model_version": "3",
        "drift": {"share": len(drifted) / 3, "drifted": drifted},
        "prediction_drift": {"score": 0.1, "drifted": False},
        "performance": None
        if ratio is None
        else {"metric": "wape", "value": 0.3, "ratio": ratio},
        "reports": {"html": "monitor.html", "json": "monitor.json"},
    }


def test_the_monitor_stage_opens_and_closes_incidents(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    settings = _settings(tmp_path, url)
    assert open_incidents(settings, "demand", _doc(["sales_index"], 2.0)) == [
        "drift",
        "performance",
    ]
    assert (
        open_incidents(settings, "demand", _doc(["sales_index"], 2.0)) == []
    )  # cool-down
    assert "sales_index" in received[0]["body"]["text"]
    assert open_incidents(settings, "demand", _doc([], 1.0)) == []  # both close
    assert open_incidents(settings, "demand", _doc(["price"], None)) == ["drift"]
    assert len(received) == 3


def test_a_stale_champion_opens_one_incident_until_retrained(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    settings = _settings(tmp_path, url)
    limit = settings.retrain.max_age_days
    assert limit is not None
    old = {**_doc([], 1.0), "model_age_days": limit + 30}
    assert open_incidents(settings, "demand", old) == ["stale"]
    assert open_incidents(settings, "demand", old) == []  # one message per incident
    assert "retrain.max_age_days" in received[0]["body"]["text"]
    fresh = {**_doc([], 1.0), "model_age_days": 3}
    assert open_incidents(settings, "demand", fresh) == []  # closes quietly
    assert open_incidents(settings, "demand", old) == ["stale"]  # a new incident
    assert len(received) == 2
