"""Pseudonymisation: keyed, stable, never leaking the raw identifiers."""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.data.privacy import (
    DEV_PSEUDONYM_KEY,
    KEY_ENV,
    PseudonymKeyError,
    personal_columns,
    pseudonym_key,
    pseudonymise,
    pseudonymise_columns,
)

KEY = b"a-test-key-of-32-bytes-for-hmac!"
CUSTOMERS = pd.Series(["17850", "13047", "12583", "17850"], name="customer_id")


def test_same_key_gives_the_same_pseudonym() -> None:
    first = pseudonymise(CUSTOMERS, KEY)
    again = pseudonymise(CUSTOMERS.copy(), KEY)
    assert first.tolist() == again.tolist()
    assert first.iloc[0] == first.iloc[3]  # the same customer twice
    assert first.nunique() == 3
    assert first.name == "customer_id" and first.index.equals(CUSTOMERS.index)


def test_different_key_gives_different_pseudonyms() -> None:
    ours = pseudonymise(CUSTOMERS, KEY)
    theirs = pseudonymise(CUSTOMERS, b"another-key-entirely-32-bytes-xx")
    assert not (ours == theirs).any()


def test_pseudonyms_are_16_hex_characters() -> None:
    out = pseudonymise(CUSTOMERS, KEY)
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in out)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=20))
def test_raw_values_never_appear_in_the_output(values: list[str]) -> None:
    out = pseudonymise(pd.Series(values), KEY)
    text = " ".join(out)
    # A 16-hex pseudonym could contain a short hex-looking id by chance.
    assert not any(v in text for v in values if len(v) >= 6 and not v.isspace())
    assert set(out).isdisjoint(values)


def test_missing_values_stay_missing_and_ints_match_their_text() -> None:
    out = pseudonymise(pd.Series([17850, None, 13047], dtype=object), KEY)
    assert out.iloc[1] is None
    assert out.iloc[0] == pseudonymise(pd.Series(["17850"]), KEY).iloc[0]


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        pseudonymise(CUSTOMERS, b"")


def test_default_profile_falls_back_to_the_dev_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert pseudonym_key("default") == DEV_PSEUDONYM_KEY.encode()
    monkeypatch.setenv(KEY_ENV, "my-own-development-key")
    assert pseudonym_key("default") == b"my-own-development-key"


@pytest.mark.parametrize("value", [None, "", "changeme", DEV_PSEUDONYM_KEY, "short"])
def test_other_profiles_need_a_real_key(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(PseudonymKeyError, match=KEY_ENV):
        pseudonym_key("production")


def test_production_accepts_a_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "0123456789abcdef0123456789abcdef")
    assert pseudonym_key("production") == b"0123456789abcdef0123456789abcdef"


def test_schema_metadata_marks_personal_columns() -> None:
    schema = pa.DataFrameSchema(
        {
            "user_id": pa.Column(str, metadata={"personal": True}),
            "item_id": pa.Column(str),
            "manager_id": pa.Column(str, metadata={"personal": True}),
        }
    )
    assert personal_columns(schema) == ("user_id", "manager_id")


def test_pseudonymise_columns_replaces_only_the_named_ones() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"]})
    out = pseudonymise_columns(frame, ("user_id",), KEY)
    assert out["item_id"].tolist() == ["i1", "i2"]
    assert not out["user_id"].isin(["u1", "u2"]).any()
    assert frame["user_id"].tolist() == ["u1", "u2"]  # the input is untouched
    with pytest.raises(ValueError, match="customer_id"):
        pseudonymise_columns(frame, ("customer_id",), KEY)
