"""What a tunable workload declares: its search space and how it reports.

Workloads stay free of Ray: they describe each hyper-parameter's range with
:class:`SearchParam` and score one configuration with a plain function that
calls a :data:`Report` after each step. ``stages/tune.py`` turns the ranges
into a Ray Tune search space and the reports into ``tune.report`` calls (and
nested MLflow runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: ``report(step, metrics)``: called by an objective after each step (a
#: backtest fold) with the metrics so far; step 1 is the first.
Report = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class SearchParam:
    """The range of one hyper-parameter.

    Attributes:
        kind: ``int`` or ``float``.
        low: the smallest value.
        high: the largest value (included).
        log: sample uniformly on a log scale (for rates, counts, penalties).
    """

    kind: Literal["int", "float"]
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        """Refuse an empty range, or a log range that reaches zero.

        Raises:
            ValueError: when ``low >= high``, or ``log`` with ``low <= 0``.
        """
        if self.low >= self.high:
            raise ValueError(f"empty range [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range must be positive, got low={self.low}")
