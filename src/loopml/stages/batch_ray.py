"""The batch's Ray engine: a scorer's blocks as Ray tasks, in order.

``batch.engine: ray`` (``loopml batch --engine ray``) cuts the scorer's keys
(:meth:`~loopml.sdk.capabilities.BatchScorer.work`) into the same blocks as
the local engine and runs ``score_block`` on each as a Ray task of one CPU,
spread over the cluster's nodes, at most ``batch.ray_workers`` (default: the
cluster's CPUs) at once. The model and the scorer's shared part go into the
object store once (``ray.put``); each node fetches them once. Tasks rather
than actors: a cluster's worker processes stay warm between batches
(imports done), where each batch would start its actors afresh. The frames
come back in block order, streamed to the batch stage's writer, which stores
them exactly as it stores the local engine's.

Why not Ray Data's ``map_batches``: it was the first version, and on this
project's loaded 2-core machine it was the slowest way to run the same
blocks (its streaming executor and ``from_pandas``' metadata tasks, which
also aborted now and then in ``get_table_block_metadata_schema``), for a job
that needs one ``ray.put`` and an ordered map (docs/benchmarks.md, "Batch
top-k on Ray", has both side by side).

The session is a local Ray under the home, or the cluster at
``batch.ray_address`` (``--ray-address``; empty: ``tune.ray_address``).
Workers on a cluster need only the installed packages (loopml and the
workload): they read no files, the driver does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import pandas as pd

from loopml.core.config import Settings
from loopml.core.ray_session import ray_session
from loopml.sdk.capabilities import BatchScorer, BatchWork, blocks

log = logging.getLogger(__name__)


def score_block(
    scorer: BatchScorer, model: Any, shared: Any, keys: pd.DataFrame
) -> pd.DataFrame:
    """One block's results (a Ray task; Ray resolves the model's reference)."""
    return scorer.score_block(model, shared, keys)


def ray_frames(
    scorer: BatchScorer, model: Any, work: BatchWork, settings: Settings
) -> Iterator[pd.DataFrame]:
    """The blocks' results, in block order, scored by Ray tasks.

    Args:
        scorer: a scorer that works in blocks (``scorer.splits``).
        model: the champion's python model.
        work: the day's keys and shared part (from ``scorer.work``).
        settings: ``batch.ray_address``, ``ray_workers``, ``block_rows``.

    Yields:
        One frame per block (none for no keys).
    """
    parts = blocks(work.keys, settings.batch.block_rows or scorer.block_rows)
    if not parts:
        return
    import ray

    with ray_session(settings, address=settings.batch.ray_address) as cpus:
        workers = min(settings.batch.ray_workers or max(int(cpus), 1), len(parts))
        model_ref, shared_ref = ray.put(model), ray.put(work.shared)
        log.info(
            "scoring %d blocks, %d at once, on Ray (%.0f CPUs in the cluster)",
            len(parts),
            workers,
            cpus,
        )
        task: Any = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(score_block)
        pending: deque[Any] = deque()
        try:
            for keys in parts:
                # A window of `workers` tasks: the oldest is yielded (block
                # order) before the next one is submitted.
                if len(pending) == workers:
                    yield ray.get(pending.popleft())
                pending.append(task.remote(scorer, model_ref, shared_ref, keys))
            while pending:
                yield ray.get(pending.popleft())
        finally:
            for ref in pending:
                ray.cancel(ref)
