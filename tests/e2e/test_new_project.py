"""``loopml new``: the generated project passes its own ``make test``.

Its ``make test`` lints (ruff, mypy --strict, import rules, secret scan,
the CI file's schema) and runs its tests, among them each workload's
conformance test (``loopml.testing.check_workload``: the whole loop, served
over HTTP), also for the workload added with ``--workload-only``.
``test_new_project_run.py`` runs another such project's ``make run``,
``make serve`` and the rest (tests/new_projects.py has the helpers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from new_projects import make, shop_with_churn


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_new_project_with_two_kinds_passes_its_make_test(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # mypy's cache of the third-party packages outlives the run (cold: ~11 s
    # of CPU).
    cache = getattr(request.config, "cache", None)
    mypy_cache = cache.mkdir("new_project_mypy") if cache else tmp_path / "mypy"
    project = shop_with_churn(tmp_path)
    assert (project / "src/shop/workloads/shop/workload.py").is_file()
    assert (project / ".github/workflows/ci.yml").is_file()
    assert not (project / ".gitlab-ci.yml").exists()
    # Far from this checkout: the pip requirement, never this machine's path.
    makefile = (project / "Makefile").read_text("utf-8")
    assert "LOOPML_SOURCE ?= loopml\n" in makefile
    assert str(Path(__file__).resolve().parents[2]) not in makefile
    churn = project / "src/shop/workloads/churn"
    assert (churn / "models/logistic.py").is_file()
    assert "roc_auc" in (churn / "evaluate.py").read_text("utf-8")

    # -rap: the short summary also names every passed test.
    tested = make(project, "test", "ARGS=-rap", MYPY_CACHE_DIR=str(mypy_cache))
    out = tested.stdout
    assert tested.returncode == 0, out[-6000:] + tested.stderr[-3000:]
    assert " passed" in out
    assert "secret scan:" in out
    assert "Workloads import only loopml.sdk and loopml.core KEPT" in out
    assert "Success: no issues found" in out  # mypy --strict src
    # Each workload's conformance test passed: the whole loop, served over
    # HTTP, for the first workload and the one --workload-only added.
    for name in ("shop", "churn"):
        check = f"tests/integration/test_{name}_check.py::test_{name}_passes_loopml"
        assert f"PASSED {check}_check_workload" in out, out[-6000:]
