"""``loopml serve --port 0`` prints the URL of the port it took, at once.

It serves the home named by ``--home`` (uvicorn builds the app in its own
process, from the environment).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

import conftest


def test_port_0_prints_the_port_it_took(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    home = tmp_path / "chosen"
    env = conftest.subprocess_env(tmp_path / "home")
    del env["LOOPML_HOME"]
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopml.cli", "--home", str(home)]
            + ["serve", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        url = None
        while url is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            found = re.search(r"serving on (http://[\d.]+:\d+)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.2)
        assert int(url.rsplit(":", 1)[1]) > 0
        while True:  # the printed port is the one that answers
            assert time.monotonic() < deadline, log.read_text()
            try:
                assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.3)
        # The service's registry is the chosen home's, not ./.loopml.
        assert (home / "mlflow.db").is_file(), sorted(tmp_path.rglob("mlflow.db"))
        assert not (tmp_path / ".loopml").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)
