"""Batch top-k: loopml's exact path vs the float32 matrix product alone.

Scores every user against every item by inner product (64 factors, float32),
already-consumed items excluded (a few per user), and keeps the top 10:

* ``matrix product alone``: the float32 products in blocks, nothing else,
  several ways (large blocks with BLAS's own threads; ``top_k_inner``'s
  blocks and threads, and blocks of 256 users, its former default, in as
  many threads); the fastest is the floor any exact method pays.
* ``loopml top_k_inner``: what the batch stage runs (``ALSRecommender`` and
  the ranker's candidate generation): blocked products, exclusion, the
  folded exact top-k, in threads.
* ``implicit ALS.recommend (batch)``: what a user of implicit would call on
  the same factors (``filter_already_liked_items=True``), implicit's C++
  top-k in its own threads; the tool loopml's batch replaces.
* ``argpartition per block`` (``--argpartition``): the textbook path, the
  product then ``np.argpartition`` over the whole catalogue.
* ``faiss IndexFlatIP`` (when ``faiss-cpu`` is importable; not a loopml
  dependency): exact search for ``k + most consumed`` then exclusion.
* ``--ray`` (instead of implicit, 50-90 s a run at 200k users on the
  loaded machine): the batch stage's Ray engine (``loopml.stages.batch_ray``)
  with 1 and then 2 workers (tasks at once) on a local Ray started once:
  the factors put in the object store once per run, each block a task
  running ``top_k_inner`` (one thread) on ``--block-users`` users, the
  frames streamed back in order. Worker processes stay warm between runs
  (as on a cluster); the first run pays their start-up. Then what a Ray
  user would write instead, Ray Data's ``map_batches`` with an actor pool
  of 2 on the same blocks.
  Written to its own section
  (``batch-ray``); the single-process paths run in the same turns.

The paths run in turns, ``--repeats`` times, so background load on a shared
machine hits each alike; the table shows the fastest and the median run.
Exactness: a sample of users is brute-forced (full sort of the float64
scores) and must give the same items and scores.

Not a test: run on demand; the Markdown table replaces this benchmark's
section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/batch_scoring.py
    .venv/bin/python benchmarks/batch_scoring.py --users 20000 --items 2000 \
        --no-write   # a quick look
    .venv/bin/python benchmarks/batch_scoring.py --users 200000 --ray
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from doc_sections import write_section
from threadpoolctl import threadpool_limits

from loopml.sdk.capabilities import BatchScorer, BatchWork
from loopml.workloads.recsys.scoring import BLOCK_USERS, top_k_inner

SECTION = "batch-scoring"
RAY_SECTION = "batch-ray"
COMMAND = ".venv/bin/python benchmarks/batch_scoring.py"
F32 = npt.NDArray[np.float32]
Result = tuple[npt.NDArray[np.int64], F32]


def make_data(
    users: int, items: int, factors: int, consumed: float, seed: int
) -> tuple[F32, F32, sp.csr_matrix]:
    """Random factors and a Poisson(``consumed``) set of items per user."""
    rng = np.random.default_rng(seed)
    user_factors = rng.standard_normal((users, factors), dtype=np.float32)
    item_factors = rng.standard_normal((items, factors), dtype=np.float32)
    counts = rng.poisson(consumed, users)
    rows = np.repeat(np.arange(users), counts)
    cols = rng.integers(0, items, counts.sum())
    seen = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(users, items)
    )
    seen.sum_duplicates()
    return user_factors, item_factors, seen


def product_alone(
    user_factors: F32, item_factors: F32, block: int, threads: int = 1
) -> None:
    """Only the blocked float32 products, into reused buffers.

    ``threads > 1`` splits the users as ``top_k_inner`` does: the blocks are
    handed out to the threads in turn, one Python thread each with
    single-threaded BLAS.
    """
    items_t = np.ascontiguousarray(item_factors.T)
    n = len(user_factors)
    starts = iter(range(0, n, block))
    lock = threading.Lock()

    def work() -> None:
        buffer = np.empty((block, items_t.shape[1]), np.float32)
        while True:
            with lock:
                start = next(starts, None)
            if start is None:
                return
            part = user_factors[start : start + block]
            np.matmul(part, items_t, out=buffer[: len(part)])

    if threads == 1:
        work()
        return
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(work) for _ in range(threads)]:
            done.result()


def argpartition_path(
    user_factors: F32, item_factors: F32, seen: sp.csr_matrix, k: int
) -> Result:
    """The product, exclusion, then argpartition over the whole catalogue."""
    items_t = np.ascontiguousarray(item_factors.T)
    out_cols = np.empty((len(user_factors), k), np.int64)
    out_vals = np.empty((len(user_factors), k), np.float32)
    for start in range(0, len(user_factors), 1024):
        scores = user_factors[start : start + 1024] @ items_t
        excluded = seen[start : start + 1024].tocoo()
        scores[excluded.row, excluded.col] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-values, axis=1)
        out_cols[start : start + len(scores)] = np.take_along_axis(part, order, 1)
        out_vals[start : start + len(scores)] = np.take_along_axis(values, order, 1)
    return out_cols, out_vals


def implicit_path(
    user_factors: F32, item_factors: F32, seen: sp.csr_matrix, k: int
) -> Result:
    """implicit's own batch ``recommend`` on the same factors (its C++ top-k)."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=user_factors.shape[1], random_state=0)
    model.user_factors = user_factors
    model.item_factors = item_factors
    columns, values = model.recommend(
        np.arange(len(user_factors)), seen, N=k, filter_already_liked_items=True
    )
    return columns.astype(np.int64), values.astype(np.float32)


def faiss_path(
    user_factors: F32, item_factors: F32, seen: sp.csr_matrix, k: int
) -> Result:
    """faiss exact inner-product search for k + most consumed, then exclusion."""
    import faiss

    index = faiss.IndexFlatIP(item_factors.shape[1])
    index.add(item_factors)
    extra = int(np.diff(seen.indptr).max())
    values, columns = index.search(user_factors, k + extra)
    rows = np.repeat(np.arange(len(user_factors)), columns.shape[1])
    hit = np.asarray(seen[rows, columns.ravel()]).reshape(columns.shape) != 0
    rank = np.cumsum(~hit, axis=1)
    keep = ~hit & (rank <= k)
    return (
        columns[keep].reshape(-1, k).astype(np.int64),
        values[keep].reshape(-1, k),
    )


class FactorScorer(BatchScorer):
    """The recsys batch on bare factors: a block of user rows, their top-k.

    The model is ``(user_factors, item_factors, seen)``; a block's keys are
    user row numbers, so it slices the factors and scores them with
    ``top_k_inner``, as ``RecsysBatchScorer`` does through the ALS model.
    """

    table = "bench"
    schema: ClassVar[pa.Schema] = pa.schema([("user", pa.int64())])
    key_columns = ("user",)

    def score_block(self, model: Any, shared: Any, keys: pd.DataFrame) -> pd.DataFrame:
        """Top ``shared`` (``k``) items of the block's users, long format."""
        user_factors, item_factors, seen = model
        first, last = int(keys["user"].iloc[0]), int(keys["user"].iloc[-1]) + 1
        columns, values = top_k_inner(
            user_factors[first:last], item_factors, shared, exclude=seen[first:last]
        )
        return pd.DataFrame(
            {
                "user": np.repeat(np.arange(first, last), columns.shape[1]),
                "item": columns.ravel(),
                "score": values.ravel(),
            }
        )


def ray_path(
    user_factors: F32,
    item_factors: F32,
    seen: sp.csr_matrix,
    k: int,
    workers: int,
    block_users: int,
    home: Path,
) -> Result:
    """The batch stage's Ray engine with ``workers`` worker processes."""
    from loopml.core.config import load_settings
    from loopml.stages.batch_ray import ray_frames

    os.environ["LOOPML_HOME"] = str(home)
    settings = load_settings("default")
    settings = settings.model_copy(
        update={
            "batch": settings.batch.model_copy(
                update={"ray_workers": workers, "block_rows": block_users}
            )
        }
    )
    work = BatchWork(pd.DataFrame({"user": np.arange(len(user_factors))}), shared=k)
    model = (user_factors, item_factors, seen)
    frames = list(ray_frames(FactorScorer(), model, work, settings))
    items = np.concatenate([f["item"].to_numpy() for f in frames])
    scores = np.concatenate([f["score"].to_numpy() for f in frames])
    return items.reshape(-1, k).astype(np.int64), scores.reshape(-1, k)


class _DataScorer:
    """Ray Data's callable class: the model from the object store once."""

    def __init__(self, refs: list[Any]) -> None:
        import ray

        self.model, self.k = ray.get(refs)

    def __call__(self, keys: pd.DataFrame) -> pd.DataFrame:
        return FactorScorer().score_block(self.model, self.k, keys)


def ray_data_path(
    user_factors: F32,
    item_factors: F32,
    seen: sp.csr_matrix,
    k: int,
    workers: int,
    block_users: int,
) -> Result:
    """What a Ray user would write instead: ``map_batches`` over the same
    blocks with an actor pool of ``workers``, order preserved."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    users = np.arange(len(user_factors))
    parts = [
        pd.DataFrame({"user": users[start : start + block_users]})
        for start in range(0, len(users), block_users)
    ]
    refs = [ray.put((user_factors, item_factors, seen)), ray.put(k)]
    dataset = ray.data.from_pandas(parts).map_batches(
        _DataScorer,
        fn_constructor_args=(refs,),
        batch_size=None,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    frames = list(dataset.iter_batches(batch_size=None, batch_format="pandas"))
    items = np.concatenate([f["item"].to_numpy() for f in frames])
    scores = np.concatenate([f["score"].to_numpy() for f in frames])
    return items.reshape(-1, k).astype(np.int64), scores.reshape(-1, k)


def brute_force(
    user_factors: F32, item_factors: F32, seen: sp.csr_matrix, k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Full sort of float64 scores: the reference for a sample of users."""
    scores = user_factors.astype(np.float64) @ item_factors.astype(np.float64).T
    excluded = seen.tocoo()
    scores[excluded.row, excluded.col] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(scores, order, axis=1)


def check_exact(
    result: Result,
    user_factors: F32,
    item_factors: F32,
    seen: sp.csr_matrix,
    k: int,
    sample: npt.NDArray[np.int64],
) -> str:
    """Compare a path's sample rows with brute force: items and scores."""
    columns, values = result
    want_cols, want_vals = brute_force(
        user_factors[sample], item_factors, seen[sample], k
    )
    same_items = (columns[sample] == want_cols).all(axis=1)
    # float32 products round differently from float64: scores agree to that,
    # and two items whose float64 scores differ by less than float32's
    # resolution may come in either order (a tie), which is not an error.
    close = np.allclose(values[sample], want_vals, rtol=1e-5, atol=1e-4)
    differs = columns[sample] != want_cols
    # Same rank, same score: a valid top-k that ordered a tie the other way.
    tied = np.isclose(values[sample], want_vals, rtol=1e-6, atol=1e-5)
    only_ties = (~differs | tied).all(axis=1)
    consumed = seen[sample].tocoo()
    leaked = np.isin(
        columns[sample] + len(item_factors) * np.arange(len(sample))[:, None],
        consumed.col + len(item_factors) * consumed.row,
    ).any()
    exact = only_ties.all() and close and not leaked
    verdict = "exact" if exact else "DIFFERENT"
    ties = int((only_ties & ~same_items).sum())
    tie_note = f", {ties} differ only in the order of float32 ties" if ties else ""
    return (
        f"{verdict} ({int(same_items.sum())}/{len(sample)} users identical{tie_note})"
    )


def main() -> None:
    """Time the paths in turns, check exactness, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--consumed", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--argpartition", action="store_true")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--ray", action="store_true", help="also the Ray engine, 1 and 2 workers"
    )
    parser.add_argument("--block-users", type=int, default=25_000)
    args = parser.parse_args()
    loadavg = os.getloadavg()
    user_factors, item_factors, seen = make_data(
        args.users, args.items, args.factors, args.consumed, seed=0
    )
    k = args.k
    threads = min(os.cpu_count() or 1, 4)
    paths: dict[str, Callable[[], Result | None]] = {
        "matrix product alone (blocks of 4096, BLAS threads)": lambda: product_alone(
            user_factors, item_factors, 4096
        ),
    }
    for block in sorted({256, BLOCK_USERS}):
        paths[f"matrix product alone (blocks of {block}, {threads} threads)"] = (
            lambda block=block: product_alone(
                user_factors, item_factors, block, threads
            )
        )
    paths["loopml top_k_inner"] = lambda: top_k_inner(
        user_factors, item_factors, k, exclude=seen
    )
    if not args.ray:  # 50-90 s a run at 200k users on the loaded machine
        paths["implicit ALS.recommend (batch)"] = lambda: implicit_path(
            user_factors, item_factors, seen, k
        )
    if args.argpartition:
        paths["argpartition per block"] = lambda: argpartition_path(
            user_factors, item_factors, seen, k
        )
    try:
        import faiss  # noqa: F401

        paths["faiss IndexFlatIP (k + most consumed)"] = lambda: faiss_path(
            user_factors, item_factors, seen, k
        )
    except ImportError:
        pass
    if args.ray:
        import tempfile

        import ray

        home = Path(tempfile.mkdtemp(prefix="bench-ray-"))
        # One local Ray for every run (its start-up is not a batch's cost):
        # two CPUs' worth of worker slots, the dashboard off.
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(home / "ray"))
        for workers in (1, 2):
            paths[f"Ray engine, {workers} worker(s)"] = lambda workers=workers: (
                ray_path(
                    user_factors,
                    item_factors,
                    seen,
                    k,
                    workers,
                    args.block_users,
                    home,
                )
            )
        paths["Ray Data map_batches, 2 actors"] = lambda: ray_data_path(
            user_factors, item_factors, seen, k, 2, args.block_users
        )
    times: dict[str, list[float]] = {name: [] for name in paths}
    results: dict[str, Result] = {}
    for _ in range(args.repeats):
        for name, path in paths.items():
            started = time.perf_counter()
            result = path()
            times[name].append(time.perf_counter() - started)
            if result is not None:
                results[name] = result
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)
    floor = min(min(t) for name, t in times.items() if name.startswith("matrix"))
    sample = np.random.default_rng(1).choice(
        args.users, min(args.sample, args.users), replace=False
    )
    lines = [
        "| path | fastest s | median s | vs product alone (fastest) | results |",
        "|---|---:|---:|---:|---|",
    ]
    for name, runs in times.items():
        exact = (
            check_exact(results[name], user_factors, item_factors, seen, k, sample)
            if name in results
            else "-"
        )
        lines.append(
            f"| {name} | {min(runs):.2f} | {float(np.median(runs)):.2f} | "
            f"{min(runs) / floor:.2f}x | {exact} |"
        )
    size = f"--users {args.users} --items {args.items}"
    options = "" if (args.users, args.items) == (1_000_000, 10_000) else f" {size}"
    if args.argpartition:
        options += " --argpartition"
    ours, theirs = "loopml top_k_inner", "implicit ALS.recommend (batch)"
    versus = ""
    if theirs in times:
        ratio = min(times[theirs]) / min(times[ours])
        versus = (
            f"Side by side: implicit's batch `recommend` takes {ratio:.2f}x the "
            "time of loopml's `top_k_inner` for the same exact top-k (fastest runs)."
        )
    body = "\n".join(
        [
            "## Batch top-k scoring (recsys)",
            "",
            f"Measured {dt.date.today()} on {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs (shared with "
            f"other work), numpy {np.__version__}: {args.users:,} users x "
            f"{args.items:,} items x {args.factors} factors, float32, top-{k}, "
            f"{seen.nnz:,} consumed items excluded (Poisson({args.consumed:g}) "
            f"per user); {args.repeats} runs per path, in turns; exactness "
            f"against a full float64 sort for {len(sample):,} sampled users.",
            "",
            *lines,
            "",
            versus,
            "",
            f"Reproduce: `{COMMAND}{options}`",
        ]
    )
    print(body)
    if args.json:
        fastest = {name: min(runs) for name, runs in times.items()}
        figures = {"fastest": fastest, "floor": floor, "loadavg": os.getloadavg()}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.ray:
        import ray

        ray.shutdown()
        one, two = (min(times[f"Ray engine, {w} worker(s)"]) for w in (1, 2))
        inner = min(times[ours])
        load = " / ".join(f"{x:.2f}" for x in loadavg)
        end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        body = "\n".join(
            [
                "## Batch top-k on Ray (recsys)",
                "",
                body.split("\n", 2)[2]
                .split("\n\nSide by side")[0]
                .split("\n\nReproduce")[0]
                .rstrip(),
                "",
                f"Exact top-k in one process (`top_k_inner`, {threads} threads) "
                f"takes {inner / floor:.2f}x the fastest matrix product alone. "
                f"The Ray engine (blocks of {args.block_users:,} users, one "
                f"thread per worker, the model's trip through the object store "
                f"included) takes {one:.2f} s with 1 "
                f"worker and {two:.2f} s with 2: a {one / two:.2f}x speed-up "
                f"from 1 to 2 workers; 2 workers take {two / inner:.2f}x the "
                f"time of `top_k_inner` in one process, and Ray Data's "
                f"`map_batches` on the same blocks with 2 actors "
                f"{min(times['Ray Data map_batches, 2 actors']) / two:.2f}x the "
                "time of the Ray engine with 2 workers. Load average "
                f"(1, 5, 15 min) at the start: {load}, at the end: {end} on "
                f"{os.cpu_count()} CPUs shared with other work.",
                "",
                f"Reproduce: `{COMMAND}{options} --ray --block-users "
                f"{args.block_users} --repeats {args.repeats}`",
            ]
        )
        print(body)
    if not args.no_write:
        write_section(args.output, RAY_SECTION if args.ray else SECTION, body)


if __name__ == "__main__":
    main()
