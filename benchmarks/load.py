"""Load: a fixed request rate on ``loopml serve``, with a hot reload mid-run.

Builds a throwaway home with a tiny ``loopml run`` of both workloads (the
tests' ``TINY_ENV``; or uses ``--home``), trains a second version of each
(``loopml train``: registered, not yet champion), then starts ``loopml serve``
(one worker, 127.0.0.1, a free port, ``LOOPML_ADMIN_TOKEN`` set, alias polling
off so the reload happens when this script says) and drives an OPEN-LOOP load:
request ``i`` is sent at ``start + i / rate`` whatever happened to the others
(raw asyncio HTTP/1.1 on keep-alive connections, ``http_load.py``'s parser;
at most ``--max-connections`` in flight, a request due while all are busy
waiting in the client), so latency, measured from the scheduled send,
includes every queue, the client's own too. Requests alternate
between ``POST /v1/demand/predict`` (one row, the series in turns) and
``GET /v1/recsys/users/{id}/recommendations`` (known users in turns).

At ``--reload-at`` of the run this script (a process other than the
server's, as ``loopml promote`` or ``loopml rollback`` would be) re-points
``champion`` to the new versions, one registry update each, then
``POST /admin/reload`` makes the service load, warm and swap them under
load. The run passes with 0 errors (non-2xx or transport errors) and only
the new versions served after the reload returned; the exit code says so.

The rate: ``--rate``, or by default ``--share`` (0.8) of the capacity
measured first on the same server and mix (closed loop, 16 connections).

Then (unless ``--compare-seconds 0``) an open loop at ``--compare-rate``
(10 req/s, what mlflow's server keeps up with), demand only, for
``--compare-seconds`` each, in turns: ``mlflow models serve`` of the same
demand version (``/invocations``, the tool a user would pick instead) and
``loopml serve`` (``/invocations`` and ``/v1/demand/predict``); latency
ratios to mlflow's. MLflow's server cannot follow an alias, so it has no
reload to compare.

``--soak``: ``--seconds`` (default 600) at ``--rate`` (default 5), no reload,
sampling the server's RSS every ``--sample-seconds``; growth after
``--warmup`` seconds is judged against ``--max-growth-mb`` (fitted slope,
per 10 minutes).

Not a test: run on demand; the tables replace this benchmark's sections of
``docs/reliability.md``::

    .venv/bin/python benchmarks/load.py                    # 60 s at 80 % of capacity
    .venv/bin/python benchmarks/load.py --soak             # 10 min at 5 req/s
    # what make bench-check runs (with --no-write --json PATH):
    .venv/bin/python benchmarks/load.py --seconds 20 --compare-seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import psutil
from doc_sections import write_section
from http_load import read_response, request_bytes
from serving import COLUMNS, Server, payload_rows, start, stop, wait_ready

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import TINY_ENV, free_port, subprocess_env  # noqa: E402

LOOPML = [sys.executable, "-m", "loopml.cli"]
DOC = REPO / "docs" / "reliability.md"
COMMAND = ".venv/bin/python benchmarks/load.py"
TOKEN = "load-benchmark-token"  # a throwaway server on loopback
#: The second versions differ from the first (a different size), so the swap
#: really loads another model.
V2_ENV = {
    "demand": {"LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS": "80"},
    "recsys": {"LOOPML_WORKLOADS__RECSYS__RANKER_N_ESTIMATORS": "60"},
}
TIMEOUT = 30.0  # seconds a request may take before it counts as an error
#: Idle seconds after which the client drops a keep-alive connection rather
#: than reuse one the server may have closed (uvicorn's keep-alive is 5 s).
KEEP_ALIVE = 4.0
#: The open-loop client's own cost in the last ``drive`` (reported).
CLIENT: dict[str, float] = {}


@dataclass
class Request:
    """One scheduled request: what to send and what came back."""

    name: str  # which route (a table row)
    method: str
    url: str
    body: bytes | None
    due: float = 0.0  # scheduled send, seconds from the start
    latency: float = float("nan")  # from ``due`` to the answer's end
    status: int = 0  # 0: transport error (or never sent)
    version: str = ""
    error: str = ""


@dataclass
class Reload:
    """When the reload ran and what it answered."""

    started: float = float("nan")
    ended: float = float("nan")
    answer: dict[str, str] = field(default_factory=dict)


def run(args: list[str], home: Path, log: Path, **env: str) -> None:
    """Run the loopml CLI in ``home`` (tiny settings), failing loudly."""
    with log.open("ab") as out:
        done = subprocess.run(
            [*LOOPML, *args],
            env=subprocess_env(home, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        )
    if done.returncode != 0:
        raise SystemExit(f"loopml {' '.join(args)} failed; see {log}")


def build_home(home: Path, log: Path) -> float:
    """Both champions (v1) and a registered v2 of each; returns the seconds."""
    started = time.perf_counter()
    run(["run"], home, log)
    for workload, env in V2_ENV.items():
        run(["train", "-w", workload], home, log, **env)
    batch_for_v2(home, log)
    return time.perf_counter() - started


def batch_for_v2(home: Path, log: Path) -> None:
    """Give recsys v2 its own daily batch, as promoting it then ``batch`` would.

    Without one, every recommendation after the reload would be scored live
    (about 10x the cost of a batch lookup): a different load than before it.
    The batch is for the next day (a day's results are replaced on a rerun,
    and v1's must stay for v1); ``champion`` points at v2 only meanwhile.
    """
    client = registry_client(home)
    served = client.get_model_version_by_alias("recsys", "champion").version
    (new,) = other_versions(home, {"recsys": str(served)}).values()
    data = pd.read_parquet(home / "data" / "recsys" / "validated.parquet")
    day = pd.Timestamp(data["timestamp"].max()).normalize() + pd.Timedelta(days=2)
    client.set_registered_model_alias("recsys", "champion", new)
    try:
        run(["batch", "-w", "recsys", "--date", f"{day:%Y-%m-%d}"], home, log)
    finally:
        client.set_registered_model_alias("recsys", "champion", str(served))


def demand_bodies(home: Path) -> tuple[list[bytes], list[bytes]]:
    """One-row forecast requests, series and horizons in turns: v1 and MLflow."""
    rows = payload_rows(home, int(TINY_ENV["LOOPML_WORKLOADS__DEMAND__HORIZON"]))[28]
    v1 = [json.dumps({"rows": [r]}).encode() for r in rows]
    split = [
        json.dumps(
            {"dataframe_split": {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS]]}}
        ).encode()
        for r in rows
    ]
    return v1, split


def recsys_users(home: Path, n: int = 50) -> list[str]:
    """Known users (in the training data) to ask recommendations for."""
    data = pd.read_parquet(home / "data" / "recsys" / "validated.parquet")
    return [str(u) for u in data["user_id"].drop_duplicates().head(n)]


def schedule(requests: list[Request], rate: float) -> list[Request]:
    """Give request ``i`` its send time ``i / rate``."""
    for i, request in enumerate(requests):
        request.due = i / rate
    return requests


class Pool:
    """Keep-alive connections for an open-loop client (raw asyncio, no library).

    At most ``max_connections`` requests are in flight, like users behind a
    load balancer's connection limit (and like ``wrk2``'s fixed connections):
    a request due while all are busy waits in the client, and that wait
    counts in its latency (measured from its due time), so queueing is
    never hidden. ``max_connections=None`` opens a connection whenever none
    is idle (a slow server then gets ever more of them). The answer's JSON
    is read for ``model_version``.
    """

    def __init__(
        self, host: str, port: int, max_connections: int | None = None
    ) -> None:
        """Where to connect, and how many requests may be in flight at once."""
        self.host, self.port = host, port
        # (reader, writer, last used): a stack, the most recently used on top.
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0
        self._bytes: dict[tuple[str, str, bytes | None], bytes] = {}
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None

    def request_bytes(self, request: Request) -> bytes:
        """The HTTP/1.1 bytes of a request (built once per distinct request)."""
        key = (request.method, request.url, request.body)
        raw = self._bytes.get(key)
        if raw is None:
            path = urlsplit(request.url)
            target = path.path + (f"?{path.query}" if path.query else "")
            raw = self._bytes[key] = request_bytes(
                request.method, target, request.body, self.host
            )
        return raw

    async def send(self, request: Request, t0: float) -> None:
        """Send one request; record its latency (from its due time) and outcome."""
        if self._slots is None:
            await self._send(request, t0)
            return
        async with self._slots:
            await self._send(request, t0)
        if request.latency > TIMEOUT and not request.error:
            request.error = f"answered after {request.latency:.1f} s (> {TIMEOUT:g} s)"

    async def _send(self, request: Request, t0: float) -> None:
        raw = self.request_bytes(request)
        connection = None
        try:
            now = time.perf_counter()
            if self.idle and now - self.idle[-1][2] > KEEP_ALIVE:
                self.close()  # the server closes idle connections (uvicorn: 5 s)
            if self.idle:
                connection = self.idle.pop()[:2]
            else:
                connection = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            reader, writer = connection
            writer.write(raw)
            status, body = await asyncio.wait_for(read_response(reader), TIMEOUT)
            request.status = status
            if status // 100 == 2:
                request.version = str(json.loads(body).get("model_version", ""))
            else:
                request.error = f"{status}: {body[:200]!r}"
            self.idle.append((reader, writer, time.perf_counter()))
        except (
            TimeoutError,
            OSError,
            asyncio.IncompleteReadError,
            ValueError,  # an answer that is not HTTP or JSON
        ) as error:
            request.error = repr(error)
            if connection is not None:
                connection[1].close()
        request.latency = time.perf_counter() - t0 - request.due

    def close(self) -> None:
        """Close the idle connections."""
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def drive(
    requests: list[Request],
    side: list[tuple[float, Any]] | None = None,
    max_connections: int | None = None,
) -> float:
    """Send every request at its due time; run ``side`` coroutines on cue.

    Args:
        requests: scheduled requests (``due`` set), answered in place.
        side: ``(at_seconds, coroutine_factory(t0))`` pairs, e.g. the reload.
        max_connections: requests in flight at most (see :class:`Pool`).

    Returns:
        Seconds from the first due time to the last answer.
    """
    if not requests:
        return 0.0
    where = urlsplit(requests[0].url)
    pool = Pool(where.hostname or "127.0.0.1", where.port or 80, max_connections)
    cpu = time.process_time()
    t0 = time.perf_counter()
    extra = [asyncio.create_task(_later(at, factory, t0)) for at, factory in side or []]
    tasks = []
    for request in requests:
        delay = t0 + request.due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.send(request, t0)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*extra)
    pool.close()
    CLIENT["cpu_us_per_request"] = (time.process_time() - cpu) / len(requests) * 1e6
    CLIENT["connections"] = pool.opened
    return elapsed


def capacity(url: str, home: Path, seconds: float, concurrency: int = 16) -> float:
    """Closed-loop req/s of the mixed requests at ``concurrency`` (the ceiling).

    Each connection sends the next request of the mix as soon as the last
    one is answered, for ``seconds``: what the server can take, measured
    against the same server, home and mix just before the open-loop run.
    """
    mix = mixed(url, home, 200)
    where = urlsplit(url)
    pool = Pool(where.hostname or "127.0.0.1", where.port or 80)

    async def closed_loop() -> float:
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(start: int) -> None:
            nonlocal done
            i = start
            while time.perf_counter() < deadline:
                request = mix[i % len(mix)]
                probe = Request(request.name, request.method, request.url, request.body)
                await pool.send(probe, time.perf_counter())
                if probe.status // 100 != 2:
                    raise SystemExit(f"capacity probe failed: {probe.error}")
                done += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        pool.close()
        return done / (time.perf_counter() - started)

    return asyncio.run(closed_loop())


async def _later(at: float, factory: Any, t0: float) -> None:
    await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
    await factory(t0)


class Reloader:
    """Re-points both aliases (this process, not the server's), then reloads."""

    def __init__(self, home: Path, url: str, versions: dict[str, str]) -> None:
        """Remember where; ``versions``: the version to serve per workload."""
        self.url, self.versions = url, versions
        self.client = registry_client(home)
        self.marks = Reload()

    async def __call__(self, t0: float) -> None:
        """Run at the cue; record when it started and when the reload returned."""
        self.marks.started = time.perf_counter() - t0
        # A thread, so the client keeps its send schedule meanwhile.
        await asyncio.to_thread(self.repoint)
        async with httpx.AsyncClient(timeout=120) as client:
            response = await client.post(
                f"{self.url}/admin/reload",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        response.raise_for_status()
        self.marks.answer = response.json()
        self.marks.ended = time.perf_counter() - t0

    def repoint(self) -> None:
        """Move ``champion`` to the new versions: one registry update each."""
        for workload, version in self.versions.items():
            self.client.set_registered_model_alias(workload, "champion", version)


def tracking_uri(home: Path) -> str:
    """The MLflow tracking (and registry) URI of ``home``."""
    from loopml.core.config import load_settings

    os.environ["LOOPML_HOME"] = str(home)
    os.environ.setdefault("LOOPML_CONFIG_DIR", str(REPO / "configs"))
    return load_settings(home=home).tracking_uri


def registry_client(home: Path) -> Any:
    """An MLflow client on ``home``'s registry."""
    from mlflow import MlflowClient

    uri = tracking_uri(home)
    return MlflowClient(uri, uri)


def other_versions(home: Path, served: dict[str, str]) -> dict[str, str]:
    """Per workload, the newest registered version that is not served now."""
    client = registry_client(home)
    out = {}
    for workload, version in served.items():
        found = client.search_model_versions(f"name = '{workload}'")
        others = sorted(int(v.version) for v in found if v.version != version)
        if not others:
            raise SystemExit(f"{workload} has no other version to reload to")
        out[workload] = str(others[-1])
    return out


def stats(requests: list[Request]) -> dict[str, float]:
    """Count, errors, p50/p95/p99/max latency (ms) of some requests."""
    lat = np.array([r.latency for r in requests]) * 1e3
    errors = sum(1 for r in requests if r.status // 100 != 2)
    if not len(lat):
        return {"n": 0, "errors": 0}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {
        "n": len(requests),
        "errors": errors,
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(lat.max()),
    }


def timeline(requests: list[Request]) -> list[dict[str, float]]:
    """Per second of due time: requests, errors, p99 latency; the worst first."""
    by_second: dict[int, list[Request]] = {}
    for r in requests:
        by_second.setdefault(int(r.due), []).append(r)
    rows = [
        {
            "second": float(second),
            "n": float(len(rs)),
            "errors": float(sum(1 for r in rs if r.status // 100 != 2)),
            "p99_ms": float(np.percentile([r.latency for r in rs], 99) * 1e3),
        }
        for second, rs in sorted(by_second.items())
    ]
    return sorted(rows, key=lambda row: -row["p99_ms"])


def versions_seen(requests: list[Request]) -> dict[str, dict[str, int]]:
    """Answers per route and model version."""
    out: dict[str, dict[str, int]] = {}
    for r in requests:
        if r.version:
            route = out.setdefault(r.name, {})
            route[r.version] = route.get(r.version, 0) + 1
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


async def sample_rss(
    pid: int, every: float, until: float, into: list[tuple[float, float]]
) -> None:
    """Append ``(seconds, RSS MB)`` every ``every`` seconds until ``until``."""
    t0 = time.perf_counter()
    while (now := time.perf_counter() - t0) <= until:
        into.append((now, rss_mb(pid)))
        await asyncio.sleep(every)


def growth(
    samples: list[tuple[float, float]], warmup: float
) -> dict[str, float | None]:
    """RSS start/end/max and the growth after ``warmup`` (MB, MB per 10 min)."""
    t = np.array([s[0] for s in samples])
    mb = np.array([s[1] for s in samples])
    warm = t >= warmup
    slope = (
        float(np.polyfit(t[warm], mb[warm], 1)[0] * 600) if warm.sum() >= 3 else None
    )
    return {
        "start_mb": float(mb[0]),
        "warm_mb": float(mb[warm][0]) if warm.any() else None,
        "end_mb": float(mb[-1]),
        "max_mb": float(mb.max()),
        "growth_after_warmup_mb": float(mb[-1] - mb[warm][0]) if warm.any() else None,
        "slope_mb_per_10min": slope,
    }


def mixed(url: str, home: Path, n: int) -> list[Request]:
    """``n`` requests alternating demand forecasts and recommendations."""
    bodies, _ = demand_bodies(home)
    users = recsys_users(home)
    out = []
    for i in range(n):
        if i % 2 == 0:
            body = bodies[(i // 2) % len(bodies)]
            out.append(Request("demand", "POST", f"{url}/v1/demand/predict", body))
        else:
            user = users[(i // 2) % len(users)]
            path = f"/v1/recsys/users/{user}/recommendations"
            out.append(Request("recsys", "GET", url + path, None))
    return out


def url_of(server: Server) -> str:
    """The server's base URL (it listens on loopback)."""
    return f"http://127.0.0.1:{server.port}"


def start_loopml(home: Path, work: Path, **env: str) -> tuple[Server, int]:
    """``loopml serve`` (one worker) on a free loopback port, ready."""
    port = free_port()
    log = work / "loopml.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*LOOPML, "serve", "--workers", "1", "--port", str(port)],
            env=subprocess_env(home, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server("loopml", proc, port, "/readyz")
    try:
        wait_ready(server, log)
    except SystemExit:
        stop(server)
        print(log.read_text()[-3000:], file=sys.stderr)  # the folder is temporary
        raise
    return server, port


def start_mlflow(home: Path, work: Path, version: str) -> Server:
    """``mlflow models serve`` of demand ``version``, ready (as serving.py)."""
    uri = tracking_uri(home)
    port = free_port()
    env = {
        **subprocess_env(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "MPLCONFIGDIR": str(home / "cache" / "matplotlib"),
        "MPLBACKEND": "Agg",
        "TMPDIR": str(work),
    }
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    server = start(
        "mlflow",
        [mlflow_bin, "models", "serve", "-m", f"models:/demand/{version}"]
        + ["--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(port)],
        env,
        port,
        "/ping",
        work / "mlflow.log",
    )
    wait_ready(server, work / "mlflow.log")
    return server


def compare(
    loopml: Server, mlflow: Server, home: Path, rate: float, seconds: float
) -> dict[str, dict[str, float]]:
    """The same open-loop demand load on each target, in turns (2 rounds)."""
    v1, split = demand_bodies(home)
    targets = {
        "mlflow /invocations": (url_of(mlflow) + "/invocations", split),
        "loopml /invocations": (url_of(loopml) + "/invocations", split),
        "loopml /v1/demand/predict": (url_of(loopml) + "/v1/demand/predict", v1),
    }
    n = max(1, int(rate * seconds / 2))
    done: dict[str, list[Request]] = {name: [] for name in targets}
    for _ in range(2):
        for name, (url, bodies) in targets.items():
            batch = schedule(
                [Request(name, "POST", url, bodies[i % len(bodies)]) for i in range(n)],
                rate,
            )
            asyncio.run(drive(batch))
            done[name] += batch
    return {name: stats(batch) for name, batch in done.items()}


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` says."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(row: dict[str, float], *keys: str) -> str:
    """Markdown cells for some stats (ms with 1 decimal, counts as integers)."""
    cells = []
    for key in keys:
        value = row.get(key)
        cells.append(
            "-"
            if value is None
            else f"{value:.0f}"
            if key in ("n", "errors")
            else f"{value:.1f}"
        )
    return " | ".join(cells)


def load_run(
    args: argparse.Namespace, home: Path, work: Path
) -> tuple[dict[str, Any], list[str]]:
    """The mixed load with a reload mid-run (and the comparison): figures, table."""
    before_load = loadavg()
    loopml, port = start_loopml(
        home, work, LOOPML_ADMIN_TOKEN=TOKEN, LOOPML_SERVING__POLL_SECONDS="86400"
    )
    mlflow = None
    try:
        served = httpx.get(url_of(loopml) + "/version").json()["models"]
        new = other_versions(home, served)
        ceiling = capacity(url_of(loopml), home, args.capacity_seconds)
        if args.rate is None:
            args.rate = round(args.share * ceiling, 1)
        print(
            f"capacity {ceiling:.0f} req/s (closed loop, 16 connections); "
            f"open loop at {args.rate:g} req/s ({args.rate / ceiling:.0%})",
            flush=True,
        )
        requests = schedule(
            mixed(url_of(loopml), home, int(args.rate * args.seconds)), args.rate
        )
        go = Reloader(home, url_of(loopml), new)
        elapsed = asyncio.run(
            drive(
                requests,
                [(args.seconds * args.reload_at, go)],
                args.max_connections or None,
            )
        )
        marks = go.marks
        client = dict(CLIENT)  # the comparison below drives its own loop
        rss = rss_mb(loopml.proc.pid)
        after_load = loadavg()
        compared = None
        if args.compare_seconds > 0:
            mlflow = start_mlflow(home, work, new["demand"])
            compared = compare(
                loopml, mlflow, home, args.compare_rate, args.compare_seconds
            )
            after_load += f" (after the comparison: {loadavg()})"
    finally:
        stop(loopml)
        if mlflow is not None:
            stop(mlflow)
    ok = [r for r in requests if r.status // 100 == 2]
    before = [r for r in ok if r.due + r.latency < marks.started]
    after = [r for r in ok if r.due >= marks.ended]
    window = [r for r in requests if marks.started <= r.due <= marks.ended + 2]
    figures: dict[str, Any] = {
        "rate": args.rate,
        "capacity": ceiling,
        "share_of_capacity": args.rate / ceiling,
        "client": client,
        "seconds": args.seconds,
        "achieved_rate": len(ok) / elapsed,
        "all": stats(requests),
        "demand": stats([r for r in requests if r.name == "demand"]),
        "recsys": stats([r for r in requests if r.name == "recsys"]),
        "reload_window": stats(window),
        "reload": {"started_s": marks.started, "ended_s": marks.ended},
        "reload_answer": marks.answer,
        "versions_before": versions_seen(before),
        "versions_after": versions_seen(after),
        "served_before": served,
        "new": new,
        "old_after_reload": sum(1 for r in after if r.version != new[r.name]),
        "errors_sample": [r.error for r in requests if r.error][:5],
        "worst_seconds": timeline(requests)[:5],
        "rss_mb_end": rss,
        "compare": compared,
        "loadavg": {"before": before_load, "after": after_load},
    }
    passed = figures["all"]["errors"] == 0 and figures["old_after_reload"] == 0
    figures["passed"] = passed
    keys = ("n", "errors", "p50", "p95", "p99", "max")
    lines = [
        "## Load: fixed rate, hot reload of new champions mid-run",
        "",
        f"Measured {dt.date.today()} on {os.cpu_count()} CPUs shared with other "
        f"work (load average 1/5/15 min: {before_load} before, {after_load} "
        f"after), CPython {sys.version.split()[0]}. `loopml serve --workers 1` on "
        "127.0.0.1, home from a tiny `loopml run` (tests' `TINY_ENV`) plus a "
        "second trained version of each workload; the client "
        "(`benchmarks/http_load.py`'s raw asyncio HTTP/1.1, keep-alive, open "
        f"loop, one thread, {connections_text(args)}, "
        f"{figures['client'].get('connections', 0):.0f} opened) on the same "
        "machine, "
        f"{figures['client'].get('cpu_us_per_request', float('nan')):.0f} us of "
        "client CPU per request. Capacity, measured just before on the same "
        "server and mix (closed loop, 16 connections, "
        f"{args.capacity_seconds:g} s): {ceiling:.0f} req/s; the run: "
        f"{args.rate:g} req/s ({args.rate / ceiling:.0%} of it) for "
        f"{args.seconds:g} s, alternating "
        "`POST /v1/demand/predict` (1 row) and "
        "`GET /v1/recsys/users/{id}/recommendations`; latency from each "
        "request's scheduled send time (queueing included). At "
        f"{marks.started:.1f} s the client's process re-pointed `champion` "
        f"({', '.join(f'{w} v{served[w]} -> v{v}' for w, v in new.items())}) and "
        f"`POST /admin/reload` returned at {marks.ended:.1f} s.",
        "",
        "| requests | n | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| all | {fmt(figures['all'], *keys)} |",
        f"| demand | {fmt(figures['demand'], *keys)} |",
        f"| recsys | {fmt(figures['recsys'], *keys)} |",
        f"| sent during the reload (+2 s) | {fmt(figures['reload_window'], *keys)} |",
        "",
        f"Achieved rate {figures['achieved_rate']:.2f} req/s (target {args.rate:g}); "
        f"versions answered before the reload {figures['versions_before']}, after "
        f"it returned {figures['versions_after']} (old version after the reload: "
        f"{figures['old_after_reload']}); server RSS at the end {rss:.0f} MB. "
        f"**{'PASS' if passed else 'FAIL'}**: 0 errors and only the new versions "
        "after the reload is the requirement.",
    ]
    if compared:
        base = compared["mlflow /invocations"]
        lines += [
            "",
            f"Side by side, demand only, an open loop at {args.compare_rate:g} "
            "req/s (what `mlflow models serve` keeps up with) for "
            f"{args.compare_seconds:g} s per target (in 2 turns), version "
            f"{new['demand']} on both servers; ratios to `mlflow models serve` "
            "(lower is faster):",
            "",
            "| target | n | errors | p50 ms | p95 ms | p99 ms | max ms "
            "| p50 vs mlflow | p99 vs mlflow |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {name} | {fmt(row, *keys)} | {row['p50'] / base['p50']:.2f}x | "
                f"{row['p99'] / base['p99']:.2f}x |"
                for name, row in compared.items()
            ),
        ]
    lines += ["", f"Reproduce: `{reproduce(args)}`"]
    return figures, lines


def soak_run(
    args: argparse.Namespace, home: Path, work: Path
) -> tuple[dict[str, Any], list[str]]:
    """A long fixed-rate run without reload, sampling the server's RSS."""
    before_load = loadavg()
    loopml, _ = start_loopml(home, work)
    samples: list[tuple[float, float]] = []
    try:
        requests = schedule(
            mixed(url_of(loopml), home, int(args.rate * args.seconds)), args.rate
        )

        async def both() -> float:
            sampler = asyncio.create_task(
                sample_rss(loopml.proc.pid, args.sample_seconds, args.seconds, samples)
            )
            elapsed = await drive(requests)
            await sampler
            return elapsed

        elapsed = asyncio.run(both())
        samples.append((elapsed, rss_mb(loopml.proc.pid)))
    finally:
        stop(loopml)
    after_load = loadavg()
    memory = growth(samples, args.warmup)
    slope = memory["slope_mb_per_10min"]
    passed = (
        slope is not None
        and slope < args.max_growth_mb
        and stats(requests)["errors"] == 0
    )
    figures: dict[str, Any] = {
        "rate": args.rate,
        "seconds": args.seconds,
        "achieved_rate": sum(1 for r in requests if r.status // 100 == 2) / elapsed,
        "all": stats(requests),
        "memory": memory,
        "samples": samples,
        "bound_mb_per_10min": args.max_growth_mb,
        "passed": passed,
        "loadavg": {"before": before_load, "after": after_load},
    }
    keys = ("n", "errors", "p50", "p95", "p99", "max")
    every = ", ".join(f"{mb:.0f}" for _, mb in samples)
    lines = [
        "## Soak: fixed rate, server memory over time",
        "",
        f"Measured {dt.date.today()} on {os.cpu_count()} CPUs shared with other "
        f"work (load average 1/5/15 min: {before_load} before, {after_load} "
        f"after). `loopml serve --workers 1`, the same tiny home and mixed "
        f"requests as the load run, {args.rate:g} req/s for {args.seconds:g} s, "
        f"no reload; RSS of the server process every {args.sample_seconds:g} s "
        "(psutil).",
        "",
        "| requests | n | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| all | {fmt(figures['all'], *keys)} |",
        "",
        "| RSS start MB | after warm-up MB | end MB | max MB | growth after "
        "warm-up MB | fitted slope MB / 10 min | bound | verdict |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
        f"| {memory['start_mb']:.1f} | {_mb(memory['warm_mb'])} | "
        f"{memory['end_mb']:.1f} | {memory['max_mb']:.1f} | "
        f"{_mb(memory['growth_after_warmup_mb'])} | {_mb(slope)} | "
        f"slope < {args.max_growth_mb:g} MB / 10 min after {args.warmup:g} s "
        f"warm-up, 0 errors | **{'PASS' if passed else 'FAIL'}** |",
        "",
        f"Samples (MB): {every}.",
        "",
        f"Reproduce: `{reproduce(args)}`",
    ]
    return figures, lines


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def reproduce(args: argparse.Namespace) -> str:
    """The command that measures the same way (``--home`` left out)."""
    options = ["--soak"] if args.soak else []
    options.append(f"--seconds {args.seconds:g}")
    if args.rate_given or args.soak:
        options.append(f"--rate {args.rate:g}")
    elif args.share != 0.8:
        options.append(f"--share {args.share:g}")
    if not args.soak and args.compare_seconds != 20:
        options.append(f"--compare-seconds {args.compare_seconds:g}")
    if args.max_connections != 64:
        options.append(f"--max-connections {args.max_connections}")
    return " ".join([COMMAND, *options])


def connections_text(args: argparse.Namespace) -> str:
    """How the run bounded its connections, for the doc."""
    if not args.max_connections:
        return "a new connection whenever none is idle"
    return (
        f"at most {args.max_connections} requests in flight, a due request "
        "waiting in the client for a free one"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__,  # the whole story: what is measured and how
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, help="60 (load), 600 (--soak)")
    parser.add_argument(
        "--rate",
        type=float,
        help="req/s; default: --share of the capacity measured first (load), 5 (soak)",
    )
    parser.add_argument(
        "--share", type=float, default=0.8, help="load rate / capacity (0.8)"
    )
    parser.add_argument(
        "--capacity-seconds",
        type=float,
        default=8.0,
        help="closed-loop capacity probe before the load run (8)",
    )
    parser.add_argument(
        "--compare-rate",
        type=float,
        default=10.0,
        help="open-loop req/s of the mlflow comparison (10)",
    )
    parser.add_argument(
        "--reload-at", type=float, default=0.5, help="fraction of the run (0.5)"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=64,
        help="requests in flight at most; a due request waits for one, the wait "
        "counted in its latency (64; 0: open one whenever none is idle)",
    )
    parser.add_argument(
        "--compare-seconds",
        type=float,
        default=20.0,
        help="per target vs mlflow models serve; 0 skips the comparison (20)",
    )
    parser.add_argument("--soak", action="store_true", help="the memory soak")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument(
        "--warmup", type=float, default=120.0, help="soak seconds ignored (120)"
    )
    parser.add_argument(
        "--max-growth-mb",
        type=float,
        default=30.0,
        help="soak bound: fitted RSS slope after warm-up, MB per 10 min (30)",
    )
    parser.add_argument(
        "--home", type=Path, help="a home built as above, in place (not a copy)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (600.0 if args.soak else 60.0)
    args.rate_given = args.rate is not None
    if args.soak and args.rate is None:
        args.rate = 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    """Build or open a home, run the load (or soak), print and write."""
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="loopml-load-") as tmp:
        work = Path(tmp)
        home = (args.home or work / "home").resolve()
        build_seconds = None
        if args.home is None:
            print(f"building a tiny home (load average {loadavg()}) ...", flush=True)
            build_seconds = build_home(home, work / "build.log")
        print(f"running (load average {loadavg()}) ...", flush=True)
        run_ = soak_run if args.soak else load_run
        figures, lines = run_(args, home, work)
    figures["build_seconds"] = build_seconds
    body = "\n".join(lines)
    print(body)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if not args.no_write:
        write_section(args.output, "soak" if args.soak else "load", body)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
