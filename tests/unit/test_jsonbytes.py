"""``jsonbytes.dumps`` writes exactly pydantic-core's bytes, whichever writes them."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest
from pydantic_core import PydanticSerializationError, to_json

from loopml.core import jsonbytes


def _reference(value: object) -> bytes:
    return to_json(value, inf_nan_mode="null")


def test_floats_ints_text_and_nulls_are_pydantic_cores_bytes() -> None:
    rng = random.Random(7)
    floats = [rng.uniform(0, 100) for _ in range(50_000)]
    floats += [10.0**e * rng.random() for e in range(-30, 31) for _ in range(200)]
    floats += [0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308]
    floats += [math.nan, math.inf, -math.inf]
    others = [0, -5, 2**63 - 1, -(2**63), True, False, None, "", 'é\u2028"\\\x00\n']
    answer = {
        "model": "demand",
        "predictions": [
            {"forecast": f, "row": i, "note": others[i % len(others)]}
            for i, f in enumerate(floats)
        ],
        "tuple": (1, "a"),
    }
    assert jsonbytes.dumps(answer) == _reference(answer)
    assert jsonbytes.dumps(floats) == _reference(floats)
    assert jsonbytes.dumps(others) == _reference(others)


@pytest.mark.parametrize(
    "value",
    [
        dt.date(2025, 9, 1),
        dt.datetime(2025, 9, 1, 12, tzinfo=dt.UTC),  # pydantic-core writes "Z"
        np.float64(1.5),
        {1: "non-text key"},
        2**70,
        [{"nested": dt.datetime(2025, 1, 1)}],
    ],
    ids=["date", "aware-datetime", "numpy-float", "int-key", "big-int", "nested"],
)
def test_what_orjson_would_write_otherwise_goes_to_pydantic_core(value: object) -> None:
    assert jsonbytes.dumps(value) == _reference(value)


def test_what_neither_can_write_raises_pydantic_cores_error() -> None:
    with pytest.raises(PydanticSerializationError):
        jsonbytes.dumps({"x": np.int64(3)})
