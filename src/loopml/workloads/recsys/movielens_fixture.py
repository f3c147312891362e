"""A seeded, MovieLens-shaped fixture in the 100K file format.

MovieLens 100K cannot be redistributed, so tests and the benchmark write their
own files in its format (``u.data``, ``u.user``, ``u.item``) and read them
with :func:`movielens.load_movielens`. The defaults copy the real set's shape:
943 users in 21 occupations (the real counts), 1,682 movies with genre flags,
about 100,000 ratings (at least 20 per user) over about seven months, and:

* a **long tail**: a movie's appeal is log-normal, so a few blockbusters get
  hundreds of ratings and many movies one or two;
* **bursts**: most users rate everything in one sitting on the day they
  arrive, and users arrive throughout the period, so many users of a late
  test period have no earlier rating at all; the rest come back a few times;
* **taste**: each occupation and age group leans towards some genres, each
  user deviates personally (latent factors), so there is something to
  personalise beyond "popular in your occupation";
* **new releases** arrive during the period and are popular for a while.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.recsys.movielens import MOVIELENS_GENRES

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Users per occupation in MovieLens 100K (943 in all).
OCCUPATIONS: dict[str, int] = {
    "student": 196,
    "other": 105,
    "educator": 95,
    "administrator": 79,
    "engineer": 67,
    "programmer": 66,
    "librarian": 51,
    "writer": 45,
    "executive": 32,
    "scientist": 31,
    "artist": 28,
    "technician": 27,
    "marketing": 26,
    "entertainment": 18,
    "healthcare": 16,
    "retired": 14,
    "lawyer": 12,
    "salesman": 12,
    "none": 9,
    "doctor": 7,
    "homemaker": 7,
}
# Movies per genre flag in MovieLens 100K, in MOVIELENS_GENRES order.
_GENRE_COUNTS = np.array(
    [2, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101]
    + [251, 71, 27],
    dtype=float,
)
# Share of ratings 1..5 in MovieLens 100K.
_RATING_SHARES = np.array([0.061, 0.114, 0.271, 0.341, 0.213])
_START = "1997-09-20"
_N_FACTORS = 8
# Utility weights; the Gumbel choice noise has scale 1.
_W_APPEAL, _W_GENRE, _W_TASTE, _W_NOVELTY = 1.0, 0.8, 1.0, 2.0
_ONE_SITTING = 0.6  # share of users who rate everything on their first day


def _users(rng: np.random.Generator, n_users: int) -> pd.DataFrame:
    """Occupations in the real proportions, ages that fit them, genders."""
    names = np.array(list(OCCUPATIONS))
    shares = np.array(list(OCCUPATIONS.values()), dtype=float)
    occupation = rng.choice(len(names), n_users, p=shares / shares.sum())
    mean_age = np.full(len(names), 36.0)
    mean_age[names == "student"] = 22.0
    mean_age[names == "retired"] = 63.0
    age = np.clip(rng.normal(mean_age[occupation], 8.0), 7, 73).astype(np.int64)
    gender = np.where(rng.random(n_users) < 0.71, "M", "F")
    return pd.DataFrame(
        {
            "user": np.arange(n_users),
            "occupation": names[occupation],
            "occupation_row": occupation,
            "age": age,
            "gender": gender,
            "zip": [f"{z:05d}" for z in rng.integers(1000, 99999, n_users)],
        }
    )


def _movies(rng: np.random.Generator, n_items: int, n_days: int) -> pd.DataFrame:
    """Genres in the real proportions, log-normal appeal, release days."""
    shares = _GENRE_COUNTS / _GENRE_COUNTS.sum()
    flags = np.zeros((n_items, len(MOVIELENS_GENRES)), dtype=np.int64)
    flags[np.arange(n_items), rng.choice(len(shares), n_items, p=shares)] = 1
    second = rng.random(n_items) < 0.5
    flags[second, rng.choice(len(shares), int(second.sum()), p=shares)] = 1
    # Most movies are older than the period; about one in eight comes out in it.
    released = np.where(
        rng.random(n_items) < 0.12,
        rng.integers(0, n_days, n_items),
        -rng.integers(30, 25_000, n_items),
    )
    return pd.DataFrame(
        {
            "item": np.arange(n_items),
            "appeal": rng.normal(0.0, 1.25, n_items),
            "released": released,
            **{f"g{g}": flags[:, g] for g in range(flags.shape[1])},
        }
    )


def _sessions(
    rng: np.random.Generator, n_ratings: IntArray, n_days: int
) -> list[tuple[IntArray, IntArray]]:
    """Per user: the day of each sitting and how many ratings it holds."""
    arrival = rng.integers(0, n_days, len(n_ratings))
    out = []
    for user, total in enumerate(n_ratings):
        if rng.random() < _ONE_SITTING:
            out.append((arrival[user : user + 1], np.array([total])))
            continue
        extra = int(rng.integers(1, 6))
        gaps = rng.exponential(20.0, extra).astype(np.int64) + 1
        days = np.minimum(arrival[user] + np.cumsum(np.append(0, gaps)), n_days - 1)
        split = rng.dirichlet(np.append(3.0, np.ones(extra)))
        counts = np.floor(split * total).astype(np.int64)
        counts[0] += total - counts.sum()
        out.append((days, counts))
    return out


def generate_movielens(
    n_users: int = 943, n_items: int = 1682, n_days: int = 215, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate the three MovieLens 100K tables (see the module docstring).

    Args:
        n_users: users (ids 1..n_users).
        n_items: movies (ids 1..n_items).
        n_days: days of ratings, from 1997-09-20.
        seed: seeds the only random generator: same arguments, same files.

    Returns:
        ``(ratings, users, movies)``: ``user_id, item_id, rating, unix``;
        ``user_id, age, gender, occupation, zip``; ``item_id, title,
        release, video, url`` and the 19 genre flags.

    Raises:
        ValueError: when a size is too small for 20 ratings per user.
    """
    if n_users < 1 or n_days < 1 or n_items < 40:
        raise ValueError("need n_users >= 1, n_days >= 1 and n_items >= 40")
    rng = np.random.default_rng(seed)
    users = _users(rng, n_users)
    movies = _movies(rng, n_items, n_days)
    genres = movies[[f"g{g}" for g in range(len(MOVIELENS_GENRES))]].to_numpy(float)
    genres /= genres.sum(axis=1, keepdims=True)
    occupation_taste = rng.normal(0.0, 0.7, (len(OCCUPATIONS), genres.shape[1]))
    age_taste = rng.normal(0.0, 0.4, (3, genres.shape[1]))
    age_group = np.digitize(users["age"].to_numpy(), [25, 45])
    user_factors = rng.normal(0.0, 1.0, (n_users, _N_FACTORS))
    item_factors = rng.normal(0.0, 1.0 / np.sqrt(_N_FACTORS), (n_items, _N_FACTORS))
    group_taste = occupation_taste[users["occupation_row"]] + age_taste[age_group]
    utility = (
        _W_APPEAL * movies["appeal"].to_numpy()[None, :]
        + _W_GENRE * group_taste @ genres.T
        + _W_TASTE * user_factors @ item_factors.T
    )
    # At least 20 ratings each, heavy-tailed (median about 60).
    n_ratings = np.minimum(
        20 + rng.lognormal(np.log(45.0), 1.0, n_users).astype(np.int64), n_items // 2
    )
    released = movies["released"].to_numpy()
    rows: list[tuple[IntArray, IntArray, IntArray]] = []
    for user, (days, counts) in enumerate(_sessions(rng, n_ratings, n_days)):
        taken = np.zeros(n_items, dtype=bool)
        for day, count in zip(days, counts, strict=True):
            age = day - released
            score = utility[user] + _W_NOVELTY * np.exp(-np.clip(age, 0, None) / 45.0)
            score = score + rng.gumbel(size=n_items)
            score[(age < 0) | taken] = -np.inf
            chosen = np.argsort(-score, kind="stable")[:count]
            # Rated in no particular order within the sitting.
            chosen = rng.permutation(chosen[np.isfinite(score[chosen])])
            taken[chosen] = True
            rows.append((np.full(len(chosen), user), chosen, np.full(len(chosen), day)))
    user_of, item_of, day_of = (np.concatenate([r[i] for r in rows]) for i in range(3))

    # Ratings follow utility: the real 1..5 shares by quantile of a noisy score.
    noisy = utility[user_of, item_of] + rng.normal(0.0, 1.0, len(user_of))
    cuts = np.quantile(noisy, np.cumsum(_RATING_SHARES)[:-1])
    rating = np.digitize(noisy, cuts) + 1
    # A sitting starts between 08:00 and 23:00; a rating every 5-60 seconds.
    start = pd.Timestamp(_START).value // 10**9
    sitting_start = rng.integers(8 * 3600, 23 * 3600, (n_users, n_days))
    steps = pd.Series(rng.integers(5, 60, len(user_of)))
    elapsed = steps.groupby([user_of, day_of]).cumsum().to_numpy()
    unix = start + day_of * 86_400 + sitting_start[user_of, day_of] + elapsed
    ratings = pd.DataFrame(
        {
            "user_id": user_of + 1,
            "item_id": item_of + 1,
            "rating": rating.astype(np.int64),
            "unix": unix.astype(np.int64),
        }
    )
    return ratings, _user_file(users), _movie_file(movies, start)


def _user_file(users: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": users["user"] + 1,
            "age": users["age"],
            "gender": users["gender"],
            "occupation": users["occupation"],
            "zip": users["zip"],
        }
    )


def _movie_file(movies: pd.DataFrame, start: int) -> pd.DataFrame:
    release = pd.to_datetime(start + movies["released"] * 86_400, unit="s")
    year = release.dt.year.astype(str).to_numpy()
    flags = {g: movies[f"g{i}"] for i, g in enumerate(MOVIELENS_GENRES)}
    return pd.DataFrame(
        {
            "item_id": movies["item"] + 1,
            "title": [f"Movie {i + 1} ({y})" for i, y in enumerate(year)],
            "release": release.dt.strftime("%d-%b-%Y"),
            "video": "",
            "url": "http://example.invalid/",
            **flags,
        }
    )


def write_movielens(folder: Path, **options: int) -> Path:
    """Write a generated fixture as ``u.data``, ``u.user`` and ``u.item``.

    Args:
        folder: created if missing; the files inside are replaced.
        **options: ``n_users``, ``n_items``, ``n_days``, ``seed`` of
            :func:`generate_movielens`.

    Returns:
        ``folder``, ready for ``load_movielens``.
    """
    ratings, users, movies = generate_movielens(**options)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    users.to_csv(folder / "u.user", sep="|", header=False, index=False)
    movies.to_csv(
        folder / "u.item", sep="|", header=False, index=False, encoding="latin-1"
    )
    log.info(
        "movielens fixture: %d users, %d movies, %d ratings in %s",
        len(users),
        len(movies),
        len(ratings),
        folder,
    )
    return folder
