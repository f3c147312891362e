"""The enrolment simulation of big worlds: by (category, level) group.

The exact simulation (``generator._Enrolments``) adds a Gumbel draw to every
active employee x course utility each day: memory and random draws grow with
employees x courses (about 1.3e10 draws for 100,000 employees x 10,000
courses x 240 days). A course's utility is the sum of a part that depends on
the employee and the course's (category, level) only (role affinity, taste,
seniority fit, history, follow-up) and a part that depends on the course only
(quality, popularity, novelty). So choosing by Gumbel-max over all courses is
the same as choosing a group with probability proportional to
``exp(employee part) x`` the weight of the group's courses still open to the
employee, then a course of the group in proportion to ``exp(course part)``,
redrawing one the employee already took. Same distribution, other random
draws, and memory that grows with enrolments + employees + courses.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loopml.workloads.recsys.organisation import AFFINITY, ROLES, UtilityWeights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEVELS = np.array([1.0, 2.0, 3.0])
#: Rejection rounds before the few employees left are drawn one by one.
_MAX_REDRAWS = 20


class TakenPairs:
    """The (employee, course) pairs taken so far, as one sorted key array."""

    def __init__(self, n_items: int) -> None:
        """Start empty; a key is ``user * n_items + item``."""
        self.n_items = n_items
        self.keys = np.zeros(0, dtype=np.int64)

    def contains(self, user: IntArray, item: IntArray) -> npt.NDArray[np.bool_]:
        """Whether each pair was taken."""
        key = user * self.n_items + item
        if len(self.keys) == 0:
            return np.zeros(len(key), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        found: npt.NDArray[np.bool_] = self.keys[at] == key
        return found

    def of(self, users: IntArray) -> tuple[IntArray, IntArray]:
        """(row in ``users``, course) of every pair taken by the sorted users."""
        lo = np.searchsorted(self.keys, users * self.n_items)
        hi = np.searchsorted(self.keys, (users + 1) * self.n_items)
        counts = hi - lo
        row = np.repeat(np.arange(len(users)), counts)
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        item = self.keys[np.arange(int(counts.sum())) + starts] % self.n_items
        return row.astype(np.int64), item.astype(np.int64)

    def add(self, user: IntArray, item: IntArray) -> None:
        """Record new pairs (each not taken before)."""
        key = np.sort(user * self.n_items + item)
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, key), key)


class GroupedEnrolments:
    """Day-by-day enrolments of a big world, drawn group first, then course."""

    def __init__(
        self,
        rng: np.random.Generator,
        people: tuple[IntArray, IntArray, FloatArray],
        items: tuple[IntArray, IntArray, IntArray, FloatArray],
        hired: IntArray,
        drift_from_day: int | None,
        weights: UtilityWeights,
    ) -> None:
        """Draw each employee's activity rate; nobody has taken anything yet.

        Args:
            rng: the generator's random stream.
            people: each employee's role, seniority and taste per category.
            items: each course's category, level, release day and quality.
            hired: each employee's hire day.
            drift_from_day: from this day each role takes the next one's
                affinities.
            weights: the utility weights.
        """
        self.rng, self.hired, self.drift_from_day = rng, hired, drift_from_day
        self.role, seniority, self.taste = people
        self.category, self.level, self.released, self.quality = items
        self.w = weights
        n_users, n_items = len(self.role), len(self.category)
        n_categories = self.taste.shape[1]
        self.rate = np.clip(rng.lognormal(np.log(0.06), 0.5, n_users), 0.005, 0.5)
        self.fit = -np.abs(LEVELS[None, :] - (1.0 + seniority / 2.0)[:, None])
        self.cat_count = np.zeros((n_users, n_categories))
        self.top_level = np.zeros((n_users, n_categories))
        self.group = self.category * len(LEVELS) + (self.level - 1)
        self.n_groups = n_categories * len(LEVELS)
        self.order = np.argsort(self.group, kind="stable")
        self.bounds = np.searchsorted(
            self.group[self.order], np.arange(self.n_groups + 1)
        )
        self.taken = TakenPairs(n_items)
        self.log_affinity = np.log(AFFINITY)

    def _employee_part(self, active: IntArray, drifted: bool) -> FloatArray:
        """Utility of each (active employee, group), without the course part."""
        role = (self.role[active] + int(drifted)) % len(ROLES)
        by_category = (
            self.log_affinity[role]
            + self.w.taste * self.taste[active]
            + self.w.history * np.log1p(self.cat_count[active])
        )
        follow_up = (
            LEVELS[None, None, :] == self.top_level[active][:, :, None] + 1
        ) & (LEVELS[None, None, :] > 1)
        part: FloatArray = (
            by_category[:, :, None]
            + self.w.level * self.fit[active][:, None, :]
            + self.w.follow_up * follow_up
        )
        return part.reshape(len(active), self.n_groups)

    def _course_weights(self, day: int) -> FloatArray:
        """``exp(course part)`` of each course today; 0 before its release."""
        age = day - self.released
        novelty = self.w.novelty * np.exp(-np.clip(age, 0, None) / 30.0)
        weight: FloatArray = np.where(age >= 0, np.exp(self.quality + novelty), 0.0)
        return weight

    def day(self, day: int, dow: int) -> tuple[IntArray, IntArray]:
        """Simulate one day: (user, item) of each of its enrolments."""
        busy = self.rate * (0.2 if dow >= 5 else 1.0)
        active = np.flatnonzero(
            (self.hired <= day) & (self.rng.random(len(busy)) < busy)
        ).astype(np.int64)
        drifted = self.drift_from_day is not None and day >= self.drift_from_day
        weight = self._course_weights(day)
        total = np.bincount(self.group, weights=weight, minlength=self.n_groups)
        released = np.bincount(self.group, weights=weight > 0, minlength=self.n_groups)
        # Take away what each active employee already took, group by group.
        row, item = self.taken.of(active)
        cell = row * self.n_groups + self.group[item]
        size = len(active) * self.n_groups
        open_weight = np.maximum(
            total[None, :]
            - np.bincount(cell, weights=weight[item], minlength=size).reshape(
                len(active), self.n_groups
            ),
            0.0,
        )
        open_count = released[None, :] - np.bincount(cell, minlength=size).reshape(
            len(active), self.n_groups
        )
        open_weight[open_count <= 0] = 0.0
        with np.errstate(divide="ignore"):
            logit = self._employee_part(active, drifted) + np.log(open_weight)
        group = np.argmax(logit + self.rng.gumbel(size=logit.shape), axis=1)
        ok = np.isfinite(logit[np.arange(len(active)), group])
        active, group = active[ok], group[ok]
        choice = self._courses(active, group, weight)
        self.taken.add(active, choice)
        category = self.category[choice]
        self.cat_count[active, category] += 1
        self.top_level[active, category] = np.maximum(
            self.top_level[active, category], self.level[choice]
        )
        return active, choice

    def _courses(self, user: IntArray, group: IntArray, weight: FloatArray) -> IntArray:
        """One open course per (user, group), in proportion to its weight."""
        cumulative = np.cumsum(weight[self.order])
        before = np.concatenate([[0.0], cumulative])[self.bounds[:-1]]
        total = cumulative[self.bounds[1:] - 1] - before
        choice = np.full(len(user), -1, dtype=np.int64)
        todo = np.arange(len(user))
        for _ in range(_MAX_REDRAWS):
            if len(todo) == 0:
                return choice
            g = group[todo]
            x = before[g] + self.rng.random(len(todo)) * total[g]
            at = np.clip(
                np.searchsorted(cumulative, x, side="right"),
                self.bounds[g],
                self.bounds[g + 1] - 1,
            )
            item = self.order[at]
            bad = (weight[item] <= 0) | self.taken.contains(user[todo], item)
            choice[todo[~bad]] = item[~bad]
            todo = todo[bad]
        for i in todo:  # the rare employee who took most of a group's weight
            members = self.order[self.bounds[group[i]] : self.bounds[group[i] + 1]]
            open_ = members[
                (weight[members] > 0)
                & ~self.taken.contains(np.full(len(members), user[i]), members)
            ]
            p = weight[open_] / weight[open_].sum()
            choice[i] = open_[self.rng.choice(len(open_), p=p)]
        return choice
