"""The DVC pipeline on a clean copy of the repository, with tiny parameters.

``dvc repro`` runs the loop, a second one finds everything up to date, a
changed model parameter re-runs only the stages that use it, and the data
goes to the local remote and back. The copy links ``.venv`` to the running
interpreter's environment, whose ``loopml`` is the package under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STAGES = [
    f"demand-{s}"
    for s in ("ingest", "validate", "features", "train", "evaluate", "promote")
]
TINY = {"n_stores": 2, "n_items": 4, "n_days": 400, "horizon": 14, "n_folds": 2}
TINY |= {"fold_step": 14}


def _copy_repo(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


def _set_params(repo: Path, **model: int) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    demand = params["workloads"]["demand"]
    demand.update(TINY)
    demand["model"].update({"n_estimators": 60, **model})
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def _dvc(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        DVC_SITE_CACHE_DIR=str(repo.parent / "dvc-site"),
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        COLUMNS="2000",
    )
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "dvc"), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dvc {args} failed:\n{output}"
    return output


def _ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


@pytest.mark.slow
def test_dvc_repro_status_params_and_remote(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of loopml to copy")
    repo = tmp_path / "repo"
    _copy_repo(repo)
    _set_params(repo)

    # The demand chain only: recsys's is the same commands on other data.
    first = _dvc(repo, "repro", "demand-promote")
    assert _ran(first) == STAGES
    assert (repo / "dvc.lock").is_file()
    validated = repo / ".loopml" / "data" / "demand" / "validated.parquet"
    # params.yaml, not configs/default.yaml (3 stores x 10 items), drove the run.
    assert len(pd.read_parquet(validated)) == 2 * 4 * 400

    again = _dvc(repo, "repro", "demand-promote")
    assert _ran(again) == [] and "Data and pipelines are up to date" in again

    _set_params(repo, n_estimators=40)
    status = _dvc(repo, "status", "--with-deps", "demand-promote")
    assert "demand-train:" in status and "demand-evaluate:" in status
    assert "demand-ingest:" not in status
    changed = _dvc(repo, "repro", "demand-promote")
    assert _ran(changed) == ["demand-train", "demand-evaluate", "demand-promote"]
    assert "Stage 'demand-ingest' didn't change" in changed
    assert "Stage 'demand-validate' didn't change" in changed

    dag = _dvc(repo, "dag")
    assert all(stage in dag for stage in STAGES)

    _dvc(repo, "push")
    assert any((repo / ".loopml" / "dvc-remote").rglob("*"))
    shutil.rmtree(repo / ".dvc" / "cache")
    lost = validated.read_bytes()
    validated.unlink()
    _dvc(repo, "pull", "--with-deps", "demand-promote")
    assert validated.read_bytes() == lost
    assert "up to date" in _dvc(repo, "status", "--with-deps", "demand-promote")
