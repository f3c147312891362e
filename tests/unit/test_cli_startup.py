"""The CLI starts fast: `--help` and `status` import no heavy library.

Timing is measured, not asserted (docs/benchmarks.md); what keeps it fast is
that MLflow, Feast, Ray, Evidently, LightGBM and pandas are imported only
inside the commands that need them, which is what these tests check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import conftest

HEAVY = ("mlflow", "feast", "ray", "evidently", "lightgbm", "pandas", "sklearn")

PROBE = """
import json, sys
from loopml.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))
print("HEAVY=" + json.dumps(heavy))
"""


def _heavy(home: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *args],
        env=conftest.subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("HEAVY="))
    found: list[str] = json.loads(line.removeprefix("HEAVY="))
    return found


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    assert _heavy(tmp_path / "home", "--help") == []


def test_status_imports_no_heavy_library(tmp_path: Path) -> None:
    assert _heavy(tmp_path / "home", "status", "--json") == []


def test_ingest_imports_no_model_library(tmp_path: Path) -> None:
    # Every workload's settings are loaded; none of their models' libraries.
    assert _heavy(tmp_path / "home", "ingest", "-w", "demand") == ["pandas"]


def test_metrics_print_counts_and_days_as_integers() -> None:
    from loopml.cli import _number

    assert _number(21090.0, "feature_rows") == "21,090"
    assert _number(0.0, "model_age_days") == "0"
    assert _number(0.0, "drift_share") == "0.000"
    assert _number(0.3641, "wape") == "0.364"
