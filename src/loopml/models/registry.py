"""Model registry: the ``champion`` / ``challenger`` aliases and their history.

Only MLflow aliases are used (stages are deprecated). Every decision is
written as model-version tags and appended to ``<home>/state/<w>/history.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

# MLflow is imported by the functions that use it: reading the history (the
# status command) must not pay its import time.
log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
#: MLflow error codes meaning "no such model or alias", not "the registry failed".
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


@dataclass
class Decision:
    """One promotion decision, as recorded in the history."""

    workload: str
    action: str
    promoted: bool
    from_version: str | None
    to_version: str | None
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    who: str = field(default_factory=getpass.getuser)
    when: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )


def get_alias(model_name: str, alias: str) -> ModelVersion | None:
    """Return the version an alias points at, or ``None`` when unset.

    Raises:
        MlflowException: when the registry fails (unreachable database or
            server): an outage is not "no champion".
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if error.error_code in NOT_FOUND:
            return None
        raise


def set_alias(model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (a single atomic registry update)."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(model_name, alias, version)


def record(decision: Decision, history_file: Path, tag: bool = True) -> None:
    """Append a decision to the history file and tag the target version.

    Args:
        decision: what was decided.
        history_file: ``<home>/state/<w>/history.jsonl``.
        tag: set ``loopml.decision`` / ``loopml.reason`` on the target
            version (off for a line that annotates a decision already tagged,
            such as a retrain's summary after its promote).
    """
    history_file.parent.mkdir(parents=True, exist_ok=True)
    with history_file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(decision)) + "\n")
    if tag and decision.to_version is not None:
        from mlflow import MlflowClient

        client = MlflowClient()
        model_name = decision.workload
        client.set_model_version_tag(
            model_name, decision.to_version, "loopml.decision", decision.action
        )
        client.set_model_version_tag(
            model_name, decision.to_version, "loopml.reason", decision.reason
        )


def read_history(history_file: Path) -> list[Decision]:
    """Read every recorded decision, oldest first.

    Raises:
        ValueError: a line that is not a decision, naming the file and line.
    """
    if not history_file.is_file():
        return []
    lines = history_file.read_text(encoding="utf-8").splitlines()
    decisions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            decisions.append(Decision(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(
                f"{history_file}, line {number}, is not a decision ({error}); "
                "mend or remove that line"
            ) from error
    return decisions
