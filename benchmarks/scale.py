"""A production-size run: every stage of ``loopml run``, timed and measured.

Each stage runs as its own process, in the order of ``loopml run``::

    python -m loopml.cli --profile production --home HOME STAGE -w WORKLOAD

(``tune`` with ``LOOPML_TUNE__NUM_SAMPLES`` trials, 4 by default), and is
measured from outside: wall time, the peak resident memory of its largest
process (``os.wait4``'s ``ru_maxrss``: the stage and every descendant it
waited for, the largest one) and the peak of the proportional set size (PSS)
summed over its process tree, sampled every 0.5 s with psutil (this one
counts Ray's raylet and workers, which are descendants of the stage when it
starts a local Ray, and Ray's shared object store once).

The run is kept away from everyone else's: its own PostgreSQL database
(``loopml_scale``, dropped and created again unless ``--keep-database``) for
MLflow and Feast's SQL registry, a unique Feast project (dropped from Redis and
the registry at the end) and a temporary home. The Feast offline store is
whatever the production profile says. The table replaces the ``scale``
section of ``docs/scale.md``::

    .venv/bin/python benchmarks/scale.py --demand 20x50x1095 --recsys 100000x10000
    .venv/bin/python benchmarks/scale.py --small      # the scheduled CI job
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from doc_sections import write_section

SECTION = "scale"
DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"
STAGES = (
    "ingest",
    "validate",
    "features",
    "tune",
    "train",
    "evaluate",
    "promote",
    "batch",
    "monitor",
)
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
#: Zipf exponent of course popularity: the top 20 % of courses take about
#: 80 % of enrolments (measured in docs/scale.md).
POPULARITY_TAIL = 1.0
SMALL = {"demand": "5x10x730", "recsys": "6000x1000"}


@dataclass
class StageRun:
    """One stage's outcome and measurements."""

    workload: str
    stage: str
    status: str
    seconds: float
    max_rss_mb: float
    tree_rss_mb: float


#: A stage whose processes pass this is killed (the machine is shared).
DEFAULT_MAX_MEMORY_GB = 8.0


def sizes(text: str, parts: int) -> tuple[int, ...]:
    """``"20x50x1095"`` -> ``(20, 50, 1095)``; refuses another count or <= 0."""
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not like 20x50x1095") from None
    if len(values) != parts or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected {parts} positive sizes joined by 'x'"
        )
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; ``--small`` fills the sizes the CI job uses."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demand", help="stores x items x days, e.g. 20x50x1095")
    parser.add_argument(
        "--recsys", help="users x items (x days, default 240), e.g. 100000x10000"
    )
    parser.add_argument("--small", action="store_true", help=f"sizes {SMALL}")
    parser.add_argument("--tune-samples", type=int, default=4)
    parser.add_argument("--database", default="loopml_scale")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--home", type=Path, help="default: a temporary folder")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --home: keep the stages that succeeded in that home's last run"
        " (and its database and Feast project), run the rest",
    )
    parser.add_argument(
        "--skip-tune",
        action="store_true",
        help="do not run tune (train uses the profile's parameters); with"
        " --resume, the table keeps tune's earlier figures",
    )
    parser.add_argument(
        "--until",
        choices=STAGES,
        help="run the stages up to this one and stop (the later ones are 'not"
        " asked'); with --home, --resume runs the rest later",
    )
    parser.add_argument("--stage-timeout", type=float, default=3600.0)
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=DEFAULT_MAX_MEMORY_GB,
        help="kill a stage whose processes pass this (default 8)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="with --home: write the section from that home's saved figures, run"
        " nothing (after an interrupted run)",
    )
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.small:
        args.demand = args.demand or SMALL["demand"]
        args.recsys = args.recsys or SMALL["recsys"]
    if (args.resume or args.report) and args.home is None:
        parser.error("--resume and --report need the --home of the run")
    if not args.demand and not args.recsys:
        parser.error("give --demand and/or --recsys, or --small")
    args.demand_sizes = sizes(args.demand, 3) if args.demand else None
    if args.recsys:
        parts = args.recsys.count("x") + 1
        args.recsys_sizes = sizes(args.recsys, parts)
        if parts not in (2, 3):
            parser.error("--recsys is users x items or users x items x days")
    else:
        args.recsys_sizes = None
    return args


def workload_env(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Per workload, the ``LOOPML_*`` variables that set its size.

    Demand first: the smaller one gets its figures even if recsys runs out of
    time.
    """
    env: dict[str, dict[str, str]] = {}
    if args.demand_sizes:
        stores, items, days = args.demand_sizes
        key = "LOOPML_WORKLOADS__DEMAND__"
        env["demand"] = {
            f"{key}N_STORES": str(stores),
            f"{key}N_ITEMS": str(items),
            f"{key}N_DAYS": str(days),
        }
    if args.recsys_sizes:
        users, items, *days = args.recsys_sizes
        key = "LOOPML_WORKLOADS__RECSYS__"
        env["recsys"] = {
            f"{key}N_USERS": str(users),
            f"{key}N_ITEMS": str(items),
            f"{key}POPULARITY_TAIL": str(POPULARITY_TAIL),
        }
        if days:
            env["recsys"][f"{key}N_DAYS"] = str(days[0])
    return env


def prepare_database(name: str, keep: bool) -> None:
    """Create the run's own database (dropping a previous one unless ``keep``)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        if not keep:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def _tree_rss(
    pid: int, peak: list[float], done: threading.Event, cap_mb: float
) -> None:
    """Sample the PSS summed over ``pid`` and its descendants into ``peak``.

    Kills the stage's whole session once the sum passes ``cap_mb``: the
    machine is shared, and a run must not take everyone's memory.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil ships with the lock
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not done.wait(0.5):
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    # PSS: memory a process shares (Ray's object store in
                    # /dev/shm, mapped by every worker) counts once in the sum.
                    total += proc.memory_full_info().pss
                except psutil.Error:
                    continue
        except psutil.Error:
            return
        peak[0] = max(peak[0], total / 2**20)
        if peak[0] > cap_mb:
            os.killpg(pid, signal.SIGKILL)
            return


def run_stage(
    workload: str,
    stage: str,
    home: Path,
    env: dict[str, str],
    limits: tuple[float, float],
) -> StageRun:
    """Run one stage in its own process; its time and peak memory.

    ``limits`` is (timeout in seconds, memory cap in MB). The cap is also each
    process's address-space limit, except for ``tune``: Ray reserves far more
    address space than it uses, so only the sampled cap holds it.
    """
    timeout, cap_mb = limits

    def limit_memory() -> None:
        if stage != "tune":
            cap = int(cap_mb * 2**20)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, "-m", "loopml.cli", "--profile", "production"]
    cmd += ["--home", str(home), stage, "-w", workload]
    log_path = home / f"scale-{workload}-{stage}.log"
    started = time.perf_counter()
    with log_path.open("wb") as out:
        # Its own session, so that a timeout kills Ray's processes too.
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limit_memory,
        )
        peak, done = [0.0], threading.Event()
        sampler = threading.Thread(
            target=_tree_rss, args=(proc.pid, peak, done, cap_mb), daemon=True
        )
        sampler.start()
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no stage running
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
            done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    code = proc.returncode
    verdict = "ok" if code == 0 else ("killed" if code < 0 else f"exit {code}")
    if peak[0] > cap_mb:
        verdict = f"over {cap_mb / 1024:.0f} GB"
    if code != 0:
        tail = log_path.read_text("utf-8", "replace").strip().splitlines()[-3:]
        print(f"{workload} {stage} failed ({verdict}):", *tail, sep="\n  ")
    return StageRun(workload, stage, verdict, seconds, usage.ru_maxrss / 1024, peak[0])


def drop_feast_project(home: Path, env: dict[str, str]) -> None:
    """Remove the run's Feast project from Redis and the SQL registry."""
    os.environ.update(env)
    from loopml.core.config import load_settings
    from loopml.feature_store.store import drop_project
    from loopml.sdk.feast import open_store

    drop_project(open_store(load_settings("production", home=home)))


def table(runs: list[StageRun]) -> str:
    """The Markdown table of the stages."""
    lines = [
        "| workload | stage | status | wall s | peak RSS, largest process MB"
        " | peak memory, process tree MB |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.workload} | {r.stage} | {r.status} | {r.seconds:.1f}"
            f" | {r.max_rss_mb:.0f} | {r.tree_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def section(args: argparse.Namespace, runs: list[StageRun], loads: str) -> str:
    """The doc section: sizes, machine, load, table and the command."""
    demand = args.demand_sizes
    recsys = args.recsys_sizes
    what = []
    if demand:
        what.append(
            f"demand {demand[0]} stores x {demand[1]} items = "
            f"{demand[0] * demand[1]} series x {demand[2]} days"
        )
    if recsys:
        days = recsys[2] if len(recsys) == 3 else 240
        what.append(
            f"recsys {recsys[0]} users x {recsys[1]} items x {days} days"
            f" (popularity_tail {POPULARITY_TAIL})"
        )
    command = "    .venv/bin/python benchmarks/scale.py"
    command += f" --demand {args.demand}" if demand else ""
    command += f" --recsys {args.recsys}" if recsys else ""
    if args.skip_tune:
        command += " --skip-tune"
    else:
        command += f" --tune-samples {args.tune_samples}"
    if args.until:
        command += f" --until {args.until}"
    if args.max_memory_gb != DEFAULT_MAX_MEMORY_GB:
        command += f" --max-memory-gb {args.max_memory_gb:g}"
    tune_text = "tune skipped" if args.skip_tune else f"tune {args.tune_samples} trials"
    total = sum(r.seconds for r in runs)
    return "\n".join(
        [
            f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} CPUs"
            f" ({_memory_gb()} GB RAM, shared); {'; '.join(what)};"
            f" {tune_text}. Load average (1, 5, 15 min): {loads}."
            f" Total {total / 60:.1f} min.",
            "",
            table(runs),
            "",
            command,
        ]
    )


def _memory_gb() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover
        return "?"
    return f"{pages / 2**30:.0f}"


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def _save(path: Path, project: str, runs: list[StageRun]) -> None:
    """Keep the figures so far in the home (``--resume`` reads them)."""
    state = {"project": project, "runs": [asdict(r) for r in runs]}
    path.write_text(json.dumps(state, indent=1), "utf-8")


def _measure(
    args: argparse.Namespace, workload: str, stage: str, home: Path, env: dict[str, str]
) -> StageRun:
    """One stage; ``tune`` gets a second try (a local Ray can fail to start
    within Ray's fixed 30 s on a busy machine)."""
    limits = (args.stage_timeout, args.max_memory_gb * 1024)
    run = run_stage(workload, stage, home, env, limits)
    if stage == "tune" and run.status != "ok":
        run = run_stage(workload, stage, home, env, limits)
        run.status += ", 2nd try"
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages; write the section; 1 if a stage failed."""
    args = parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="loopml-scale-"))
    home.mkdir(parents=True, exist_ok=True)
    saved = home / "scale-results.json"
    done: dict[tuple[str, str], StageRun] = {}
    earlier: dict[tuple[str, str], StageRun] = {}
    project = f"scale_{uuid.uuid4().hex[:8]}"
    state: dict[str, Any] = {"runs": []}
    if (args.resume or args.report) and saved.is_file():
        state = json.loads(saved.read_text("utf-8"))
        project = state["project"]
        for r in map(lambda fields: StageRun(**fields), state["runs"]):
            earlier[(r.workload, r.stage)] = r
            if r.status.startswith("ok"):
                done[(r.workload, r.stage)] = r
    if args.report:
        runs = [StageRun(**fields) for fields in state["runs"]]
        body = section(args, runs, f"{_load()} (at the report)")
        print(body)
        write_section(args.doc, SECTION, body)
        return 0
    prepare_database(args.database, args.keep_database or args.resume)
    uri = PG.format(db=args.database)
    base = dict(os.environ)
    base |= {
        "LOOPML_MLFLOW__TRACKING_URI": uri,
        "LOOPML_FEATURE_STORE__REGISTRY_PATH": uri,
        "LOOPML_FEATURE_STORE__PROJECT": project,
        "LOOPML_TUNE__NUM_SAMPLES": str(args.tune_samples),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    # Production refuses the public development key; a throw-away one here.
    base.setdefault("LOOPML_PSEUDONYM_KEY", secrets.token_hex(16))
    loads = [_load()]
    runs: list[StageRun] = []
    finished = False
    try:
        for workload, sized in workload_env(args).items():
            env = base | sized
            blocked = False
            asked = STAGES[: STAGES.index(args.until) + 1] if args.until else STAGES
            for stage in STAGES:
                if stage not in asked:
                    later = StageRun(workload, stage, "not asked", 0.0, 0.0, 0.0)
                    runs.append(earlier.get((workload, stage), later))
                    continue
                if blocked:
                    runs.append(StageRun(workload, stage, "not run", 0.0, 0.0, 0.0))
                    continue
                if args.skip_tune and stage == "tune" and (workload, stage) not in done:
                    skipped = StageRun(workload, stage, "skipped", 0.0, 0.0, 0.0)
                    runs.append(earlier.get((workload, stage), skipped))
                    continue
                run = done.get((workload, stage)) or _measure(
                    args, workload, stage, home, env
                )
                print(
                    f"{workload:7} {stage:9} {run.status:8} {run.seconds:8.1f} s"
                    f" {run.max_rss_mb:7.0f} MB {run.tree_rss_mb:7.0f} MB tree",
                    flush=True,
                )
                runs.append(run)
                _save(saved, project, runs)
                # Tuning is optional: train goes on with the profile's values.
                blocked = not run.status.startswith("ok") and stage != "tune"
            loads.append(_load())
        finished = True
    finally:
        # A run in a given home that was interrupted or had a stage fail
        # keeps its project, so that --resume finds the features it wrote.
        complete = finished and all(r.status.startswith("ok") for r in runs)
        if not complete and args.home is not None:
            print(f"kept Feast project {project} in {home} for --resume")
        else:
            try:
                drop_feast_project(home, base)
            except Exception as error:  # noqa: BLE001 - report, keep the figures
                print(f"could not drop Feast project {project}: {error}")
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    body = section(args, runs, " / ".join(loads))
    print(body)
    if not args.no_doc:
        write_section(args.doc, SECTION, body)
    fine = ("skipped", "not asked")
    return 0 if all(r.status.startswith("ok") or r.status in fine for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
