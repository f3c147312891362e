"""Drift scores without the report: the same numbers Evidently's report shows.

``detect`` scores each column with Evidently's stattests and builds the
report (its plotly figures) only when the HTML is written; the report's
``ValueDrift`` scores must be the verdicts' to the last bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core.config import MonitorSettings
from loopml.monitoring.drift import _scores, detect

SETTINGS = MonitorSettings()


def _sample(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Numbers with gaps, a 0/1 flag and three kinds of category.

    The current side (``seed`` > 0) has two infinities too (a reference with
    one has no finite scale: its column is not judged).
    """
    rng = np.random.default_rng(seed)
    level = rng.lognormal(shift, 0.5, n)
    level[rng.random(n) < 0.1] = np.nan
    if seed:
        level[:2] = [np.inf, -np.inf]
    codes = rng.choice(
        4, n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
    )
    return pd.DataFrame(
        {
            "level": level,
            "flag": (rng.random(n) < 0.1 + shift / 4).astype(float),
            "segment": np.array(["a", "b", "c", "d"])[codes],
            "code": codes,
            "kind": pd.Categorical(np.array(["x", "y", "z", "w"])[codes]),
        }
    )


@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_verdict_scores_are_the_reports(shift: float) -> None:
    result = detect(
        _sample(0, 900),
        _sample(1, 300, shift),
        SETTINGS,
        ["level", "flag"],
        ["segment", "code", "kind"],
    )
    verdicts = {c: v.score for c, v in result.columns.items() if v.judged}
    assert set(verdicts) == {"level", "flag", "segment", "code", "kind"}
    assert _scores(result.report()) == verdicts
    assert bool(result.to_dict()["drifted"]) is (shift > 0)


def test_the_html_is_written_only_when_asked(tmp_path: Path) -> None:
    result = detect(_sample(0, 400), _sample(1, 200), SETTINGS, ["level"], [])
    path = tmp_path / "reports" / "monitor.html"
    assert not path.exists()
    result.save_html(path)
    assert "level" in path.read_text(encoding="utf-8")
    unjudged = detect(_sample(0, 5), _sample(1, 5), SETTINGS, ["level"], [])
    assert unjudged.report() is None
    unjudged.save_html(tmp_path / "none.html")
    assert not (tmp_path / "none.html").exists()
