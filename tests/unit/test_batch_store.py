"""The day files of a workload: a split of the table is all the days or none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.data import batches
from loopml.data.batches import BatchStore
from loopml.sdk.batch import BatchSpec


def _store(tmp_path: Path, days: int = 20) -> BatchStore:
    frame = pd.DataFrame(
        {"date": pd.date_range("2025-01-01", periods=days, freq="D"), "x": range(days)}
    )
    frame.to_parquet(tmp_path / "raw.parquet", index=False)
    return BatchStore(tmp_path, BatchSpec())


def test_a_split_cut_short_leaves_no_days_and_the_next_one_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the days written before a Ctrl-C were taken for the history."""
    store = _store(tmp_path)
    written = []
    real = batches.write_parquet

    def cut_short(frame: pd.DataFrame, path: Path) -> None:
        if len(written) == 7:
            raise KeyboardInterrupt
        written.append(path)
        real(frame, path)

    monkeypatch.setattr(batches, "write_parquet", cut_short)
    with pytest.raises(KeyboardInterrupt):
        store.seed()
    assert store.days() == []
    monkeypatch.setattr(batches, "write_parquet", real)
    assert store.seed() == 20
    assert len(store.union()) == 20  # type: ignore[arg-type]
    assert store.seed() == 0  # split already: nothing to do
    assert not list(tmp_path.glob("*.splitting"))
