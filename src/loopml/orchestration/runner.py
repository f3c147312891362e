"""The local runner: every stage in order, stopping at the first failure.

``run_stage`` and ``STAGES`` live in ``loopml.stages.runner`` (a retrain runs
stages too); this module strings them into the loop of ``loopml run``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import write_json
from loopml.stages.common import StageResult
from loopml.stages.runner import STAGES, TimedResult, run_stage

log = logging.getLogger(__name__)


#: The stages a retraining consists of: skipped together when nothing changed.
RETRAINING = ("train", "evaluate", "promote")


def unchanged_since(settings: Settings, workload: str) -> tuple[str, bool] | None:
    """The champion or challenger version made of exactly what train would use.

    Returns:
        ``("v<N> (<alias>)", judged)`` when the data version, parameters
        (tuned ones applied), code and lock are those of that version, else
        ``None``. ``judged``: the gate has ruled on it (a champion, or a
        challenger with the gate's tags); a challenger whose evaluate or
        promote failed before the gate ruled is not, so they run again.
    """
    from loopml.models.registry import CHALLENGER, CHAMPION, get_alias
    from loopml.models.tracking import FINGERPRINT_TAG, setup_mlflow
    from loopml.stages.promote import GATE_TAG
    from loopml.stages.train import model_fingerprint
    from loopml.stages.tune import apply_tuned

    setup_mlflow(settings)
    current = model_fingerprint(apply_tuned(settings, workload), workload)
    for alias in (CHAMPION, CHALLENGER):
        version = get_alias(workload, alias)
        tags = (version.tags or {}) if version is not None else {}
        if version is not None and tags.get(FINGERPRINT_TAG) == current:
            judged = alias == CHAMPION or any(k.startswith(GATE_TAG) for k in tags)
            return f"v{version.version} ({alias})", judged
    return None


def run_loop(
    settings: Settings,
    workloads: list[str],
    on_stage: Callable[[TimedResult], None] | None = None,
    tune_first: bool = False,
    force: bool = False,
    on_start: Callable[[str, str], None] | None = None,
) -> list[TimedResult]:
    """Run every stage for every workload; stop a workload at its first failure.

    Train, evaluate and promote are skipped (status ``skipped``) when the
    champion or challenger was made of the same data version, parameters,
    code and lock (:func:`unchanged_since`), as ``dvc repro`` skips what did
    not change; ``force`` retrains anyway. With ``tune.in_run`` the ``tune``
    stage runs before train once per data version (the tuned parameters of
    the validated data are reused, see ``loopml.stages.tune.tuned_on``).

    Args:
        settings: the active settings.
        workloads: names of the workloads to run.
        on_stage: called after each stage (for progress output).
        tune_first: run the ``tune`` stage before ``train`` even when
            parameters tuned on this data version exist.
        force: retrain even when nothing changed.
        on_start: called with (stage, workload) as a stage starts.

    Returns:
        The timed results, failed stages included (status ``failed``).
    """
    names = list(STAGES)
    if tune_first or settings.tune.in_run:
        names.insert(names.index("train"), "tune")
    results: list[TimedResult] = []
    for workload in workloads:
        started = dt.datetime.now(dt.UTC)
        mine: list[TimedResult] = []
        same: str | None = None
        judged = True
        for name in names:
            if (
                name == "train"
                and not force
                and (found := unchanged_since(settings, workload))
            ):
                same, judged = found
            skip = None
            if same is not None and name in RETRAINING and (name == "train" or judged):
                skip = (
                    f"unchanged since {same}: same data, parameters, code and lock "
                    "(--force retrains)"
                )
            elif name == "tune":
                from loopml.stages.tune import can_tune, tuned_on

                if not can_tune(settings, workload):
                    if not tune_first:
                        continue  # nothing to tune, nothing asked: no row
                    skip = (
                        f"the {workload} workload declares no search space "
                        "(Workload.search_space): nothing to tune"
                    )
                else:
                    skip = None if tune_first else tuned_on(settings, workload)
            if skip is not None:
                timed = TimedResult(StageResult(name, workload, "skipped", skip), 0.0)
                mine.append(timed)
                if on_stage:
                    on_stage(timed)
                continue
            if on_start:
                on_start(name, workload)
            try:
                timed = run_stage(name, settings, workload)
            except (StageError, FileNotFoundError, ValueError) as error:
                failed = StageResult(name, workload, "failed", str(error))
                timed = TimedResult(failed, 0.0)
            mine.append(timed)
            if on_stage:
                on_stage(timed)
            if timed.result.status == "failed":
                break
        results.extend(mine)
        write_json(
            {
                "started": started.isoformat(timespec="seconds"),
                "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "ok": all(t.result.status != "failed" for t in mine),
                "stages": [
                    {**asdict(t.result), "seconds": round(t.seconds, 2)} for t in mine
                ],
            },
            settings.state_dir(workload) / "last_run.json",
        )
    return results
