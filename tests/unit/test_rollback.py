"""The champion stack behind `loopml rollback`."""

from __future__ import annotations

from loopml.models.registry import Decision
from loopml.stages.rollback import champion_stack


def _d(action: str, to: str, promoted: bool = True) -> Decision:
    return Decision("demand", action, promoted, None, to, "test")


def test_promotions_push_and_rollbacks_pop() -> None:
    history = [_d("promote", "1"), _d("reject", "2", False), _d("promote", "3")]
    assert champion_stack(history) == ["1", "3"]
    history += [_d("promote", "4"), _d("rollback", "3")]
    assert champion_stack(history) == ["1", "3"]
    # A second rollback goes further back, not forward to the rolled-back one.
    history.append(_d("rollback", "1"))
    assert champion_stack(history) == ["1"]


def test_rollback_to_a_version_off_the_stack_is_undone_by_the_next() -> None:
    """Before, the stack started over at it: the champions before were lost,
    and a plain rollback had nothing to go back to."""
    history = [_d("promote", "1"), _d("promote", "2"), _d("rollback", "7")]
    assert champion_stack(history) == ["1", "2", "7"]
    history.append(_d("rollback", "2"))  # what `loopml rollback` picks next
    assert champion_stack(history) == ["1", "2"]
    history.append(_d("rollback", "1"))
    assert champion_stack(history) == ["1"]
