"""The day after a workload's last validated day: ``make daily``'s default DATE.

``python -m {{ cookiecutter.package_name }}.next_day WORKLOAD`` prints it as
``YYYY-MM-DD``. The workload's time column is its ``batch_spec``'s; the data
is ``validated.parquet`` in the workload's data folder of the active profile's
home (``loopml validate`` writes it).
"""

from __future__ import annotations

import sys

import pandas as pd
from loopml.core.config import load_settings
from loopml.sdk.workload import get_workload


def next_day(workload: str) -> str:
    """The ISO date after the last validated day of ``workload``.

    Raises:
        SystemExit: when nothing was validated yet (the message says what to do).
    """
    settings = load_settings()
    column = get_workload(workload).batch_spec.time_column
    path = settings.data_dir(workload) / "validated.parquet"
    if not path.is_file():
        raise SystemExit(
            f"no validated {workload} data at {path}: run `make run` first, "
            "or give the day: make daily DATE=YYYY-MM-DD"
        )
    last = pd.Timestamp(pd.read_parquet(path, columns=[column])[column].max())
    day: str = (last.normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return day


def main(argv: list[str] | None = None) -> None:
    """Print the next day of the workload named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m {{ cookiecutter.package_name }}.next_day WORKLOAD")
    print(next_day(args[0]))


if __name__ == "__main__":
    main()
