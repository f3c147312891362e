"""``loopml run -w recsys --dataset movielens --data-path DIR``: settings per workload.

``--dataset`` is routed to the workloads whose settings accept it: recsys
reads a MovieLens-100K folder, demand refuses the name in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from loopml.workloads.recsys.movielens_fixture import write_movielens

LOOPML = [sys.executable, "-m", "loopml"]


def _loopml(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOOPML, *args],
        env=conftest.subprocess_env(home, COLUMNS="2000"),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_recsys_runs_on_a_movielens_folder(tmp_path: Path) -> None:
    folder = write_movielens(
        tmp_path / "ml-100k", n_users=200, n_items=120, n_days=120, seed=3
    )
    ratings = len((folder / "u.data").read_text("utf-8").splitlines())
    home = tmp_path / "home"
    source = ("--dataset", "movielens", "--data-path", str(folder))
    ran = _loopml(home, "run", "-w", "recsys", *source)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    ingest = next(line for line in ran.stdout.splitlines() if line.startswith("ingest"))
    assert f"recsys: {ratings:,} rows" in ingest
    assert "recsys champion: version 1" in ran.stdout

    refused = _loopml(home, "run", "-w", "demand", *source)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "demand" in refused.stderr and "movielens" in refused.stderr
