"""``loopml new``: the generated project passes its own ``make test`` and ``make run``.

The project reuses this environment (``make ... LOOPML_ENV=<this venv>``): its
``.venv`` sees loopml's packages through a ``.pth`` file and only the project
is installed, offline. Its workload runs at a tiny size (``DEMO_*``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

LOOPML = [sys.executable, "-m", "loopml"]
#: the generated workload at a tiny size (its own settings, DEMO_* variables).
TINY_DEMO = {
    "DEMO_N_ROWS": "1200",
    "DEMO_N_DAYS": "45",
    "DEMO_HOLDOUT_DAYS": "10",
    "DEMO_N_ESTIMATORS": "30",
}


def project_env(**extra: str) -> dict[str, str]:
    """This environment without loopml's or an outer make's settings."""
    drop = ("LOOPML_", "MAKE", "MFLAGS", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", **extra})
    return env


def run(
    args: list[str], cwd: Path, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make(project: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``make TARGET`` in the project, on this environment."""
    return run(
        ["make", target, f"LOOPML_ENV={sys.prefix}", f"PYTHON={sys.executable}"],
        project,
        **env,
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The error output on one line (rich wraps it at the terminal width)."""
    return " ".join(result.stderr.split())


def new(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``loopml new ARGS``."""
    return run([*LOOPML, "new", *args], cwd, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_new_project_passes_its_make_test_and_make_run(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    started = time.perf_counter()
    # mypy's cache of the third-party packages outlives the run (cold: ~40 s).
    cache = request.config.cache
    mypy_cache = cache.mkdir("new_project_mypy") if cache else tmp_path / "mypy"
    made = new("demo", "--no-input", "-o", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo"
    assert (project / "src/demo/workloads/demo/workload.py").is_file()
    assert (project / ".github/workflows/ci.yml").is_file()
    assert not (project / ".gitlab-ci.yml").exists()

    tested = make(project, "test", MYPY_CACHE_DIR=str(mypy_cache))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in tested.stdout
    assert "secret scan:" in tested.stdout

    ran = make(project, "run", **TINY_DEMO)
    out = ran.stdout
    assert ran.returncode == 0, out + ran.stderr
    assert "version 1 registered as challenger" in out
    assert "v1 promoted to champion" in out
    assert "loopml run" in out  # the summary table
    assert "demo champion: version 1" in out

    summary = make(project, "summary")
    assert summary.returncode == 0, summary.stderr
    assert "Champion: version 1" in summary.stdout
    assert "| promote | ok |" in summary.stdout
    # The budget of this test on 2 busy cores (usually about a minute).
    assert time.perf_counter() - started < 300


def test_workload_only_adds_a_registered_linted_workload(tmp_path: Path) -> None:
    made = new(
        "Acme Shop", "--no-input", "--ci", "gitlab", "-o", str(tmp_path), cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    project = tmp_path / "acme-shop"
    assert (project / ".gitlab-ci.yml").is_file()
    assert not (project / ".github").exists()

    added = new("orders", "--workload-only", "--no-input", cwd=project)
    assert added.returncode == 0, added.stderr
    package = project / "src/acme_shop/workloads/orders"
    assert (package / "workload.py").is_file()
    assert (project / "tests/unit/test_orders_workload.py").is_file()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    points = pyproject["project"]["entry-points"]["loopml.workloads"]
    assert points == {
        "acme_shop": "acme_shop.workloads.acme_shop.workload:AcmeShopWorkload",
        "orders": "acme_shop.workloads.orders.workload:OrdersWorkload",
    }
    again = new("orders", "--workload-only", "--no-input", cwd=project)
    assert again.returncode == 1
    assert "already exists" in said(again)

    ruff = [sys.executable, "-m", "ruff"]
    for check in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        linted = run([*ruff, *check, "src", "tests"], project)
        assert linted.returncode == 0, linted.stdout + linted.stderr

    # loopml finds it (here by LOOPML_WORKLOADS; installed, by its entry point)
    # and its train and evaluate run.
    code = (
        "from loopml.core.config import Settings; "
        "from loopml.sdk.workload import get_workload; "
        "w = get_workload('orders'); d = w.validate(w.load_raw(Settings())); "
        "print(w.name, sorted(w.evaluate(Settings(), d).metrics))"
    )
    checked = run(
        [sys.executable, "-c", code],
        project,
        PYTHONPATH=str(project / "src"),
        LOOPML_PLUGINS=f"orders={points['orders']}",
        LOOPML_HOME=str(tmp_path / "home"),
        ORDERS_N_ROWS="600",
        ORDERS_N_DAYS="30",
        ORDERS_HOLDOUT_DAYS="7",
        ORDERS_N_ESTIMATORS="10",
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("orders ['baseline_mae', 'baseline_rmse'")
