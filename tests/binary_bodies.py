"""Bodies no scoring route can read, for the fuzz tests: random bytes under
every content type a client might send, and malformed binary tensor requests
(``Inference-Header-Content-Length``). Each must be a 4xx, never a 5xx.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator

import httpx

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=latin-1",
    "text/csv",
    "text/plain",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
)


def _tensor_request(raw: bytes, size: int, datatype: str = "FP64") -> tuple[bytes, int]:
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [1],
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    text = json.dumps(header).encode()
    return text + raw, len(text)


def bodies(seed: int = 0, per_type: int = 6) -> Iterator[tuple[bytes, dict[str, str]]]:
    """(body, headers) pairs: random bytes, then malformed binary tensor requests."""
    rng = random.Random(seed)
    for content_type in CONTENT_TYPES:
        for _ in range(per_type):
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            yield body, ({"content-type": content_type} if content_type else {})
    header = "inference-header-content-length"
    for raw, size, datatype in [
        (b"\x00" * 5, 8, "FP64"),  # cut off
        (b"\x00" * 7, 7, "FP64"),  # not whole elements
        (b"\x00" * 12, 8, "FP64"),  # bytes after the tensors
        (b"\x05\x00\x00\x00ab", 6, "BYTES"),  # a BYTES element cut off
        (b"\x02\x00\x00\x00\xff\xfe", 6, "BYTES"),  # not UTF-8
        (b"\x00" * 8, 8, "COMPLEX"),  # no such datatype
        (b"\x00" * 8, -1, "FP64"),  # a negative size
    ]:
        body, length = _tensor_request(raw, size, datatype)
        yield body, {header: str(length)}
    for value in ("many", "-1", "99999", "0"):
        yield b"\x80\xff{}", {header: value}


def post_routes(base_url: str) -> list[str]:
    """Every POST path of the service's schema, path parameters filled."""
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    return [re.sub(r"\{[^}]+\}", "x", p) for p, ops in paths.items() if "post" in ops]


def send_all(base_url: str, paths: list[str]) -> tuple[Counter[int], list[str]]:
    """Post every body to every path: statuses, and what broke the rules."""
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    with httpx.Client(timeout=30) as client:
        for path in paths:
            for body, headers in bodies():
                answer = client.post(f"{base_url}{path}", content=body, headers=headers)
                statuses[answer.status_code] += 1
                label = f"POST {path} {headers} {body[:40]!r} -> {answer.status_code}"
                if answer.status_code >= 500 or answer.status_code < 400:
                    problems.append(f"{label}: {answer.text[:200]}")
                    continue
                try:
                    detail = answer.json().get("detail")
                except ValueError:
                    detail = None
                if not detail:
                    problems.append(f"{label} without a detail: {answer.text[:200]}")
    return statuses, problems
