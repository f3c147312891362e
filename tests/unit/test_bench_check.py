"""The benchmark regression check: ratios compared with a tolerance."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_check", BENCHMARKS / "bench_check.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bc = _load()


def _m(value: float, better: str = "lower", kind: str = "serving latency") -> object:
    return bc.Metric(value, better, kind)


def _status(verdicts: list[object]) -> dict[str, str]:
    return {v.name: v.status for v in verdicts}  # type: ignore[attr-defined]


def test_a_latency_ratio_within_tolerance_passes_beyond_it_regresses() -> None:
    baseline = {"a": _m(1.0), "b": _m(1.0), "c": _m(2.0)}
    current = {"a": _m(1.24), "b": _m(1.26), "c": _m(1.0)}
    verdicts = bc.compare(baseline, current, 0.25)
    assert _status(verdicts) == {"a": "ok", "b": "regression", "c": "ok"}
    by_name = {v.name: v for v in verdicts}
    assert by_name["b"].worse_by == pytest.approx(0.26)
    assert by_name["c"].worse_by == pytest.approx(-0.5)  # faster is not a failure


def test_throughput_regresses_when_it_drops_not_when_it_rises() -> None:
    baseline = {"rps": _m(1.0, "higher", "throughput")}
    dropped = bc.compare(baseline, {"rps": _m(0.7, "higher", "throughput")}, 0.25)
    rose = bc.compare(baseline, {"rps": _m(2.0, "higher", "throughput")}, 0.25)
    assert _status(dropped) == {"rps": "regression"}
    assert dropped[0].worse_by == pytest.approx(1 / 0.7 - 1)
    assert _status(rose) == {"rps": "ok"}


def test_the_tolerance_is_configurable() -> None:
    baseline, current = {"a": _m(1.0)}, {"a": _m(1.4)}
    assert _status(bc.compare(baseline, current, 0.25)) == {"a": "regression"}
    assert _status(bc.compare(baseline, current, 0.5)) == {"a": "ok"}


def test_any_error_under_load_fails_whatever_the_baseline() -> None:
    baseline = {"errors": _m(0, "zero", "errors")}
    assert _status(bc.compare(baseline, {"errors": _m(0, "zero", "errors")}, 9)) == {
        "errors": "ok"
    }
    assert _status(bc.compare(baseline, {"errors": _m(1, "zero", "errors")}, 9)) == {
        "errors": "regression"
    }


def test_a_missing_metric_fails_and_a_new_one_is_only_reported() -> None:
    verdicts = bc.compare({"gone": _m(1.0)}, {"fresh": _m(3.0)}, 0.25)
    assert _status(verdicts) == {"gone": "missing", "fresh": "new"}
    assert [v.name for v in bc.failed(verdicts)] == ["gone"]


def test_a_zero_throughput_is_an_infinite_regression() -> None:
    verdict = bc.compare({"rps": _m(1.0, "higher")}, {"rps": _m(0.0, "higher")}, 0.25)[
        0
    ]
    assert verdict.status == "regression" and math.isinf(verdict.worse_by)


def test_the_table_names_the_regressed_metric() -> None:
    verdicts = bc.compare({"slow": _m(1.0), "fine": _m(1.0)}, {"slow": _m(2.0)}, 0.25)
    text = bc.table(verdicts, 0.25)
    slow = next(line for line in text.splitlines() if line.startswith("| slow"))
    assert "REGRESSION" in slow and "+100%" in slow
    fine = next(line for line in text.splitlines() if line.startswith("| fine"))
    assert "MISSING" in fine


def test_load_figures_become_ratios_to_mlflow() -> None:
    figures = {
        "rate": 10.0,
        "achieved_rate": 9.0,
        "all": {"errors": 0},
        "old_after_reload": 0,
        "compare": {
            "mlflow /invocations": {"p50": 40.0},
            "loopml /v1/demand/predict": {"p50": 50.0},
        },
    }
    metrics = bc.load_metrics(figures)
    assert metrics["load: achieved / target rate"].value == pytest.approx(0.9)
    assert metrics["load: loopml /v1/demand/predict p50 / mlflow p50"].value == 1.25
    assert metrics["load: errors + old versions after reload"].value == 0
    assert not any("mlflow /invocations p50" in name for name in metrics)


def test_record_then_check_exits_non_zero_on_a_regression(tmp_path: Path) -> None:
    figures = {"pool": 6.0, "ray_fit": 8.0, "sequential": 10.0}
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tuning.json").write_text(json.dumps({"2x4": figures}))
    baseline = tmp_path / "baseline.json"
    common = ["--only", "tuning", "--from-dir", str(runs), "--baseline", str(baseline)]
    assert bc.main([*common, "--record"]) == 0
    stored = json.loads(baseline.read_text())["metrics"]
    assert stored["tuning 2x4: pool / sequential wall time"]["value"] == 0.6
    assert bc.main(common) == 0
    # Pool now takes 9 s of the sequential 10 s: 0.9 vs 0.6, 50 % worse.
    (runs / "tuning.json").write_text(json.dumps({"2x4": {**figures, "pool": 9.0}}))
    assert bc.main(common) == 1
    assert bc.main([*common, "--tolerance", "0.6"]) == 0


def test_recording_one_benchmark_keeps_the_others_and_says_so(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tuning.json").write_text(
        json.dumps({"2x4": {"pool": 6.0, "ray_fit": 8.0, "sequential": 10.0}})
    )
    (runs / "batch_scoring.json").write_text(
        json.dumps({"fastest": {"loopml top_k_inner": 3.0}, "floor": 2.0})
    )
    baseline = tmp_path / "baseline.json"
    both = ["--from-dir", str(runs), "--baseline", str(baseline), "--record"]
    assert bc.main(["--only", "tuning", "batch_scoring", *both]) == 0
    first = json.loads(baseline.read_text())
    (runs / "tuning.json").write_text(
        json.dumps({"2x4": {"pool": 7.0, "ray_fit": 8.0, "sequential": 10.0}})
    )
    assert bc.main(["--only", "tuning", *both]) == 0
    second = json.loads(baseline.read_text())
    pool = "tuning 2x4: pool / sequential wall time"
    assert second["metrics"][pool]["value"] == 0.7
    kept = {n: m for n, m in first["metrics"].items() if not n.startswith("tuning")}
    assert kept and all(second["metrics"][n] == m for n, m in kept.items())
    assert set(second["commands"]) == {"tuning", "batch_scoring"}
    # Both were recorded on their own (not with the whole suite), each dated.
    assert set(second["partial"]) == {"tuning", "batch_scoring"}
