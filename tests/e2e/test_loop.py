"""The whole loop through the CLI, then the served API over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import binary_bodies
import conftest

LOOPML = [sys.executable, "-m", "loopml.cli"]
ADMIN_TOKEN = "e2e-only-token-not-a-secret"


def _cli(
    home: Path, *args: str, check: bool = True, subprocess_: bool = False
) -> subprocess.CompletedProcess[str]:
    """``loopml ARGS`` on ``home``: in this process, or a real subprocess."""
    if subprocess_:
        result = subprocess.run(
            [*LOOPML, *args],
            env=conftest.subprocess_env(home),
            capture_output=True,
            text=True,
            timeout=600,
        )
    else:
        result = conftest.loopml(home, *args)
    if check and result.returncode != 0:
        raise AssertionError(f"loopml {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def looped_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home on which `loopml run` has completed once, from scratch.

    The one test of the installed command's whole loop in its own process
    (the other tests copy a home built in process, conftest.TrainedHomes).
    """
    home = tmp_path_factory.mktemp("e2e") / "home"
    result = _cli(home, "run", subprocess_=True)
    assert "loopml run" in result.stdout  # the summary table's title
    assert "demand champion:" in result.stdout
    return home


@pytest.fixture(scope="module")
def server(looped_home: Path) -> Iterator[str]:
    """`loopml serve` on an ephemeral port, stopped after the tests."""
    port = _free_port()
    # To a file, not a pipe nobody reads: a full pipe would block the server.
    output = (looped_home.parent / "serve.log").open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [*LOOPML, "serve", "--port", str(port)],
        env=conftest.subprocess_env(looped_home, LOOPML_ADMIN_TOKEN=ADMIN_TOKEN),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    # Generous: on a shared 2-core machine the first start takes minutes.
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                output.flush()
                log = (looped_home.parent / "serve.log").read_text(encoding="utf-8")
                raise AssertionError(f"server exited: {log}")
            time.sleep(0.3)
        else:
            output.flush()
            log = (looped_home.parent / "serve.log").read_text(encoding="utf-8")
            raise AssertionError(f"server did not become ready in 240 s: {log}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        output.close()


def _status(home: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(_cli(home, "status", "--json").stdout)
    return doc


def test_status_shows_champion_with_wape(looped_home: Path) -> None:
    demand = _status(looped_home)["workloads"]["demand"]  # type: ignore[index]
    champion = demand["champion"]
    assert champion["version"] == "1"
    metrics = champion["metrics"]
    assert 0 < metrics["wape"] < metrics["baseline_wape"]
    assert len(champion["data_version"]) == 32
    assert demand["last_run"]["ok"] is True


def test_predict_returns_one_forecast_per_row(server: str, looped_home: Path) -> None:
    raw = pd.read_parquet(looped_home / "data" / "demand" / "validated.parquet")
    origin = raw["date"].max()
    rows = [
        {
            "store_id": "S01",
            "item_id": "I001",
            "date": str((origin + pd.Timedelta(days=h)).date()),
        }
        for h in (1, 7, 14)
    ]
    rows.append({**rows[0], "promo": 1, "price": 2.5})
    response = httpx.post(f"{server}/v1/demand/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1"
    assert [f["horizon"] for f in body["predictions"]] == [1, 7, 14, 1]
    assert all(f["forecast"] >= 0 for f in body["predictions"])
    assert body["origin"] == str(origin.date())


def test_missing_field_is_422_naming_it(server: str) -> None:
    response = httpx.post(
        f"{server}/v1/demand/predict",
        json={"rows": [{"store_id": "S01", "date": "2030-01-01"}]},
    )
    assert response.status_code == 422
    locs = [err["loc"] for err in response.json()["detail"]]
    assert ["body", "rows", 0, "item_id"] in locs


def test_date_beyond_horizon_is_422(server: str, looped_home: Path) -> None:
    raw = pd.read_parquet(looped_home / "data" / "demand" / "validated.parquet")
    late = str((raw["date"].max() + pd.Timedelta(days=60)).date())
    response = httpx.post(
        f"{server}/v1/demand/predict",
        json={"rows": [{"store_id": "S01", "item_id": "I001", "date": late}]},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "rows", 0, "date"]


def test_unknown_item_is_404_naming_it(server: str, looped_home: Path) -> None:
    raw = pd.read_parquet(looped_home / "data" / "demand" / "validated.parquet")
    day = str((raw["date"].max() + pd.Timedelta(days=1)).date())
    response = httpx.post(
        f"{server}/v1/demand/predict",
        json={"rows": [{"store_id": "S01", "item_id": "NOPE", "date": day}]},
    )
    assert response.status_code == 404
    assert "S01/NOPE" in response.json()["detail"]


def test_bad_batch_is_quarantined_and_champion_kept(looped_home: Path) -> None:
    before = _status(looped_home)["workloads"]["demand"]["champion"]  # type: ignore[index]
    raw_path = looped_home / "data" / "demand" / "raw.parquet"
    validated = looped_home / "data" / "demand" / "validated.parquet"
    validated_bytes = validated.read_bytes()
    bad = pd.read_parquet(validated)
    bad = pd.concat([bad, bad.iloc[[0]]])  # a duplicated key
    bad.loc[bad.index[1], "sales"] = -5.0  # a negative quantity
    bad.to_parquet(raw_path, index=False)
    result = _cli(looped_home, "validate", check=False)
    assert result.returncode == 1
    assert "quarantine" in result.stderr and "sales" in result.stderr
    assert list((looped_home / "quarantine" / "demand").glob("raw-*.parquet"))
    assert list((looped_home / "reports" / "demand").glob("validation-*.md"))
    assert validated.read_bytes() == validated_bytes
    after = _status(looped_home)["workloads"]["demand"]["champion"]  # type: ignore[index]
    assert after["version"] == before["version"]


def test_admin_reload_needs_the_token(server: str) -> None:
    assert httpx.post(f"{server}/admin/reload").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(f"{server}/admin/reload", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = httpx.post(f"{server}/admin/reload", headers=right)
    assert response.status_code == 200
    assert response.json() == {"demand": "1", "recsys": "1"}


def test_mlflow_and_v2_protocols_agree_with_v1(server: str, looped_home: Path) -> None:
    raw = pd.read_parquet(looped_home / "data" / "demand" / "validated.parquet")
    days = [str((raw["date"].max() + pd.Timedelta(days=h)).date()) for h in (1, 5)]
    rows = [{"store_id": "S01", "item_id": "I002", "date": d} for d in days]
    v1 = httpx.post(f"{server}/v1/demand/predict", json={"rows": rows}).json()
    expected = [f["forecast"] for f in v1["predictions"]]
    # The online state equals the state bundled with the model at its origin:
    # equal forecasts mean no training/serving skew.
    assert [f["features"] for f in v1["predictions"]] == ["online", "online"]
    columns = ["store_id", "item_id", "date"]
    payloads = [
        {"dataframe_records": rows},
        {
            "dataframe_split": {
                "columns": columns,
                "data": [[r[c] for c in columns] for r in rows],
            }
        },
        {"instances": rows},
    ]
    for payload in payloads:
        for path in ("/invocations", "/v1/demand/invocations"):
            response = httpx.post(f"{server}{path}", json=payload)
            assert response.status_code == 200, response.text
            got = [p["forecast"] for p in response.json()["predictions"]]
            assert got == pytest.approx(expected)
    v2 = {
        "inputs": [
            {"name": c, "shape": [2], "datatype": "BYTES", "data": [r[c] for r in rows]}
            for c in columns
        ]
    }
    response = httpx.post(f"{server}/v2/models/demand/infer", json=v2)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == pytest.approx(expected)
    assert httpx.get(f"{server}/v2/health/ready").json() == {"ready": True}
    metrics = httpx.get(f"{server}/metrics").text
    assert 'loopml_model_version_info{version="1",workload="demand"} 1.0' in metrics
    assert "loopml_requests_total" in metrics


def test_pushed_sales_reach_the_next_prediction(server: str, looped_home: Path) -> None:
    raw = pd.read_parquet(looped_home / "data" / "demand" / "validated.parquet")
    last = raw["date"].max()
    row = {
        "store_id": "S02",
        "item_id": "I003",
        "date": str((last + pd.Timedelta(days=2)).date()),
    }
    before = httpx.post(f"{server}/v1/demand/predict", json={"rows": [row]}).json()
    batch_value = raw.query("date == @last and store_id == 'S02' and item_id == 'I003'")
    assert before["predictions"][0]["sales_today"] == float(
        batch_value["sales"].iloc[0]
    )

    _cli(
        looped_home,
        "features",
        "-w",
        "demand",
        "push",
        "store_id=S02",
        "item_id=I003",
        "sales=4321",
        "--at",
        f"{last + pd.Timedelta(days=1):%Y-%m-%d}T15:00",
    )
    # A push from another process than the server's is seen within
    # serving.online_cache_seconds (its cache of what it read), not at once.
    from loopml.core.config import load_settings

    cached = load_settings(home=looped_home).serving.online_cache_seconds
    deadline = time.monotonic() + cached + 5  # margin for a loaded machine
    while True:
        after = httpx.post(f"{server}/v1/demand/predict", json={"rows": [row]}).json()
        forecast = after["predictions"][0]
        if forecast["sales_today"] == 4321.0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert forecast["sales_today"] == 4321.0
    assert forecast["sales_today_as_of"].startswith(
        f"{last + pd.Timedelta(days=1):%Y-%m-%d}T15:00"
    )


# Last in this module: it sends a flood of garbage to the shared server.
FUZZ_CASES = 1500  # budget; some routes run out of distinct cases, >= 1000 sent


def test_fuzzing_the_openapi_schema_gives_no_5xx(server: str) -> None:
    """schemathesis: valid and invalid requests for every route of the schema.

    No answer may be a 5xx, and every 4xx must say what was wrong (a JSON
    ``detail``). Positive and negative generation, shared budget per route.
    """
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # demand, recsys, protocols, ops and admin routes
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # The budget goes to routes that take input; the others have one request.
    spec = httpx.get(f"{server}/openapi.json").json()["paths"]
    takes_input = [
        o
        for o in operations
        if {"parameters", "requestBody"} & set(spec[o.path][o.method.lower()])
    ]
    per_run = -(-FUZZ_CASES // (len(takes_input) * len(modes)))
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    skipped: list[str] = []
    for operation in operations:
        for mode in modes:

            @hypothesis.settings(
                max_examples=per_run if operation in takes_input else 5,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: schemathesis.Case) -> None:
                response = case.call(base_url=server, timeout=30)
                statuses[response.status_code] += 1
                label = f"{case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{label}: {response.text[:300]}")
                elif response.status_code >= 400:
                    try:
                        detail = response.json().get("detail")
                    except ValueError:
                        detail = None
                    if not detail:
                        problems.append(
                            f"{label} without a detail: {response.text[:200]}"
                        )

            try:
                fuzz()
            except hypothesis.errors.Unsatisfiable:
                # A route without parameters or body has no invalid request.
                assert mode is GenerationMode.NEGATIVE, operation.label
                skipped.append(operation.label)
    total = sum(statuses.values())
    print(f"fuzzing: {total} requests {dict(statuses)}; no invalid case: {skipped}")
    assert total >= 1000, statuses
    assert problems == [], problems[:10]
    assert any(400 <= s < 500 for s in statuses)  # the invalid ones were refused
    assert statuses[200] > 0  # and valid ones answered
    # Bodies schemathesis does not make: bytes no protocol can read, under
    # every content type, and malformed binary tensor requests.
    binary, problems = binary_bodies.send_all(server, binary_bodies.post_routes(server))
    print(f"binary bodies: {dict(binary)}")
    assert problems == [], problems[:10]
    assert sum(binary.values()) >= 50 * 8
