"""Online lookup latency: the Feast SDK vs loopml's ``OnlineFeatures.state_for``.

Publishes generated demand data (100 series) through the ``features`` stage
into a temporary home, then times, for 1 and 50 entities, on SQLite and (when
reachable) Redis:

* ``feast get_online_features``: the SDK call alone (43 features, 2 views);
* ``feast + to_dict()``: the SDK call and reading its values out;
* ``loopml state_for``: what the API calls (the above + a typed DataFrame).

Not a test: run on demand; the Markdown table replaces this benchmark's
section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/online_lookup.py --iterations 3000
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from doc_sections import write_section
from feast import FeatureStore

from loopml.core.config import load_settings
from loopml.core.io import write_parquet
from loopml.core.runtime import configure_environment
from loopml.feature_store.store import drop_project
from loopml.sdk.feast import FeatureStoreSettings, open_store
from loopml.stages import features as features_stage
from loopml.workloads.demand import data
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    PRICE_VIEW,
    STATE_FEATURES,
    STATE_VIEW,
)
from loopml.workloads.demand.online import OnlineFeatures

SECTION = "online-lookup"
REFS = [f"{STATE_VIEW}:origin", *(f"{STATE_VIEW}:{n}" for n in STATE_FEATURES)]
REFS += [f"{PRICE_VIEW}:last_price"]
COMMAND = ".venv/bin/python benchmarks/online_lookup.py --iterations {n}"


def interleaved(
    calls: list[Callable[[], object]], iterations: int
) -> list[tuple[float, float]]:
    """p50 and p99 (ms) of each call, timed in turns after a warm-up.

    The calls alternate within every iteration, so background load on a
    shared machine hits each path alike and their difference stays fair.
    """
    for _ in range(max(iterations // 10, 50)):
        for call in calls:
            call()
    gc.collect()
    times = np.empty((len(calls), iterations))
    for i in range(iterations):
        for j, call in enumerate(calls):
            started = time.perf_counter()
            call()
            times[j, i] = time.perf_counter() - started
    stats = np.percentile(times * 1e3, [50, 99], axis=1).T
    return [(float(p50), float(p99)) for p50, p99 in stats]


def redis_reachable() -> bool:
    """Whether Redis answers on 127.0.0.1:6379."""
    try:
        import redis

        return bool(redis.Redis(socket_timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means "skip Redis"
        return False


def measure(online: OnlineFeatures, iterations: int) -> list[list[str]]:
    """Table rows for one backend: each path x entity count."""
    rng = np.random.default_rng(0)
    keys = [(f"S{s:02d}", f"I{i:03d}") for s in range(1, 6) for i in range(1, 21)]
    rows: list[list[str]] = []
    for n in (1, 50):
        asked = [keys[k] for k in rng.choice(len(keys), n, replace=False)]
        ids = [f"{s}:{i}" for s, i in asked]

        def sdk(ids: list[str] = ids, store: FeatureStore = online.store) -> object:
            return store.get_online_features(features=REFS, entity_rows={JOIN_KEY: ids})

        def sdk_dict(ids: list[str] = ids) -> object:
            return sdk(ids).to_dict()  # type: ignore[attr-defined]

        def loopml(asked: list[tuple[str, str]] = asked) -> object:
            return online.state_for(asked)

        names = ["feast get_online_features", "feast + to_dict()", "loopml state_for"]
        stats = interleaved([sdk, sdk_dict, loopml], iterations)
        base = stats[0]
        for name, (p50, p99) in zip(names, stats, strict=True):
            extra = f"+{p50 - base[0]:.3f} / {p99 - base[1]:+.3f}"
            rows.append([name, str(n), f"{p50:.3f}", f"{p99:.3f}", extra])
    return rows


def main() -> None:
    """Publish, measure each backend, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        os.environ.setdefault(
            "LOOPML_CONFIG_DIR", str(Path(__file__).parents[1] / "configs")
        )
        settings = load_settings("default", home=Path(tmp))
        configure_environment(settings.home)
        sales = data.generate(n_stores=5, n_items=20, n_days=120)
        write_parquet(sales, settings.data_dir("demand") / "validated.parquet")
        backends = [("SQLite", FeatureStoreSettings())]
        if redis_reachable():
            project = f"bench_{uuid.uuid4().hex[:8]}"
            backends.append(
                ("Redis", FeatureStoreSettings(online="redis", project=project))
            )
        table = []
        for label, fs in backends:
            features_stage.run(settings, "demand", fs)
            online = OnlineFeatures(open_store(settings, fs))
            try:
                table += [[label, *row] for row in measure(online, args.iterations)]
            finally:
                if fs.online == "redis":
                    drop_project(online.store)
    header = "| online store | path | entities | p50 ms | p99 ms | vs SDK (p50 / p99) |"
    lines = [header, "|---|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    from feast import __version__ as feast_version

    body = "\n".join(
        [
            "## Online feature lookup (demand state, 43 features)",
            "",
            f"Measured {dt.date.today()} on {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, feast "
            f"{feast_version}; {args.iterations} calls per path, the three paths "
            "timed in turns after a warm-up; file registry (cached); 100 "
            "series materialized; Redis on 127.0.0.1.",
            "",
            *lines,
            "",
            f"Reproduce: `{COMMAND.format(n=args.iterations)}`",
        ]
    )
    print(body)
    write_section(args.output, SECTION, body)


if __name__ == "__main__":
    main()
