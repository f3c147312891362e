"""The monitor's HTML when asked: published without it, added after (the replay).

``loopml replay`` publishes a quiet day's monitor report without
Evidently's HTML and adds it when the day's retrain ran; the JSON names the
HTML exactly when it exists, and ``monitor.json`` is only rewritten while
it still holds that day.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core.config import Settings, load_settings
from loopml.monitoring.drift import detect
from loopml.stages import monitor


def _judged(settings: Settings, day: str) -> monitor.Judged:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"level": rng.normal(size=300)})
    current = pd.DataFrame({"level": rng.normal(size=80)})
    drift = detect(reference, current, settings.monitor, ["level"], summary=False)
    paths = monitor.report_paths(settings, "demand", pd.Timestamp(day).date())
    doc: dict[str, Any] = {
        "workload": "demand",
        "date": day,
        "model_version": "1",
        "model_age_days": 3,
        "drift": drift.to_dict(),
        "prediction_drift": None,
        "performance": None,
        "reports": {"json": str(paths["json"])},
    }
    return monitor.Judged(doc, drift, paths, time.perf_counter())


def _read(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def test_quiet_day_without_html_then_added(tiny_env: Path) -> None:
    settings = load_settings("default")
    state = settings.state_dir("demand") / "monitor.json"
    first = _judged(settings, "2025-02-04")
    assert not first.drifted
    result = monitor.publish(settings, "demand", first, html=False)
    assert result.status == "ok"
    assert result.details["reports"] == {"json": str(first.paths["json"])}
    assert not first.paths["html"].exists()
    assert _read(first.paths["json"])["reports"] == {"json": str(first.paths["json"])}

    monitor.add_html(settings, "demand", first)
    assert "level" in first.paths["html"].read_text(encoding="utf-8")
    named = {"html": str(first.paths["html"]), "json": str(first.paths["json"])}
    assert _read(first.paths["json"])["reports"] == named
    assert list(_read(state)["reports"]) == ["html", "json"]
    assert _read(state)["drift"] == first.doc["drift"]

    # A later day holds monitor.json: adding an earlier day's HTML leaves it.
    second = _judged(settings, "2025-02-05")
    monitor.publish(settings, "demand", second, html=False)
    first.paths["html"].unlink()
    first.doc["reports"].pop("html")
    monitor.add_html(settings, "demand", first)
    assert first.paths["html"].is_file()
    assert _read(state)["date"] == "2025-02-05"
    assert "html" not in _read(state)["reports"]
