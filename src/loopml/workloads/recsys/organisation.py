"""The synthetic organisation: job roles, departments and the course catalogue.

The role x category affinity table is the heart of the generated world: it is
what "popular in your role" captures, and what personal taste, seniority and
history then deviate from.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.recsys.tables import age_band

IntArray = npt.NDArray[np.int64]

ROLES: tuple[str, ...] = ("data engineer", "data scientist", "software engineer")
ROLES += ("product manager", "sales rep", "hr partner", "finance analyst")
ROLES += ("support agent",)
CATEGORIES: tuple[str, ...] = ("python", "sql", "cloud", "ml", "security")
CATEGORIES += ("product", "leadership", "communication", "finance", "sales-skills")
DEPARTMENTS: tuple[str, ...] = ("data platform", "analytics", "engineering")
DEPARTMENTS += ("product", "sales", "people", "finance", "customer success")
ROLE_SHARE = np.array([0.10, 0.10, 0.20, 0.10, 0.15, 0.08, 0.10, 0.17])
# Role x category affinity (rows follow ROLES, columns CATEGORIES).
AFFINITY = np.array(
    [
        [3.0, 3.0, 2.5, 1.0, 1.0, 0.2, 0.3, 0.5, 0.2, 0.1],
        [3.0, 2.0, 1.0, 3.0, 0.3, 0.5, 0.3, 0.8, 0.3, 0.1],
        [2.0, 1.0, 3.0, 0.8, 2.5, 0.5, 0.3, 0.5, 0.1, 0.1],
        [0.5, 1.0, 0.5, 0.8, 0.3, 3.0, 2.0, 2.5, 0.5, 0.8],
        [0.1, 0.3, 0.2, 0.2, 0.2, 1.5, 1.0, 3.0, 0.5, 3.0],
        [0.1, 0.2, 0.1, 0.2, 0.8, 0.3, 3.0, 3.0, 0.8, 0.3],
        [0.8, 2.5, 0.2, 0.5, 0.5, 0.3, 1.0, 1.0, 3.0, 0.3],
        [0.3, 0.8, 0.5, 0.2, 1.5, 2.5, 0.3, 3.0, 0.2, 1.5],
    ]
)
#: Separate streams of the ages and the popularity ranks: drawing them
#: changes no other random value.
_AGE_STREAM, _POPULARITY_STREAM = 40, 41
_CATEGORY_TITLES = {"sql": "SQL", "ml": "Machine Learning", "sales-skills": "Sales"}
_LEVEL_NAMES = ("", "Foundations", "Practitioner", "Advanced")
_TOPICS: tuple[str, ...] = ("Essentials", "in Practice", "Deep Dive", "Workshop")
_TOPICS += ("Bootcamp", "Patterns", "Clinic", "Masterclass", "Playbook", "Lab")


def ids(prefix: str, n: int, width: int) -> npt.NDArray[np.object_]:
    """Zero-padded ids (``U0001``...), widened for big worlds to sort right."""
    digits = max(width, len(str(n)))
    return np.array([f"{prefix}{i + 1:0{digits}d}" for i in range(n)], dtype=object)


class UtilityWeights(NamedTuple):
    """Weights of an enrolment's utility terms; the Gumbel noise has scale 1."""

    taste: float = 0.9
    level: float = 0.9
    history: float = 0.7
    follow_up: float = 1.2
    novelty: float = 1.0


WEIGHTS = UtilityWeights()


def popularity(seed: int, n_items: int, tail: float) -> npt.NDArray[np.float64]:
    """Each course's log-appeal from a Zipf law: ``-tail x log(rank)``.

    The ranks are a permutation from their own stream (seeded by ``seed`` and
    a fixed stream number), so ``tail`` changes no other random value, and
    ``tail=0`` gives zeros.

    Args:
        seed: the generator's seed.
        n_items: number of courses.
        tail: the Zipf exponent (0: no popularity term).

    Returns:
        One value per course, added to its quality.
    """
    rank = np.random.default_rng([_POPULARITY_STREAM, seed]).permutation(n_items) + 1
    return -tail * np.log(rank.astype(np.float64))


def _category_title(category: int) -> str:
    name = CATEGORIES[category]
    return _CATEGORY_TITLES.get(name, name.title())


def days(start: pd.Timestamp, offsets: npt.NDArray[np.float64]) -> pd.Series:
    """Timestamps ``offsets`` (fractional) days after ``start``."""
    return pd.Series(start + pd.to_timedelta(offsets, unit="D")).astype(
        "datetime64[ns]"
    )


def catalogue(
    rng: np.random.Generator, n_items: int, n_days: int, start: pd.Timestamp
) -> tuple[pd.DataFrame, IntArray, IntArray]:
    """Courses, their category index and their release day (negative: before)."""
    category = rng.permutation(np.resize(np.arange(len(CATEGORIES)), n_items))
    level = rng.choice([1, 2, 3], n_items, p=[0.4, 0.35, 0.25]).astype(np.int64)
    # 80% of courses exist at the start; the rest are released during the period.
    released = np.where(
        rng.random(n_items) < 0.8,
        -rng.integers(1, 700, n_items),
        rng.integers(0, max(n_days, 1), n_items),
    )
    roles = [
        ",".join(ROLES[r] for r in np.flatnonzero(AFFINITY[:, c] >= 2.0))
        for c in category
    ]
    topics = rng.integers(0, len(_TOPICS), n_items)
    items = pd.DataFrame(
        {
            "item_id": ids("C", n_items, 3),
            "title": [
                f"{_category_title(c)} {_TOPICS[t]} ({_LEVEL_NAMES[lv]})"
                for c, t, lv in zip(category, topics, level, strict=True)
            ],
            "category": [CATEGORIES[c] for c in category],
            "level": level,
            "duration_hours": np.round(rng.lognormal(np.log(3.0 * level), 0.5), 1),
            "roles": roles,
            "created": days(start, released.astype(np.float64)),
        }
    )
    return items, category, released


def staff(
    rng: np.random.Generator, n_users: int, n_days: int, start: pd.Timestamp
) -> tuple[pd.DataFrame, IntArray, IntArray]:
    """Employees, their role index and their hire day (negative: before start)."""
    role = rng.choice(len(ROLES), n_users, p=ROLE_SHARE)
    seniority = rng.choice(5, n_users, p=[0.2, 0.3, 0.25, 0.15, 0.1])
    # 85% were hired before the period; the rest join during it.
    hired = np.where(
        rng.random(n_users) < 0.85,
        -rng.integers(30, 5 * 365, n_users),
        rng.integers(0, n_days, n_users),
    )
    users = pd.DataFrame(
        {
            "user_id": ids("U", n_users, 4),
            "segment": [ROLES[r] for r in role],
            "seniority": seniority.astype(np.int64),
            "department": [DEPARTMENTS[r] for r in role],
            "hire_date": days(start, hired.astype(np.float64)),
        }
    )
    return users, role.astype(np.int64), hired.astype(np.int64)


def age_bands(seed: int, seniority: IntArray) -> npt.NDArray[np.object_]:
    """Each employee's age band, from an age that grows with seniority.

    The ages come from their own generator (seeded by ``seed`` and a fixed
    stream number), so adding them left every other generated value as it
    was; the same seed and seniorities give the same bands.

    Args:
        seed: the generator's seed.
        seniority: each employee's seniority (0-4).

    Returns:
        One of ``tables.AGE_BANDS`` per employee.
    """
    rng = np.random.default_rng([_AGE_STREAM, seed])
    return age_band(25.0 + 6.0 * seniority + rng.normal(0.0, 6.0, len(seniority)))
