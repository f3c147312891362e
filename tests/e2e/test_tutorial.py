"""docs/tutorial.md stays true: its ``bash tutorial`` blocks run, in order.

The blocks run as one bash script (``set -euo pipefail``) from the loopml
checkout, with the generated workload at a tiny size (its settings section,
``LOOPML_WORKLOADS__SHOP__*``) and the project's ``make setup`` reusing this
environment (``LOOPML_ENV``), so the test needs no package index.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```bash tutorial\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: the generated ``shop`` workload at a tiny size; its history's last day is
#: start + n_days - 1, so the tutorial's "next day" is start + n_days.
TINY_SHOP = {
    "LOOPML_WORKLOADS__SHOP__N_ROWS": "1200",
    "LOOPML_WORKLOADS__SHOP__N_DAYS": "45",
    "LOOPML_WORKLOADS__SHOP__HOLDOUT_DAYS": "10",
    "LOOPML_WORKLOADS__SHOP__N_ESTIMATORS": "30",
}
NEXT_DAY = dt.date(2025, 1, 1) + dt.timedelta(days=45)


def tutorial_blocks() -> list[str]:
    """The tutorial's runnable blocks, in the order they appear."""
    return BLOCK.findall(TUTORIAL.read_text("utf-8"))


def test_tutorial_has_the_steps_a_reader_follows() -> None:
    script = "\n".join(tutorial_blocks())
    for step in ("loopml new shop", "make setup", "make run", "make daily", "history"):
        assert step in script, f"the tutorial no longer runs {step!r}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tutorial_commands_run_as_written(tmp_path: Path) -> None:
    drop = ("LOOPML_", "MAKE", "MFLAGS", "VIRTUAL_ENV", "ARGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        TINY_SHOP,
        WORK=str(tmp_path),
        NEXT_DAY=NEXT_DAY.isoformat(),
        LOOPML_ENV=sys.prefix,
        MLFLOW_DISABLE_TELEMETRY="true",
        # `make run` would tune first (Ray); tests/integration/test_tune.py
        # covers tuning and the generated project's tests its objective.
        LOOPML_TUNE__IN_RUN="false",
        # `.venv/bin/loopml` in the first block is the checkout's: this one.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    if not (REPO / ".venv/bin/loopml").exists():
        pytest.skip("the tutorial starts from the checkout's .venv (make setup)")
    script = "set -euo pipefail\n" + "\n".join(tutorial_blocks())
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]

    project = tmp_path / "shop"
    # Step 4: the loop trained, registered and promoted version 1.
    assert "shop champion: version 1" in out
    status = json.loads((project / "status.json").read_text("utf-8"))
    assert status["workloads"]["shop"]["champion"]["version"] == "1"
    # Step 5: the champion scored the request row (one finite prediction).
    predicted = re.search(r"^\s*prediction\s*\n\s*0\s+(-?\d+\.\d+)\s*$", out, re.M)
    assert predicted is not None, out[-2000:]
    assert float(predicted.group(1)) > 0
    # Step 6: without DATE, the day after the history was ingested and the
    # gate judged a second model; a day after a gap was refused, naming why.
    batches = list((project / ".loopml").rglob(f"*{NEXT_DAY.isoformat()}*"))
    assert batches, "make daily did not store the day's batch"
    assert "ingest shop: " in out and f"for {NEXT_DAY.isoformat()}" in out
    assert re.search(r"promote shop: v2 (promoted|not promoted)", out), out[-3000:]
    said = " ".join((out + done.stderr).split())
    assert "refused: the days before it are missing" in said
    assert "days_contiguous" in said
    assert list((project / ".loopml/quarantine/shop").glob("*2026-01-01*"))
