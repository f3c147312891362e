"""``/docs`` works without Internet access: every asset is served locally."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from loopml.core.config import load_settings
from loopml.serving.app import create_app


def test_docs_reference_no_external_url_and_assets_load(tiny_env: Path) -> None:
    client = TestClient(create_app(load_settings("default")))
    page = client.get("/docs")
    assert page.status_code == 200
    assert re.findall(r"https?://", page.text) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} == {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "favicon-32x32.png",
    }
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 500, asset
    assert '"validatorUrl": null' in page.text
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 404  # it would need a CDN
