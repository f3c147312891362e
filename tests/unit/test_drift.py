"""Drift verdicts: no false alarm on large samples alike, real shifts found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core.config import MonitorSettings
from loopml.monitoring.drift import detect

N = 50_000
SETTINGS = MonitorSettings()


def _sample(seed: int, n: int = N) -> pd.DataFrame:
    """Skewed numbers, a 0/1 flag and a category, like the monitored columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "level": rng.lognormal(0.0, 0.5, n),
            "flag": (rng.random(n) < 0.1).astype(float),
            "segment": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def _detect(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, object]:
    result = detect(
        reference, current, SETTINGS, ["level", "flag"], ["segment"], summary=False
    )
    return result.to_dict()


@pytest.mark.parametrize("seed", [1, 2])
def test_same_distribution_is_not_flagged(seed: int) -> None:
    verdict = _detect(_sample(0), _sample(seed))
    assert verdict["drifted"] == []
    assert verdict["share"] == 0.0
    assert verdict["dataset_drift"] is False
    columns = verdict["columns"]
    assert isinstance(columns, dict)
    # Far from the thresholds, not just below them: a p-value test at this
    # n would flag noise, a distance does not grow with n.
    for name, column in columns.items():
        assert column["judged"], name
        assert column["score"] < column["threshold"] / 5, (name, column["score"])


def test_shifted_sample_is_flagged() -> None:
    reference = _sample(0)
    current = _sample(1)
    current["level"] = current["level"] * 1.6  # the level moves by 60 %
    current["segment"] = np.where(current["segment"] == "a", "d", current["segment"])
    verdict = _detect(reference, current)
    assert set(verdict["drifted"]) == {"level", "segment"}  # type: ignore[arg-type]
    assert verdict["share"] == pytest.approx(2 / 3)
    assert verdict["dataset_drift"] is True


def test_too_few_rows_get_no_verdict() -> None:
    verdict = _detect(_sample(0), _sample(1, n=SETTINGS.min_rows - 1))
    columns = verdict["columns"]
    assert isinstance(columns, dict)
    assert not any(c["judged"] for c in columns.values())
    assert verdict["share"] == 0.0
    assert verdict["dataset_drift"] is False


def test_sparse_category_mix_gets_no_verdict() -> None:
    rng = np.random.default_rng(0)
    cells = [f"c{i}" for i in range(40)]
    reference = pd.DataFrame({"mix": rng.choice(cells, 5_000)})
    current = pd.DataFrame({"mix": rng.choice(cells, 100)})  # < 10 rows per cell
    result = detect(reference, current, SETTINGS, [], ["mix"], summary=False)
    assert result.columns["mix"].judged is False
    assert result.dataset_drift is False
    enough = pd.DataFrame({"mix": rng.choice(cells, 800)})
    judged = detect(reference, enough, SETTINGS, [], ["mix"], summary=False)
    assert judged.columns["mix"].judged is True
    assert judged.columns["mix"].drifted is False
