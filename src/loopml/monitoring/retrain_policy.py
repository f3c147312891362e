"""The continuous-training policy: should the champion be retrained today?

A pure function of the facts (:class:`Facts`) and the ``retrain:`` settings,
so every rule is unit-tested without MLflow. Four triggers:

* ``drift``: the latest ``loopml monitor`` report on the current champion
  found a drifted column or drifted predictions (``retrain.on_drift``);
* ``performance``: its live primary metric is ``retrain.max_metric_ratio``
  times worse than the champion's backtest, measured on at least
  ``monitor.min_rows`` labelled forecasts (a day of a small world is a
  handful of rows: one quiet day would look like a collapse);
* ``age``: the champion's training data ends ``retrain.max_age_days`` or
  more before today;
* ``schedule``: ``retrain.every_days`` or more since the last retrain (or,
  before the first one, since the champion's data ends).

Drift and performance are held back during the cool-down
(``retrain.cooldown_days`` after the last retrain): the retrained model
needs time before the monitor's windows see it. Age and schedule are not:
they are deadlines. Without a champion, training one is always due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from loopml.core.config import RetrainSettings

DRIFT = "drift"
PERFORMANCE = "performance"
AGE = "age"
SCHEDULE = "schedule"
NO_CHAMPION = "no_champion"


@dataclass(frozen=True)
class Facts:
    """What the policy looks at, gathered by ``loopml.stages.retrain``.

    Attributes:
        today: the day the decision is for (``--date``, or the last validated
            day).
        champion_version: the registry's champion, or ``None``.
        champion_data_end: the last day of the champion's training data.
        last_retrain: the day of the last completed retrain, if any.
        monitor: the latest monitor report (its JSON) up to ``today``.
        higher_is_better: whether the primary metric grows with quality.
    """

    today: dt.date
    champion_version: str | None
    champion_data_end: dt.date | None = None
    last_retrain: dt.date | None = None
    monitor: dict[str, Any] | None = None
    higher_is_better: bool = False


@dataclass(frozen=True)
class Trigger:
    """One reason to retrain."""

    name: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The policy's answer: the triggers that fired, and why the others did not."""

    triggers: list[Trigger] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)

    @property
    def fire(self) -> bool:
        """Whether any trigger fired."""
        return bool(self.triggers)

    def summary(self) -> str:
        """The triggers, or why nothing fired, in one line."""
        if self.fire:
            return "; ".join(f"{t.name}: {t.reason}" for t in self.triggers)
        return "; ".join(self.quiet)


def _usable_report(facts: Facts) -> tuple[dict[str, Any] | None, str]:
    """The monitor report if it judged the current champion, else why not."""
    report = facts.monitor
    if report is None:
        return None, "no monitor report yet (run `loopml monitor`)"
    version = str(report.get("model_version"))
    if version != facts.champion_version:
        return None, (
            f"the latest monitor report ({report.get('date')}) judged v{version}, "
            f"not the champion v{facts.champion_version}"
        )
    return report, ""


def _drift(report: dict[str, Any]) -> str | None:
    """The drifted columns and predictions of a report, or ``None``."""
    columns = report["drift"]["columns"]
    found = [
        f"{name} {v['score']:.2f} >= {v['threshold']:g}"
        for name, v in columns.items()
        if v.get("drifted")
    ]
    prediction = report.get("prediction_drift") or {}
    if prediction.get("drifted"):
        found.append(f"predictions {prediction['score']:.2f}")
    return ", ".join(found) if found else None


def _largest_score(report: dict[str, Any]) -> str:
    judged = {
        name: v for name, v in report["drift"]["columns"].items() if v.get("judged")
    }
    if not judged:
        return "no column could be judged"
    name = max(judged, key=lambda c: judged[c]["score"])
    v = judged[name]
    return f"largest {name} {v['score']:.2f} < {v['threshold']:g}"


def _ratio(report: dict[str, Any], higher_is_better: bool) -> tuple[float, str] | None:
    """How many times worse the live metric is than the backtest, and a label."""
    performance = report.get("performance") or {}
    value, backtest = performance.get("value"), performance.get("backtest")
    if value is None or not backtest:
        return None
    ratio = backtest / max(value, 1e-9) if higher_is_better else value / backtest
    label = f"live {performance.get('metric')} {value:.3f} vs backtest {backtest:.3f}"
    return float(ratio), label


def _labelled(report: dict[str, Any]) -> int:
    return int((report.get("performance") or {}).get("n") or 0)


def _min_rows(report: dict[str, Any]) -> int:
    """The monitor's ``min_rows``: fewer labelled forecasts get no verdict."""
    return int((report.get("thresholds") or {}).get("min_rows", 0))


def decide(policy: RetrainSettings, facts: Facts) -> Verdict:
    """Apply the policy to the facts.

    Args:
        policy: the ``retrain:`` settings.
        facts: today, the champion, the last retrain and the monitor report.

    Returns:
        The triggers that fired and, for the others, why not.
    """
    if facts.champion_version is None:
        return Verdict([Trigger(NO_CHAMPION, "there is no champion yet")])
    fired: list[Trigger] = []
    quiet: list[str] = []
    since_retrain = (
        None if facts.last_retrain is None else (facts.today - facts.last_retrain).days
    )
    cooling = since_retrain is not None and since_retrain < policy.cooldown_days
    held = f"held by the cool-down ({since_retrain} of {policy.cooldown_days} days)"

    report, missing = _usable_report(facts)
    if report is None:
        quiet.append(f"drift and performance: {missing}")
    else:
        drifted = _drift(report) if policy.on_drift else None
        if drifted is None:
            why = _largest_score(report) if policy.on_drift else "off"
            quiet.append(f"drift: none on {report['date']} ({why})")
        elif cooling:
            quiet.append(f"drift: {drifted} on {report['date']}, {held}")
        else:
            fired.append(Trigger(DRIFT, f"{drifted} on {report['date']}"))
        measured = _ratio(report, facts.higher_is_better)
        limit = policy.max_metric_ratio
        if limit is None:
            quiet.append("performance: off")
        elif measured is None:
            quiet.append("performance: no live metric in the report")
        elif (n := _labelled(report)) < (least := _min_rows(report)):
            quiet.append(
                f"performance: {n} labelled forecasts, fewer than monitor.min_rows "
                f"({least}) to judge"
            )
        else:
            ratio, label = measured
            text = f"{label} = {ratio:.2f}x (limit {limit:g}x)"
            if ratio < limit:
                quiet.append(f"performance: {text}")
            elif cooling:
                quiet.append(f"performance: {text}, {held}")
            else:
                fired.append(Trigger(PERFORMANCE, text))

    end = facts.champion_data_end
    age = None if end is None else (facts.today - end).days
    if policy.max_age_days is None:
        quiet.append("age: off")
    elif age is None:
        quiet.append("age: the champion's data end is unknown")
    elif age >= policy.max_age_days:
        fired.append(
            Trigger(AGE, f"data ends {age} days ago (limit {policy.max_age_days})")
        )
    else:
        quiet.append(f"age: {age} < {policy.max_age_days} days")

    if policy.every_days is None:
        quiet.append("schedule: off")
    else:
        since = since_retrain if since_retrain is not None else age
        what = "the last retrain" if since_retrain is not None else "the data end"
        if since is not None and since >= policy.every_days:
            fired.append(
                Trigger(
                    SCHEDULE, f"{since} days since {what} (every {policy.every_days})"
                )
            )
        else:
            quiet.append(f"schedule: {since} < {policy.every_days} days since {what}")
    return Verdict(fired, quiet)
