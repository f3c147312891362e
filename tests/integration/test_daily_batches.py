"""Daily ingestion and the validation gate, stage by stage on a temp home."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.core.config import Settings, load_settings
from loopml.core.errors import StageError
from loopml.core.runtime import configure_environment
from loopml.data.privacy import KEY_ENV
from loopml.sdk.batch import BatchSpec
from loopml.stages import ingest, validate
from loopml.stages.runner import run_stage
from loopml.workloads.demand import data
from loopml.workloads.demand.workload import DemandWorkload

ROWS_PER_DAY = 2 * 4  # TINY_ENV: 2 stores x 4 items


@pytest.fixture()
def settings(tiny_env: Path) -> Settings:
    """Tiny settings on which a snapshot was ingested and validated."""
    settings = load_settings("default")
    configure_environment(settings.home)
    run_stage("ingest", settings, "demand")
    run_stage("validate", settings, "demand")
    return settings


def _paths(settings: Settings) -> dict[str, Path]:
    data_dir, state = settings.data_dir("demand"), settings.state_dir("demand")
    return {
        "raw": data_dir / "raw.parquet",
        "validated": data_dir / "validated.parquet",
        "batches": data_dir / "batches",
        "accepted": state / "validate.json",
        "ingested": state / "ingest.json",
        "rejected": state / "rejected.json",
        "quarantine": settings.home / "quarantine" / "demand",
    }


def _last_day(settings: Settings) -> pd.Timestamp:
    validated = pd.read_parquet(_paths(settings)["validated"])
    return pd.Timestamp(validated["date"].max())


def _state(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_daily_batches_append_replace_and_replay_the_world(settings: Settings) -> None:
    paths = _paths(settings)
    day = _last_day(settings) + pd.Timedelta(days=1)
    result = ingest.run(settings, "demand", day=day.date())
    assert result.details["batch_rows"] == ROWS_PER_DAY
    assert len(list(paths["batches"].glob("date=*.parquet"))) == 401
    ingest.run(settings, "demand", day=day.date())  # again: replaced, not doubled
    raw = pd.read_parquet(paths["raw"])
    assert len(raw) == 401 * ROWS_PER_DAY
    # The union is exactly the generated world one day longer.
    world = data.generate(n_stores=2, n_items=4, n_days=401, seed=settings.seed)
    pd.testing.assert_frame_equal(raw, world)

    validate.run(settings, "demand")
    accepted = _state(paths["accepted"])
    assert accepted["new_days"] == [f"{day:%Y-%m-%d}"]
    assert accepted["rows_per_day"] == ROWS_PER_DAY
    assert f"{day:%Y-%m-%d}" in accepted["used_days"]  # type: ignore[operator]
    assert pd.read_parquet(paths["validated"]).equals(raw)

    with pytest.raises(StageError, match="already validated.*--force"):
        ingest.run(settings, "demand", day=day.date())
    forced = ingest.run(settings, "demand", day=day.date(), force=True)
    assert forced.details["forced"] is True and forced.details["days"] == [
        f"{day:%Y-%m-%d}"
    ]


def test_bad_daily_batch_is_quarantined_alone(
    settings: Settings, tmp_path: Path
) -> None:
    paths = _paths(settings)
    before = paths["validated"].read_bytes()
    day = _last_day(settings) + pd.Timedelta(days=1)
    good = DemandWorkload().load_day(settings, day)
    # Fewer than half the usual rows, one with a negative quantity.
    bad = good.head(3).assign(sales=[-3.0, 1.0, 2.0])
    delivery = tmp_path / "delivery.parquet"
    bad.to_parquet(delivery, index=False)
    ingest.run(settings, "demand", day=day.date(), source=delivery)

    with pytest.raises(StageError) as caught:
        validate.run(settings, "demand")
    message = str(caught.value)
    assert "column 'date' failed rows_per_day_in_bounds" in message
    assert "column 'sales' failed greater_than_or_equal_to(0)" in message
    assert "series_continues" in message
    kept = list(paths["quarantine"].glob(f"date={day:%Y-%m-%d}-*.parquet"))
    assert len(kept) == 1 and str(kept[0]) in message
    pd.testing.assert_frame_equal(pd.read_parquet(kept[0]), bad)
    report = Path(_state(paths["rejected"])["report"])  # type: ignore[arg-type]
    assert report.is_file() and str(report) in message
    details = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    checks = {(c["column"], c["check"]) for c in details["checks"]}
    assert ("sales", "greater_than_or_equal_to(0)") in checks
    assert ("date", "rows_per_day_in_bounds") in checks
    assert details["failing_rows"][0]["sales"] == -3.0
    # Only the new day went: raw is back to the validated table, which is intact.
    assert paths["validated"].read_bytes() == before
    assert pd.read_parquet(paths["raw"]).equals(pd.read_parquet(paths["validated"]))
    assert (
        _state(paths["rejected"])["batch_id"] == _state(paths["ingested"])["batch_id"]
    )

    # The right batch for that day is then accepted on its own.
    again = ingest.run(settings, "demand", day=day.date())
    assert again.details["days"] == [f"{day:%Y-%m-%d}"]
    validate.run(settings, "demand")
    assert len(pd.read_parquet(paths["validated"])) == 401 * ROWS_PER_DAY


def test_forced_bad_replacement_puts_the_validated_day_back(
    settings: Settings, tmp_path: Path
) -> None:
    paths = _paths(settings)
    day = _last_day(settings)
    bad = DemandWorkload().load_day(settings, day).assign(price=0.0)
    delivery = tmp_path / "restated.parquet"
    bad.to_parquet(delivery, index=False)
    ingest.run(settings, "demand", day=day.date(), force=True, source=delivery)
    with pytest.raises(StageError, match="column 'price' failed greater_than") as err:
        validate.run(settings, "demand")
    assert "put back" in str(err.value)
    validated = pd.read_parquet(paths["validated"])
    assert pd.read_parquet(paths["raw"]).equals(validated)


def test_a_skipped_day_is_a_gap(settings: Settings) -> None:
    day = _last_day(settings) + pd.Timedelta(days=2)
    ingest.run(settings, "demand", day=day.date())
    gap = day - pd.Timedelta(days=1)
    with pytest.raises(StageError, match=f"series_complete.*lacks {gap:%Y-%m-%d}"):
        validate.run(settings, "demand")


def test_personal_columns_are_pseudonymised_before_writing(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = BatchSpec("date", ("store_id", "item_id", "date"), ("store_id",))
    monkeypatch.setattr(DemandWorkload, "batch_spec", spec)
    monkeypatch.setenv(KEY_ENV, "a-key-for-the-integration-test")
    settings = load_settings("default")
    ingest.run(settings, "demand")
    raw_path = settings.data_dir("demand") / "raw.parquet"
    stores = pd.read_parquet(raw_path)["store_id"].unique()
    assert len(stores) == 2 and all(len(s) == 16 for s in stores)
    assert b"S01" not in raw_path.read_bytes()

    # Outside the default profile there is no fallback key: nothing is written.
    monkeypatch.delenv(KEY_ENV)
    raw_path.unlink()
    production = load_settings("production", home=tiny_env)
    with pytest.raises(StageError, match=KEY_ENV):
        ingest.run(production, "demand")
    assert not raw_path.exists()
