"""A model's lineage names the repository of its workload's code.

A project made by ``loopml new`` keeps its workload in its own git
repository; before, every model recorded loopml's commit and lock instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loopml.models.tracking import REPO_ROOT, lineage_tags
from loopml.stages.common import package_folder, workload_code


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=where,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository holding a package ``proj`` with a lock file."""
    root = tmp_path / "proj-repo"
    package = root / "src" / "proj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (root / "requirements.lock").write_text("pandas==2.2.3\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "first")
    return root


def test_the_commit_dirt_and_lock_are_the_projects(
    project: Path, tmp_path: Path
) -> None:
    data = tmp_path / "validated.parquet"
    data.write_bytes(b"data")
    code = project / "src" / "proj"
    tags = lineage_tags(data, code)
    assert tags["loopml.git_commit"] == _git(project, "rev-parse", "HEAD")
    assert tags["loopml.git_dirty"] == "False"
    lock = project / "requirements.lock"
    assert tags["loopml.lock_hash"] == lineage_tags(lock, code)["loopml.data_version"]
    own = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if own.returncode == 0:  # loopml from a checkout: its commit beside
        assert tags["loopml.platform_commit"] == own.stdout.strip()
        assert tags["loopml.git_commit"] != own.stdout.strip()
    (code / "features.py").write_text("X = 1\n")
    assert lineage_tags(data, code)["loopml.git_dirty"] == "True"


def test_a_project_without_a_lock_records_loopmls(
    project: Path, tmp_path: Path
) -> None:
    (project / "requirements.lock").unlink()
    data = tmp_path / "validated.parquet"
    data.write_bytes(b"data")
    tags = lineage_tags(data, project / "src" / "proj")
    assert tags["loopml.lock_hash"] == lineage_tags(data)["loopml.lock_hash"]


def test_loopmls_own_workloads_keep_loopmls_lineage(tmp_path: Path) -> None:
    data = tmp_path / "validated.parquet"
    data.write_bytes(b"data")
    assert workload_code("demand") == Path(REPO_ROOT / "src" / "loopml").resolve()
    tags = lineage_tags(data, workload_code("demand"))
    assert tags == lineage_tags(data)
    assert "loopml.platform_commit" not in tags


def test_the_code_of_a_workload_is_its_whole_top_package(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module of the project the workload imports counts as its code too."""
    package = project / "src" / "proj"
    (package / "workloads").mkdir()
    (package / "workloads" / "__init__.py").write_text("")
    (package / "workloads" / "w.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(project / "src"))
    try:
        assert package_folder("proj.workloads.w") == package.resolve()
    finally:
        for name in [m for m in sys.modules if m == "proj" or m.startswith("proj.")]:
            del sys.modules[name]
