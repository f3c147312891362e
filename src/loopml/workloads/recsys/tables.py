"""The three canonical recsys tables and their flat, one-table form.

Every source (generator, Online Retail, MovieLens) returns :class:`RecsysData`.
The platform's stages pass one table between them, so :meth:`RecsysData.to_frame`
flattens the tables into an event log (one row per interaction, with the
user's and the item's attributes) and :meth:`RecsysData.from_frame` splits it
back. Users and items without any interaction do not survive the round trip:
they cannot be learnt from, and unknown users are served by segment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

log = logging.getLogger(__name__)

USER_COLUMNS: list[str] = ["user_id", "segment", "seniority", "department"]
USER_COLUMNS += ["hire_date", "age_band"]
ITEM_COLUMNS: list[str] = ["item_id", "title", "category", "level"]
ITEM_COLUMNS += ["duration_hours", "roles", "created"]
INTERACTION_COLUMNS: list[str] = ["user_id", "item_id", "timestamp", "event"]
INTERACTION_COLUMNS += ["weight"]
EVENT_COLUMNS: list[str] = [
    *INTERACTION_COLUMNS,
    *USER_COLUMNS[1:],
    *ITEM_COLUMNS[1:],
]
#: The sensitive attribute of users (the inclusion check): an age band split
#: at 40, the age from which US law (ADEA) protects workers; ``unknown`` when
#: the source has no age.
AGE_BANDS: tuple[str, ...] = ("under 40", "40 and over")
UNKNOWN_AGE_BAND = "unknown"
#: ``rate`` is MovieLens's explicit rating, kept as implicit feedback.
EVENTS: tuple[str, ...] = ("enrol", "complete", "purchase", "rate")


@dataclass(frozen=True)
class RecsysData:
    """Users, items and their interactions, in canonical columns.

    Attributes:
        users: ``user_id, segment, seniority, department, hire_date,
            age_band``; one row per user; ``seniority`` is 0-4 or -1 when
            unknown; ``age_band`` (``under 40``, ``40 and over`` or
            ``unknown``) is a sensitive attribute no model reads, used to
            compare the quality between groups.
        items: ``item_id, title, category, level, duration_hours, roles,
            created``; one row per item; ``level`` is 1-3 or 0 when unknown and
            ``roles`` a comma-separated list of relevant segments (may be "").
        interactions: ``user_id, item_id, timestamp, event, weight``, sorted by
            timestamp; ``weight`` is a positive strength of the signal.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame

    def with_interactions(self, interactions: pd.DataFrame) -> RecsysData:
        """The same users and items with other interactions (e.g. a train split)."""
        return RecsysData(self.users, self.items, interactions)

    def to_frame(self) -> pd.DataFrame:
        """Flatten into the event log the platform stores as its raw table.

        Returns:
            One row per interaction in :data:`EVENT_COLUMNS` order; inner
            joins, so interactions of unknown users or items are dropped.
        """
        frame = self.interactions.merge(self.users, on="user_id", how="inner")
        frame = frame.merge(self.items, on="item_id", how="inner")
        if len(frame) < len(self.interactions):
            log.warning(
                "dropped %d interactions of unknown users or items",
                len(self.interactions) - len(frame),
            )
        frame = frame.sort_values(["timestamp", "user_id", "item_id", "event"])
        return frame[EVENT_COLUMNS].reset_index(drop=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> RecsysData:
        """Split an event log (see :meth:`to_frame`) into the three tables.

        A user or item whose attributes differ between rows keeps one row per
        distinct version, so the table schemas report its duplicated key.

        Raises:
            KeyError: when a canonical column is missing.
        """
        if missing := [c for c in EVENT_COLUMNS if c not in frame.columns]:
            raise KeyError(f"the recsys event log lacks columns {missing}")
        users = frame[USER_COLUMNS].drop_duplicates().sort_values("user_id")
        items = frame[ITEM_COLUMNS].drop_duplicates().sort_values("item_id")
        interactions = frame[INTERACTION_COLUMNS].sort_values(
            ["timestamp", "user_id", "item_id", "event"], kind="stable"
        )
        return cls(
            users.reset_index(drop=True),
            items.reset_index(drop=True),
            interactions.reset_index(drop=True),
        )


def age_band(age: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """The :data:`AGE_BANDS` of ages in years (NaN: ``unknown``)."""
    years = np.asarray(age, dtype=np.float64)
    bands = np.asarray(AGE_BANDS, dtype=object)[(years >= 40).astype(np.int64)]
    return np.where(np.isnan(years), UNKNOWN_AGE_BAND, bands).astype(object)


def as_ns(values: pd.Series) -> pd.Series:
    """Nanosecond timestamps, the canonical resolution."""
    return values.astype("datetime64[ns]")


def require_file(path: Path, what: str, hint: str) -> None:
    """Raise a helpful ``FileNotFoundError`` when ``path`` is missing."""
    if not path.exists():
        raise FileNotFoundError(f"{what} is not at {path}. {hint}")
