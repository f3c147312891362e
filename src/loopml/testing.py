"""``check_workload``: one workload through the whole loop, as a conformance test.

Like scikit-learn's ``check_estimator``: give it a registered workload (or
its name) and it runs, in a temporary home on the workload's tiny data,
ingest, validate, features, train, evaluate, promote, batch, the service
over real HTTP (``/v1/<w>/predict``, MLflow ``/v1/<w>/invocations`` and the
Open Inference Protocol v2, each with a valid and an invalid body), monitor,
retrain and a two-day replay. A step the workload has no capability for is
reported as skipped; a broken one raises :class:`WorkloadCheckError` naming
the step and the capability::

    from loopml.testing import check_workload

    def test_my_workload_runs_the_loop(tmp_path):
        check_workload("churn", home=tmp_path, settings_overrides={"n_rows": 800})
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.core.config import Settings, load_settings
from loopml.core.errors import StageError
from loopml.core.runtime import configure_environment
from loopml.sdk.capabilities import (
    CAPABILITIES,
    BatchScorer,
    DaySource,
    FeatureViews,
    Monitor,
    OnlineScorer,
)
from loopml.sdk.workload import Workload, get_workload

#: The type each capability method must return (or None).
CAPABILITY_TYPES: dict[str, type[Any]] = {
    "feature_views": FeatureViews,
    "online_scorer": OnlineScorer,
    "batch_scorer": BatchScorer,
    "monitor": Monitor,
    "day_source": DaySource,
}


class WorkloadCheckError(AssertionError):
    """A workload failed a step of :func:`check_workload`; the message says which."""


@dataclass
class StepResult:
    """One step of the check."""

    step: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class CheckReport:
    """Every step of a passed check, in order."""

    workload: str
    steps: list[StepResult] = field(default_factory=list)

    def status(self, step: str) -> str:
        """The status of a step (``ok``, ``skipped``, ...)."""
        return next(s.status for s in self.steps if s.step == step)

    def __str__(self) -> str:
        """One line per step."""
        return "\n".join(
            f"{s.step:<10} {s.status:<8} {s.seconds:6.1f}s  {s.detail}"
            for s in self.steps
        )


class _Checker:
    """Runs the steps and records them; the first failure raises."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.report = CheckReport(workload.name)

    @contextlib.contextmanager
    def step(self, name: str, capability: str | None = None) -> Iterator[StepResult]:
        result = StepResult(name, "ok")
        started = time.perf_counter()
        try:
            yield result
        except WorkloadCheckError:
            raise
        except Exception as error:  # any failure is the workload's finding
            what = f" ({CAPABILITIES[capability]})" if capability else ""
            raise WorkloadCheckError(
                f"{self.workload.name}: step {name}{what} failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        finally:
            result.seconds = time.perf_counter() - started
        self.report.steps.append(result)

    def skip(self, name: str, capability: str) -> None:
        self.report.steps.append(
            StepResult(name, "skipped", f"no {CAPABILITIES[capability]}")
        )


def _fail(workload: Workload, step: str, message: str) -> WorkloadCheckError:
    return WorkloadCheckError(f"{workload.name}: step {step} failed: {message}")


def check_contract(workload: Workload) -> list[str]:
    """The static part: attributes, settings class and capability types.

    Returns:
        The problems found (empty: none).
    """
    from pydantic import BaseModel

    from loopml.sdk.settings import WorkloadSettings

    problems = []
    for attribute, kind in (
        ("name", str),
        ("primary_metric", str),
        ("higher_is_better", bool),
        ("key_metrics", tuple),
    ):
        if not isinstance(getattr(workload, attribute, None), kind):
            problems.append(f"{attribute} must be a {kind.__name__}")
    model = workload.settings_class
    if model is not None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append("settings_class must be a pydantic model")
        elif issubclass(model, WorkloadSettings) and model.section_name != getattr(
            workload, "name", None
        ):
            problems.append(
                f"settings_class.section_name is {model.section_name!r}, "
                f"not the workload's name {workload.name!r}"
            )
    for method, kind in CAPABILITY_TYPES.items():
        try:
            found = getattr(workload, method)()
        except Exception as error:  # a capability that cannot even be built
            problems.append(f"{CAPABILITIES[method]}: {method}() raised {error!r}")
            continue
        if found is not None and not isinstance(found, kind):
            problems.append(
                f"{CAPABILITIES[method]}: {method}() returned a "
                f"{type(found).__name__}, not a {kind.__name__}"
            )
    scorer = workload.online_scorer()
    if isinstance(scorer, OnlineScorer):
        if not getattr(scorer, "outputs", None):
            problems.append("online scorer: outputs is empty")
        if not (isinstance(getattr(scorer, "row", None), type)):
            problems.append("online scorer: row is not a pydantic model class")
    return problems


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serving(settings: Settings, name: str) -> Iterator[str]:
    """The service for ``name`` on a free port (uvicorn in a thread)."""
    import uvicorn

    from loopml.serving.app import create_app

    serving = settings.serving.model_copy(update={"workloads": [name]})
    app = create_app(settings.model_copy(update={"serving": serving}))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_ready(url: str, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.TransportError as error:
            last = str(error)
        time.sleep(0.3)
    raise TimeoutError(f"/readyz not ready in {seconds:.0f} s: {last}")


def _expect(answer: Any, status: int, what: str) -> dict[str, Any]:
    if answer.status_code != status:
        raise AssertionError(
            f"{what}: expected {status}, got {answer.status_code}: {answer.text[:300]}"
        )
    body: dict[str, Any] = answer.json() if answer.content else {}
    return body


def _broken_row(row: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The example row without its first field (a 422 must name it)."""
    field_name = next(iter(row))
    return {k: v for k, v in row.items() if k != field_name}, field_name


def _check_protocols(url: str, name: str, rows: list[dict[str, Any]]) -> str:
    """Each protocol answers a valid body 200 and a broken one 422 (field named)."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        body = _expect(
            client.post(f"/v1/{name}/predict", json={"rows": rows}), 200, "/v1 predict"
        )
        if len(body.get("predictions", [])) != len(rows):
            raise AssertionError(
                f"/v1 predict: {len(body.get('predictions', []))} predictions "
                f"for {len(rows)} rows"
            )
        broken, field_name = _broken_row(rows[0])
        error = _expect(
            client.post(f"/v1/{name}/predict", json={"rows": [broken]}),
            422,
            "/v1 predict with a missing field",
        )
        if field_name not in json.dumps(error):
            raise AssertionError(f"the 422 does not name the field {field_name!r}")
        mlflow_body = {"dataframe_records": rows}
        answer = _expect(
            client.post(f"/v1/{name}/invocations", json=mlflow_body),
            200,
            "MLflow /invocations",
        )
        if len(answer.get("predictions", [])) != len(rows):
            raise AssertionError("MLflow /invocations: one prediction per row expected")
        _expect(client.get(f"/v2/models/{name}/ready"), 200, "v2 model ready")
        inputs = [
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": _datatype([r.get(column) for r in rows]),
                "data": [r.get(column) for r in rows],
            }
            for column in rows[0]
        ]
        v2 = _expect(
            client.post(f"/v2/models/{name}/infer", json={"inputs": inputs}),
            200,
            "v2 infer",
        )
        if not v2.get("outputs"):
            raise AssertionError("v2 infer: no outputs")
        bad = _expect(
            client.post(f"/v2/models/{name}/infer", json={"inputs": inputs[1:]}),
            422,
            "v2 infer with a missing input",
        )
        if field_name not in json.dumps(bad):
            raise AssertionError(f"the v2 422 does not name the input {field_name!r}")
    return f"{len(rows)} row(s) over /v1, MLflow and v2; 422s name the field"


def _datatype(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def check_workload(
    workload: str | Workload,
    *,
    home: Path | None = None,
    settings_overrides: dict[str, Any] | None = None,
    replay_days: int = 2,
) -> CheckReport:
    """Run a workload through the whole loop in a temporary home.

    Args:
        workload: a registered workload or its name (it must be registered:
            the service and the stages find workloads by name).
        home: the loopml home to use (default: a new temporary folder).
        settings_overrides: values for the workload's settings section
            (``workloads.<name>``), e.g. a tiny size.
        replay_days: how many days the replay step lives (0: skip it).

    Returns:
        The report of every step.

    Raises:
        WorkloadCheckError: naming the first step (and capability) that failed.
    """
    from loopml.orchestration import replay
    from loopml.stages import batch, monitor, retrain
    from loopml.stages.runner import run_stage

    found = get_workload(workload) if isinstance(workload, str) else workload
    name = found.name
    checker = _Checker(found)
    with checker.step("contract") as result:
        if problems := check_contract(found):
            raise _fail(found, "contract", "; ".join(problems))
        result.detail = ", ".join(
            c for c in CAPABILITY_TYPES if getattr(found, c)() is not None
        )
    with contextlib.ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        previous = os.environ.get("LOOPML_HOME")
        os.environ["LOOPML_HOME"] = str(home)
        stack.callback(_restore_env, "LOOPML_HOME", previous)
        settings = load_settings(
            None,
            home=home,
            workloads={name: dict(settings_overrides or {})},
        )
        monitor_cfg = settings.monitor.model_copy(update={"in_run": False})
        settings = settings.model_copy(update={"monitor": monitor_cfg})
        configure_environment(settings.home)
        stages: list[tuple[str, str | None]] = [
            ("ingest", None),
            ("validate", None),
            ("features", "feature_views"),
            ("train", None),
            ("evaluate", None),
            ("promote", None),
        ]
        for stage, capability in stages:
            if capability and getattr(found, capability)() is None:
                checker.skip(stage, capability)
                continue
            with checker.step(stage, capability) as result:
                outcome = run_stage(stage, settings, name).result
                if outcome.status == "failed":
                    raise StageError(outcome.summary)
                result.detail = outcome.summary
                if stage == "promote" and not outcome.details.get("promoted"):
                    raise AssertionError(
                        f"the gate refused the first model ({outcome.summary}); a "
                        "workload's model must beat its baseline on its tiny data"
                    )
        _capability_step(
            checker,
            "batch",
            "batch_scorer",
            lambda: batch.run(settings, name, require_champion=True).summary,
        )
        scorer = found.online_scorer()
        if scorer is None:
            checker.skip("serve", "online_scorer")
        else:
            with (
                checker.step("serve", "online_scorer") as result,
                _serving(settings, name) as url,
            ):
                _wait_ready(url)
                from loopml.models.integrity import load_verified
                from loopml.models.registry import CHAMPION, get_alias

                champion = get_alias(name, CHAMPION)
                assert champion is not None
                model = load_verified(name, str(champion.version)).unwrap_python_model()
                rows = scorer.example_rows(scorer.warm(model))
                if not rows:
                    raise AssertionError("example_rows() gave no row")
                result.detail = _check_protocols(url, name, rows)
        _capability_step(
            checker,
            "monitor",
            "monitor",
            lambda: _monitored(settings, name, monitor),
        )
        with checker.step("retrain") as result:
            result.detail = retrain.run(settings, name).summary
        if replay_days <= 0:
            checker.report.steps.append(StepResult("replay", "skipped", "asked"))
        else:
            _capability_step(
                checker,
                "replay",
                "day_source",
                lambda: _replayed(settings, name, replay_days, replay),
            )
    return checker.report


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def _capability_step(
    checker: _Checker, step: str, capability: str, call: Callable[[], str]
) -> None:
    if getattr(checker.workload, capability)() is None:
        checker.skip(step, capability)
        return
    with checker.step(step, capability) as result:
        result.detail = call()


def _monitored(settings: Settings, name: str, monitor: Any) -> str:
    outcome = monitor.run(settings, name)
    reports = outcome.details.get("reports", {})
    missing = [
        kind for kind in ("html", "json") if not Path(reports.get(kind, "")).is_file()
    ]
    if missing:
        raise AssertionError(f"no {' and '.join(missing)} report written")
    summary: str = outcome.summary
    return summary


def _replayed(settings: Settings, name: str, days: int, replay: Any) -> str:
    report = replay.run(settings, name, days)
    if len(report.days) != days:
        raise AssertionError(f"{len(report.days)} days replayed of {days}")
    return f"{days} days replayed, {len(report.retrains)} retrain(s)"
