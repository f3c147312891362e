"""``end_with_parent``: a uvicorn worker ends when its supervisor is gone."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

PROBE = """
import os, sys, time
from loopml.core.runtime import end_with_parent
print(end_with_parent(int(sys.argv[1])), flush=True)
time.sleep(30)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_parent_gone_before_the_call_ends_the_process_at_once() -> None:
    # Not its parent: as if the supervisor had died and it was adopted.
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGTERM, (done.stdout, done.stderr)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_with_its_parent_alive_it_keeps_running() -> None:
    import os

    child = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(os.getpid())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "True"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    finally:
        child.kill()
        child.wait()
