"""loopml's conformance check on the {{ cookiecutter.workload_name }} workload.

``loopml.testing.check_workload`` runs it through the whole loop in a
temporary home, on its tiny data: ingest, validate, features, train,
evaluate, promote, batch, serving over HTTP, monitor, retrain and a short
replay. It raises ``WorkloadCheckError`` naming the capability that is
missing or broken.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from loopml.testing import check_workload

from utils.{{ cookiecutter.workload_name }}_factory import TINY


@pytest.mark.slow
def test_{{ cookiecutter.workload_name }}_passes_loopml_check_workload(tmp_path: Path) -> None:
    report = check_workload(
        "{{ cookiecutter.workload_name }}", home=tmp_path / "home", settings_overrides=TINY
    )
    # Every step ran: this workload declares every capability.
    assert {s.step: s.status for s in report.steps} == dict.fromkeys(
        [
            "contract",
            "ingest",
            "validate",
            "features",
            "train",
            "evaluate",
            "promote",
            "batch",
            "serve",
            "monitor",
            "retrain",
            "replay",
        ],
        "ok",
    ) | {"features": "skipped"}
