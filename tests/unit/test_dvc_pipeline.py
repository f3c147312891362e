"""dvc.yaml is what the registered workloads give (``loopml workloads --dvc``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from loopml.orchestration.dvc_pipeline import STAGES, render

REPO = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_is_current() -> None:
    committed = (REPO / "dvc.yaml").read_text(encoding="utf-8")
    assert committed == render(REPO), (
        "dvc.yaml is stale: run `.venv/bin/loopml workloads --dvc > dvc.yaml`"
    )


def test_every_workload_gets_a_chain_with_its_own_params() -> None:
    stages = yaml.safe_load(render(REPO))["stages"]
    for workload in ("demand", "recsys"):
        chain = [f"{workload}-{s}" for s in STAGES]
        assert list(k for k in stages if k.startswith(f"{workload}-")) == chain
        train = stages[f"{workload}-train"]
        assert f"--workload {workload}" in train["cmd"]
        assert all(
            p == "seed" or p.startswith(f"workloads.{workload}.")
            for p in train["params"]
        )
        assert f"src/loopml/workloads/{workload}" in train["deps"]
    # demand's model parameters reach train and evaluate, not ingest.
    assert "workloads.demand.model" in stages["demand-train"]["params"]
    assert "workloads.demand.model" not in stages["demand-ingest"]["params"]


def test_a_workload_without_stage_params_reads_its_whole_section() -> None:
    from loopml.sdk.workload import get_workload

    workload = get_workload("demand")
    type(workload).stage_params, saved = None, type(workload).stage_params
    try:
        stages = yaml.safe_load(render(REPO, ["demand"]))["stages"]
    finally:
        type(workload).stage_params = saved
    assert stages["demand-ingest"]["params"] == ["seed", "workloads.demand"]
    assert stages["demand-promote"]["params"] == ["workloads.demand"]
