"""The ranker's training matrix: built without copies, same trees as a frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.workloads.recsys.data import generate
from loopml.workloads.recsys.features import (
    FEATURE_COLUMNS,
    TIME_COLUMNS,
    build_features,
)
from loopml.workloads.recsys.models import TwoStageRanker
from loopml.workloads.recsys.models import ranker as ranker_module
from loopml.workloads.recsys.models.base import canonical_interactions
from loopml.workloads.recsys.models.candidates import als_margin
from loopml.workloads.recsys.models.ranker import RANKING_COLUMNS, _stack


def test_stack_equals_concatenate_and_empties_the_blocks() -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.random((n, 4)) for n in (3, 0, 5, 1)]
    expected = np.concatenate(blocks)
    given = list(blocks)
    stacked = _stack(given)
    assert np.array_equal(stacked, expected)
    assert stacked.flags.c_contiguous
    assert given == []


def test_stack_of_nothing_has_the_ranking_columns() -> None:
    assert _stack([]).shape == (0, len(RANKING_COLUMNS))


def test_matrix_trains_the_trees_a_frame_trained() -> None:
    """The ranker used to train on pandas frames: numpy must give the same trees."""
    data = generate(n_users=300, n_items=60, n_days=180, seed=1)
    ranker = TwoStageRanker(n_estimators=20)
    interactions = canonical_interactions(data.interactions)
    history, future, _ = ranker._inner_splits(interactions)[0]
    blocks, labels, groups, margin, _ = ranker._examples(
        ranker._als().fit(data.with_interactions(history)), future
    )
    matrix = _stack(blocks)
    assert [*FEATURE_COLUMNS, *TIME_COLUMNS] == RANKING_COLUMNS
    frame = pd.DataFrame(matrix.copy(), columns=RANKING_COLUMNS)
    from_matrix = ranker._lambdarank(20).fit(
        matrix, labels, group=groups, init_score=margin, feature_name=RANKING_COLUMNS
    )
    from_frame = ranker._lambdarank(20).fit(
        frame, labels, group=groups, init_score=margin
    )

    def trees(model: object) -> list[str]:
        text: str = model.booster_.model_to_string()  # type: ignore[attr-defined]
        return [line for line in text.splitlines() if "pandas_categorical" not in line]

    assert trees(from_matrix) == trees(from_frame)
    assert from_matrix.booster_.feature_name() == RANKING_COLUMNS


def _examples_the_old_way(
    ranker: TwoStageRanker, inner: object, future: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every candidate's features per block of users, then the kept ones
    (what ``_examples`` did before it sampled first and read in batches)."""
    context = inner.context_  # type: ignore[attr-defined]
    user_ids = sorted(future["user_id"].unique())
    rows_all = context.user_rows(user_ids)
    item = context.item_ids.get_indexer(future["item_id"])
    user = context.user_rows(future["user_id"].tolist())
    n_items = len(context.item_ids)
    positive = np.unique(user[item >= 0] * n_items + item[item >= 0])
    rng = np.random.default_rng(ranker.seed)
    frames, labels, groups, margins, users = [], [], [], [], []
    size = ranker_module.BLOCK
    for start in range(0, len(user_ids), size):
        rows = rows_all[start : start + size]
        segments = context.user_segment[rows]
        position, cand, features = ranker._features(
            inner,  # type: ignore[arg-type]
            rows,
            segments,
            True,
            ranker.n_candidates,
        )
        label = np.isin(rows[position] * n_items + cand, positive)
        hit = np.bincount(position, weights=label, minlength=len(rows)) > 0
        margin = als_margin(features["als_score"].to_numpy(), position, len(rows))
        keep = hit[position] & (label | ranker._sample_negatives(rng, position))
        frames.append(features.to_numpy(dtype=np.float64)[keep])
        labels.append(label[keep].astype(np.int64))
        margins.append(margin[keep])
        groups.append(np.bincount(position[keep], minlength=len(rows))[hit])
        block = user_ids[start : start + size]
        users += [name for name, has in zip(block, hit, strict=True) if has]
    return (
        np.concatenate(frames),
        np.concatenate(labels),
        np.concatenate(groups),
        np.concatenate(margins),
        users,
    )


@pytest.mark.parametrize("pairs_per_read", [1, 700, 10**9])
def test_examples_sampled_before_reading_equal_every_candidate_read(
    pairs_per_read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sampling the pairs first and reading their features in batches gives the
    rows of reading every candidate's features per block (several blocks)."""
    monkeypatch.setattr(ranker_module, "BLOCK", 128)
    monkeypatch.setattr(ranker_module, "PAIRS_PER_READ", pairs_per_read)
    data = generate(n_users=400, n_items=60, n_days=180, seed=3)
    ranker = TwoStageRanker(n_estimators=5)
    interactions = canonical_interactions(data.interactions)
    history, future, _ = ranker._inner_splits(interactions)[0]
    inner = ranker._als().fit(data.with_interactions(history))
    calls: list[int] = []

    def counted(*args: Any) -> pd.DataFrame:
        calls.append(len(args[3]))
        return build_features(*args)

    blocks, labels, groups, margin, users = ranker._examples(inner, future, counted)
    want = _examples_the_old_way(ranker, inner, future)
    assert len(want[4]) > 128 and want[1].sum() > 0  # several blocks, some labels
    assert np.array_equal(_stack(blocks), want[0], equal_nan=True)
    assert np.array_equal(labels, want[1]) and np.array_equal(groups, want[2])
    assert np.array_equal(margin, want[3], equal_nan=True) and users == want[4]
    assert sum(calls) == len(labels)  # only the kept pairs were read
    if pairs_per_read == 1:  # a read per block
        assert len(calls) == -(-len(future["user_id"].unique()) // 128)
    if pairs_per_read == 10**9:  # one read for the whole split
        assert len(calls) == 1
