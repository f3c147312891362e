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

from utils.{{ cookiecutter.workload_name }}_factory import TINY

testing = pytest.importorskip(
    "loopml.testing",
    reason="this loopml has no loopml.testing.check_workload yet (update loopml)",
)


@pytest.mark.slow
def test_{{ cookiecutter.workload_name }}_passes_loopml_check_workload(tmp_path: Path) -> None:
    report = testing.check_workload(
        "{{ cookiecutter.workload_name }}",
        home=tmp_path / "home",
        settings_overrides={"workloads": {"{{ cookiecutter.workload_name }}": TINY}},
    )
    assert report is not None
