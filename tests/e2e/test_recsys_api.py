"""`loopml run -w recsys` batch-scores, then the recommendations route over HTTP."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import conftest
from loopml.workloads.recsys.serving import RecsysResponse

LOOPML = [sys.executable, "-m", "loopml.cli"]
K = 10  # settings.recsys.k, what the batch keeps per user


def _cli(home: Path, *args: str) -> str:
    result = conftest.loopml(home, *args, COLUMNS="2000")
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, trained_homes: conftest.TrainedHomes
) -> Path:
    """A home on which `loopml run -w recsys` completed, batch included.

    A copy of the shared one (its build checks the champion and the batch).
    """
    return trained_homes.copy("recsys", tmp_path_factory.mktemp("recsys-e2e") / "home")


@pytest.fixture(scope="module")
def url(home: Path) -> Iterator[str]:
    """`loopml serve` on an ephemeral port (only recsys has a champion)."""
    port = conftest.free_port()
    proc = subprocess.Popen(
        [*LOOPML, "serve", "--port", str(port)],
        env=conftest.subprocess_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        conftest.wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def history(home: Path) -> pd.DataFrame:
    return pd.read_parquet(home / "data" / "recsys" / "validated.parquet")


def _get(url: str, user: str, **params: object) -> httpx.Response:
    return httpx.get(
        f"{url}/v1/recsys/users/{user}/recommendations", params=params, timeout=30
    )


def test_ready_with_only_the_recsys_champion(url: str) -> None:
    body = httpx.get(f"{url}/readyz").json()
    assert body["models"] == {"recsys": "1"}
    assert "demand" in body["detail"]


def test_known_user_gets_the_days_batch_with_reasons(
    url: str, history: pd.DataFrame
) -> None:
    user = str(history["user_id"].iloc[len(history) // 2])
    response = _get(url, user, k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "batch" and body["model_version"] == "1"
    last = history["timestamp"].max().date()
    assert body["batch_date"] == (last + dt.timedelta(days=1)).isoformat()
    items = [i["item_id"] for i in body["items"]]
    assert len(items) == len(set(items)) == 5
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    taken = set(history.loc[history["user_id"] == user, "item_id"])
    assert not set(items) & taken
    for item in body["items"]:
        assert item["reason"].startswith(("because you took", "popular with"))
    # The batch says what live scoring says (k above the batch's is live).
    live = _get(url, user, k=K + 5).json()
    assert live["source"] == "live"
    assert [i["item_id"] for i in live["items"][:5]] == items
    # The route writes its JSON itself: both answers are the documented model.
    for answer in (body, live):
        parsed = RecsysResponse.model_validate(answer)
        assert parsed.model_dump(mode="json") == answer


def test_unknown_user_with_a_segment_gets_segment_results(
    url: str, history: pd.DataFrame
) -> None:
    segment = str(history["segment"].iloc[0])
    response = _get(url, "new-hire-0001", k=4, segment=segment)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "live" and body["segment"] == segment
    assert len({i["item_id"] for i in body["items"]}) == 4
    assert all(i["reason"] == f"popular with {segment}s" for i in body["items"])


def test_unknown_user_without_segment_is_404(url: str) -> None:
    response = _get(url, "nobody-we-know")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "nobody-we-know" in detail and "segment" in detail


@pytest.mark.parametrize("k", [0, 101])
def test_k_out_of_range_is_422_naming_k(url: str, k: int) -> None:
    response = _get(url, "U0001", k=k)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", "k"]]


def test_unknown_segment_is_422_naming_segment(url: str) -> None:
    response = _get(url, "new-hire-0002", segment="astronaut")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "segment"]


def test_a_new_batch_file_is_served_without_restart(
    url: str, home: Path, history: pd.DataFrame
) -> None:
    user = str(history["user_id"].iloc[0])
    day = "2031-01-01"
    _cli(home, "batch", "-w", "recsys", "--date", day)
    body = _get(url, user, k=3).json()
    assert body["source"] == "batch" and body["batch_date"] == day


def test_predict_and_the_protocols_answer_like_the_route(
    url: str, history: pd.DataFrame
) -> None:
    users = [str(u) for u in history["user_id"].drop_duplicates().iloc[:2]]
    segment = str(history["segment"].iloc[0])
    rows = [
        {"user_id": users[0], "k": 3},
        {"user_id": users[1]},  # k: the model's
        {"user_id": "new-hire-0003", "k": 2, "segment": segment},
    ]
    response = httpx.post(f"{url}/v1/recsys/predict", json={"rows": rows}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "recsys" and body["model_version"] == "1"
    answers = body["predictions"]
    assert [a["source"] for a in answers] == ["batch", "batch", "live"]
    assert [len(a["item_ids"]) for a in answers] == [3, K, 2]
    route = _get(url, users[0], k=3).json()
    assert answers[0]["item_ids"] == [i["item_id"] for i in route["items"]]
    assert answers[0]["reasons"] == [i["reason"] for i in route["items"]]
    assert answers[2]["segment"] == segment

    mlflow = httpx.post(
        f"{url}/v1/recsys/invocations", json={"dataframe_records": rows[:1]}, timeout=30
    )
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json()["predictions"] == [
        {"item_ids": answers[0]["item_ids"], "scores": answers[0]["scores"]}
    ]
    tensors = [
        {"name": "user_id", "shape": [2], "datatype": "BYTES", "data": users},
        {"name": "k", "shape": [2], "datatype": "INT64", "data": [3, 3]},
    ]
    v2 = httpx.post(
        f"{url}/v2/models/recsys/infer", json={"inputs": tensors}, timeout=30
    )
    assert v2.status_code == 200, v2.text
    items = v2.json()["outputs"][0]
    assert items["name"] == "item_ids" and items["shape"] == [2, 3]
    assert items["data"][:3] == answers[0]["item_ids"]


def test_predict_errors_name_the_row(url: str) -> None:
    def post(rows: list[dict[str, object]]) -> httpx.Response:
        return httpx.post(f"{url}/v1/recsys/predict", json={"rows": rows}, timeout=30)

    no_user = post([{"k": 3}])
    assert no_user.status_code == 422
    assert no_user.json()["detail"][0]["loc"] == ["body", "rows", 0, "user_id"]
    too_many = post([{"user_id": "a", "segment": "x"}, {"user_id": "b", "k": 101}])
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "rows", 1, "k"]
    astronaut = post([{"user_id": "new", "segment": "astronaut"}])
    assert astronaut.status_code == 422
    assert astronaut.json()["detail"][0]["loc"] == ["body", "rows", 0, "segment"]
    unknown = post([{"user_id": "nobody-we-know"}])
    assert unknown.status_code == 404
    assert "nobody-we-know" in unknown.json()["detail"]
