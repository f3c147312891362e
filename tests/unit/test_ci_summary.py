"""The CI summary: one Markdown section per workload, its stages and champion."""

from __future__ import annotations

from typing import Any

from loopml.devtools.ci_summary import render

STATUS: dict[str, Any] = {
    "profile": "default",
    "workloads": {
        "demo": {
            "champion": {"version": "2", "metrics": {"mae": 3.14159}},
            "challenger": None,
            "last_run": {
                "finished": "2026-01-02T03:04:05+00:00",
                "ok": True,
                "stages": [
                    {
                        "stage": "train",
                        "status": "ok",
                        "seconds": 1.5,
                        "summary": "version 2 registered as challenger",
                    },
                    {
                        "stage": "promote",
                        "status": "rejected",
                        "seconds": 0.2,
                        "summary": "gate failed: a | b",
                    },
                ],
            },
        },
        "other": {"champion": None, "challenger": None, "last_run": None},
    },
}


def test_summary_lists_stages_and_champion_per_workload() -> None:
    text = render(STATUS)
    assert text.startswith("## loopml (default)")
    assert "| train | ok | 1.5 | version 2 registered as challenger |" in text
    assert "| promote | rejected | 0.2 | gate failed: a \\| b |" in text
    assert "Champion: version 2 (mae=3.142)." in text
    assert "### other\n\nNo run yet.\n\nChampion: none yet." in text


def test_summary_can_be_limited_to_some_workloads() -> None:
    text = render(STATUS, ["other", "missing"])
    assert "### demo" not in text
    assert "### missing\n\nunknown workload" in text
