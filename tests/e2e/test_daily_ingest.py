"""Daily ingestion through the CLI: a corrupted day is stopped at the gate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import conftest


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that the console never wraps a message (or a path).
    return conftest.loopml(home, *args, COLUMNS="2000")


def _ok(home: Path, *args: str) -> str:
    result = _cli(home, *args)
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _champion(home: Path) -> dict[str, object]:
    status = json.loads(_ok(home, "status", "--json"))
    champion: dict[str, object] = status["workloads"]["demand"]["champion"]
    return champion


@pytest.mark.slow
def test_corrupted_daily_batch_is_refused_and_nothing_changes(
    demand_home: Path, tmp_path: Path
) -> None:
    home = demand_home  # `loopml run -w demand` completed on it
    before = _champion(home)
    validated = home / "data" / "demand" / "validated.parquet"
    last = pd.read_parquet(validated)["date"].max()
    accepted = validated.read_bytes()

    # The next day arrives corrupted: a text export (every quantity a string,
    # one not even a number) with a duplicated key.
    day = last + pd.Timedelta(days=1)
    batch = pd.read_parquet(validated).query("date == @last").assign(date=day)
    batch = pd.concat([batch, batch.iloc[[0]]], ignore_index=True)
    batch["sales"] = batch["sales"].map(str)
    batch.loc[3, "sales"] = "n/a"
    delivery = tmp_path / "delivery.parquet"
    batch.to_parquet(delivery, index=False)
    _ok(home, "ingest", "--date", f"{day:%Y-%m-%d}", "--file", str(delivery))

    result = _cli(home, "validate")
    assert result.returncode == 1
    message = result.stderr
    assert "column 'sales' failed dtype('float64')" in message
    assert "key columns ['store_id', 'item_id', 'date'] failed" in message
    assert "multiple_fields_uniqueness" in message
    reports = list((home / "reports" / "demand").glob("validation-*.md"))
    assert len(reports) == 1 and str(reports[0]) in message
    kept = list((home / "quarantine" / "demand").glob(f"date={day:%Y-%m-%d}-*"))
    assert len(kept) == 1 and len(pd.read_parquet(kept[0])) == len(batch)

    # Nothing downstream changed.
    assert validated.read_bytes() == accepted
    raw = pd.read_parquet(home / "data" / "demand" / "raw.parquet")
    assert raw["date"].max() == last  # only the bad day was taken out
    after = _champion(home)
    assert after["version"] == before["version"]
    assert after["data_version"] == before["data_version"]
