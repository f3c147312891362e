"""Alerts: one webhook message per incident, then silence for a cool-down.

An incident is a workload and a kind (``drift``, ``performance``). The first
time :func:`notify` sees an open incident it posts one message; while the
incident stays open, later calls post nothing until
``monitor.alert_cooldown_hours`` have passed since the last message, so a
daily (or hourly) monitor does not flood the channel. :func:`resolve` closes
the incident: the next occurrence is announced at once.

The webhook URL is a credential: it comes from ``LOOPML_ALERT_WEBHOOK_URL``
(``Settings.alert_webhook_url``), never from a YAML file. Without it nothing
is sent and the alert is only logged. ``alert_kind`` (``LOOPML_ALERT_KIND``)
picks the payload: ``slack`` (``{"text": ...}``, incoming webhooks),
``teams`` (an Adaptive Card, as Teams workflow webhooks expect) or
``generic`` (the fields as plain JSON). The cool-down state is
``<home>/state/<workload>/alerts.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.io import write_json

if TYPE_CHECKING:
    from loopml.core.config import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Alert:
    """One message about one incident."""

    workload: str
    kind: str
    title: str
    text: str


def payload(alert: Alert, kind: str) -> dict[str, Any]:
    """The JSON body for a Slack, Teams or generic receiver."""
    if kind == "slack":
        return {"text": f"*{alert.title}*\n{alert.text}"}
    if kind == "teams":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": alert.title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                },
                {"type": "TextBlock", "text": alert.text, "wrap": True},
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": card,
                }
            ],
        }
    return {
        "workload": alert.workload,
        "kind": alert.kind,
        "title": alert.title,
        "text": alert.text,
    }


def _state_path(settings: Settings, workload: str) -> Path:
    return settings.state_dir(workload) / "alerts.json"


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("unreadable %s; starting a fresh alert state", path)
        return {}
    return state


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def notify(settings: Settings, alert: Alert, now: dt.datetime | None = None) -> bool:
    """Announce an open incident unless it was announced within the cool-down.

    Args:
        settings: webhook URL and kind, cool-down, home folder.
        alert: the incident and its message.
        now: the current time (tests); default now, UTC.

    Returns:
        Whether a message was posted. A failed post is logged, not raised,
        and not remembered, so the next call tries again.
    """
    now = now or dt.datetime.now(dt.UTC)
    path = _state_path(settings, alert.workload)
    state = _read_state(path)
    last = state.get(alert.kind, {}).get("sent")
    cooldown = dt.timedelta(hours=settings.monitor.alert_cooldown_hours)
    if last is not None and now - dt.datetime.fromisoformat(last) < cooldown:
        log.info(
            "%s alert for %s already sent at %s; within the cool-down",
            alert.kind,
            alert.workload,
            last,
        )
        return False
    url = settings.alert_webhook_url
    if url is None or not url.get_secret_value():
        log.warning(
            "%s alert for %s not sent (LOOPML_ALERT_WEBHOOK_URL is not set): %s",
            alert.kind,
            alert.workload,
            alert.title,
        )
        return False
    try:
        _post(url.get_secret_value(), payload(alert, settings.alert_kind))
    except (urllib.error.URLError, OSError, ValueError) as error:
        # The URL holds the secret: name the error, never the address.
        log.error(
            "could not post the %s alert for %s: %s",
            alert.kind,
            alert.workload,
            type(error).__name__,
        )
        return False
    state[alert.kind] = {"sent": now.isoformat(), "title": alert.title}
    write_json(state, path)
    log.info("posted the %s alert for %s", alert.kind, alert.workload)
    return True


def resolve(settings: Settings, workload: str, kind: str) -> None:
    """Close an incident: its next occurrence is announced at once."""
    path = _state_path(settings, workload)
    state = _read_state(path)
    if state.pop(kind, None) is not None:
        write_json(state, path)
        log.info("%s incident of %s resolved", kind, workload)
