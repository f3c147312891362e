"""``loopml serve --port 0`` prints the URL of the port it took, at once.

It serves the home named by ``--home`` (uvicorn builds the app in its own
process, from the environment).
"""

from __future__ import annotations

import contextlib
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


def test_workers_end_with_their_supervisor_killed_outright(demand_home: Path) -> None:
    """``--workers 2``: a ``kill -9`` of uvicorn's supervisor ends its workers.

    Before, they went on holding the port and answering with the champions
    they had loaded.
    """
    import psutil

    log = demand_home / "serve.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopml.cli", "serve", "--port", "0"]
            + ["--workers", "2"],
            env=conftest.subprocess_env(demand_home),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while "ready:" not in log.read_text():  # both workers built their app
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        workers += [
            child
            for child in psutil.Process(process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2, [c.cmdline() for c in workers]
        process.kill()
        process.wait(timeout=30)
        gone, alive = psutil.wait_procs(workers, timeout=60)
        assert alive == [], [(p.pid, p.status()) for p in alive]
    finally:
        if process.poll() is None:
            process.kill()
        for worker in workers:  # adopted by init when they outlive it
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.terminate()  # their inference-log writers follow
