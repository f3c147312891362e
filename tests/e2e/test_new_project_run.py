"""``loopml new``: the generated project's ``make run``, ``make serve`` and the rest.

``make run`` takes both workloads (one added with ``--workload-only``)
through the whole loop, batch and monitor included; ``make serve`` answers
every protocol. ``test_new_project.py`` runs another such project's
``make test`` (tests/new_projects.py has the helpers).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from new_projects import (
    PROJECT_LOOPML,
    make,
    new,
    project_env,
    run,
    said,
    shop_with_churn,
    tiny,
)

if TYPE_CHECKING:
    import httpx

#: A valid request row of each served workload (argv), from its online scorer.
EXAMPLE_ROWS = """
import json, sys
from loopml.core.config import load_settings
from loopml.models.integrity import load_verified
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.sdk.workload import get_workload
setup_mlflow(load_settings())
rows = {}
for name in sys.argv[1:]:
    version = get_alias(name, CHAMPION).version
    model = load_verified(name, str(version)).unwrap_python_model()
    scorer = get_workload(name).online_scorer()
    rows[name] = scorer.example_rows(scorer.warm(model))
print(json.dumps(rows, default=str))
"""
CAPABILITIES = ["online_scorer", "batch_scorer", "monitor", "day_source", "tuning"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_new_project_with_two_kinds_passes_its_make_run_and_serves(
    tmp_path: Path,
) -> None:
    project = shop_with_churn(tmp_path)
    sizes = {**tiny("shop", "regression"), **tiny("churn", "classification")}

    # `make run` would tune first (Ray); tests/integration/test_tune.py covers
    # tuning, test_workload_only_... a generated workload's tuning objective.
    ran = make(project, "run", **sizes, LOOPML_TUNE__IN_RUN="false")
    out = ran.stdout
    assert ran.returncode == 0, out[-6000:] + ran.stderr[-3000:]
    assert "version 1 registered as challenger" in out
    assert "v1 promoted to champion" in out
    assert "loopml run" in out  # the summary table
    assert "shop champion: version 1" in out
    assert "churn champion: version 1" in out
    assert "baseline_roc_auc=" in " ".join(out.split())
    # Batch and monitor are stages of the run: their files are there.
    home = project / ".loopml"
    for name in ("shop", "churn"):
        reports = home / "reports" / name
        assert list(reports.glob("monitor-*.html"))
        assert list(reports.glob("monitor-*.json"))
        assert list((home / "batch" / name).glob("date=*.parquet"))

    # The project's environment: its entry points register both workloads.
    listed = run([*PROJECT_LOOPML, "workloads", "--json"], project)
    assert listed.returncode == 0, listed.stderr
    found = {w["name"]: w for w in json.loads(listed.stdout)}
    for name, metric in (("shop", "mae"), ("churn", "roc_auc")):
        assert found[name]["primary_metric"] == metric
        assert found[name]["capabilities"] == CAPABILITIES, found[name]

    summary = make(project, "summary")
    assert summary.returncode == 0, summary.stderr
    assert "Champion: version 1" in summary.stdout
    assert "| promote | ok |" in summary.stdout

    served_checks(project, sizes)
    shown = run([*PROJECT_LOOPML, "status", "--json"], project)
    champions = json.loads(shown.stdout)["workloads"]
    assert champions["churn"]["champion"]["version"] == "1"
    assert champions["churn"]["champion"]["primary_metric"]["name"] == "roc_auc"


def served_checks(project: Path, sizes: dict[str, str]) -> None:
    """`make serve` answers every protocol for both workloads, 422s name fields."""
    import httpx

    examples = run([".venv/bin/python", "-c", EXAMPLE_ROWS, "churn", "shop"], project)
    assert examples.returncode == 0, examples.stderr
    example_rows = json.loads(examples.stdout)
    port = free_port()
    server = subprocess.Popen(
        ["make", "serve", f"LOOPML_ENV={sys.prefix}", f"ARGS=--port {port}"],
        cwd=project,
        env=project_env(**sizes),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        lines = []
        assert server.stdout is not None
        for line in server.stdout:  # `make serve` says where and when it is ready
            lines.append(line)
            if line.startswith("ready"):
                break
        assert any(f"serving on {url}" in x for x in lines), lines
        assert "churn v1" in lines[-1] and "shop v1" in lines[-1], lines
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/v2/models/churn/ready").status_code == 200
            assert client.get("/v2/models/nope/ready").status_code == 404
            for name, output in (("churn", "probability"), ("shop", "prediction")):
                rows = example_rows[name]
                answer = client.post(f"/v1/{name}/predict", json={"rows": rows})
                assert answer.status_code == 200, answer.text
                assert output in answer.json()["predictions"][0]
                field = next(iter(rows[0]))
                broken = {k: v for k, v in rows[0].items() if k != field}
                bad = client.post(f"/v1/{name}/predict", json={"rows": [broken]})
                assert bad.status_code == 422 and field in bad.text
                mlflow_body = {"dataframe_records": rows}
                invoked = client.post(f"/v1/{name}/invocations", json=mlflow_body)
                assert invoked.status_code == 200, invoked.text
                inputs = [
                    {
                        "name": k,
                        "shape": [len(rows)],
                        "datatype": v2_datatype([r[k] for r in rows]),
                        "data": [r[k] for r in rows],
                    }
                    for k in rows[0]
                ]
                infer = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs})
                assert infer.status_code == 200, infer.text
                missing = client.post(
                    f"/v2/models/{name}/infer", json={"inputs": inputs[1:]}
                )
                assert missing.status_code == 422 and field in missing.text
                if "date" in rows[0]:
                    far_dates_are_422s(client, name, rows[0])
    finally:
        server.terminate()
        server.wait(timeout=30)


def far_dates_are_422s(client: httpx.Client, name: str, row: dict[str, Any]) -> None:
    """A day no ``datetime64[ns]`` holds is a 422 naming ``date``, never a 500."""
    for day in ("2300-01-01", "9999-12-31", "0001-01-01"):
        far = {**row, "date": day}
        inputs = [
            {"name": k, "shape": [1], "datatype": v2_datatype([v]), "data": [v]}
            for k, v in far.items()
        ]
        for path, body in (
            (f"/v1/{name}/predict", {"rows": [far]}),
            (f"/v1/{name}/invocations", {"dataframe_records": [far]}),
            (f"/v2/models/{name}/infer", {"inputs": inputs}),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, day, answer.text)
            assert "date" in answer.text, (path, day, answer.text)


def v2_datatype(values: list[object]) -> str:
    """The Open Inference Protocol datatype of a column of JSON values."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) for v in values):
        return "FP64"
    return "BYTES"


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    assert (project / "tests/integration/test_orders_check.py").is_file()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    points = pyproject["project"]["entry-points"]["loopml.workloads"]
    assert points == {
        "acme_shop": "acme_shop.workloads.acme_shop.workload:AcmeShopWorkload",
        "orders": "acme_shop.workloads.orders.workload:OrdersWorkload",
    }
    again = new("orders", "--workload-only", "--no-input", cwd=project)
    assert again.returncode == 2  # a mistake: an existing workload folder
    assert "already exists" in said(again)

    ruff = [sys.executable, "-m", "ruff"]
    for check in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        linted = run([*ruff, *check, "src", "tests"], project)
        assert linted.returncode == 0, linted.stdout + linted.stderr

    # loopml finds it (here by LOOPML_PLUGINS; installed, by its entry point)
    # and its train and evaluate run. The conformance test of a workload
    # added so passes in a project's make test (test_new_project.py).
    code = (
        "from loopml.core.config import Settings; "
        "from loopml.sdk.workload import get_workload; "
        "w = get_workload('orders'); d = w.validate(w.load_raw(Settings())); "
        "print(w.name, sorted(w.evaluate(Settings(), d).metrics)); "
        # tuning, as a Ray trial calls it: a finite MAE on folds before the holdout
        "p = w.current_params(Settings()); "
        "print(sorted(w.search_space(Settings())), w.tune_objective(Settings(), d, p))"
    )
    checked = run(
        [sys.executable, "-c", code],
        project,
        PYTHONPATH=str(project / "src"),
        LOOPML_PLUGINS=f"orders={points['orders']}",
        LOOPML_HOME=str(tmp_path / "home"),
        LOOPML_WORKLOADS__ORDERS__N_ROWS="600",
        LOOPML_WORKLOADS__ORDERS__N_DAYS="30",
        LOOPML_WORKLOADS__ORDERS__HOLDOUT_DAYS="7",
        LOOPML_WORKLOADS__ORDERS__N_ESTIMATORS="10",
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("orders ['baseline_mae', 'baseline_rmse'")
    space, value = checked.stdout.splitlines()[1].split("] ")
    assert space == "['learning_rate', 'n_estimators', 'num_leaves'"
    assert 0 < float(value) < float("inf")
