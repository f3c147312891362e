"""The driver's MLflow record of tuning trials: writes off Tune's loop, in order."""

from __future__ import annotations

import pickle
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from loopml.stages.tune_runs import TrialRuns
from loopml.stages.tune_trial import RESULT_KEY, TRIAL_TAG


class _Client:
    """Records the calls a TrialRuns makes, and the thread each came from."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self.fail = fail

    def _record(self, name: str, detail: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append((name, detail))

    def create_run(self, experiment_id: str, **kwargs: Any) -> Any:
        if self.fail:
            raise RuntimeError("store down")
        self._record("create", (kwargs["start_time"], kwargs["tags"][TRIAL_TAG]))
        return SimpleNamespace(info=SimpleNamespace(run_id=f"run-{len(self.calls)}"))

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = ()) -> None:
        self._record("batch", (run_id, [m.step for m in metrics], len(params)))

    def set_terminated(self, run_id: str, status: str, end_time: int) -> None:
        self._record("end", (run_id, status, end_time))


def _trial(trial_id: str, steps_done: int) -> Any:
    return SimpleNamespace(
        trial_id=trial_id,
        config={"num_leaves": 31, "learning_rate": 0.05},
        last_result={"training_iteration": steps_done},
    )


def _result(step: int) -> dict[str, Any]:
    entry = {"metrics": {"wape": 0.4}, "step": step, "time_ms": 1_000 + step}
    return {"wape": 0.4, RESULT_KEY: entry}


def test_writes_run_in_a_thread_in_event_order_with_event_times() -> None:
    client = _Client()
    runs = TrialRuns(client, "1", "parent", "demand", steps=2)  # type: ignore[arg-type]
    done, cut = _trial("a", 2), _trial("b", 1)
    runs.on_trial_start(0, [], done)
    runs.on_trial_start(0, [], cut)
    runs.on_trial_result(0, [], done, _result(1))
    runs.on_trial_result(0, [], cut, _result(1))
    runs.on_trial_result(0, [], done, _result(2))
    runs.on_trial_complete(0, [], done)
    runs.on_trial_complete(0, [], cut)
    runs.flush()

    assert client.threads == {"loopml-trial-runs_0"}
    kinds = [name for name, _ in client.calls]
    assert kinds == ["create", "batch", "create", "batch"] + ["batch"] * 3 + ["end"] * 2
    run_a, run_b = client.calls[1][1][0], client.calls[3][1][0]
    assert [d for n, d in client.calls if n == "batch"][2:] == [
        (run_a, [1], 0),
        (run_b, [1], 0),
        (run_a, [2], 0),
    ]
    ends = [d for n, d in client.calls if n == "end"]
    assert [(run, status) for run, status, _ in ends] == [
        (run_a, "FINISHED"),
        (run_b, "KILLED"),
    ]
    started = client.calls[0][1][0]
    assert all(ended >= started for _, _, ended in ends)


def test_flush_raises_a_failed_write_and_pickles_without_its_thread() -> None:
    runs = TrialRuns(_Client(fail=True), "1", "p", "demand", 1)  # type: ignore[arg-type]
    runs.on_trial_start(0, [], _trial("a", 1))
    copy = pickle.loads(pickle.dumps(runs))  # Tune pickles its run configuration
    assert copy._writer is None and copy._pending == []
    with pytest.raises(RuntimeError, match="store down"):
        runs.flush()
