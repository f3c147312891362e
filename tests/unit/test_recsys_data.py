"""Recsys data: generator, loaders, the flat event log and the schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.core.errors import DataValidationError
from loopml.workloads.recsys.data import (
    DATASETS,
    RecsysData,
    generate,
    load,
    load_movielens,
    load_online_retail,
)
from loopml.workloads.recsys.movielens import MOVIELENS_GENRES
from loopml.workloads.recsys.movielens_fixture import OCCUPATIONS, write_movielens
from loopml.workloads.recsys.schema import validate_data, validate_raw
from loopml.workloads.recsys.splits import time_split

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ONLINE_RETAIL = SHARED_DATASETS / "online_retail" / "online_retail.parquet"
SMALL: dict[str, Any] = {"n_users": 80, "n_items": 30, "n_days": 90}


@pytest.fixture(scope="module")
def small() -> RecsysData:
    return generate(**SMALL, seed=3)


def _frames_equal(a: RecsysData, b: RecsysData) -> None:
    pd.testing.assert_frame_equal(a.users, b.users)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)


def test_generator_is_deterministic(small: RecsysData) -> None:
    _frames_equal(small, generate(**SMALL, seed=3))
    other = generate(**SMALL, seed=4)
    assert not small.interactions.equals(other.interactions)


def test_default_generator_is_valid() -> None:
    data = generate()
    validate_data(data)
    assert len(data.users) == 600 and len(data.items) == 120
    assert data.interactions["timestamp"].is_monotonic_increasing
    assert set(data.interactions["event"]) == {"enrol", "complete"}
    assert data.users["segment"].nunique() == 8
    # Employees are hired and courses released during the period.
    first = data.interactions["timestamp"].min()
    assert (data.users["hire_date"] > first).any()
    assert (data.items["created"] > first).any()


def test_preferences_depend_on_role(small: RecsysData) -> None:
    taken = small.interactions.merge(small.users, on="user_id").merge(
        small.items, on="item_id"
    )
    share = pd.crosstab(taken["segment"], taken["category"], normalize="index")
    # Engineers and sales reps learn different things.
    assert share.loc["software engineer", "cloud"] > share.loc["sales rep", "cloud"]
    assert share.loc["sales rep", "sales-skills"] > share.loc["data engineer"].get(
        "sales-skills", 0.0
    )


def test_drift_changes_only_the_days_after_it() -> None:
    base = generate(**SMALL, seed=3)
    drifted = generate(**SMALL, seed=3, drift_from_day=60)
    cut = pd.Timestamp("2025-01-01") + pd.Timedelta(days=60)
    before = base.interactions[base.interactions["timestamp"] < cut]
    before_drift = drifted.interactions[drifted.interactions["timestamp"] < cut]
    enrol = before["event"] == "enrol"
    pd.testing.assert_frame_equal(
        before[enrol].reset_index(drop=True),
        before_drift[before_drift["event"] == "enrol"].reset_index(drop=True),
    )
    assert not base.interactions.equals(drifted.interactions)


def test_age_band_is_seeded_follows_seniority_and_changes_nothing_else(
    small: RecsysData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensitive attribute of the inclusion check, on its own random stream."""
    bands = small.users["age_band"]
    assert set(bands) == {"under 40", "40 and over"}
    older = small.users["seniority"][bands == "40 and over"].mean()
    assert older > small.users["seniority"][bands == "under 40"].mean() + 1.0
    # Prefix-stable: extra days (for replay) keep every employee's band.
    longer = generate(**SMALL, seed=3, extra_days=5)
    assert longer.users["age_band"].equals(bands)
    # Drawn apart: without the bands, every other value is the same.
    monkeypatch.setattr(
        "loopml.workloads.recsys.generator.age_bands",
        lambda seed, seniority: np.full(len(seniority), "under 40", dtype=object),
    )
    constant = generate(**SMALL, seed=3)
    assert set(constant.users["age_band"]) == {"under 40"}
    pd.testing.assert_frame_equal(
        constant.users.drop(columns="age_band"), small.users.drop(columns="age_band")
    )
    pd.testing.assert_frame_equal(constant.items, small.items)
    pd.testing.assert_frame_equal(constant.interactions, small.interactions)
    # No other value is allowed in the schema.
    users = small.users.assign(age_band="55")
    assert "'age_band'" in str(
        _error(RecsysData(users, small.items, small.interactions))
    )


def test_generator_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_users"):
        generate(n_users=0)
    with pytest.raises(ValueError, match="drift_from_day"):
        generate(drift_from_day=-1)


def test_event_log_round_trips_through_parquet(
    small: RecsysData, tmp_path: Path
) -> None:
    frame = small.to_frame()
    path = tmp_path / "raw.parquet"
    frame.to_parquet(path, index=False)
    stored = pd.read_parquet(path)
    assert validate_raw(stored) is stored
    back = RecsysData.from_frame(stored)
    active = small.users[small.users["user_id"].isin(small.interactions["user_id"])]
    pd.testing.assert_frame_equal(back.users, active.reset_index(drop=True))
    pd.testing.assert_frame_equal(back.interactions, small.interactions)


def _error(data: RecsysData) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        validate_data(data)
    return caught.value


def test_schema_rejects_null_user_id(small: RecsysData) -> None:
    interactions = small.interactions.copy()
    interactions.loc[3, "user_id"] = None
    error = _error(small.with_interactions(interactions))
    assert "interactions" in str(error) and "'user_id'" in str(error)
    assert "user_id" in set(error.failure_cases["column"])


def test_schema_rejects_duplicated_item_key(small: RecsysData) -> None:
    items = pd.concat([small.items, small.items.iloc[[0]]], ignore_index=True)
    error = _error(RecsysData(small.users, items, small.interactions))
    assert "items" in str(error) and "'item_id'" in str(error)
    assert "field_uniqueness" in str(error)


def test_schema_rejects_negative_weight(small: RecsysData) -> None:
    interactions = small.interactions.copy()
    interactions.loc[5, "weight"] = -1.0
    error = _error(small.with_interactions(interactions))
    assert "'weight'" in str(error) and "greater_than" in str(error)


def test_schema_rejects_an_infinite_duration(small: RecsysData) -> None:
    items = small.items.copy()
    items.loc[2, "duration_hours"] = float("inf")
    error = _error(RecsysData(small.users, items, small.interactions))
    assert "'duration_hours'" in str(error) and "less_than(inf)" in str(error)


def test_schema_rejects_unknown_user_and_wrong_dtype(small: RecsysData) -> None:
    interactions = small.interactions.copy()
    interactions.loc[0, "user_id"] = "ghost"
    assert "known_user" in str(_error(small.with_interactions(interactions)))
    users = small.users.assign(seniority=small.users["seniority"].astype(float))
    assert "'seniority'" in str(
        _error(RecsysData(users, small.items, small.interactions))
    )


def test_event_log_rejects_inconsistent_item_attributes(small: RecsysData) -> None:
    frame = small.to_frame()
    row = frame.index[frame["item_id"] == frame.loc[0, "item_id"]][-1]
    frame.loc[row, "title"] = "Renamed course"
    with pytest.raises(DataValidationError, match="'item_id' failed field_uniq"):
        validate_raw(frame)


def _write_movielens(folder: Path) -> None:
    """A five-user, four-movie fixture in the MovieLens 100K format."""
    folder.mkdir()
    ratings = [
        (1, 1, 5, 881250949),
        (1, 2, 3, 881250950),
        (2, 1, 4, 881250000),
        (3, 3, 2, 881251000),
        (4, 4, 1, 881252000),
        (5, 2, 4, 881253000),
    ]
    (folder / "u.data").write_text(
        "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings)
    )
    (folder / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
        "4|33|F|technician|43537\n5|42|M|programmer|15213\n"
    )
    genres = ["0"] * 19
    lines = []
    for movie, title, genre in [
        (1, "Toy Story (1995)", 3),
        (2, "GoldenEye (1995)", 1),
        (3, "Café Society (1995)", 8),
        (4, "Mystery Reel (1996)", None),
    ]:
        flags = genres.copy()
        if genre is not None:
            flags[genre] = "1"
            flags[genre + 1] = "1"
        lines.append(f"{movie}|{title}|01-Jan-1995||http://x|" + "|".join(flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


def test_movielens_loader_reads_the_format(tmp_path: Path) -> None:
    _write_movielens(tmp_path / "ml")
    data = validate_data(load_movielens(tmp_path / "ml"))
    users = data.users.set_index("user_id")
    assert users.loc["1", "segment"] == "technician"
    assert users.loc["1", "seniority"] == 0 and users.loc["2", "seniority"] == 3
    assert users["age_band"].to_dict() == {
        "1": "under 40",
        "2": "40 and over",
        "3": "under 40",
        "4": "under 40",
        "5": "40 and over",
    }
    items = data.items.set_index("item_id")
    assert items.loc["1", "category"] == "Animation"
    assert items.loc["3", "title"] == "Café Society (1995)"
    assert items.loc["4", "category"] == "unknown"
    assert data.interactions["weight"].tolist() == [4.0, 5.0, 3.0, 2.0, 1.0, 4.0]
    assert set(data.interactions["event"]) == {"rate"}
    assert load("movielens", tmp_path / "ml").interactions.equals(data.interactions)


ML_SMALL: dict[str, int] = {"n_users": 200, "n_items": 300, "n_days": 120}


def test_movielens_fixture_is_seeded_and_in_the_format(tmp_path: Path) -> None:
    first = write_movielens(tmp_path / "a", **ML_SMALL, seed=1)
    again = write_movielens(tmp_path / "b", **ML_SMALL, seed=1)
    other = write_movielens(tmp_path / "c", **ML_SMALL, seed=2)
    for name in ("u.data", "u.user", "u.item"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "u.data").read_bytes() != (other / "u.data").read_bytes()
    data = validate_data(load("movielens", first))
    assert len(data.users) == 200 and len(data.items) == 300
    assert set(data.users["segment"]) <= set(OCCUPATIONS)
    assert data.users["segment"].nunique() >= 15
    assert set(data.items["category"]) <= set(MOVIELENS_GENRES)
    assert set(data.interactions["weight"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    with pytest.raises(ValueError, match="n_items"):
        write_movielens(tmp_path / "d", n_items=10)


def test_movielens_fixture_has_the_shape_of_movielens(tmp_path: Path) -> None:
    data = load_movielens(write_movielens(tmp_path / "ml", **ML_SMALL, seed=3))
    ratings = data.interactions
    assert ratings.groupby("user_id").size().min() >= 20
    # A long tail: the top tenth of the movies gets over twice its share.
    per_movie = ratings["item_id"].value_counts()
    assert per_movie.head(len(per_movie) // 10).sum() > 0.2 * len(ratings)
    assert per_movie.max() > 8 * per_movie.min()
    # Users arrive all along and most rate in one sitting: many users of
    # the last 28 days have no rating before them.
    train, test = time_split(ratings, test_days=28)
    test_users = set(test["user_id"])
    new = test_users - set(train["user_id"])
    assert len(test_users) > 40 and 0.3 < len(new) / len(test_users) < 0.9
    # Movies come out during the period, and are rated only after.
    released = data.items.set_index("item_id")["created"]
    assert (released > ratings["timestamp"].min()).any()
    assert (ratings["timestamp"] >= ratings["item_id"].map(released)).all()


def test_load_explains_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="generated"):
        load("netflix")
    with pytest.raises(ValueError, match="unknown data options"):
        load("generated", n_shops=3)
    with pytest.raises(FileNotFoundError, match="data_path"):
        load("online-retail", None)
    with pytest.raises(FileNotFoundError, match="u.data"):
        load("movielens", tmp_path)
    assert set(DATASETS) == {"generated", "online-retail", "movielens"}
    # Options of other sources are accepted and ignored, like the demand loader.
    data = load("generated", n_users=20, n_items=10, n_days=40, top_items=5)
    assert len(data.users) == 20


def _retail_rows() -> pd.DataFrame:
    """Hand-made transactions: the test period (from 2025-01-11) would change
    the top products, the kept customers, a country and a title."""
    rows = []

    def sell(invoice: str, day: str, who: str, code: str, text: str, land: str) -> None:
        rows.append((invoice, code, text, 1, f"2025-01-{day} 10:00", who, land))

    old, new = "OLD NAME MUG", "NEW NAME MUG"
    for invoice, day, who, land in [("1", "02", 1, "UK"), ("2", "03", 3, "France")]:
        sell(invoice, day, who, "P1", old, land)
        sell(invoice, day, who, "P2", "BAG", land)
    sell("3", "04", 2, "P1", old, "UK")  # customer 2: one product before the cut
    sell("4", "05", 5, "P4", "BOX", "UK")  # customer 5: no kept product before
    sell("5", "06", 6, "P1", old, "UK")
    sell("10", "12", 2, "P2", "BAG", "UK")
    sell("11", "13", 4, "P1", new, "Germany")  # customer 4: new after the cut
    sell("11", "13", 4, "P3", "HAT", "Germany")
    for invoice in ("17", "18"):  # customer 1 shops mostly in Spain later on
        for code in ("P1", "P2", "P3"):
            sell(invoice, "15", 1, code, new, "Spain")
    for who in range(7, 12):
        sell(f"2{who}", "20", who, "P3", "HAT", "UK")
        sell(f"2{who}", "20", who, "P1", new, "UK")
    columns = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"]
    frame = pd.DataFrame(rows, columns=[*columns, "CustomerID", "Country"])
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["CustomerID"] = frame["CustomerID"].astype(float)
    return frame


def test_online_retail_selection_never_looks_at_the_test_period(
    tmp_path: Path,
) -> None:
    path = tmp_path / "retail.parquet"
    _retail_rows().to_parquet(path)
    data = validate_data(
        load_online_retail(path, min_user_items=2, top_items=2, test_days=10)
    )
    # P3 has the most buyers overall, all after the cut: P1 and P2 are kept.
    assert sorted(data.items["item_id"]) == ["P1", "P2"]
    # 1 and 3 had two kept products before the cut; 2 (one before, one
    # after), 5 and 6 had fewer; 4 and 7-11 came after the cut (new).
    assert sorted(data.users["user_id"], key=int) == [
        "1",
        "3",
        "4",
        *map(str, range(7, 12)),
    ]
    segment = data.users.set_index("user_id")["segment"]
    assert segment["1"] == "UK"  # Spain only after the cut, though more often
    assert segment["4"] == "Germany"  # a new customer: their first purchase
    titles = data.items.set_index("item_id")["title"]
    assert titles["P1"] == "OLD NAME MUG"  # the newer name wins only later
    # The test period's purchases of kept customers are still there to judge.
    after = data.interactions["timestamp"] >= pd.Timestamp("2025-01-11")
    assert set(data.interactions.loc[after, "user_id"]) == {
        "1",
        "4",
        *map(str, range(7, 12)),
    }


@pytest.mark.skipif(
    not ONLINE_RETAIL.is_file(),
    reason=f"UCI Online Retail not found at {ONLINE_RETAIL} (shared datasets absent)",
)
def test_online_retail_loader() -> None:
    data = validate_data(load_online_retail(ONLINE_RETAIL, top_items=300))
    assert len(data.items) <= 300
    assert data.users["user_id"].str.fullmatch(r"\d+").all()
    train, _ = time_split(data.interactions, test_days=28)
    per_user = train.groupby("user_id")["item_id"].nunique()
    assert per_user.min() >= 5
    # The others are new customers: their first purchase is in the test period.
    new = set(data.users["user_id"]) - set(per_user.index)
    assert 100 < len(new) < len(per_user)
    assert "United Kingdom" in set(data.users["segment"])
    assert set(data.interactions["event"]) == {"purchase"}
    assert not data.items["item_id"].isin(["POST", "M", "DOT"]).any()
    days = data.interactions.assign(day=data.interactions["timestamp"].dt.normalize())
    assert not days.duplicated(["user_id", "item_id", "day"]).any()
    assert np.all(data.interactions["weight"] == 1.0)


def test_an_empty_event_log_or_table_is_refused(small: RecsysData) -> None:
    """Every column check passes on no rows: it replaced the validated data."""
    from loopml.workloads.recsys.schema import validate_raw

    with pytest.raises(DataValidationError, match="not_empty"):
        validate_raw(small.to_frame().iloc[:0])
    error = _error(small.with_interactions(small.interactions.iloc[:0]))
    assert "interactions" in str(error) and "not_empty" in str(error)


def test_a_daily_batch_day_without_events_is_refused(small: RecsysData) -> None:
    """``ingest -w recsys --date`` of a day outside the source stored no rows
    and passed; ``features`` then moved the online store's day to it."""
    from loopml.workloads.recsys.schema import validate_batch

    frame = small.to_frame()
    last = frame["timestamp"].max().normalize()
    assert validate_batch(frame, [last]) is frame
    with pytest.raises(DataValidationError, match="not_empty") as caught:
        validate_batch(frame, [pd.Timestamp("1999-01-01"), last])
    assert "1999-01-01: no events" in str(caught.value)
