"""``make daily`` without DATE takes the day after the last validated day."""

from __future__ import annotations

import pandas as pd
import pytest
from loopml.core.config import load_settings

from {{ cookiecutter.package_name }}.next_day import main, next_day

WORKLOAD = "{{ cookiecutter.workload_name }}"


def test_the_next_day_follows_the_last_validated_day() -> None:
    folder = load_settings().data_dir(WORKLOAD)
    folder.mkdir(parents=True)
    days = pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-02"])
    pd.DataFrame({"date": days}).to_parquet(folder / "validated.parquet")
    assert next_day(WORKLOAD) == "2025-03-03"


def test_without_validated_data_it_says_what_to_do() -> None:
    with pytest.raises(SystemExit, match="make run"):
        main([WORKLOAD])
