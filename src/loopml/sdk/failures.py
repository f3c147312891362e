"""Turn a pandera failure table into one paragraph a person can act on.

Every part of the paragraph names a column and a check: ``column 'sales'
failed greater_than_or_equal_to(0) (2 case(s), e.g. -1.0, -5.0)``. Checks on
the whole table name the column they are about (``check_columns``), so the
rule holds for them too. Any workload's schema module can use this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

# How many example failing values each part quotes.
EXAMPLES = 3
UNIQUENESS = "multiple_fields_uniqueness"


def failure_row(check: str, column: str, case: str) -> dict[str, object]:
    """One failure in pandera's format, for checks pandera cannot express.

    Args:
        check: the check's name.
        column: the column the check is about.
        case: what failed, in words (it is quoted in the message).

    Returns:
        A row for a failure table (``index`` is unknown: no single row).
    """
    return {
        "schema_context": "DataFrameSchema",
        "column": column,
        "check": check,
        "check_number": None,
        "failure_case": case,
        "index": None,
    }


def _subject(
    row: pd.Series,
    schema_name: str | None,
    key_columns: Sequence[str],
    check_columns: Mapping[str, str],
) -> str:
    if row["check"] in check_columns:
        return f"column {check_columns[row['check']]!r}"
    if row["column"] == schema_name:
        # Missing, extra or misordered columns: pandera names the column here.
        return f"column {row['failure_case']!r}"
    if row["check"] == UNIQUENESS:
        return f"key columns {list(key_columns)}"
    return f"column {row['column']!r}"


def _example(row: pd.Series, table_level: bool) -> str:
    case = row["failure_case"]
    if row["check"] == UNIQUENESS or (table_level and pd.notna(row["position"])):
        return f"row {int(row['position'])}"
    if table_level and isinstance(case, bool):
        return "the whole table"
    return str(case) if table_level else repr(case)


def describe(
    what: str,
    failures: pd.DataFrame,
    schema_name: str | None,
    key_columns: Sequence[str],
    check_columns: Mapping[str, str] | None = None,
    examples: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Summarise a failure table as one readable paragraph.

    Args:
        what: what was validated, e.g. ``"raw demand table"``.
        failures: pandera's ``failure_cases`` (plus rows from
            :func:`failure_row`).
        schema_name: the schema's name (pandera puts it in ``column`` for
            missing, extra and misordered columns).
        key_columns: the columns that must be unique together.
        check_columns: table-level check name -> the column it is about.
        examples: check name -> one description per failing case, used
            instead of the failing values (and to count the cases).

    Returns:
        ``"The <what> failed validation: column 'x' failed <check> (n case(s),
        e.g. ...); ..."``.
    """
    check_columns = check_columns or {}
    examples = examples or {}
    frame = failures.assign(
        check=failures["check"].astype(str),
        position=pd.to_numeric(failures["index"], errors="coerce"),
    ).sort_values("position", kind="stable")
    # A value check that crashed on a column of the wrong dtype repeats the
    # dtype failure as a TypeError; the dtype failure says it better.
    is_dtype = frame["check"].str.startswith("dtype(")
    wrong_dtype = set(frame.loc[is_dtype, "column"])
    crashed = (
        frame["column"].isin(wrong_dtype) & ~is_dtype & frame["position"].isna()
    ) & (frame["schema_context"] == "Column")
    frame = frame[~crashed]
    frame["subject"] = frame.apply(
        _subject, axis=1, args=(schema_name, key_columns, check_columns)
    )
    parts = []
    for (subject, check), rows in frame.groupby(["subject", "check"], sort=True):
        table_level = check in check_columns
        # Given examples describe every case (e.g. one per broken series).
        shown = list(examples.get(check, ()))
        count = len(shown) or rows["position"].nunique() or len(rows)
        shown = shown or list(
            dict.fromkeys(
                _example(row, table_level) for _, row in rows.head(50).iterrows()
            )
        )
        parts.append(
            f"{subject} failed {check} ({count} case(s), "
            f"e.g. {', '.join(shown[:EXAMPLES])})"
        )
    return f"The {what} failed validation: " + "; ".join(parts) + "."
