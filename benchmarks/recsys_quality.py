"""Recommendation quality: the ML recommender vs the rule-based service it replaces.

Runs ``loopml run -w recsys`` in a throwaway home for each dataset (the seeded
generator at its default size, and UCI Online Retail from
``../shared/datasets``), then reads the evaluate stage's metrics: the
time-split holdout (last ``recsys.test_days`` days) on which the two-stage
ranker, ``segment_popularity`` (the rule-based baseline: most popular in the
user's segment), ``global_popularity`` and ALS alone are all scored. Writes
the table between the ``recsys-quality`` markers of ``docs/recsys.md``::

    .venv/bin/python benchmarks/recsys_quality.py
    .venv/bin/python benchmarks/recsys_quality.py --datasets generated --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from doc_sections import write_section

REPO = Path(__file__).resolve().parents[1]
SECTION = "recsys-quality"
MODELS = {
    "two-stage ranker (ALS + LambdaRank)": "",
    "segment_popularity (rule-based baseline)": "baseline_",
    "global_popularity": "global_popularity_",
    "ALS alone": "als_",
}
COLUMNS = ["ndcg_at_10", "recall_at_10", "map_at_10", "ndcg_at_10_cold", "coverage"]


def measure(dataset: str, home: Path) -> dict[str, float]:
    """Run the recsys loop on ``dataset`` in ``home``; return evaluate's metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    loopml = Path(sys.executable).parent / "loopml"
    command = [str(loopml), "run", "-w", "recsys", "--dataset", dataset]
    subprocess.run(command, cwd=REPO, env=env, check=True)
    evaluated = json.loads((home / "state" / "recsys" / "evaluate.json").read_text())
    return {k: float(v) for k, v in evaluated["metrics"].items()}


def table(dataset: str, metrics: dict[str, float]) -> list[str]:
    """Markdown rows of one dataset: every model, lift of the ranker."""
    lines = [
        f"### {dataset} ({int(metrics['n_test_users']):,} test users, "
        f"{int(metrics['n_cold_users']):,} of them cold)",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, prefix in MODELS.items():
        cells = [f"{metrics.get(prefix + c, float('nan')):.4f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lift = metrics["ndcg_at_10"] / metrics["baseline_ndcg_at_10"] - 1
    lines += ["", f"NDCG@10 lift of the ranker over segment_popularity: {lift:+.1%}."]
    return lines


def main() -> None:
    """Measure each dataset, print the tables and write them to the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["generated", "online-retail"])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "recsys.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = [
        f"Measured {dt.date.today()} with `loopml run -w recsys --dataset D` in "
        "a fresh home per dataset (default settings, seed 42); holdout = the "
        "last 28 days; cold = users with fewer than 3 earlier interactions.",
        "",
    ]
    for dataset in args.datasets:
        with tempfile.TemporaryDirectory(prefix="loopml-recsys-") as tmp:
            metrics = measure(dataset, Path(tmp) / "home")
        body += [*table(dataset, metrics), ""]
    options = (
        ""
        if args.datasets == ["generated", "online-retail"]
        else (" --datasets " + " ".join(args.datasets))
    )
    body.append(f"Reproduce: `.venv/bin/python benchmarks/recsys_quality.py{options}`")
    text = "\n".join(body)
    print(text)
    if args.no_write:
        return
    write_section(args.output, SECTION, text)


if __name__ == "__main__":
    main()
