"""The MovieLens 100K file format (``u.data``, ``u.user``, ``u.item``).

MovieLens cannot be redistributed: this reads a user's own copy; tests build
a small fixture in the same format.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.workloads.recsys.tables import (
    RecsysData,
    age_band,
    as_ns,
    require_file,
)

log = logging.getLogger(__name__)

MOVIELENS_GENRES: tuple[str, ...] = ("unknown", "Action", "Adventure", "Animation")
MOVIELENS_GENRES += ("Children's", "Comedy", "Crime", "Documentary", "Drama")
MOVIELENS_GENRES += ("Fantasy", "Film-Noir", "Horror", "Musical", "Mystery")
MOVIELENS_GENRES += ("Romance", "Sci-Fi", "Thriller", "War", "Western")
_AGE_BINS = [-np.inf, 25, 35, 45, 55, np.inf]


def load_movielens(folder: Path) -> RecsysData:
    """Read the MovieLens 100K format (``u.data``, ``u.user``, ``u.item``).

    Deliberate choices: ``segment`` is the occupation (the job role);
    ``seniority`` buckets age (<25, 25-34, 35-44, 45-54, 55+ -> 0-4) and
    ``age_band`` splits it at 40;
    ``department`` is unknown; ``hire_date`` is the first rating day; every
    rating is a ``rate`` interaction weighted by the rating (1-5);
    ``category`` is the first genre flag set; ``created`` is the release date
    (the first rating day when missing); level, duration and roles are
    unknown (0, 0.0, "").

    Args:
        folder: a folder with ``u.data``, ``u.user`` and ``u.item``.

    Returns:
        The three canonical tables.

    Raises:
        FileNotFoundError: when the folder or one of the files is missing.
    """
    folder = Path(folder)
    hint = "MovieLens 100K cannot be shipped; point recsys.data_path at your copy."
    for name in ("u.data", "u.user", "u.item"):
        require_file(folder / name, f"the MovieLens file {name}", hint)
    ratings = pd.read_csv(
        folder / "u.data",
        sep="\t",
        header=None,
        dtype=str,
        names=["user_id", "item_id", "rating", "unix"],
    )
    interactions = pd.DataFrame(
        {
            "user_id": ratings["user_id"].str.strip(),
            "item_id": ratings["item_id"].str.strip(),
            "timestamp": pd.to_datetime(ratings["unix"].astype(np.int64), unit="s"),
            "event": "rate",
            "weight": ratings["rating"].astype(np.float64),
        }
    ).sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    interactions["timestamp"] = as_ns(interactions["timestamp"])
    first_day = interactions.groupby("user_id")["timestamp"].min().dt.normalize()

    people = pd.read_csv(
        folder / "u.user",
        sep="|",
        header=None,
        dtype=str,
        names=["user_id", "age", "gender", "occupation", "zip"],
    )
    age = pd.to_numeric(people["age"], errors="coerce")
    seniority = pd.cut(age, _AGE_BINS, right=False, labels=False)
    fallback_day = interactions["timestamp"].min().normalize()
    users = pd.DataFrame(
        {
            "user_id": people["user_id"].str.strip(),
            "segment": people["occupation"].fillna("unknown").str.strip(),
            "seniority": seniority.fillna(-1).astype(np.int64),
            "department": "unknown",
        }
    )
    users["hire_date"] = as_ns(users["user_id"].map(first_day).fillna(fallback_day))
    users["age_band"] = age_band(age.to_numpy(dtype=np.float64))

    movies = pd.read_csv(
        folder / "u.item",
        sep="|",
        header=None,
        dtype=str,
        encoding="latin-1",
        names=["item_id", "title", "release", "video", "url", *MOVIELENS_GENRES],
    )
    flags = movies[list(MOVIELENS_GENRES)].fillna("0").astype(np.int64).to_numpy()
    genre = np.where(
        flags.any(axis=1),
        np.asarray(MOVIELENS_GENRES, dtype=object)[flags.argmax(axis=1)],
        "unknown",
    )
    first_rated = interactions.groupby("item_id")["timestamp"].min().dt.normalize()
    released = pd.to_datetime(movies["release"], format="%d-%b-%Y", errors="coerce")
    item_ids = movies["item_id"].str.strip()
    created = released.fillna(item_ids.map(first_rated)).fillna(fallback_day)
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": movies["title"].fillna("").str.strip(),
            "category": genre,
            "level": np.int64(0),
            "duration_hours": 0.0,
            "roles": "",
            "created": as_ns(created),
        }
    )
    log.info(
        "movielens: %d users, %d items, %d ratings",
        len(users),
        len(items),
        len(interactions),
    )
    return RecsysData(users, items, interactions.reset_index(drop=True))
