"""Rollback: point ``champion`` back at the champion before the current one.

The promotion history is a stack: every promotion pushes its version, every
rollback pops the current one, so two rollbacks in a row go two champions
back. ``--to-version`` picks any registered version instead. The alias moves
in one registry update; the service follows at its next poll (or at once via
``POST /admin/reload``).
"""

from __future__ import annotations

import logging

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.models.registry import (
    CHAMPION,
    Decision,
    get_alias,
    read_history,
    record,
    set_alias,
)
from loopml.models.tracking import setup_mlflow
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)


def champion_stack(history: list[Decision]) -> list[str]:
    """The champions still to fall back on, oldest first, current last.

    A promotion pushes its version; a rollback to an earlier champion pops
    down to it; a rollback to a version that was never one of them (``--to-
    version``) pushes it like a promotion, so the next plain rollback undoes
    it and returns to the champion before.
    """
    stack: list[str] = []
    for decision in history:
        if decision.to_version is None:
            continue
        if decision.action == "promote" and decision.promoted:
            stack.append(decision.to_version)
        elif decision.action == "rollback":
            if decision.to_version in stack:
                while stack[-1] != decision.to_version:
                    stack.pop()
            else:
                stack.append(decision.to_version)
    return stack


def run(
    settings: Settings,
    workload_name: str,
    to_version: str | None = None,
    reason: str | None = None,
) -> StageResult:
    """Re-point ``champion`` to the previous champion (or ``to_version``).

    Raises:
        StageError: when there is no champion, nothing to roll back to, or
            ``to_version`` is not a version of the model.
    """
    setup_mlflow(settings)
    history_file = settings.state_dir(workload_name) / "history.jsonl"
    current = get_alias(workload_name, CHAMPION)
    if current is None:
        raise StageError(f"{workload_name} has no champion to roll back")
    now = str(current.version)
    if to_version is None:
        earlier = [v for v in champion_stack(read_history(history_file)) if v != now]
        if not earlier:
            raise StageError(
                f"{workload_name} v{now} is the only champion in the history; "
                "nothing to roll back to (give --to-version)"
            )
        to_version = earlier[-1]
    elif to_version == now:
        raise StageError(f"version {to_version} is already the champion")
    try:
        MlflowClient().get_model_version(workload_name, to_version)
    except MlflowException as error:
        raise StageError(
            f"{workload_name} has no version {to_version!r} in the registry"
        ) from error
    set_alias(workload_name, CHAMPION, to_version)
    why = reason or "manual rollback"
    record(
        Decision(
            workload=workload_name,
            action="rollback",
            promoted=True,
            from_version=now,
            to_version=to_version,
            reason=f"{why} (from v{now})",
        ),
        history_file,
    )
    client = MlflowClient()
    client.set_model_version_tag(workload_name, now, "loopml.rolled_back", "true")
    if "loopml.rolled_back" in (
        client.get_model_version(workload_name, to_version).tags or {}
    ):
        # Champion again: no longer the one rolled back from.
        client.delete_model_version_tag(workload_name, to_version, "loopml.rolled_back")
    log.info("rolled %s back from v%s to v%s: %s", workload_name, now, to_version, why)
    return StageResult(
        "rollback",
        workload_name,
        summary=f"champion v{now} -> v{to_version} ({why})",
        details={"from_version": now, "to_version": to_version, "reason": why},
    )
