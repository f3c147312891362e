"""A two-node Ray cluster on this machine runs ``loopml tune`` and ``batch``.

``ray start --head`` (node A: 1 CPU, custom resource ``node_a``) and ``ray
start --address`` (node B: 1 CPU, ``node_b``), each with their own ports, a
token file and the session under the test's temp folder. The CLI reaches
the cluster through settings (``LOOPML_TUNE__RAY_ADDRESS``, ``--ray-address``)
only. Ray's own records (the state API: actors and tasks with their node)
show that both nodes ran work of each command; the batch results equal the
single-process ones. Both nodes are stopped by process id in a ``finally``.

About 4 minutes on the loaded 2-core machine (the two ``ray start`` 69 s),
58-75 s on a quiet one. Marker ``cluster``: ``make test`` runs it alone after
the other tests (when they passed and no ``ARGS`` narrow the run), since
its two nodes need the CPUs the parallel tests use; ``make test-cluster``
runs only it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

import conftest
from loopml.core.config import load_settings
from loopml.data.results import result_path

RAY = str(Path(sys.executable).with_name("ray"))


def _run(args: list[str], env: dict[str, str], seconds: float = 600) -> str:
    """Run a command; its output, or a failure showing the end of it."""
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=seconds, check=False
    )
    assert done.returncode == 0, f"{args[:3]}: {(done.stdout + done.stderr)[-3000:]}"
    return done.stdout


def _stop(folder: Path, started: set[int]) -> None:
    """Stop this test's Ray processes only: those ``ray start`` left under
    ``folder``, and their children (never ``ray stop``: it stops every Ray
    on the machine)."""
    procs = {psutil.Process(pid) for pid in started if psutil.pid_exists(pid)}
    for proc in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(proc.info["cmdline"] or []):
            procs.add(proc)
    for proc in list(procs):
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.update(proc.children(recursive=True))
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(procs), timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


@pytest.fixture()
def cluster(tiny_env: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node; yields the address and the CLI's environment."""
    # Unix socket paths under the session must stay short.
    folder = Path(tempfile.mkdtemp(prefix="lrc-", dir="/tmp"))
    token = folder / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = conftest.subprocess_env(tiny_env, **auth)
    port = conftest.free_port()
    address = f"127.0.0.1:{port}"
    ports = [
        "--dashboard-port",
        str(conftest.free_port()),
        "--ray-client-server-port",
        str(conftest.free_port()),
    ]
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    common += ["--node-ip-address", "127.0.0.1"]
    before = {p.pid for p in psutil.process_iter()}
    try:
        _run(
            [RAY, "start", "--head", "--port", str(port), "--temp-dir", str(folder)]
            + ["--resources", json.dumps({"node_a": 1}), *ports, *common],
            env,
        )
        _run(
            [RAY, "start", "--address", address]
            + ["--resources", json.dumps({"node_b": 1}), *common],
            env,
        )
        yield address, env
    finally:
        started = {p.pid for p in psutil.process_iter()} - before
        _stop(folder, {pid for pid in started if _under(pid, folder)})
        shutil.rmtree(folder, ignore_errors=True)


def _under(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` belongs to the session under ``folder``."""
    try:
        return str(folder) in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


# Run in a fresh interpreter: Ray reads RAY_AUTH_MODE when it is imported.
_STATE = """
import json, sys
import ray
from ray.util.state import list_actors, list_tasks

ray.init(address=sys.argv[1], logging_level="WARNING", log_to_driver=False)
marks = {
    node["NodeID"]: sorted(r for r in node["Resources"] if r.startswith("node_"))
    for node in ray.nodes()
}
ran = {}
for record in [
    *list_actors(limit=10_000, raise_on_missing_output=False),
    *list_tasks(limit=10_000, raise_on_missing_output=False),
]:
    if record.node_id in marks:
        ran.setdefault(record.job_id, set()).update(marks[record.node_id])
ray.shutdown()
print(json.dumps({job: sorted(nodes) for job, nodes in ran.items()}))
"""


def _nodes_by_job(address: str, env: dict[str, str]) -> dict[str, set[str]]:
    """Per job id: the custom resources (``node_a``, ``node_b``) of the nodes
    that ran its actors and tasks, from Ray's state API."""
    out = _run([sys.executable, "-c", _STATE, address], env)
    return {job: set(nodes) for job, nodes in json.loads(out.splitlines()[-1]).items()}


@pytest.mark.cluster
@pytest.mark.timeout(1500)
def test_tune_and_batch_run_on_both_nodes_with_the_local_results(
    tiny_env: Path, cluster: tuple[str, dict[str, str]]
) -> None:
    address, env = cluster
    settings = load_settings("default")
    origin = conftest.demand_champion(settings)
    day = (origin + pd.Timedelta(days=1)).date()
    cli = [sys.executable, "-m", "loopml.cli"]
    # Blocks of 2 series: 4 blocks for the 8 tiny series.
    batch_env = {**env, "LOOPML_BATCH__BLOCK_ROWS": "2"}
    batch = [*cli, "batch", "-w", "demand", "--date", day.isoformat()]
    _run(batch, batch_env)
    local = pd.read_parquet(result_path(settings, "demand", day))

    jobs: list[set[str]] = []
    seen: set[str] = set()
    tune_env = {**env, "LOOPML_TUNE__RAY_ADDRESS": address}
    _run([*cli, "tune", "-w", "demand", "--trials", "4"], tune_env)
    ran = _nodes_by_job(address, env)
    jobs.append(set().union(*(ran[j] for j in ran if j not in seen)))
    seen |= set(ran)
    _run([*batch, "--engine", "ray", "--ray-address", address], batch_env)
    ran = _nodes_by_job(address, env)
    jobs.append(set().union(*(ran[j] for j in ran if j not in seen)))

    assert jobs == [{"node_a", "node_b"}, {"node_a", "node_b"}], jobs
    pd.testing.assert_frame_equal(
        pd.read_parquet(result_path(settings, "demand", day)), local
    )
    tuned = json.loads((settings.state_dir("demand") / "tuned.json").read_text())
    assert tuned, "tune on the cluster kept no parameters"
