"""``make daily``: ingest the day, then validate ... promote, up to a failure."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }} import daily

WORKLOAD = "{{ cookiecutter.workload_name }}"


def test_the_cycle_runs_the_commands_in_order_and_stops_at_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[tuple[str, ...]] = []

    def loopml(*args: str) -> int:
        ran.append(args)
        return 1 if args[0] == "train" else 0

    monkeypatch.setattr(daily, "loopml", loopml)
    assert daily.daily(WORKLOAD, "2025-03-03") == 1
    assert ran == [
        ("ingest", "-w", WORKLOAD, "--date", "2025-03-03"),
        ("validate", "-w", WORKLOAD),
        ("train", "-w", WORKLOAD),
    ]


def test_a_loopml_command_returns_its_exit_code() -> None:
    assert daily.loopml("--help") == 0
    assert daily.loopml("no-such-command") == 2
