"""Course recommendations online: the day's batch when there is one, else live.

``GET /v1/recsys/users/{user_id}/recommendations?k=10[&segment=...]`` answers
from the newest batch file (``loopml batch``) written by the champion
version being served: it is read once into memory and re-read only when a
newer file appears or the file changes. Without such a batch (or for a new
user, a segment other than the user's own, or more items than the batch
keeps) the champion scores the user live. Either way each item has a reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError

from loopml.core.config import Settings
from loopml.data.results import batch_dir, file_version
from loopml.serving.model_store import LoadedModel, ModelStore
from loopml.serving.schemas import RecsysItem, RecsysResponse

log = logging.getLogger(__name__)

WORKLOAD = "recsys"
MAX_K = 100
_PREFIX, _SUFFIX = "date=", ".parquet"


@dataclass(frozen=True)
class Batch:
    """One day's results, sorted by user then rank, as column arrays."""

    day: dt.date
    version: str
    k: int
    users: npt.NDArray[Any]
    starts: npt.NDArray[np.int64]
    frame: pd.DataFrame

    @classmethod
    def read(cls, path: Path, version: str) -> Batch:
        """Load a result file (see ``stages.batch``) for lookups by user."""
        frame = pd.read_parquet(path).sort_values(["user_id", "rank"], kind="stable")
        frame = frame.reset_index(drop=True)
        users, starts = np.unique(
            frame["user_id"].to_numpy(dtype=object), return_index=True
        )
        day = dt.date.fromisoformat(path.name[len(_PREFIX) : -len(_SUFFIX)])
        k = int(frame["rank"].max()) if len(frame) else 0
        return cls(day, version, k, users, starts.astype(np.int64), frame)

    def items(self, user_id: str, k: int) -> list[RecsysItem] | None:
        """The user's first ``k`` items, or ``None`` when the batch lacks them."""
        at = int(np.searchsorted(self.users, user_id))
        if at == len(self.users) or self.users[at] != user_id or k > self.k:
            return None
        stop = self.starts[at + 1] if at + 1 < len(self.starts) else len(self.frame)
        rows = self.frame.iloc[int(self.starts[at]) : int(stop)].head(k)
        return [
            RecsysItem(rank=int(r), item_id=str(i), score=float(s), reason=str(why))
            for r, i, s, why in zip(
                rows["rank"],
                rows["item_id"],
                rows["score"],
                rows["reason"],
                strict=True,
            )
        ]


class BatchResults:
    """The newest batch file of the served version, read once per file."""

    def __init__(self, folder: Path) -> None:
        """Watch ``folder`` (``<home>/batch/recsys``)."""
        self.folder = folder
        self._versions: dict[tuple[str, int, int], str | None] = {}
        self._batch: Batch | None = None
        self._key: tuple[str, int, int] | None = None
        self._lock = threading.Lock()

    def _files(self) -> list[tuple[str, int, int]]:
        """(name, mtime, size) of every result file, newest day first."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in self.folder.iterdir():
            name = entry.name
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                stat = entry.stat()
                found.append((name, stat.st_mtime_ns, stat.st_size))
        return sorted(found, reverse=True)

    def for_version(self, version: str) -> Batch | None:
        """The newest batch written by ``version``, or ``None``.

        A directory listing per call; a file is read only when it is new or
        changed, so batches land without a restart.
        """
        for key in self._files():
            if key not in self._versions:
                try:
                    self._versions[key] = file_version(self.folder / key[0])
                except OSError:  # replaced while we looked: next call sees it
                    continue
            if self._versions[key] != version:
                continue
            if self._key == key and self._batch is not None:
                return self._batch
            with self._lock:
                if self._key != key:
                    self._batch = Batch.read(self.folder / key[0], version)
                    self._key = key
                    log.info("serving recsys batch %s (version %s)", key[0], version)
            return self._batch
        return None


def served(store: ModelStore) -> LoadedModel:
    """The recsys champion, or a 503 that says there is none yet."""
    loaded = store.get(WORKLOAD)
    if loaded is None:
        raise HTTPException(
            503, detail="no recsys champion is loaded yet: run `loopml run -w recsys`"
        )
    return loaded


def build_router(store: ModelStore, settings: Settings) -> APIRouter:
    """The recsys routes, reading batches under ``settings.home``."""
    router = APIRouter(tags=["recsys"])
    batches = BatchResults(batch_dir(settings, WORKLOAD))

    @router.get(
        "/v1/recsys/users/{user_id}/recommendations", response_model=RecsysResponse
    )
    def recommendations(
        user_id: Annotated[str, PathParam(min_length=1, max_length=256)],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 10,
        segment: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=256,
                description="Segment (job role) of a new user; for a known user "
                "it replaces theirs.",
            ),
        ] = None,
    ) -> RecsysResponse:
        """Top ``k`` items for a user, each with a short reason.

        A known user gets the day's batch result when the served version has
        one, else live scoring. An unknown user gets the popular items of the
        ``segment`` given (a 404 without one); an unknown segment is a 422.
        """
        loaded = served(store)
        model = loaded.model
        if segment is not None and segment not in model.segments:
            known = ", ".join(sorted(model.segments)[:20])
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "segment"),
                        "msg": f"unknown segment {segment!r}; known: {known}",
                        "input": segment,
                    }
                ]
            )
        known_user = model.known(user_id)
        if not known_user and segment is None:
            raise HTTPException(
                404,
                detail=f"unknown user_id {user_id!r}: the model has no history "
                "for them; pass ?segment=<job role> for that segment's popular "
                "items",
            )
        own = model.segment_of.get(user_id) if known_user else None
        own = own if isinstance(own, str) and own else None
        batch = batches.for_version(loaded.version)
        items = None
        if batch is not None and known_user and segment in (None, own):
            items = batch.items(user_id, k)
        if items is not None and batch is not None:
            source, day = "batch", batch.day
        else:
            frame = model.recommend_frame([user_id], k, segment)
            items = [
                RecsysItem(rank=int(r), item_id=str(i), score=float(s), reason=str(w))
                for r, i, s, w in zip(
                    frame["rank"],
                    frame["item_id"],
                    frame["score"],
                    frame["reason"],
                    strict=True,
                )
            ]
            source, day = "live", None
        return RecsysResponse(
            user_id=user_id,
            model_version=loaded.version,
            source=source,
            batch_date=day,
            segment=segment or own,
            items=items,
        )

    return router
