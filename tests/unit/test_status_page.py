"""The status page at ``/`` and the report route, before anything ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopml.core.config import load_settings
from loopml.monitoring.status import collect, render_html
from loopml.serving.app import create_app


def test_empty_home_page_says_what_to_run(tiny_env: Path) -> None:
    client = TestClient(create_app(load_settings("default")))  # no lifespan

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for name in ("demand", "recsys"):
        assert f"<h2>{name}</h2>" in page.text
    assert page.text.count("No champion yet") == 2
    assert "Not monitored yet" in page.text
    assert "No promotion decision yet" in page.text


def test_report_route_serves_only_monitor_reports(tiny_env: Path) -> None:
    settings = load_settings("default")
    folder = settings.home / "reports" / "demand"
    folder.mkdir(parents=True)
    (folder / "monitor-2025-01-02.json").write_text('{"ok": 1}')
    (settings.home / "secret.txt").write_text("not for the web")
    client = TestClient(create_app(settings))

    assert client.get("/reports/demand/monitor-2025-01-02.json").json() == {"ok": 1}
    for bad in (
        "/reports/demand/monitor-2025-01-03.json",  # absent
        "/reports/demand/..%2F..%2Fsecret.txt",
        "/reports/other/monitor-2025-01-02.json",
        "/reports/demand/secret.txt",
    ):
        answer = client.get(bad)
        assert answer.status_code == 404, bad
        assert "not for the web" not in answer.text


def test_page_escapes_what_it_shows(tiny_env: Path) -> None:
    doc = collect(load_settings("default"))
    doc["workloads"]["demand"]["history"] = [
        {
            "when": "2025-01-01",
            "action": "promote",
            "from_version": None,
            "to_version": "1",
            "reason": "<script>alert(1)</script>",
        }
    ]

    page = render_html(doc)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_unknown_model_age_is_shown_as_unknown(tiny_env: Path) -> None:
    settings = load_settings("default")
    state = settings.state_dir("demand")
    state.mkdir(parents=True)
    doc = {"date": "2025-01-02", "model_version": "1", "model_age_days": None}
    doc["drift"] = {"share": 0.0, "drifted": []}
    (state / "monitor.json").write_text(json.dumps(doc))

    page = render_html(collect(settings))

    assert "<tr><td>Model age</td><td>unknown</td></tr>" in page


def test_damaged_state_files_leave_the_rest_of_the_report(tiny_env: Path) -> None:
    """A cut-short last_run.json or a bad history line failed the whole status."""
    settings = load_settings("default")
    state = settings.state_dir("demand")
    state.mkdir(parents=True)
    (state / "last_run.json").write_text('{"ok": tr')
    good = {"workload": "demand", "action": "promote", "promoted": True}
    good |= {"from_version": None, "to_version": "1", "reason": "first"}
    (state / "history.jsonl").write_text(json.dumps(good) + "\n{oops\n")

    info = collect(settings)["workloads"]["demand"]

    assert info["last_run"] is None
    assert info["history"] == []
    assert "No champion yet" in render_html(collect(settings))
    from loopml.models.registry import read_history

    with pytest.raises(ValueError, match="history.jsonl, line 2, is not a decision"):
        read_history(state / "history.jsonl")
