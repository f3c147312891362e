"""Recommendation quality: the two-stage ranker against every baseline, two protocols.

For each dataset (the seeded generator at its default size, UCI Online Retail
from ``../shared/datasets``, and a seeded MovieLens-100K-shaped fixture
written to a temporary folder) this loads the data as ``loopml run`` does and
runs the recsys evaluate stage (``RecsysWorkload.evaluate``): the two-stage
ranker, ``segment_popularity`` (the rule-based baseline: most popular in the
user's segment), ``global_popularity`` and ALS alone, each fitted and scored
in both protocols:

* the global time cut: trained before the last ``recsys.test_days`` days,
  judged on them (users without training history included);
* leave-last-out (``lolo_``): each user with a history loses their last item,
  trained on the rest.

Prints the tables and writes them between the ``recsys-quality`` markers of
``docs/recsys.md``::

    .venv/bin/python benchmarks/recsys_quality.py
    .venv/bin/python benchmarks/recsys_quality.py --datasets generated --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from doc_sections import write_section

from loopml.core.config import load_settings
from loopml.workloads.recsys.evaluate import LOLO_PREFIX, N_LAST
from loopml.workloads.recsys.movielens_fixture import write_movielens
from loopml.workloads.recsys.workload import RecsysWorkload

REPO = Path(__file__).resolve().parents[1]
SECTION = "recsys-quality"
DATASETS = ("generated", "online-retail", "movielens")
ONLINE_RETAIL = REPO.parent / "shared" / "datasets" / "online_retail"
MODELS = {
    "two-stage ranker": "",
    "segment_popularity (baseline)": "baseline_",
    "global_popularity": "global_popularity_",
    "ALS alone": "als_",
}
PROTOCOLS = {"global time cut": "", f"leave-last-{N_LAST}-out": LOLO_PREFIX}
# Each user slice, and the count of its users (None: test users - cold).
SLICES = {
    "ndcg_at_10_cold": "n_cold_users",
    "ndcg_at_10_new": "n_new_users",
    "ndcg_at_10_warm": None,
}
COLUMNS = {
    "NDCG@10": "ndcg_at_10",
    "recall@10": "recall_at_10",
    "coverage@10": "coverage",
    "NDCG@10 cold": "ndcg_at_10_cold",
    "NDCG@10 new": "ndcg_at_10_new",
    "NDCG@10 warm": "ndcg_at_10_warm",
}


def measure(dataset: str, folder: Path) -> tuple[dict[str, float], float]:
    """Evaluate ``dataset`` as the evaluate stage does; metrics and seconds."""
    options: dict[str, Any] = {"dataset": dataset}
    if dataset == "online-retail":
        options["data_path"] = ONLINE_RETAIL / "online_retail.parquet"
    if dataset == "movielens":
        options["data_path"] = write_movielens(folder / "ml-100k-shaped")
    settings = load_settings("default", workloads={"recsys": options})
    workload = RecsysWorkload()
    raw = workload.validate(workload.load_raw(settings))
    started = time.perf_counter()
    evaluated = workload.evaluate(settings, raw)
    return evaluated.metrics, time.perf_counter() - started


def _cell(metrics: dict[str, float], prefix: str, model: str, key: str) -> str:
    """A formatted metric; ``-`` for a slice without users."""
    if key in SLICES:
        count = SLICES[key]
        users = (
            metrics[f"{prefix}{count}"]
            if count
            else metrics[f"{prefix}n_test_users"] - metrics[f"{prefix}n_cold_users"]
        )
        if not users:
            return "-"
    value = metrics.get(model + prefix + key)
    return "-" if value is None else f"{value:.4f}"


def table(dataset: str, metrics: dict[str, float], seconds: float) -> list[str]:
    """Markdown of one dataset: both protocols, every model, the slices."""
    lines = [f"### {dataset} (evaluated in {seconds:.0f} s)", ""]
    for protocol, prefix in PROTOCOLS.items():
        users = int(metrics[f"{prefix}n_test_users"])
        cold = int(metrics[f"{prefix}n_cold_users"])
        new = int(metrics[f"{prefix}n_new_users"])
        lines += [
            f"**{protocol}**: {users:,} test users; {cold:,} cold (fewer than "
            f"3 training items), of whom {new:,} without any training history "
            f"({new / users:.0%} of the test users).",
            "",
            "| model | " + " | ".join(COLUMNS) + " |",
            "|---|" + "---:|" * len(COLUMNS),
        ]
        for name, model in MODELS.items():
            cells = [_cell(metrics, prefix, model, key) for key in COLUMNS.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        segments = [
            key.removeprefix(prefix)
            for key in metrics
            if key.startswith(f"{prefix}ndcg_at_10_segment_")
        ]
        below = sorted(
            key.rsplit("_segment_", 1)[1]
            for key in segments
            if metrics[prefix + key] < metrics[f"baseline_{prefix}{key}"]
        )
        lift = metrics[f"{prefix}ndcg_at_10"] / metrics[f"baseline_{prefix}ndcg_at_10"]
        lines += [
            "",
            f"NDCG@10 lift over segment_popularity {lift - 1:+.1%}; the ranker is "
            f"below it in {len(below)} of {len(segments)} segments"
            + (f" ({', '.join(below)})." if below else "."),
            "",
        ]
    return lines


def main() -> None:
    """Measure each dataset, print the tables and write them to the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "recsys.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    # The profile's defaults, whatever this shell exports.
    for name in [n for n in os.environ if n.startswith("LOOPML_")]:
        del os.environ[name]
    options = (
        ""
        if args.datasets == list(DATASETS)
        else " --datasets " + " ".join(args.datasets)
    )
    body = [
        f"Measured {dt.date.today()} with "
        f"`.venv/bin/python benchmarks/recsys_quality.py{options}` (the evaluate "
        "stage's code on the default profile, seed 42; the global time cut "
        "holds out the last 28 days; Online Retail from "
        "`../shared/datasets`, MovieLens from `write_movielens()` at its "
        "default 943 users x 1,682 movies x 215 days). Cold: fewer than 3 "
        "training items; new: none; warm: the others. Coverage: share of the "
        "training catalogue in at least one top-10 list.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="loopml-recsys-") as tmp:
        for dataset in args.datasets:
            metrics, seconds = measure(dataset, Path(tmp))
            body += table(dataset, metrics, seconds)
            print(f"measured {dataset} in {seconds:.0f} s", file=sys.stderr)
    text = "\n".join(body).rstrip() + "\n"
    print(text)
    if not args.no_write:
        write_section(args.output, SECTION, text.rstrip())


if __name__ == "__main__":
    main()
