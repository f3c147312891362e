"""Tuning throughput: the same trials run sequentially, in a Pool(2), in Ray Tune.

Every mode scores the same N LightGBM configurations (drawn once from the
demand search space with a fixed seed) with the same objective,
``DemandWorkload.tune_objective``: the WAPE of a 2-fold rolling-origin
backtest on the folds before ``evaluate``'s, on generated data of each size
(stores x items x 730 days; more series, longer trials). Modes:

* ``sequential``: one trial after the other in this process (the floor a
  parallel mode must beat);
* ``multiprocessing.Pool(2)``: fork-started workers that receive the data once
  (initializer), then one configuration per task (what a user would pick
  instead of Ray on one machine);
* ``Ray Tune``: ``loopml tune``'s own search (``stages.tune.search``): its
  Ray session, its trainable (data in the object store once, reused actors,
  one LightGBM thread per trial), its MLflow callback logging a nested run
  per trial; the configurations go in as Optuna's points to evaluate and ASHA
  is off, so it does the same work as the others. Timed with and without
  starting Ray (``ray.init`` + ``ray.shutdown``);
* ``Ray Tune on a running Ray`` (``--running-ray``, on by default): the
  same search against a Ray head started beforehand with ``ray start
  --head`` on this machine (2 CPUs), as a cluster that stays up between
  runs: ``loopml tune`` with ``tune.ray_address``. Timed from connecting
  (``ray.init(address=...)``) to disconnecting; starting and stopping the
  head are not timed.

Every mode must find the same WAPE values (LightGBM is deterministic
here), which the script checks. Not a test: run on demand; the Markdown table
replaces this benchmark's section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/tuning.py --trials 12 --sizes 3x10,5x20
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightgbm
import mlflow
import numpy as np
import pandas as pd
from doc_sections import write_section

from loopml.core.config import Settings, load_settings
from loopml.core.ray_session import ray_session
from loopml.core.runtime import configure_environment
from loopml.models.tracking import setup_mlflow
from loopml.sdk.tuning import SearchParam
from loopml.sdk.workload import get_workload
from loopml.stages import tune as tune_stage
from loopml.workloads.demand.config import DemandSettings

SECTION = "tuning"
COMMAND = ".venv/bin/python benchmarks/tuning.py --trials {n} --sizes {sizes}"
WORKERS = 2

# Set in each Pool worker by the initializer (the data crosses once).
_POOL_STATE: dict[str, Any] = {}


def sample_configs(
    space: dict[str, SearchParam], n: int, seed: int
) -> list[dict[str, Any]]:
    """Draw ``n`` configurations uniformly (log-uniformly where ``log``)."""
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        config: dict[str, Any] = {}
        for name, p in space.items():
            low, high = (
                (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
            )
            value = rng.uniform(low, high)
            value = math.exp(value) if p.log else value
            config[name] = int(round(value)) if p.kind == "int" else float(value)
        configs.append(config)
    return configs


def objective(settings: Settings, data: pd.DataFrame, config: dict[str, Any]) -> float:
    """One trial: the demand tuning objective of ``config``."""
    return get_workload("demand").tune_objective(settings, data, config)


def _pool_init(settings: Settings, data: pd.DataFrame) -> None:
    _POOL_STATE.update(settings=settings, data=data)


def _pool_trial(config: dict[str, Any]) -> float:
    return objective(_POOL_STATE["settings"], _POOL_STATE["data"], config)


def run_sequential(
    settings: Settings, data: pd.DataFrame, configs: list[dict[str, Any]]
) -> list[float]:
    """Every trial in this process."""
    return [objective(settings, data, config) for config in configs]


def run_pool(
    settings: Settings, data: pd.DataFrame, configs: list[dict[str, Any]]
) -> list[float]:
    """Every trial in a Pool of fork-started workers (pool start-up included)."""
    context = mp.get_context("fork")
    with context.Pool(
        WORKERS, initializer=_pool_init, initargs=(settings, data)
    ) as pool:
        return pool.map(_pool_trial, configs, chunksize=1)


def run_ray(
    settings: Settings,
    data: pd.DataFrame,
    configs: list[dict[str, Any]],
    address: str | None = None,
) -> tuple[list[float], float]:
    """The tune stage's search on exactly ``configs``, without early stopping.

    Runs ``loopml.stages.tune.search`` (the stage's trainable, its MLflow
    callback and nested runs under a parent run, its Ray session) with the
    configurations as Optuna's points to evaluate and ASHA off, so every mode
    does the same work. Returns the values (sorted) and the search time alone.
    The home's MLflow database is created before the clock starts
    (:func:`measure`): a one-time cost of a new home, not of tuning; the
    parent run and every trial's run are timed.
    """
    workload = get_workload("demand")
    experiment_id = setup_mlflow(settings)
    with mlflow.start_run(run_name="demand-tune-benchmark") as active:
        parent = tune_stage.Parent(
            active.info.run_id, experiment_id, settings.tracking_uri
        )
        with ray_session(settings, address=address):
            started = time.perf_counter()
            grid = tune_stage.search(
                settings,
                workload,
                data,
                parent,
                WORKERS,
                points=configs,
                early_stopping=False,
            )
            fit_seconds = time.perf_counter() - started
    values = sorted(float(grid[i].metrics["wape"]) for i in range(len(grid)))
    return values, fit_seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_ray() -> Iterator[str]:
    """A Ray head of 2 CPUs started by ``ray start --head --block``; its address.

    It runs in its own temporary folder and process group, and is stopped by
    signalling that group (never ``ray stop``, which stops every Ray on the
    machine).
    """
    folder = Path(tempfile.mkdtemp(prefix="lmbr-", dir="/tmp"))
    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    command = [ray_cli, "start", "--head", "--block", "--port", str(port)]
    command += ["--num-cpus", str(WORKERS), "--include-dashboard", "false"]
    command += ["--temp-dir", str(folder), "--node-ip-address", "127.0.0.1"]
    # Ports of its own: another Ray on the machine (a `loopml tune`) holds
    # the default ones of its agents.
    for option in (
        "--ray-client-server-port",
        "--dashboard-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ):
        command += [option, str(_free_port())]
    command += ["--disable-usage-stats"]
    log = (folder / "ray-start.log").open("w")
    # The token file of this process (``main``), as a real cluster shares it.
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("session_*/sockets/raylet")):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed: see {folder}/ray-start.log")
            time.sleep(0.2)
        time.sleep(2)  # the raylet's socket comes before its workers
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _timed(fn: Any) -> tuple[Any, float, tuple[float, float]]:
    before = os.getloadavg()[0]
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started, (before, os.getloadavg()[0])


def measure(
    home: Path, stores: int, items: int, trials: int, running: bool = True
) -> tuple[list[str], str, dict[str, float]]:
    """Time the modes on one data size: table rows, a summary, seconds."""
    settings = load_settings(
        "default",
        home=home,
        workloads={"demand": {"n_stores": stores, "n_items": items}},
    )
    configure_environment(settings.home)
    workload = get_workload("demand")
    data = workload.validate(workload.load_raw(settings))
    configs = sample_configs(workload.search_space(settings), trials, seed=7)
    # The tracking database of the new home (about 1.5 CPU s of migrations
    # once per home); run_ray's own setup_mlflow then only finds it.
    setup_mlflow(settings)
    sequential, t_seq, l_seq = _timed(lambda: run_sequential(settings, data, configs))
    pooled, t_pool, l_pool = _timed(lambda: run_pool(settings, data, configs))
    (rayed, t_fit), t_ray, l_ray = _timed(lambda: run_ray(settings, data, configs))
    same = np.allclose(sequential, pooled, rtol=1e-9) and np.allclose(
        sorted(sequential), rayed, rtol=1e-9
    )
    extra: list[tuple[str, float, tuple[float, float]]] = []
    seconds: dict[str, float] = {}
    if running:
        with running_ray() as address:
            (on_head, t_head_fit), t_head, l_head = _timed(
                lambda: run_ray(settings, data, configs, address=address)
            )
        same = same and np.allclose(sorted(sequential), on_head, rtol=1e-9)
        extra.append(
            (
                f"Ray Tune on a running Ray (`ray start --head`, {WORKERS} CPUs), "
                "incl. connect + disconnect",
                t_head,
                l_head,
            )
        )
        seconds |= {"ray_running": t_head, "ray_running_fit": t_head_fit}
    label = f"{stores} x {items} x {DemandSettings.of(settings).n_days}"
    modes = [
        ("sequential (1 process)", t_seq, l_seq),
        (f"multiprocessing.Pool({WORKERS}), fork", t_pool, l_pool),
        (
            f"Ray Tune (`loopml tune`'s search), {WORKERS} concurrent, "
            "incl. ray.init + shutdown",
            t_ray,
            l_ray,
        ),
        (f"Ray Tune, {WORKERS} concurrent, search only", t_fit, l_ray),
        *extra,
    ]
    rows = [
        f"| {label} | {mode} | {sec:.1f} | {t_seq / sec:.2f}x "
        f"| {load[0]:.1f} -> {load[1]:.1f} |"
        for mode, sec, load in modes
    ]
    summary = (
        f"{label}: mean trial {t_seq / trials:.1f}s sequential; same WAPE values "
        f"in every mode: {'yes' if same else 'NO'}; best WAPE {min(sequential):.4f}."
    )
    print("\n".join([summary, *rows]), flush=True)
    seconds |= {"sequential": t_seq, "pool": t_pool, "ray": t_ray, "ray_fit": t_fit}
    return rows, summary, seconds


def main() -> None:
    """Time the modes for each data size; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument(
        "--sizes",
        default="3x10",
        help="stores x items of the generated data, comma-separated (3x10,5x20)",
    )
    parser.add_argument(
        "--running-ray",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the search against a Ray head started beforehand",
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    # Ray reads RAY_AUTH_MODE once, when it is imported (here, first): token
    # authentication for every Ray this benchmark starts (a local one turns
    # it on anyway) or joins (the head of --running-ray).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    warnings.filterwarnings("ignore")
    os.environ.setdefault(
        "LOOPML_CONFIG_DIR", str(Path(__file__).parents[1] / "configs")
    )
    rows: list[str] = []
    summaries: list[str] = []
    figures: dict[str, dict[str, float]] = {}
    # Ray keeps a local session's token in the process: every size's Ray
    # (each under its own temporary home) must use the same token file.
    token_dir = Path(tempfile.mkdtemp(prefix="lmb-token-"))
    (token_dir / "auth_token").write_text(secrets.token_hex(32), encoding="utf-8")
    os.environ.setdefault("RAY_AUTH_TOKEN_PATH", str(token_dir / "auth_token"))
    for size in args.sizes.split(","):
        stores, items = (int(part) for part in size.split("x"))
        with tempfile.TemporaryDirectory(prefix="lmb-") as tmp:
            more, summary, figures[size] = measure(
                Path(tmp), stores, items, args.trials, args.running_ray
            )
        rows += more
        summaries.append(summary)
    shutil.rmtree(token_dir, ignore_errors=True)
    lines = [
        f"## Tuning: {args.trials} LightGBM trials, sequential vs Pool vs Ray Tune",
        "",
        f"Measured {dt.date.today().isoformat()} on CPython "
        f"{platform.python_version()}, {os.cpu_count()} CPUs shared with other "
        "work (the 1-minute load average before -> after each mode is shown), "
        f"ray {ray.__version__}, lightgbm {lightgbm.__version__}. "
        f"{args.trials} configurations of the demand search space (seed 7), each "
        "scored by `DemandWorkload.tune_objective` (2-fold rolling-origin backtest "
        "WAPE on generated data, one LightGBM thread per trial). The Ray rows "
        "include the MLflow parent run and a run per trial (as `loopml tune` "
        "logs them), not the creation of the new home's MLflow database, which "
        "happens before any mode is timed.",
        "",
        *(f"- {summary}" for summary in summaries),
        "",
        "| data (stores x items x days) | mode | wall s | speedup vs sequential "
        "| load avg |",
        "|---|---|---:|---:|---|",
        *rows,
        "",
        f"Reproduce: `{COMMAND.format(n=args.trials, sizes=args.sizes)}`",
    ]
    body = "\n".join(lines)
    print(body)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not args.no_write:
        write_section(args.output, SECTION, body)


if __name__ == "__main__":
    main()
