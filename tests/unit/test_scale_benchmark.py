"""benchmarks/scale.py: its options, its measurements and its doc section."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # scale.py imports doc_sections
    try:
        spec = importlib.util.spec_from_file_location("scale", BENCHMARKS / "scale.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["scale"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


scale = _load()


def test_sizes_are_parsed_and_the_small_preset_fills_them() -> None:
    args = scale.parse_args(["--demand", "20x50x1095", "--recsys", "100000x10000"])
    assert args.demand_sizes == (20, 50, 1095)
    assert args.recsys_sizes == (100000, 10000)
    env = scale.workload_env(args)
    assert env["demand"]["LOOPML_WORKLOADS__DEMAND__N_STORES"] == "20"
    assert env["recsys"]["LOOPML_WORKLOADS__RECSYS__N_USERS"] == "100000"
    assert "LOOPML_WORKLOADS__RECSYS__N_DAYS" not in env["recsys"]
    small = scale.parse_args(["--small"])
    assert small.demand == scale.SMALL["demand"]
    assert small.recsys == scale.SMALL["recsys"]
    with_days = scale.workload_env(scale.parse_args(["--recsys", "10x5x90"]))
    assert with_days["recsys"]["LOOPML_WORKLOADS__RECSYS__N_DAYS"] == "90"
    assert set(with_days) == {"recsys"}


@pytest.mark.parametrize("bad", ["20x50", "0x5x9", "axb"])
def test_bad_sizes_are_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        scale.sizes(bad, 3)


def test_nothing_to_run_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        scale.parse_args([])
    assert exit_info.value.code == 2
    assert "--small" in capsys.readouterr().err


def test_the_section_replaces_only_its_own_part_of_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "scale.md"
    doc.write_text(
        "# Scale\n\nintro\n\n<!-- scale:start -->\nold\n<!-- scale:end -->\n"
    )
    args = scale.parse_args(["--demand", "2x3x400"])
    runs = [
        scale.StageRun("demand", "ingest", "ok", 12.34, 300.4, 310.0),
        scale.StageRun("demand", "validate", "exit 1", 2.0, 100.0, 100.0),
    ]
    scale.write_section(doc, scale.SECTION, scale.section(args, runs, "1.0, 2.0, 3.0"))
    text = doc.read_text()
    assert text.startswith("# Scale\n\nintro\n")
    assert "old" not in text
    assert "| demand | ingest | ok | 12.3 | 300 | 310 |" in text
    assert "| demand | validate | exit 1 |" in text
    assert "benchmarks/scale.py --demand 2x3x400 --tune-samples 4" in text
    assert "6 series x 400 days" in text


def test_a_stage_is_timed_and_measured_from_outside(tmp_path: Path) -> None:
    # `workloads` takes no -w: the CLI refuses it (exit 2) after starting up.
    run = scale.run_stage(
        "demand", "workloads", tmp_path, dict(os.environ), (120, 8192)
    )
    assert run.status == "exit 2"
    assert run.seconds > 0
    assert run.max_rss_mb > 10
    assert (tmp_path / "scale-demand-workloads.log").read_text()


def test_resume_with_skip_tune_keeps_the_figures_and_the_feast_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = [
        scale.StageRun("demand", "ingest", "ok", 3.0, 400.0, 380.0),
        scale.StageRun("demand", "validate", "ok", 4.0, 600.0, 550.0),
        scale.StageRun("demand", "tune", "over 8 GB, 2nd try", 95.0, 634.0, 8291.0),
    ]
    scale._save(tmp_path / "scale-results.json", "scale_old", saved)
    measured: list[str] = []
    dropped: list[Path] = []

    def fake_measure(args, workload, stage, home, env):  # type: ignore[no-untyped-def]
        measured.append(stage)
        status = "exit 1" if stage == "evaluate" else "ok"
        return scale.StageRun(workload, stage, status, 1.0, 1.0, 1.0)

    monkeypatch.setattr(scale, "_measure", fake_measure)
    monkeypatch.setattr(scale, "prepare_database", lambda name, keep: None)
    monkeypatch.setattr(scale, "drop_feast_project", lambda h, e: dropped.append(h))
    argv = ["--demand", "2x2x60", "--home", str(tmp_path), "--resume"]
    code = scale.main([*argv, "--skip-tune", "--no-doc"])

    assert code == 1  # evaluate failed
    # ingest and validate kept, tune skipped, evaluate failed, the rest blocked
    assert measured == ["features", "train", "evaluate"]
    state = (tmp_path / "scale-results.json").read_text("utf-8")
    assert '"project": "scale_old"' in state
    assert "8291" in state  # tune's earlier figures stay in the table
    assert dropped == []  # a failed stage keeps the project for --resume


def test_until_stops_after_its_stage_and_resume_runs_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    measured: list[str] = []
    dropped: list[Path] = []

    def fake_measure(args, workload, stage, home, env):  # type: ignore[no-untyped-def]
        measured.append(stage)
        return scale.StageRun(workload, stage, "ok", 1.0, 1.0, 1.0)

    monkeypatch.setattr(scale, "_measure", fake_measure)
    monkeypatch.setattr(scale, "prepare_database", lambda name, keep: None)
    monkeypatch.setattr(scale, "drop_feast_project", lambda h, e: dropped.append(h))
    argv = ["--recsys", "60x20", "--home", str(tmp_path), "--no-doc"]

    assert scale.main([*argv, "--until", "tune"]) == 0
    assert measured == ["ingest", "validate", "features", "tune"]
    out = capsys.readouterr().out
    assert "| recsys | train | not asked |" in out
    assert "--until tune" in out  # the printed command reproduces this run
    assert dropped == []  # the features stay for --resume

    measured.clear()
    assert scale.main([*argv, "--resume"]) == 0
    assert measured == ["train", "evaluate", "promote", "batch", "monitor"]
    assert dropped == [tmp_path]  # complete now: the project is dropped
