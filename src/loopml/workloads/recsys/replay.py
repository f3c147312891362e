"""New recsys days for ``loopml replay``: the learning platform lives on.

The generator's ``extra_days`` simulates days after the history with the
same employees and courses (nobody is hired and no course released in them)
and is prefix-stable: the history stays exactly the snapshot's, and a longer
replay only appends days. ``replay --drift-from K`` makes each job role take
the course affinities of the next one from replay day K (the generator's
``drift_from_day``). Nothing is logged for the monitor: it measures no live
metric for recsys yet. Only the generated dataset can be replayed: real data
has no days after its end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from loopml.sdk.capabilities import DaySource
from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.generator import generate

if TYPE_CHECKING:
    from loopml.core.config import Settings


class RecsysDaySource(DaySource):
    """The generated learning platform after its history, drifted on demand."""

    can_drift = True

    def check(self, settings: Settings) -> None:
        """Refuse a real dataset: it has no days after its end.

        Raises:
            ValueError: naming the configured dataset.
        """
        dataset = RecsysSettings.of(settings).dataset
        if dataset != "generated":
            raise ValueError(
                f"only the generated recsys dataset can be replayed, not "
                f"{dataset!r}: real data has no days after its end"
            )

    def days(
        self,
        settings: Settings,
        first: pd.Timestamp,
        n_days: int,
        drift_from: int | None = None,
    ) -> pd.DataFrame:
        """The event log of the days ``first .. first + n_days - 1``.

        Raises:
            ValueError: for a real dataset.
        """
        self.check(settings)
        cfg = RecsysSettings.of(settings)
        first = pd.Timestamp(first).normalize()
        first_index = (first - pd.Timestamp(cfg.start)).days
        world = generate(
            n_users=cfg.n_users,
            n_items=cfg.n_items,
            n_days=cfg.n_days,
            start=cfg.start,
            seed=settings.seed,
            drift_from_day=None if drift_from is None else first_index + drift_from - 1,
            extra_days=max(first_index + n_days - cfg.n_days, 0),
            popularity_tail=cfg.popularity_tail,
        ).to_frame()
        day = world["timestamp"].dt.normalize()
        wanted = (day >= first) & (day < first + pd.Timedelta(days=n_days))
        return world[wanted].reset_index(drop=True)
