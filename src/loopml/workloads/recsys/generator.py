"""A seeded enterprise learning platform: employees, courses and enrolments.

Preferences really depend on who the employee is, so that personalisation has
something to find beyond "popular in your role":

* **role**: each job role has its own affinity for each course category;
* **taste**: each employee deviates from the role with a personal taste;
* **seniority x level**: juniors prefer level-1 courses, seniors level 3;
* **history**: employees continue in categories they took, and a follow-up
  (next level in the same category) is especially attractive;
* **novelty**: new courses get a fading boost after their release.

Each employee also has an age band (under 40, 40 and over), a sensitive
attribute that no model reads: it only groups the evaluation, so that the
gate can refuse a model serving one age group much worse than the other. It
follows seniority (older employees are more senior) and comes from its own
random stream, so every other value is what it was without it.

Employees are hired and courses released during the period; some enrolments
are completed later (a second, heavier interaction).

Worlds up to ``DENSE_MAX_CELLS`` employees x courses are simulated exactly as
they always were (dense employee x course utilities, one Gumbel draw per
active employee and course): the same seed gives the same data byte for byte.
Bigger worlds are simulated by ``grouped.GroupedEnrolments``: the same choice
model and distribution, other random draws, memory that grows with
enrolments + employees + courses instead of their product (docs/scale.md).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.recsys.grouped import GroupedEnrolments
from loopml.workloads.recsys.organisation import (
    AFFINITY,
    CATEGORIES,
    ROLES,
    WEIGHTS,
    age_bands,
    catalogue,
    days,
    popularity,
    staff,
)
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_W_TASTE, _W_LEVEL, _W_HISTORY, _W_FOLLOW_UP, _W_NOVELTY = WEIGHTS
_ENROL_WEIGHT, _COMPLETE_WEIGHT = 1.0, 2.0
#: Largest employees x courses simulated exactly (dense arrays, about 40 MB
#: each at this size); bigger worlds take the grouped simulation.
DENSE_MAX_CELLS = 5_000_000


class _Enrolments:
    """The day-by-day simulation of enrolments, its state carried over days.

    Days are sequential because the history changes the next choices; within
    a day everything is vectorised over the active employees.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        utility: list[FloatArray],
        drift_from_day: int | None,
        hired: IntArray,
        items: tuple[IntArray, IntArray, IntArray],
    ) -> None:
        """Draw each employee's activity rate; nobody has taken anything yet."""
        self.rng, self.utility, self.drift_from_day = rng, utility, drift_from_day
        self.hired = hired
        self.category, self.level, self.released = items
        n_users, n_items = utility[0].shape
        n_categories = int(self.category.max()) + 1
        self.rate = np.clip(rng.lognormal(np.log(0.06), 0.5, n_users), 0.005, 0.5)
        self.taken = np.zeros((n_users, n_items), dtype=bool)
        self.cat_count = np.zeros((n_users, n_categories))
        self.top_level = np.zeros((n_users, n_categories))

    def day(self, day: int, dow: int) -> tuple[IntArray, IntArray]:
        """Simulate one day: (user, item) of each of its enrolments."""
        rng, category, level = self.rng, self.category, self.level
        busy = self.rate * (0.2 if dow >= 5 else 1.0)
        active = np.flatnonzero((self.hired <= day) & (rng.random(len(busy)) < busy))
        drifted = self.drift_from_day is not None and day >= self.drift_from_day
        score = self.utility[int(drifted)][active]
        score += _W_HISTORY * np.log1p(self.cat_count[active][:, category])
        follow_up = level[None, :] == self.top_level[active][:, category] + 1
        score += _W_FOLLOW_UP * (follow_up & (level[None, :] > 1))
        age = day - self.released
        score += _W_NOVELTY * np.exp(-np.clip(age, 0, None) / 30.0)
        score[:, age < 0] = -np.inf
        score[self.taken[active]] = -np.inf
        choice = np.argmax(score + rng.gumbel(size=score.shape), axis=1)
        ok = np.isfinite(score[np.arange(len(active)), choice])
        active, choice = active[ok], choice[ok]
        self.taken[active, choice] = True
        self.cat_count[active, category[choice]] += 1
        self.top_level[active, category[choice]] = np.maximum(
            self.top_level[active, category[choice]], level[choice]
        )
        return active.astype(np.int64), choice.astype(np.int64)


def _simulate(
    simulation: _Enrolments | GroupedEnrolments, weekday: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Simulate days ``0 .. len(weekday) - 1``: (user, item, day) of each."""
    found = []
    for day, dow in enumerate(weekday):
        user, item = simulation.day(day, int(dow))
        found.append((user, item, np.full(len(user), day)))
    user, item, day_of = (
        np.concatenate([part[i] for part in found]).astype(np.int64) for i in range(3)
    )
    return user, item, day_of


def generate(
    n_users: int = 600,
    n_items: int = 120,
    n_days: int = 240,
    start: str = "2025-01-01",
    seed: int = 42,
    drift_from_day: int | None = None,
    extra_days: int = 0,
    popularity_tail: float = 0.0,
) -> RecsysData:
    """Generate employees, courses and a daily enrolment history.

    Each day every hired employee enrols with a personal probability (lower at
    weekends) in one course, chosen by a Gumbel-max draw over utilities built
    from role affinity, personal taste, seniority x level fit, own history,
    follow-ups, course quality and novelty. Courses already taken or not yet
    released cannot be chosen. About half of the enrolments are completed
    after a duration-dependent delay (weight 2 instead of 1).

    Args:
        n_users: number of employees (ids ``U0001``...).
        n_items: number of courses (ids ``C001``...).
        n_days: number of days of history.
        start: first day.
        seed: seeds the only random generator: same arguments, same data.
        drift_from_day: from this day on each role takes the category
            affinities of the next role, a deliberate drift for monitoring.
        extra_days: days lived after the history by the same employees and
            courses (nobody is hired and nothing released in them), for
            ``loopml replay``. Prefix-stable: the first ``n_days`` days are
            exactly those of ``extra_days=0``, and more extra days only
            append days. Completions of the history's enrolments that fall
            after it appear in the extra days.
        popularity_tail: a Zipf exponent: each course's appeal gets
            ``-popularity_tail x log(rank)`` for a random rank (its own random
            stream), a long tail of popularity as in real catalogues. 0, the
            default, leaves the data exactly as without it.

    Returns:
        The three canonical tables.

    Raises:
        ValueError: for non-positive sizes, a negative ``drift_from_day`` or
            negative ``extra_days``.
    """
    if min(n_users, n_items, n_days) < 1:
        raise ValueError("n_users, n_items and n_days must all be >= 1")
    if drift_from_day is not None and drift_from_day < 0:
        raise ValueError(f"drift_from_day must be >= 0, got {drift_from_day}")
    if extra_days < 0:
        raise ValueError(f"extra_days must be >= 0, got {extra_days}")
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start)
    items, category, released = catalogue(rng, n_items, n_days, origin)
    level = items["level"].to_numpy()
    users, role, hired = staff(rng, n_users, n_days, origin)
    seniority = users["seniority"].to_numpy()
    users["age_band"] = age_bands(seed, seniority)

    taste = rng.normal(0.0, 1.0, (n_users, len(CATEGORIES)))
    quality = rng.normal(0.0, 0.5, n_items)
    if popularity_tail:
        quality = quality + popularity(seed, n_items, popularity_tail)
    simulation: _Enrolments | GroupedEnrolments
    if n_users * n_items <= DENSE_MAX_CELLS:
        fit = _fit(seniority, level, None, None)
        personal = _W_TASTE * taste[:, category] + _W_LEVEL * fit + quality
        utility = [np.log(AFFINITY[role][:, category]) + personal]
        if drift_from_day is not None:
            drifted_role = (role + 1) % len(ROLES)
            utility.append(np.log(AFFINITY[drifted_role][:, category]) + personal)
        simulation = _Enrolments(
            rng, utility, drift_from_day, hired, (category, level, released)
        )
    else:
        log.info("simulating %d x %d enrolments by group", n_users, n_items)
        simulation = GroupedEnrolments(
            rng,
            (role, seniority, taste),
            (category, level, released, quality),
            hired,
            drift_from_day,
            WEIGHTS,
        )
    end = n_days + extra_days
    weekday = pd.date_range(origin, periods=end, freq="D").dayofweek.to_numpy()
    user, item, day = _simulate(simulation, weekday[:n_days])
    durations = items["duration_hours"]
    fit_of = (seniority, level)
    parts = [_events(rng, user, item, day, fit_of, durations, end)]
    # Each extra day draws its enrolments, then their events, so that it is
    # the same whatever the number of days after it.
    for extra in range(n_days, end):
        user, item = simulation.day(extra, int(weekday[extra]))
        at = np.full(len(user), extra, dtype=np.int64)
        parts.append(_events(rng, user, item, at, fit_of, durations, end))
    events = pd.concat(parts, ignore_index=True)
    interactions = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[events["user"]],
            "item_id": items["item_id"].to_numpy()[events["item"]],
            "timestamp": days(origin, events["offset"].to_numpy()).dt.floor("s"),
            "event": events["event"],
            "weight": events["weight"],
        }
    ).sort_values(["timestamp", "user_id", "item_id", "event"])
    log.debug("generated %d interactions", len(interactions))
    return RecsysData(users, items, interactions.reset_index(drop=True))


def _events(
    rng: np.random.Generator,
    user: IntArray,
    item: IntArray,
    day: IntArray,
    fit_of: tuple[IntArray, IntArray],
    durations: pd.Series,
    end: int,
) -> pd.DataFrame:
    """Enrolments plus their completions that happen before day ``end``."""
    duration = durations.to_numpy(dtype=np.float64)
    # Well-fitting, short courses are completed more often.
    fit = _fit(*fit_of, user, item)
    logit = 0.9 + 0.8 * fit - 0.04 * duration[item]
    completed = rng.random(len(user)) < 1.0 / (1.0 + np.exp(-logit))
    delay = np.ceil(duration[item] / rng.uniform(0.5, 2.0, len(user)))
    completed &= day + delay < end
    # Working hours: enrolment between 08:00 and 18:00.
    hour = rng.uniform(8.0, 18.0, len(user)) / 24.0
    return pd.DataFrame(
        {
            "user": np.concatenate([user, user[completed]]),
            "item": np.concatenate([item, item[completed]]),
            "offset": np.concatenate(
                [day + hour, (day + delay + hour)[completed]]
            ).astype(np.float64),
            "event": ["enrol"] * len(user) + ["complete"] * int(completed.sum()),
            "weight": np.concatenate(
                [
                    np.full(len(user), _ENROL_WEIGHT),
                    np.full(int(completed.sum()), _COMPLETE_WEIGHT),
                ]
            ),
        }
    )


def _fit(
    seniority: IntArray,
    level: IntArray,
    user: IntArray | None,
    item: IntArray | None,
) -> FloatArray:
    """Seniority x level fit: of every pair (no ``user``), or of given pairs.

    The two forms give the same value for the same pair, bit for bit.
    """
    if user is None or item is None:
        return -np.abs(level[None, :] - (1.0 + seniority / 2.0)[:, None])
    return -np.abs(level[item] - (1.0 + seniority[user] / 2.0))
