"""Ctrl-C in ``loopml run`` while Ray Tune searches: the run stops there.

Ray Tune's own SIGINT handler ends a search early and returns it as if it
were whole; ``loopml run`` then wrote ``tuned.json`` from the trials done so
far, trained, promoted and exited 0. Now Ctrl-C stops the command: exit 130,
"interrupted", no ``tuned.json``, no model trained, no Ray process left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from conftest import subprocess_env


def test_ctrl_c_during_tuning_stops_the_run_and_changes_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = subprocess_env(home, LOOPML_TUNE__NUM_SAMPLES="40")
    command = [sys.executable, "-m", "loopml.cli", "run", "-w", "demand", "--tune"]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = home / "logs" / "loopml.log"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        # The search starts once Ray is up and this line is logged.
        if log.is_file() and "tuning demand:" in log.read_text(errors="replace"):
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[0]
    time.sleep(8)  # trials running, well before the 40th
    tree = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    state = home / "state" / "demand"
    assert not (state / "tuned.json").exists(), output
    assert not (state / "train.json").exists(), output
    assert "promote" not in output and "Traceback" not in output
    _, alive = psutil.wait_procs(tree, timeout=60)
    assert not [p for p in alive if p.is_running()], alive
