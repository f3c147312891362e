"""Benchmark regression check: re-run the CI-sized benchmarks, compare ratios.

Runs each benchmark at a small size (``SUITE``; each writes its figures with
``--json``), turns the figures into RATIOS to something measured in the same
run on the same machine (loopml vs ``mlflow models serve``, loopml's top-k vs
the bare matrix product, parallel vs sequential tuning, achieved vs target
request rate), and compares them with the ratios recorded in
``benchmarks/baseline.json``. Absolute times are never compared: the machine
is shared and its load varies, while a ratio of two things timed in turns
mostly cancels that out.

A metric regresses when it got worse by more than ``--tolerance`` (default
0.25, i.e. 25 %): ``now / baseline`` for lower-is-better ratios (latency,
training time, memory), ``baseline / now`` for higher-is-better ones
(throughput). Errors under load must stay 0. A metric the baseline has but
this run lacks (a benchmark failed) is a failure too; a new metric is only
reported. Exit code 1 on any failure, with a table saying which.

Not a test (``make test`` does not run it); ``make bench-check`` does::

    .venv/bin/python benchmarks/bench_check.py                # check
    .venv/bin/python benchmarks/bench_check.py --record       # new baseline
    .venv/bin/python benchmarks/bench_check.py --only load --tolerance 0.5
    .venv/bin/python benchmarks/bench_check.py --from-dir DIR # reuse JSON files
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
Better = Literal["lower", "higher", "zero"]

#: name -> the script's CI-sized arguments (``--json PATH`` is added).
SUITE: dict[str, list[str]] = {
    "load": ["load.py", "--seconds", "20", "--rate", "10", "--compare-seconds", "8"],
    # Without BentoML: its venv would make the check install from the index.
    "serving": [
        *("serving.py", "--seconds", "3", "--rounds", "1"),
        *("--no-workers-2", "--no-bentoml"),
    ],
    "batch_scoring": [
        "batch_scoring.py",
        *("--users", "20000", "--items", "2000", "--repeats", "2", "--sample", "200"),
    ],
    "tuning": ["tuning.py", "--trials", "4", "--sizes", "2x4"],
}


@dataclass(frozen=True)
class Metric:
    """One ratio (or count) and which way is better."""

    value: float
    better: Better
    kind: str  # training time, serving latency, throughput, memory, errors


@dataclass(frozen=True)
class Verdict:
    """A metric's baseline, current value and what the change means."""

    name: str
    kind: str
    baseline: float | None
    current: float | None
    worse_by: float | None  # 0.3: 30 % worse; negative: better
    status: Literal["ok", "regression", "missing", "new"]


def compare(
    baseline: dict[str, Metric], current: dict[str, Metric], tolerance: float
) -> list[Verdict]:
    """Judge every metric of ``baseline`` and ``current``.

    Args:
        baseline: the recorded metrics.
        current: this run's metrics.
        tolerance: how much worse (0.25: 25 %) a ratio may get.

    Returns:
        One verdict per metric name, baseline order first, new ones last.
    """
    out = []
    for name in [*baseline, *(n for n in current if n not in baseline)]:
        old, new = baseline.get(name), current.get(name)
        if new is None and old is not None:
            out.append(Verdict(name, old.kind, old.value, None, None, "missing"))
            continue
        if new is None:
            continue
        if old is None:
            out.append(Verdict(name, new.kind, None, new.value, None, "new"))
            continue
        worse = worse_by(old.value, new.value, new.better)
        failed = new.value > 0 if new.better == "zero" else worse > tolerance
        out.append(
            Verdict(
                name,
                new.kind,
                old.value,
                new.value,
                worse,
                "regression" if failed else "ok",
            )
        )
    return out


def worse_by(old: float, new: float, better: Better) -> float:
    """How much worse ``new`` is than ``old`` (0.25: 25 % worse; < 0: better)."""
    if better == "zero":
        return new - old
    if better == "higher":
        old, new = new, old  # a drop in throughput is a rise in its inverse
    if old <= 0:
        return 0.0 if new <= 0 else math.inf
    return new / old - 1


def failed(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts that fail the check."""
    return [v for v in verdicts if v.status in ("regression", "missing")]


def table(verdicts: list[Verdict], tolerance: float) -> str:
    """A Markdown table of the verdicts."""

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    lines = [
        f"| metric | kind | baseline | now | worse by (tolerance {tolerance:.0%}) "
        "| status |",
        "|---|---|---:|---:|---:|---|",
    ]
    for v in verdicts:
        change = "-" if v.worse_by is None else f"{v.worse_by:+.0%}"
        if v.worse_by is not None and v.kind == "errors":
            change = f"{v.worse_by:+.0f}"
        status = v.status.upper() if v.status in ("regression", "missing") else v.status
        lines.append(
            f"| {v.name} | {v.kind} | {num(v.baseline)} | {num(v.current)} "
            f"| {change} | {status} |"
        )
    return "\n".join(lines)


# -- figures (each benchmark's --json) -> ratios ---------------------------------


def load_metrics(f: dict[str, Any]) -> dict[str, Metric]:
    """load.py: errors across the reload, achieved rate, latency vs mlflow."""
    out = {
        "load: errors + old versions after reload": Metric(
            float(f["all"]["errors"] + f["old_after_reload"]), "zero", "errors"
        ),
        "load: achieved / target rate": Metric(
            f["achieved_rate"] / f["rate"], "higher", "throughput"
        ),
    }
    compared = f.get("compare") or {}
    if compared:
        base = compared["mlflow /invocations"]["p50"]
        for name, row in compared.items():
            if not name.startswith("mlflow"):
                out[f"load: {name} p50 / mlflow p50"] = Metric(
                    row["p50"] / base, "lower", "serving latency"
                )
    return out


def serving_metrics(f: dict[str, Any]) -> dict[str, Metric]:
    """serving.py: each target's p50 (c=1) and req/s (c=16) vs the floor app."""
    floors = [t for t in f["targets"] if t["server"] == "floor"]
    base = {t["rows"]: t for t in floors if t["route"] == "/predict"}
    out = {}
    for t in f["targets"]:
        if t["server"] in ("floor", "loopml-w2"):
            continue
        b = base[t["rows"]]
        label = f"serving: {t['label']} {t['rows']} row(s)"
        out[f"{label} p50 / floor"] = Metric(
            t["p50"] / b["p50"], "lower", "serving latency"
        )
        out[f"{label} req/s / floor"] = Metric(
            t["rps"] / b["rps"], "higher", "throughput"
        )
    rss = f["rss_mb"]
    out["serving: RSS loopml / mlflow (serving process)"] = Metric(
        rss["loopml"]["server"] / rss["mlflow"]["server"], "lower", "memory"
    )
    return out


def batch_scoring_metrics(f: dict[str, Any]) -> dict[str, Metric]:
    """batch_scoring.py: loopml's top-k vs the bare matrix product.

    Not vs implicit: at CI size implicit's own threads made its time swing
    4x between two runs on the shared machine (0.021 vs 0.088), noise that a
    25 % tolerance cannot absorb.
    """
    ours = f["fastest"]["loopml top_k_inner"]
    return {
        "batch: top_k_inner / matrix product alone": Metric(
            ours / f["floor"], "lower", "scoring time"
        ),
    }


def tuning_metrics(f: dict[str, Any]) -> dict[str, Metric]:
    """tuning.py: parallel tuning wall time vs sequential, per data size."""
    out = {}
    for size, s in f.items():
        for mode in ("pool", "ray_fit"):
            out[f"tuning {size}: {mode} / sequential wall time"] = Metric(
                s[mode] / s["sequential"], "lower", "training time"
            )
    return out


EXTRACT: dict[str, Callable[[dict[str, Any]], dict[str, Metric]]] = {
    "load": load_metrics,
    "serving": serving_metrics,
    "batch_scoring": batch_scoring_metrics,
    "tuning": tuning_metrics,
}


# -- running and storing ---------------------------------------------------------


def run_suite(names: list[str], folder: Path) -> dict[str, str]:
    """Run each benchmark with ``--json folder/<name>.json``; log per benchmark.

    Returns:
        For each benchmark that failed to produce its JSON, why.
    """
    problems = {}
    for name in names:
        script, *options = SUITE[name]
        out = folder / f"{name}.json"
        log = folder / f"{name}.log"
        print(f"running {name} (load average {loadavg()}) ...", flush=True)
        started = time.perf_counter()
        with log.open("wb") as sink:
            code = subprocess.run(
                [sys.executable, str(HERE / script), *options, "--no-write"]
                + ["--json", str(out)],
                cwd=HERE.parent,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=3600,
            ).returncode
        print(f"  {name}: exit {code} in {time.perf_counter() - started:.0f} s")
        if not out.is_file():
            # The folder may be temporary: show the end of the log now.
            print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
            problems[name] = f"exit {code}, no figures"
    return problems


def measure(names: list[str], folder: Path) -> dict[str, Metric]:
    """Every metric of the benchmarks whose JSON is in ``folder``."""
    metrics: dict[str, Metric] = {}
    for name in names:
        path = folder / f"{name}.json"
        if path.is_file():
            metrics.update(EXTRACT[name](json.loads(path.read_text())))
    return metrics


def read_baseline(path: Path) -> dict[str, Metric]:
    """The recorded metrics (empty when there is no baseline yet)."""
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text())["metrics"]
    return {name: Metric(**m) for name, m in stored.items()}


def write_baseline(
    path: Path, metrics: dict[str, Metric], names: list[str], started: str
) -> None:
    """Record ``metrics`` (merged over the stored ones) and the conditions.

    Args:
        path: the baseline file.
        metrics: this run's metrics.
        names: the benchmarks run.
        started: the load average when the run started.
    """
    # The benchmarks run replace all their metrics; the others are kept.
    kept = {n: m for n, m in read_baseline(path).items() if _bench_of(n) not in names}
    merged = {**kept, **metrics}
    old = json.loads(path.read_text()) if path.is_file() else {}
    commands = {n: c for n, c in old.get("commands", {}).items() if n not in names} | {
        n: " ".join(["benchmarks/" + SUITE[n][0], *SUITE[n][1:]]) for n in names
    }
    machine = (
        f"{os.cpu_count()} CPUs shared with other work, load average "
        f"(1/5/15 min) {started} at the start, {loadavg()} at the end"
    )
    today = dt.date.today().isoformat()
    doc: dict[str, Any] = {"recorded": today, "machine": machine}
    if len(names) < len(SUITE):
        # A partial recording keeps the whole suite's date and machine, and
        # says when and how each benchmark recorded on its own was run.
        doc = {k: old.get(k, v) for k, v in doc.items()}
        partial = {n: v for n, v in old.get("partial", {}).items() if n not in names}
        doc["partial"] = partial | {n: f"{today}: {machine}" for n in names}
    doc["commands"] = dict(sorted(commands.items()))
    doc["metrics"] = {name: asdict(m) for name, m in sorted(merged.items())}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Run (or read), compare, print; exit 1 on a regression."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=list(SUITE), default=list(SUITE))
    parser.add_argument("--tolerance", type=float, default=0.25)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument(
        "--record", action="store_true", help="store this run as the baseline"
    )
    parser.add_argument(
        "--from-dir", type=Path, help="read <name>.json from here instead of running"
    )
    args = parser.parse_args(argv)
    started = loadavg()
    print(f"{os.cpu_count()} CPUs, load average {started} at the start")
    with tempfile.TemporaryDirectory(prefix="loopml-bench-check-") as tmp:
        folder = args.from_dir or Path(tmp)
        problems = {} if args.from_dir else run_suite(args.only, folder)
        current = measure(args.only, folder)
    for name, why in problems.items():
        print(f"{name}: {why}", file=sys.stderr)
    if args.record:
        if problems:
            print("not recorded: some benchmarks failed", file=sys.stderr)
            return 1
        write_baseline(args.baseline, current, args.only, started)
        print(f"recorded {len(current)} metrics in {args.baseline}")
        print(table(compare(current, current, args.tolerance), args.tolerance))
        return 0
    baseline = read_baseline(args.baseline)
    wanted = {n: m for n, m in baseline.items() if _bench_of(n) in args.only}
    verdicts = compare(wanted, current, args.tolerance)
    print(table(verdicts, args.tolerance))
    print(f"load average {loadavg()} at the end")
    bad = failed(verdicts)
    if bad:
        print(f"{len(bad)} regression(s): " + ", ".join(v.name for v in bad))
        return 1
    return 0


def _bench_of(metric: str) -> str:
    """Which benchmark a metric name comes from (its prefix)."""
    prefix = metric.split(":", 1)[0].split()[0]
    return {"batch": "batch_scoring"}.get(prefix, prefix)


if __name__ == "__main__":
    sys.exit(main())
