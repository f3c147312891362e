"""The ranker's training matrix: built without copies, same trees as a frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.workloads.recsys.data import generate
from loopml.workloads.recsys.features import FEATURE_COLUMNS, TIME_COLUMNS
from loopml.workloads.recsys.models import TwoStageRanker
from loopml.workloads.recsys.models.base import canonical_interactions
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
