"""Pseudonymisation of personal identifiers before anything is stored.

A workload marks the raw columns that identify a person (a customer id, an
employee id) either in its pandera schema, with column metadata
``{"personal": True}``, or directly in its ``BatchSpec.personal_columns``.
``ingest`` replaces their values with keyed HMAC-SHA256 pseudonyms before it
writes a byte, so raw identifiers never reach the home folder, DVC or MLflow.

The same key always gives the same pseudonym, so joins across tables and
across days still work; without the key a pseudonym cannot be traced back.
The key comes from ``LOOPML_PSEUDONYM_KEY``. Only the ``default`` profile, which
runs on generated data, may fall back to :data:`DEV_PSEUDONYM_KEY`; every other
profile refuses to start pseudonymising without a real key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

import pandas as pd
import pandera.pandas as pa

log = logging.getLogger(__name__)

KEY_ENV = "LOOPML_PSEUDONYM_KEY"
#: a public, fixed key for the default (development) profile only: pseudonyms
#: made with it protect nothing, which is fine for generated data.
DEV_PSEUDONYM_KEY = "loopml-dev-pseudonym-key-not-secret"
PSEUDONYM_LENGTH = 16
# Keys too short or too guessable to protect anything outside development.
_MIN_KEY_LENGTH = 16
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "key", DEV_PSEUDONYM_KEY}


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key for this profile (the message says how)."""


def pseudonym_key(profile: str) -> bytes:
    """Return the pseudonymisation key for a profile.

    Args:
        profile: the active settings profile.

    Returns:
        ``LOOPML_PSEUDONYM_KEY`` as bytes; in the ``default`` profile, the dev
        key when the variable is unset.

    Raises:
        PseudonymKeyError: outside the ``default`` profile when the variable is
            unset, a placeholder, or shorter than 16 characters.
    """
    key = os.environ.get(KEY_ENV)
    if profile == "default":
        if not key:
            log.warning("%s is unset: using the public development key", KEY_ENV)
        return (key or DEV_PSEUDONYM_KEY).encode("utf-8")
    if key is None or key.strip().lower() in _PLACEHOLDERS:
        raise PseudonymKeyError(
            f"{KEY_ENV} is not set (or is a placeholder) in profile {profile!r}: "
            "set it to a random secret of at least 16 characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`, and keep "
            "it in your secret store; the same key must be used every day."
        )
    if len(key) < _MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"{KEY_ENV} is {len(key)} characters long in profile {profile!r}; "
            f"use at least {_MIN_KEY_LENGTH}"
        )
    return key.encode("utf-8")


def pseudonymise(series: pd.Series, key: bytes | str) -> pd.Series:
    """Replace each value with its keyed pseudonym.

    Each value is turned into text with ``str`` first, so ``17850`` and
    ``"17850"`` share a pseudonym but ``17850.0`` does not: give identifiers
    in one canonical form. Missing values stay missing.

    Args:
        series: the identifiers.
        key: the secret key (see :func:`pseudonym_key`).

    Returns:
        A series with the same index and name, holding the first 16 hex
        characters of HMAC-SHA256(key, value), or missing values.

    Raises:
        ValueError: when the key is empty.
    """
    secret = key.encode("utf-8") if isinstance(key, str) else key
    if not secret:
        raise ValueError("the pseudonymisation key is empty")

    def one(value: object) -> str:
        digest = hmac.new(secret, str(value).encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:PSEUDONYM_LENGTH]

    missing = series.isna()
    out = pd.Series(
        [
            None if gone else one(value)
            for value, gone in zip(series, missing, strict=True)
        ],
        index=series.index,
        name=series.name,
        dtype=object,
    )
    return out


def personal_columns(schema: pa.DataFrameSchema) -> tuple[str, ...]:
    """Names of the schema's columns whose metadata marks them personal.

    Args:
        schema: a pandera schema; mark a column with
            ``pa.Column(..., metadata={"personal": True})``.

    Returns:
        The marked column names, in schema order.
    """
    return tuple(
        name
        for name, column in schema.columns.items()
        if (column.metadata or {}).get("personal") is True
    )


def pseudonymise_columns(
    frame: pd.DataFrame, columns: tuple[str, ...], key: bytes | str
) -> pd.DataFrame:
    """Return a copy of ``frame`` with the named columns pseudonymised.

    Raises:
        ValueError: when a named column is missing (a personal column that
            silently went unprotected would be worse than a failed ingest).
    """
    if missing := [c for c in columns if c not in frame.columns]:
        raise ValueError(f"personal columns {missing} are not in the table")
    out = frame.copy()
    for column in columns:
        out[column] = pseudonymise(frame[column], key)
    return out
