"""The protocols' own clients work unchanged against loopml.

- ``tritonclient[http]`` (the Open Inference Protocol v2 client most people
  have) against the ``toy`` plug-in served over real HTTP: health, server and
  model metadata, readiness by status code, ``infer`` with JSON tensors (sent
  without a content type) and with the binary tensor extension (the client's
  default), answers equal to ``/v1``'s.
- Bodies no protocol can read (random bytes under every content type,
  malformed binary tensors: ``tests/binary_bodies.py``) are a 4xx that says
  why on every POST route, never a 5xx.

MLflow's protocol is compared with ``mlflow models serve`` in
``test_mlflow_protocol.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from binary_bodies import post_routes, send_all
from conftest import free_port, set_tiny_env
from loopml.serving.app import create_app
from toy_workload import PLUGIN, toy_champion


def _serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield its ``host:port``."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server not up"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``toy`` champion v1 served over HTTP: ``host:port``."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_tiny_env(monkeypatch, tmp_path_factory.mktemp("toy") / "home")
        monkeypatch.setenv("LOOPML_PLUGINS", PLUGIN)
        settings = toy_champion()
        yield from _serve(create_app(settings, workloads=["toy"]))


def test_tritonclient_health_metadata_and_readiness(toy_server: str) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(toy_server)
    assert client.is_server_live()
    assert client.is_server_ready()
    server = client.get_server_metadata()
    assert server["name"] == "loopml"
    assert "binary_tensor_data" in server["extensions"]
    assert client.is_model_ready("toy")
    assert not client.is_model_ready("no_such_model")  # a 404, read as not ready
    model = client.get_model_metadata("toy")
    assert model["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in model["inputs"]] == [
        ("x", "FP64"),
        ("tag", "BYTES"),
    ]
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("no_such_model")
    assert unknown.value.status() == "404"
    assert "unknown model 'no_such_model'" in unknown.value.message()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_infer_equals_v1(toy_server: str, binary: bool) -> None:
    import tritonclient.http as triton

    v1 = httpx.post(
        f"http://{toy_server}/v1/toy/predict",
        json={"rows": [{"x": 1.5, "tag": "a"}, {"x": 21, "tag": "é"}]},
    ).json()["predictions"]
    client = triton.InferenceServerClient(toy_server)
    x = triton.InferInput("x", [2], "FP64")
    x.set_data_from_numpy(np.array([1.5, 21.0]), binary_data=binary)
    tag = triton.InferInput("tag", [2], "BYTES")
    tag.set_data_from_numpy(np.array(["a", "é"], dtype=object), binary_data=binary)

    result = client.infer("toy", [x, tag])  # outputs: binary, the client's default

    assert result.as_numpy("y").tolist() == [p["y"] for p in v1] == [3.0, 42.0]
    assert result.as_numpy("digits").tolist() == [p["digits"] for p in v1]
    response = result.get_response()
    assert response["model_version"] == "1"
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])

    as_json = client.infer(
        "toy", [x], outputs=[triton.InferRequestedOutput("y", binary_data=False)]
    )
    assert [o["name"] for o in as_json.get_response()["outputs"]] == ["y"]
    assert as_json.get_response()["outputs"][0]["data"] == [3.0, 42.0]
    assert as_json.as_numpy("y").tolist() == [3.0, 42.0]


def test_tritonclient_sees_refusals_as_errors(toy_server: str) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(toy_server)
    x = triton.InferInput("x", [1], "FP64")
    x.set_data_from_numpy(np.array([13.0]))  # the toy scorer refuses 13
    with pytest.raises(InferenceServerException) as refused:
        client.infer("toy", [x])
    assert refused.value.status() == "422"
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no_such_model", [x])
    assert unknown.value.status() == "404"


def test_json_tensors_without_a_content_type(toy_server: str) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2]}]}
    answer = httpx.post(
        f"http://{toy_server}/v2/models/toy/infer", content=json.dumps(body)
    )
    assert "content-type" not in answer.request.headers
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [4.0]


def test_a_422_never_echoes_undecodable_bytes(toy_server: str) -> None:
    answer = httpx.post(
        f"http://{toy_server}/v1/toy/predict",
        content=b"\x80\xff\xfe",
        headers={"content-type": "text/plain"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["input"] == "<3 bytes, not UTF-8 text>"


def test_fuzzed_binary_bodies_are_a_4xx_on_every_post_route(toy_server: str) -> None:
    base = f"http://{toy_server}"
    paths = post_routes(base)
    assert {"/v2/models/toy/infer", "/invocations", "/v1/toy/predict"} <= set(paths)
    statuses, problems = send_all(base, paths)
    assert problems == [], problems[:10]
    assert sum(statuses.values()) >= 50 * len(paths)
