"""``make daily``: one day's cycle of a workload, in one process.

``python -m {{ cookiecutter.package_name }}.daily WORKLOAD [YYYY-MM-DD]`` runs
the loopml commands ``ingest -w WORKLOAD --date DAY``, ``validate``,
``train``, ``evaluate`` and ``promote`` in that order, with the output and
exit codes each has on its own, and stops at the first that fails (a refused
batch stops at validate). DAY defaults to ``next_day``: the day after the
last validated one. One process imports loopml once instead of once per
command.
"""

from __future__ import annotations

import sys

from {{ cookiecutter.package_name }}.next_day import next_day

STEPS = ("validate", "train", "evaluate", "promote")


def loopml(*args: str) -> int:
    """Run ``loopml ARGS`` in this process; its exit code."""
    from loopml.cli import main

    argv = sys.argv
    sys.argv = ["loopml", *args]
    try:
        main()
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else int(code is not None)
    finally:
        sys.argv = argv
    return 0


def daily(workload: str, day: str | None = None) -> int:
    """Ingest ``day``'s batch of ``workload``, then validate ... promote.

    Returns:
        0, or the exit code of the first command that failed.
    """
    code = loopml("ingest", "-w", workload, "--date", day or next_day(workload))
    for step in STEPS:
        if code:
            break
        code = loopml(step, "-w", workload)
    return code


def main(argv: list[str] | None = None) -> None:
    """Run the cycle of the workload (and day) named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        raise SystemExit(
            "usage: python -m {{ cookiecutter.package_name }}.daily WORKLOAD [YYYY-MM-DD]"
        )
    raise SystemExit(daily(*args))


if __name__ == "__main__":
    main()
