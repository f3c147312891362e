"""Online serving: ``loopml serve`` vs ``mlflow models serve``, one model.

Builds a throwaway home with ``loopml run -w demand`` (small data, the default
LightGBM; or uses ``--home``), then serves its demand champion twice, each
server a subprocess with one worker process on a free port of 127.0.0.1:

* ``loopml serve``: ``POST /v1/demand/predict`` (series state from the Feast
  online store) and MLflow's protocol ``POST /invocations``;
* ``mlflow models serve -m models:/demand/<version> --env-manager local``:
  MLflow's own scoring server, ``POST /invocations``, the same version.

Both get the same rows (1 row, and 28 rows over several series and
horizons); the forecasts must agree before anything is timed. Then, with
httpx: sequential latency (the targets in turns, request by request) and
throughput of ``--clients`` concurrent threads (the targets in turns, in
``--rounds`` slices of ``--seconds``), so background load on a shared machine
hits each server alike. Each server's resident memory is read at the end.

Not a test: run on demand; the Markdown table replaces this benchmark's
section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/serving.py --requests 500 --seconds 20
    .venv/bin/python benchmarks/serving.py --requests 100 --seconds 3 \
        --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from doc_sections import write_section

from loopml.workloads.demand.config import DemandSettings

SECTION = "serving"
COMMAND = ".venv/bin/python benchmarks/serving.py"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Small data, quick to build; the model keeps the default 300 trees.
BUILD_ENV = {
    "LOOPML_WORKLOADS__DEMAND__N_STORES": "2",
    "LOOPML_WORKLOADS__DEMAND__N_ITEMS": "4",
    "LOOPML_WORKLOADS__DEMAND__N_DAYS": "400",
    "LOOPML_WORKLOADS__DEMAND__HORIZON": "28",
    "LOOPML_WORKLOADS__DEMAND__N_FOLDS": "2",
}
COLUMNS = ["store_id", "item_id", "date", "price", "promo", "holiday"]


@dataclass
class Server:
    """A server subprocess and where it answers."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    ready_path: str


@dataclass
class Target:
    """One (server, route, payload) combination to time."""

    server: Server
    route: str
    rows: int
    body: bytes
    forecasts: Callable[[Any], list[float]]

    @property
    def url(self) -> str:
        """The full URL requests go to."""
        return self.server.url + self.route


def free_port() -> int:
    """An ephemeral TCP port on loopback that is free right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_home(home: Path, env: dict[str, str], log: Path) -> None:
    """Run ``loopml run -w demand`` into ``home`` with the small settings."""
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "loopml.cli", "run", "-w", "demand"],
            env={**env, **BUILD_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if done.returncode != 0:
        raise SystemExit(f"loopml run failed; see {log}")


def start(
    name: str, args: list[str], env: dict[str, str], port: int, ready: str, log: Path
) -> Server:
    """Start a server subprocess logging to ``log``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, proc, f"http://127.0.0.1:{port}", ready)


def wait_ready(server: Server, log: Path, seconds: float = 180) -> None:
    """Wait until the server's readiness route answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + server.ready_path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {log}")
        time.sleep(0.5)
    raise SystemExit(f"{server.name} not ready in {seconds:.0f} s; see {log}")


def stop(server: Server) -> None:
    """Terminate the server and the processes it started (children first)."""
    import psutil

    try:
        tree = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for proc in [*reversed(tree), psutil.Process(server.proc.pid)]:
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
    listening = next(
        (
            p
            for p in tree
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


def targets(
    loopml: Server, mlflow: Server, rows: dict[int, list[dict[str, Any]]]
) -> list[Target]:
    """Every (server, route, payload) combination, in timing order."""

    def v1(body: Any) -> list[float]:
        return [float(p["forecast"]) for p in body["predictions"]]

    def invocations(body: Any) -> list[float]:
        return [float(p["forecast"]) for p in body["predictions"]]

    out = []
    for n, records in rows.items():
        split = {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS] for r in records]}
        v1_body = json.dumps({"rows": records}).encode()
        mlflow_body = json.dumps({"dataframe_split": split}).encode()
        out += [
            Target(mlflow, "/invocations", n, mlflow_body, invocations),
            Target(loopml, "/invocations", n, mlflow_body, invocations),
            Target(loopml, "/v1/demand/predict", n, v1_body, v1),
        ]
    return out


HEADERS = {"content-type": "application/json"}


def post(client: httpx.Client, target: Target) -> httpx.Response:
    """One request; anything but a 200 stops the benchmark."""
    response = client.post(target.url, content=target.body, headers=HEADERS)
    if response.status_code != 200:
        raise RuntimeError(f"{target.url}: {response.status_code} {response.text}")
    return response


def check_same_forecasts(clients: dict[str, httpx.Client], all_: list[Target]) -> float:
    """Assert every target answers a payload with the same forecasts.

    Returns:
        The largest absolute difference seen.
    """
    worst = 0.0
    for n in sorted({t.rows for t in all_}):
        answers = [
            np.array(t.forecasts(post(clients[t.server.name], t).json()))
            for t in all_
            if t.rows == n
        ]
        for other in answers[1:]:
            assert other.shape == answers[0].shape == (n,), "wrong number of rows"
            np.testing.assert_allclose(other, answers[0], rtol=1e-9, atol=1e-9)
            worst = max(worst, float(np.abs(other - answers[0]).max()))
    return worst


def latencies(
    clients: dict[str, httpx.Client], all_: list[Target], requests: int
) -> np.ndarray:
    """p50, p95 and p99 (ms) per target; the targets take turns per request."""
    for _ in range(max(requests // 10, 50)):
        for target in all_:
            post(clients[target.server.name], target)
    times = np.empty((len(all_), requests))
    for i in range(requests):
        for j, target in enumerate(all_):
            started = time.perf_counter()
            post(clients[target.server.name], target)
            times[j, i] = time.perf_counter() - started
    return np.asarray(np.percentile(times * 1e3, [50, 95, 99], axis=1).T)


def burst(target: Target, clients: int, seconds: float) -> tuple[int, float]:
    """``clients`` threads post back to back for ``seconds``.

    Returns:
        Completed requests and the elapsed time, last answer included.
    """
    counts = [0] * clients
    errors: list[BaseException] = []
    gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            post(client, target)  # open the connection before the clock starts
            gate.wait()
            try:
                while time.perf_counter() < deadline[0]:
                    post(client, target)
                    counts[k] += 1
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{target.url}: {errors[0]!r}")
    return sum(counts), elapsed


def throughputs(
    all_: list[Target], clients: int, seconds: float, rounds: int
) -> list[float]:
    """Requests per second per target, the targets in turns for ``rounds``."""
    done = np.zeros(len(all_))
    spent = np.zeros(len(all_))
    for r in range(rounds):
        # Rotate who goes first, so no target always follows the same one.
        order = np.roll(np.arange(len(all_)), -r)
        for j in order:
            n, elapsed = burst(all_[j], clients, seconds / rounds)
            done[j] += n
            spent[j] += elapsed
    return [float(x) for x in done / spent]


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo when there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bentoml_note() -> str:
    """What the section says about BentoML, the other candidate."""
    try:
        import bentoml
    except ImportError:
        return "BentoML: not installed, not measured."
    return f"BentoML {bentoml.__version__}: installed, but not measured by this script."


def table(
    all_: list[Target], stats: np.ndarray, rps: list[float], clients: int
) -> list[str]:
    """Markdown rows: each target, with its ratios to ``mlflow models serve``."""
    lines = [
        f"| server | route | rows | p50 ms | p95 ms | p99 ms | req/s ({clients} "
        "clients) | p50 vs mlflow | req/s vs mlflow |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {t.rows: j for j, t in enumerate(all_) if t.server.name == "mlflow"}
    for j, t in enumerate(all_):
        b = base[t.rows]
        p50, p95, p99 = stats[j]
        lines.append(
            f"| {t.server.name} | `{t.route}` | {t.rows} | {p50:.2f} | {p95:.2f} | "
            f"{p99:.2f} | {rps[j]:.0f} | {p50 / stats[b][0]:.2f}x | "
            f"{rps[j] / rps[b]:.2f}x |"
        )
    return lines


def reproduce(args: argparse.Namespace) -> str:
    """The command that measures the same way (``--home`` left out)."""
    options = [f"--requests {args.requests}", f"--seconds {args.seconds:g}"]
    if args.clients != 8:
        options.append(f"--clients {args.clients}")
    if args.rounds != 4:
        options.append(f"--rounds {args.rounds}")
    return " ".join([COMMAND, *options])


def main() -> None:
    """Build or open a home, start both servers, check, measure, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home with a demand champion")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "docs/benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        work = Path(tmp)
        home = (args.home or work / "home").resolve()
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        env.setdefault("LOOPML_CONFIG_DIR", str(REPO / "configs"))
        env.update({"LOOPML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"})
        if args.home is None:
            build_home(home, env, work / "run.log")
        os.environ.update({k: env[k] for k in ("LOOPML_HOME", "LOOPML_CONFIG_DIR")})
        from mlflow import MlflowClient

        from loopml.core.config import load_settings
        from loopml.core.runtime import configure_environment

        settings = load_settings(home=home)
        configure_environment(home)
        champion = MlflowClient(settings.tracking_uri, settings.tracking_uri)
        model_version = champion.get_model_version_by_alias("demand", "champion")
        version = str(model_version.version)
        params = champion.get_run(str(model_version.run_id)).data.params
        # What loopml does for itself (tracking.py, runtime.py), for MLflow's CLI.
        mlflow_env = {
            **env,
            **{k: os.environ[k] for k in ("MPLCONFIGDIR", "MPLBACKEND")},
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_REGISTRY_URI": settings.tracking_uri,
            "TMPDIR": str(work),  # where it copies the model's artefacts
        }
        ports = {"loopml": free_port(), "mlflow": free_port()}
        logs = {name: work / f"{name}.log" for name in ports}
        loopml = start(
            "loopml",
            [sys.executable, "-m", "loopml.cli", "serve", "--workers", "1"]
            + ["--port", str(ports["loopml"])],
            env,
            ports["loopml"],
            "/readyz",
            logs["loopml"],
        )
        mlflow = start(
            "mlflow",
            [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/demand/{version}"]
            + ["--env-manager", "local", "-w", "1", "-h", "127.0.0.1"]
            + ["-p", str(ports["mlflow"])],
            mlflow_env,
            ports["mlflow"],
            "/ping",
            logs["mlflow"],
        )
        servers = [loopml, mlflow]
        try:
            for server in servers:
                wait_ready(server, logs[server.name])
            served = httpx.get(loopml.url + "/readyz").json()["models"]["demand"]
            assert served == version, f"loopml serves {served}, mlflow {version}"
            rows = payload_rows(home, DemandSettings.of(settings).horizon)
            all_ = targets(loopml, mlflow, rows)
            clients = {s.name: httpx.Client(timeout=60) for s in servers}
            worst = check_same_forecasts(clients, all_)
            stats = latencies(clients, all_, args.requests)
            for client in clients.values():
                client.close()
            rps = throughputs(all_, args.clients, args.seconds, args.rounds)
            memory = {s.name: rss_mb(s, ports[s.name]) for s in servers}
        finally:
            for server in servers:
                stop(server)
    versions = ", ".join(
        f"{p} {dist_version(p)}"
        for p in ("mlflow", "fastapi", "uvicorn", "lightgbm", "httpx")
    )
    built = (
        "a home built by `loopml run -w demand` with "
        + ", ".join(f"{k}={v}" for k, v in BUILD_ENV.items())
        if args.home is None
        else f"`{args.home}`"
    )
    model = (
        f"{params.get('n_series', '?')} series, "
        f"{params.get('lgbm_n_estimators', '?')} trees, "
        f"horizon {params.get('horizon', '?')} days"
    )
    body = "\n".join(
        [
            "## Online serving (demand model): loopml serve vs mlflow models serve",
            "",
            f"Measured {dt.date.today()} on {cpu_model()}, {os.cpu_count()} CPUs "
            f"shared with other work running at the same time (load average "
            f"{load:.2f} at start), {platform.python_implementation()} "
            f"{platform.python_version()}, {versions}. Model: demand version "
            f"{version} ({model}) from {built}. Both servers: one uvicorn worker "
            "process on 127.0.0.1, the client (httpx, same machine) sharing the CPUs. "
            f"Latency: {args.requests} sequential requests per row, the targets "
            f"in turns after a warm-up. Throughput: {args.clients} client threads "
            f"for {args.seconds:g} s per row, in {args.rounds} turn(s). Same rows, "
            "every column given (MLflow's server enforces the logged signature); "
            f"forecasts checked equal before timing (largest difference {worst:.1e}). "
            "Ratios: p50 / mlflow's p50 (lower is faster), req/s / mlflow's req/s "
            "(higher is faster).",
            "",
            *table(all_, stats, rps, args.clients),
            "",
            "| server | RSS after the run, serving process MB | with launcher MB |",
            "|---|---:|---:|",
            *(f"| {n} | {m[0]:.0f} | {m[1]:.0f} |" for n, m in memory.items()),
            "",
            "`/v1/demand/predict` does more than `/invocations`: it reads each "
            "series' state from the Feast online store and returns per-row "
            "metadata; both queue the request for the inference log and update "
            "Prometheus metrics. "
            "`mlflow models serve` runs uvicorn under a `mlflow` launcher process "
            "(hence the second memory column). " + bentoml_note(),
            "",
            f"Reproduce: `{reproduce(args)}`",
        ]
    )
    print(body)
    if args.json:
        figures = {
            "targets": [
                {
                    "server": t.server.name,
                    "route": t.route,
                    "rows": t.rows,
                    "p50": float(stats[j][0]),
                    "p95": float(stats[j][1]),
                    "p99": float(stats[j][2]),
                    "rps": rps[j],
                }
                for j, t in enumerate(all_)
            ],
            "rss_mb": {
                name: {"server": m[0], "tree": m[1]} for name, m in memory.items()
            },
            "loadavg": load,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not args.no_write:
        write_section(args.output, SECTION, body)


if __name__ == "__main__":
    main()
