"""Online serving at the floor: loopml vs a minimal app, MLflow's and BentoML's servers.

Builds a throwaway home with ``loopml run`` (the default settings: demand 3
stores x 10 items x 730 days, recsys; or uses ``--home``), then starts, each
a subprocess with one uvicorn worker on 127.0.0.1:

* **floor**: a minimal FastAPI app written by this script: a pydantic body of
  demand rows, the demand champion's own LightGBM booster (saved from the
  registered model) predicting on a ready numpy matrix with ``num_threads=1``,
  nothing else (no state lookup, no log, no metrics), in an ``async def``
  route (no worker thread). What serving one row cannot beat in Python on
  this machine. The same route as a sync ``def`` (``/predict-sync``, in
  FastAPI's thread pool: the floor of the runs before 2026-12-07) is timed
  as a reference row.
* **loopml** (``loopml serve --workers 1``): ``POST /v1/demand/predict``
  (series state from the Feast online store, validation, the inference log,
  Prometheus metrics), ``POST /invocations`` (MLflow's protocol, the model
  alone) and recsys ``GET /v1/recsys/users/{u}/recommendations`` answered
  from the day's batch and ``?k=20`` scored live; and the same with
  ``--workers 2`` as an extra row;
* **mlflow**: ``mlflow models serve`` of the same registered demand version
  (its pyfunc uses loopml's fast path too), ``POST /invocations``;
* **bentoml**: ``bentoml serve`` of a service written by this script
  (``@bentoml.service(workers=1)``, a sync ``@bentoml.api`` taking the floor's
  body as a list of pydantic rows) around the floor's booster and ready
  matrices, ``POST /predict``; from its own virtual environment
  (``.venv-bentoml``, created or synced on demand from
  ``benchmarks/requirements-bentoml.lock`` with uv; ``--no-bentoml`` skips it,
  and a venv that cannot be made leaves BentoML out with the reason).

Every demand target answers the same rows (1 row, and 28 rows over series and
horizons) with the same forecasts, checked before timing. The client is
``http_load.py``: raw asyncio keep-alive HTTP/1.1 connections in one thread,
its own CPU per request reported. Each target runs at concurrency 1 and 16
for ``--seconds`` split into ``--rounds`` turns, the targets taking turns, so
background load on a shared machine hits each alike.

Not a test: run on demand; the Markdown replaces this benchmark's section of
``docs/benchmarks.md``::

    flock /work/bench.lock .venv/bin/python benchmarks/serving.py --seconds 12
    .venv/bin/python benchmarks/serving.py --home HOME --seconds 2 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import http_load
import numpy as np
import pandas as pd
from doc_sections import write_section

SECTION = "serving"
COMMAND = "flock /work/bench.lock .venv/bin/python benchmarks/serving.py"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COLUMNS = ["store_id", "item_id", "date", "price", "promo", "holiday"]
CONCURRENCY = (1, 16)
HOST = "127.0.0.1"
BENTO_VENV = REPO / ".venv-bentoml"
BENTO_LOCK = REPO / "benchmarks" / "requirements-bentoml.lock"

FLOOR_APP = '''"""The floor: a pydantic body, a booster, a ready numpy matrix."""
import datetime as dt
import os

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

booster = lgb.Booster(model_file=os.environ["FLOOR_MODEL"])
ready = {int(k): v for k, v in np.load(os.environ["FLOOR_ROWS"]).items()}


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str
    item_id: str
    date: dt.date
    price: float | None = None
    promo: int = 0
    holiday: int = 0


class Body(BaseModel):
    rows: list[Row]


app = FastAPI()


@app.get("/ping")
def ping() -> dict:
    return {"ok": True}


@app.post("/predict")
async def predict(body: Body) -> dict:
    matrix = ready[len(body.rows)]
    return {"forecasts": booster.predict(matrix, num_threads=1).tolist()}


# The floor of the runs before 2026-12-07 (and of issue 16's table): the same
# route, sync, so FastAPI runs it in a worker thread. A reference row.
@app.post("/predict-sync")
def predict_sync(body: Body) -> dict:
    matrix = ready[len(body.rows)]
    return {"forecasts": booster.predict(matrix, num_threads=1).tolist()}
'''

BENTO_SERVICE = '''"""BentoML around the floor: the same body, booster, ready matrix."""
import datetime as dt
import os

import bentoml
import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str
    item_id: str
    date: dt.date
    price: float | None = None
    promo: int = 0
    holiday: int = 0


# The access log off, as the floor's; BentoML's Prometheus metrics stay on.
@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Demand:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["FLOOR_MODEL"])
        ready = np.load(os.environ["FLOOR_ROWS"])
        self.ready = {int(k): v for k, v in ready.items()}

    @bentoml.api
    def predict(self, rows: list[Row]) -> dict[str, list[float]]:
        matrix = self.ready[len(rows)]
        return {"forecasts": self.booster.predict(matrix, num_threads=1).tolist()}
'''


@dataclass
class Server:
    """A server subprocess and where it answers."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    ready_path: str


@dataclass
class Target:
    """One (server, route, payload) combination to time."""

    server: Server
    label: str
    method: str
    route: str
    rows: int
    body: bytes | None = None
    results: dict[int, list[http_load.Result]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A short name for the goals: ``floor-1``, ``v1-28``, ``recsys-live``."""
        if self.method == "GET":
            return "recsys-live" if "k=20" in self.route else "recsys-batch"
        if self.route == "/predict-sync":
            return f"floorsync-{self.rows}"
        kind = {
            "floor": "floor",
            "mlflow": "mlflow",
            "loopml-w2": "w2",
            "bentoml": "bento",
        }.get(self.server.name, "v1" if self.route.startswith("/v1") else "inv")
        return f"{kind}-{self.rows}"

    @property
    def request(self) -> bytes:
        """The bytes of one request."""
        return http_load.request_bytes(self.method, self.route, self.body)

    def merged(self, concurrency: int) -> http_load.Result:
        """The turns at one concurrency as one result."""
        parts = self.results[concurrency]
        return http_load.Result(
            sum(p.requests for p in parts),
            sum(p.seconds for p in parts),
            np.concatenate([p.latencies for p in parts]),
            sum(p.cpu_seconds for p in parts),
        )


def build_home(home: Path, env: dict[str, str], log: Path) -> None:
    """Run ``loopml run`` (every workload, default settings) into ``home``."""
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "loopml.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        )
    if done.returncode != 0:
        raise SystemExit(f"loopml run failed; see {log}")


def base_python() -> Path:
    """The system Python this script's venv was made from (``python3.11``)."""
    major, minor = sys.version_info[:2]
    return Path(sys.base_prefix) / "bin" / f"python{major}.{minor}"


def uv_command() -> list[str]:
    """uv as the Makefile finds it: ``command -v uv || python3.11 -m uv``."""
    found = shutil.which("uv")
    return [found] if found else [str(base_python()), "-m", "uv"]


def bentoml_venv(venv: Path, log: Path) -> tuple[Path | None, str]:
    """Create (or sync) BentoML's own virtual environment from its lock.

    Its pins do not fit loopml's lock, so it lives beside ``.venv``; a venv
    already in sync takes well under a second.

    Returns:
        Its ``bentoml`` command and how long it took to be ready; or ``None``
        and one line saying why there is none.
    """
    uv = uv_command()
    python = venv / "bin" / "python"
    sync = [*uv, "pip", "sync", "--quiet", "--compile-bytecode"]
    steps = [("uv pip sync", [*sync, "--python", str(python), str(BENTO_LOCK)])]
    if not python.exists():
        make = [*uv, "venv", "--quiet", "--python", str(base_python())]
        only = ["--python-preference", "only-system", str(venv)]
        steps.insert(0, ("uv venv", make + only))
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    began = time.monotonic()
    with log.open("wb") as out:
        for label, step in steps:
            try:
                done = subprocess.run(
                    step, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900
                )
            except (OSError, subprocess.SubprocessError) as error:
                return None, f"`{label}` failed: {error}"
            if done.returncode != 0:
                out.flush()
                lines = log.read_text(errors="replace").strip().splitlines()
                why = lines[-1].strip() if lines else f"exit {done.returncode}"
                return None, f"`{label}` failed: {why}"
    return venv / "bin" / "bentoml", f"ready in {time.monotonic() - began:.1f} s"


def start(
    name: str,
    args: list[str],
    env: dict[str, str],
    port: int,
    ready: str,
    log: Path,
    cwd: Path | None = None,
) -> Server:
    """Start a server subprocess logging to ``log``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
    return Server(name, proc, port, ready)


def wait_ready(server: Server, log: Path, seconds: float = 240) -> None:
    """Wait until the server's readiness route answers 200."""
    deadline = time.monotonic() + seconds
    request = http_load.request_bytes("GET", server.ready_path)
    while time.monotonic() < deadline:
        try:
            if http_load.get(HOST, server.port, request)[0] == 200:
                return
        except OSError:
            pass
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {log}")
        time.sleep(0.5)
    raise SystemExit(f"{server.name} not ready in {seconds:.0f} s; see {log}")


def answer(target: Target) -> Any:
    """One request's JSON answer; anything but a 200 stops the benchmark."""
    status, body = http_load.get(HOST, target.server.port, target.request)
    if status != 200:
        raise RuntimeError(f"{target.label}: {status} {body[:500]!r}")
    return json.loads(body)


def forecasts(target: Target) -> np.ndarray:
    """The forecasts a demand target answers, in row order."""
    body = answer(target)
    if "forecasts" in body:
        return np.array(body["forecasts"])
    return np.array([float(p["forecast"]) for p in body["predictions"]])


def free_port() -> int:
    """An ephemeral TCP port on loopback that is free right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(server: Server) -> None:
    """Terminate the server, then whatever it started that is still running.

    The launcher first: a supervisor (uvicorn's with workers, BentoML's
    circus) respawns a worker terminated before it, and the new one would
    outlive the benchmark.
    """
    import psutil

    try:
        root = psutil.Process(server.proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        try:
            proc.terminate()
            proc.wait(timeout=20)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            proc.kill()


def rss_mb(server: Server, port: int) -> tuple[float, float]:
    """RSS (MB) of the process listening on ``port``, and of the whole tree."""
    try:
        import psutil
    except ImportError:
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        kb = next(int(x.split()[1]) for x in status.splitlines() if "VmRSS" in x)
        return kb / 1024, kb / 1024
    root = psutil.Process(server.proc.pid)
    tree = [root, *root.children(recursive=True)]
    # The last started process on the port: the worker, not a supervisor
    # (BentoML's) that opened the socket and handed it down.
    listening = next(
        (
            p
            for p in reversed(tree)
            if any(c.laddr.port == port for c in p.net_connections(kind="tcp"))
        ),
        root,
    )
    total = sum(p.memory_info().rss for p in tree)
    return listening.memory_info().rss / 2**20, total / 2**20


def payload_rows(home: Path, horizon: int) -> dict[int, list[dict[str, Any]]]:
    """1 row, and 28 rows cycling over series and horizons 1..horizon.

    Every column is given (MLflow's server enforces the logged signature);
    the price is each series' last known one.
    """
    data = pd.read_parquet(home / "data" / "demand" / "validated.parquet")
    origin = data["date"].max()
    last = data.sort_values("date").groupby(["store_id", "item_id"]).tail(1)
    series = list(last[["store_id", "item_id", "price"]].itertuples(index=False))

    def row(i: int, days: int) -> dict[str, Any]:
        store, item, price = series[i % len(series)]
        date = origin + pd.Timedelta(days=days)
        return {
            "store_id": str(store),
            "item_id": str(item),
            "date": f"{date:%Y-%m-%d}",
            "price": round(float(price), 2),
            "promo": int(i % 3 == 0),
            "holiday": 0,
        }

    many = [row(i, 1 + i % horizon) for i in range(28)]
    return {1: [row(0, min(7, horizon))], 28: many}


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo when there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def floor_matrices(
    model: Any, rows: dict[int, list[dict[str, Any]]]
) -> dict[str, np.ndarray]:
    """The floor's ready matrices: the model inputs of the payload rows."""
    fast = model.fast()
    if fast is None:
        raise SystemExit("the demand champion is not a LightGBM model")
    forecaster, states, origin = fast
    out = {}
    for n, records in rows.items():
        keys = [(r["store_id"], r["item_id"]) for r in records]
        days = [
            (pd.Timestamp(r["date"]) - pd.Timestamp("1970-01-01")).days for r in records
        ]
        out[str(n)] = forecaster.inputs(
            [forecaster.series(*key, states.row(key)) for key in keys],
            [day - origin for day in days],
            days,
            [r["price"] for r in records],
            [r["promo"] for r in records],
            [r["holiday"] for r in records],
        )
    return out


def measure(all_: list[Target], seconds: float, rounds: int) -> None:
    """Each target at each concurrency, the targets in turns for ``rounds``."""
    for r in range(rounds):
        order = np.roll(np.arange(len(all_)), -r)
        for concurrency in CONCURRENCY:
            for j in order:
                target = all_[j]
                result = http_load.run(
                    HOST,
                    target.server.port,
                    target.request,
                    concurrency,
                    seconds / rounds,
                )
                target.results.setdefault(concurrency, []).append(result)
                print(
                    f"{target.label} x{target.rows} c={concurrency}: "
                    f"{result.rps:,.0f} req/s",
                    file=sys.stderr,
                    flush=True,
                )


def table(all_: list[Target]) -> list[str]:
    """Markdown rows: each target at concurrency 1 and 16, and client CPU."""
    lines = [
        "| target | rows | c=1 req/s | c=1 p50 ms | c=1 p99 ms | c=16 req/s "
        "| c=16 p99 ms | c=16 req/s vs floor | client CPU us/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floor = {t.rows: t.merged(16).rps for t in all_ if t.key.startswith("floor-")}
    for t in all_:
        one, many = t.merged(1), t.merged(16)
        cpu = (one.cpu_seconds + many.cpu_seconds) / (one.requests + many.requests)
        lines.append(
            f"| {t.label} | {t.rows} | {one.rps:,.0f} | {one.percentile(50):.2f} | "
            f"{one.percentile(99):.2f} | {many.rps:,.0f} | "
            f"{many.percentile(99):.1f} | {many.rps / floor[t.rows]:.0%} | "
            f"{cpu * 1e6:.0f} |"
        )
    return lines


def goals(by: dict[str, Target]) -> tuple[list[str], dict[str, float]]:
    """The acceptance ratios of issue 16, each with its goal and verdict."""
    floor1, floor28 = by["floor-1"], by["floor-28"]
    v1, v28 = by["v1-1"], by["v1-28"]
    live = by["recsys-live"]

    def rps(t: Target) -> float:  # at concurrency 16
        return t.merged(16).rps

    def p99(t: Target) -> float:  # at concurrency 1
        return t.merged(1).percentile(99)

    def p50(t: Target) -> float:  # at concurrency 1
        return t.merged(1).percentile(50)

    ratios = {
        "v1 c=16 req/s / floor": rps(v1) / rps(floor1),
        "v1 c=16 req/s / mlflow": rps(v1) / rps(by["mlflow-1"]),
    }
    if "bento-1" in by:
        ratios["v1 c=16 req/s / bentoml"] = rps(v1) / rps(by["bento-1"])
    ratios |= {
        "v1 c=1 p99 / floor p99": p99(v1) / p99(floor1),
        "v1 28 rows / 1 row, c=1 p50": p50(v28) / p50(v1),
        "v1 28 rows / 1 row, c=16 time per request": rps(v1) / rps(v28),
        "floor 28 rows / 1 row, c=1 p50": p50(floor28) / p50(floor1),
        "recsys live c=1 p99 / floor p99": p99(live) / p99(floor1),
    }
    if "floorsync-1" in by:  # against the floor of the earlier runs
        sync1 = by["floorsync-1"]
        ratios |= {
            "v1 c=16 req/s / sync-route floor": rps(v1) / rps(sync1),
            "v1 c=1 p99 / sync-route floor p99": p99(v1) / p99(sync1),
            "recsys live c=1 p99 / sync-route floor p99": p99(live) / p99(sync1),
        }
    wanted = {
        "v1 c=16 req/s / floor": (">=", 0.5),
        "v1 c=16 req/s / mlflow": (">=", 10.0),
        "v1 c=1 p99 / floor p99": ("<=", 2.0),
        "v1 28 rows / 1 row, c=1 p50": ("<=", 1.5),
        "v1 28 rows / 1 row, c=16 time per request": ("<=", 1.5),
        "recsys live c=1 p99 / floor p99": ("<=", 3.0),
    }
    lines = ["| ratio (this run) | value | goal | met |", "|---|---:|---:|---|"]
    for name, value in ratios.items():
        if name in wanted:
            op, goal = wanted[name]
            met = value >= goal if op == ">=" else value <= goal
            lines.append(
                f"| {name} | {value:.2f} | {op} {goal:g} | {'yes' if met else 'no'} |"
            )
        else:
            lines.append(f"| {name} | {value:.2f} | (reference) | |")
    return lines, ratios


def reproduce(args: argparse.Namespace) -> str:
    """The command that measures the same way (``--home`` left out)."""
    return f"{COMMAND} --seconds {args.seconds:g} --rounds {args.rounds}"


def main() -> None:  # noqa: PLR0915 - one straight script
    """Build or open a home, start the servers, check, measure, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home with both champions")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-workers-2", action="store_true")
    parser.add_argument(
        "--no-bentoml", action="store_true", help="skip BentoML (and its venv)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs/benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        work = Path(tmp)
        home = (args.home or work / "home").resolve()
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        env.setdefault("LOOPML_CONFIG_DIR", str(REPO / "configs"))
        env.update({"LOOPML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"})
        if args.home is None:
            build_home(home, env, work / "run.log")
        os.environ.update({k: env[k] for k in ("LOOPML_HOME", "LOOPML_CONFIG_DIR")})
        import mlflow
        from mlflow import MlflowClient

        from loopml.core.config import load_settings
        from loopml.core.runtime import configure_environment
        from loopml.models.tracking import setup_mlflow
        from loopml.workloads.demand.config import DemandSettings

        settings = load_settings(home=home)
        configure_environment(home)
        setup_mlflow(settings)
        client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
        demand_version = client.get_model_version_by_alias("demand", "champion")
        version = str(demand_version.version)
        params = client.get_run(str(demand_version.run_id)).data.params
        demand = mlflow.pyfunc.load_model(f"models:/demand/{version}")
        model = demand.unwrap_python_model()
        recsys = mlflow.pyfunc.load_model("models:/recsys@champion")
        user = recsys.unwrap_python_model().user_ids()[0]
        rows = payload_rows(home, DemandSettings.of(settings).horizon)
        booster = work / "booster.txt"
        model.forecaster.model_.booster_.save_model(str(booster))
        np.savez(work / "floor_rows.npz", **floor_matrices(model, rows))
        (work / "floor_app.py").write_text(FLOOR_APP)
        mlflow_env = {
            **env,
            **{k: os.environ[k] for k in ("MPLCONFIGDIR", "MPLBACKEND")},
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_REGISTRY_URI": settings.tracking_uri,
            "TMPDIR": str(work),
        }
        floor_env = {
            **env,
            "FLOOR_MODEL": str(booster),
            "FLOOR_ROWS": str(work / "floor_rows.npz"),
        }
        names = ["floor", "loopml", "mlflow"]
        if not args.no_workers_2:
            names.append("loopml-w2")
        bento, bento_note = None, "skipped with `--no-bentoml`"
        if not args.no_bentoml:
            bento, bento_note = bentoml_venv(BENTO_VENV, work / "bentoml-venv.log")
            print(f"BentoML venv: {bento_note}", file=sys.stderr, flush=True)
        if bento is not None:
            names.append("bentoml")
            (work / "bento_service.py").write_text(BENTO_SERVICE)
        bento_env = {
            **floor_env,
            "PATH": f"{BENTO_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(BENTO_VENV),
            "BENTOML_HOME": str(work / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
        }
        ports = {name: free_port() for name in names}
        logs = {name: work / f"{name}.log" for name in names}
        commands = {
            "floor": [str(BIN / "uvicorn"), "floor_app:app", "--workers", "1"]
            + ["--host", HOST, "--port", str(ports["floor"]), "--no-access-log"],
            "loopml": [sys.executable, "-m", "loopml.cli", "serve"]
            + ["--workers", "1", "--port", str(ports["loopml"])],
            "loopml-w2": [sys.executable, "-m", "loopml.cli", "serve"]
            + ["--workers", "2", "--port", str(ports.get("loopml-w2", 0))],
            "mlflow": [str(BIN / "mlflow"), "models", "serve"]
            + ["-m", f"models:/demand/{version}", "--env-manager", "local"]
            + ["-w", "1", "-h", HOST, "-p", str(ports["mlflow"])],
            "bentoml": [str(bento), "serve", "bento_service:Demand"]
            + ["--working-dir", str(work)]
            + ["--host", HOST, "--port", str(ports.get("bentoml", 0))],
        }
        envs = {"floor": floor_env, "mlflow": mlflow_env, "bentoml": bento_env}
        ready = {"floor": "/ping", "mlflow": "/ping"}
        servers = {}
        load_before = os.getloadavg()
        try:
            for name in names:
                servers[name] = start(
                    name,
                    commands[name],
                    envs.get(name, env),
                    ports[name],
                    ready.get(name, "/readyz"),
                    logs[name],
                    cwd=work,
                )
            for name, server in servers.items():
                wait_ready(server, logs[name])
                print(f"{name} ready", file=sys.stderr, flush=True)
            all_ = targets(servers, rows, user)
            worst = check(all_)
            measure(all_, args.seconds, args.rounds)
            memory = {
                n: rss_mb(s, ports[n]) for n, s in servers.items() if n != "loopml-w2"
            }
        finally:
            for server in servers.values():
                stop(server)
        load_after = os.getloadavg()
    by = {t.key: t for t in all_}
    goal_lines, ratios = goals(by)
    versions = ", ".join(
        f"{p} {dist_version(p)}"
        for p in ("mlflow", "fastapi", "uvicorn", "pydantic", "lightgbm", "feast")
    )
    built = (
        "a home built by `loopml run` with the default settings"
        if args.home is None
        else f"`{args.home}`"
    )
    model_text = (
        f"{params.get('n_series', '?')} series, "
        f"{params.get('lgbm_n_estimators', '?')} trees"
    )
    text = "\n".join(
        [
            "## Online serving: loopml vs the floor vs mlflow models serve",
            "",
            f"Measured {dt.date.today()} on {cpu_model()}, {os.cpu_count()} CPUs "
            "shared with other work (load average "
            f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} "
            f"before, {load_after[0]:.2f} after), "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{versions}. Demand version {version} ({model_text}) and the recsys "
            f"champion from {built}. One uvicorn worker per server unless said; "
            "the client (`benchmarks/http_load.py`: raw asyncio keep-alive "
            "HTTP/1.1, one thread) on the same CPUs. Each target "
            f"{args.seconds:g} s at concurrency 1 and 16, in {args.rounds} turns "
            "with the targets in turns. Demand forecasts checked equal on every "
            f"demand target before timing (largest difference {worst:.1e}).",
            "",
            *table(all_),
            "",
            "The floor: a minimal FastAPI app (pydantic body of demand rows, the "
            "champion's booster `predict` on a ready numpy matrix, "
            "`num_threads=1`, an `async def` route, so it runs on the event "
            "loop); no state lookup, validation beyond the body, log or metrics. "
            "The sync-route floor is the same route as a `def` (FastAPI runs it "
            "in a worker thread): the floor of the runs before 2026-12-07, a "
            "reference. loopml scores a request on the event loop when its "
            "scorer answers it from memory (`serving.inline_max_rows`; demand: "
            "every series' online state cached), else in a worker thread. "
            "loopml `/v1`: the series "
            "state from the Feast online store (cached "
            "`serving.online_cache_seconds`), validation, the inference log and "
            "Prometheus metrics. `mlflow models serve` serves loopml's "
            "registered pyfunc, which uses the same pandas-free path. Recsys: "
            "batch-answered is the user's row of the day's batch; live scores "
            "the user now (`?k=20`, more than the batch keeps).",
            "",
            "Goals of issue 16, from this run:",
            "",
            *goal_lines,
            "",
            "| server | RSS after the run, serving process MB | process tree MB |",
            "|---|---:|---:|",
            *(f"| {n} | {m[0]:.0f} | {m[1]:.0f} |" for n, m in memory.items()),
            "",
            "The process tree: the launcher (mlflow, bentoml) or loopml's "
            "inference-log writer process beside the serving one.",
            "",
            bento_text(bento is not None, bento_note),
            "",
            f"Reproduce: `{reproduce(args)}`",
        ]
    )
    print(text)
    if args.json:
        figures = {
            "targets": [
                {
                    "server": t.server.name,
                    "label": t.label,
                    "route": t.route,
                    "rows": t.rows,
                    "p50": t.merged(1).percentile(50),
                    "p95": t.merged(1).percentile(95),
                    "p99": t.merged(1).percentile(99),
                    "rps": t.merged(16).rps,
                    "rps_1": t.merged(1).rps,
                    "p99_16": t.merged(16).percentile(99),
                }
                for t in all_
            ],
            "ratios": ratios,
            "rss_mb": {
                name: {"server": m[0], "tree": m[1]} for name, m in memory.items()
            },
            "loadavg": load_before[0],
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not args.no_write:
        write_section(args.output, SECTION, text)


def bento_text(measured: bool, note: str) -> str:
    """What the BentoML rows are, or why there are none."""
    if not measured:
        return f"BentoML: not measured ({note})."
    pinned = next(
        line.split("==")[1]
        for line in BENTO_LOCK.read_text().splitlines()
        if line.startswith("bentoml==")
    )
    return (
        f"BentoML {pinned}: `bentoml serve` of a service this script writes "
        "(`@bentoml.service(workers=1)`, a sync `@bentoml.api` taking the "
        "floor's body as a list of pydantic rows, the floor's booster and "
        "ready matrix; its access log off like the floor's, its Prometheus "
        "metrics on as by default), in its own virtual environment "
        "(`.venv-bentoml`, synced with uv from "
        "`benchmarks/requirements-bentoml.lock`). So it is the floor in "
        "BentoML's server, not a full service: no state lookup, log or "
        "validation beyond the body."
    )


def targets(
    servers: dict[str, Server], rows: dict[int, list[dict[str, Any]]], user: str
) -> list[Target]:
    """Every (server, route, payload) combination, in timing order."""
    out = []
    for n, records in rows.items():
        split = {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS] for r in records]}
        v1 = json.dumps({"rows": records}).encode()
        mlflow_body = json.dumps({"dataframe_split": split}).encode()
        out += [
            Target(
                servers["floor"], "floor `POST /predict`", "POST", "/predict", n, v1
            ),
            Target(
                servers["floor"],
                "floor, sync route `POST /predict-sync`",
                "POST",
                "/predict-sync",
                n,
                v1,
            ),
            Target(
                servers["loopml"],
                "loopml `/v1/demand/predict`",
                "POST",
                "/v1/demand/predict",
                n,
                v1,
            ),
            Target(
                servers["loopml"],
                "loopml `/invocations`",
                "POST",
                "/invocations",
                n,
                mlflow_body,
            ),
            Target(
                servers["mlflow"],
                "mlflow models serve `/invocations`",
                "POST",
                "/invocations",
                n,
                mlflow_body,
            ),
        ]
        if "bentoml" in servers:
            out.append(
                Target(
                    servers["bentoml"],
                    "BentoML `POST /predict`",
                    "POST",
                    "/predict",
                    n,
                    v1,
                )
            )
    if "loopml-w2" in servers:
        out.append(
            Target(
                servers["loopml-w2"],
                "loopml --workers 2 `/v1/demand/predict`",
                "POST",
                "/v1/demand/predict",
                1,
                json.dumps({"rows": rows[1]}).encode(),
            )
        )
    recs = f"/v1/recsys/users/{user}/recommendations"
    out += [
        Target(servers["loopml"], "loopml recsys, from the batch", "GET", recs, 1),
        Target(
            servers["loopml"],
            "loopml recsys `?k=20`, scored live",
            "GET",
            f"{recs}?k=20",
            1,
        ),
    ]
    return out


def check(all_: list[Target]) -> float:
    """Same forecasts from every demand target; recsys answers from where said.

    Returns:
        The largest absolute difference between demand forecasts.
    """
    worst = 0.0
    for n in sorted({t.rows for t in all_ if t.body is not None}):
        answers = [forecasts(t) for t in all_ if t.rows == n and t.body is not None]
        for other in answers[1:]:
            assert other.shape == answers[0].shape == (n,), "wrong number of rows"
            np.testing.assert_allclose(other, answers[0], rtol=1e-9, atol=1e-9)
            worst = max(worst, float(np.abs(other - answers[0]).max()))
    for t in all_:
        if t.method == "GET":
            source = answer(t)["source"]
            want = "live" if "k=20" in t.route else "batch"
            assert source == want, f"{t.label}: answered from {source}"
    return worst


if __name__ == "__main__":
    main()
