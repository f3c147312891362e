"""Course recommendations online: the day's batch when there is one, else live.

Two ways in, one answer: ``POST /v1/recsys/predict`` (and the MLflow and v2
protocols) with rows ``{user_id, k, segment}``, and
``GET /v1/recsys/users/{user_id}/recommendations?k=10[&segment=...]``. A
known user asking for their own segment gets the newest batch file
(``loopml batch``) written by the champion version being served, read once
into memory by the service (``ServingContext.batch``); without such a batch
(or for a new user, a segment other than the user's own, or more items than
the batch keeps) the model scores the user live. Either way each item has a
reason.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from loopml.core import jsonbytes
from loopml.sdk.capabilities import (
    BatchIndex,
    InvalidRowsError,
    OnlineScorer,
    Output,
    Scores,
    ScoringContext,
    ServingContext,
    UnknownEntitiesError,
)

WORKLOAD = "recsys"
MAX_K = 100
#: The batch's lookup key and the order of a user's rows.
KEY, ORDER = "user_id", "rank"


class RecsysRow(BaseModel):
    """One user to recommend for."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=256, examples=["U0001"])
    k: int | None = Field(
        None, ge=1, le=MAX_K, description="How many items; default: the model's k."
    )
    segment: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="Segment (job role) of a new user; for a known user it "
        "replaces theirs.",
    )


class RecsysItem(BaseModel):
    """One recommended item, with why."""

    rank: int = Field(ge=1, description="1 is the best.")
    item_id: str
    score: float = Field(description="The model's score (higher is better).")
    reason: str = Field(examples=["because you took SQL Bootcamp (Practitioner)"])


class RecsysResponse(BaseModel):
    """A user's recommendations and where they came from."""

    user_id: str
    model: Literal["recsys"] = "recsys"
    model_version: str
    source: Literal["batch", "live"] = Field(
        description="`batch`: the served version's latest daily batch; `live`: "
        "scored now (no batch for that version, a new user, a segment other "
        "than the user's, or more items than the batch keeps)."
    )
    batch_date: dt.date | None = Field(
        None, description="The day of the batch the items come from."
    )
    segment: str | None = Field(
        None, description="The segment (job role) used: the one given, else the user's."
    )
    items: list[RecsysItem]


@dataclass
class Answer:
    """One user's recommendations: items in rank order and their origin."""

    items: list[tuple[int, str, float, str]]  # rank, item_id, score, reason
    source: Literal["batch", "live"]
    day: dt.date | None
    segment: str | None


def own_segment(
    model: Any, user_id: str, segment: str | None, at: int = 0
) -> str | None:
    """The user's own segment (None for a new user), after checking the request.

    Raises:
        InvalidRowsError: an unknown segment (row ``at``).
        UnknownEntitiesError: an unknown user without a segment.
    """
    if segment is not None and segment not in model.segments:
        known = ", ".join(sorted(model.segments)[:20])
        message = f"unknown segment {segment!r}; known: {known}"
        raise InvalidRowsError([(at, "segment", message, segment)])
    if not model.known(user_id):
        if segment is None:
            raise UnknownEntitiesError(
                f"unknown user_id {user_id!r}: the model has no history for "
                "them; pass ?segment=<job role> for that segment's popular items"
            )
        return None
    own = model.segment_of.get(user_id)
    return own if isinstance(own, str) and own else None


def from_batch(
    batch: BatchIndex | None,
    model: Any,
    user_id: str,
    k: int,
    segment: str | None,
    own: str | None,
) -> Answer | None:
    """The user's first ``k`` batch rows, when the batch can answer."""
    if batch is None or not model.known(user_id) or segment not in (None, own):
        return None
    if k > batch.per_key:
        return None
    rows = batch.records(user_id, ("rank", "item_id", "score", "reason"), k)
    if rows is None:
        return None
    items = [(int(r), str(i), float(s), str(w)) for r, i, s, w in rows]
    return Answer(items, "batch", batch.day, segment or own)


def _live(
    model: Any, users: list[str], k: int, segment: str | None
) -> dict[str, list[tuple[int, str, float, str]]]:
    """Live answers: one user without a frame, several through one frame."""
    if len(users) == 1:
        return {users[0]: model.recommend_one(users[0], k, segment)}
    frame = model.recommend_frame(users, k, segment)
    found: dict[str, list[tuple[int, str, float, str]]] = {}
    for user, rank, item, score, reason in frame[
        ["user_id", "rank", "item_id", "score", "reason"]
    ].itertuples(index=False):
        found.setdefault(str(user), []).append(
            (int(rank), str(item), float(score), str(reason))
        )
    return found


def _batch(context: ServingContext | None, version: str) -> BatchIndex | None:
    if context is None:
        return None
    return context.batch(WORKLOAD, version, key=KEY, order=ORDER)


class RecsysScorer(OnlineScorer):
    """Top-k courses per user, each with a short reason.

    A known user gets the day's batch result when the served version has one,
    else live scoring (`source` says which). An unknown user gets the popular
    items of the `segment` given (a 404 without one); an unknown segment is a
    422. Per row: `item_ids`, `scores`, `reasons` (best first), `source`.
    """

    row = RecsysRow
    outputs = (Output("item_ids", "BYTES", per_row=0), Output("scores", "FP64", 0))

    def warm(self, model: Any) -> Any:
        """Compile the ranker's trees once per loaded version (live scoring)."""
        engine = getattr(model, "recommender", None)
        compile_trees = getattr(engine, "compile_trees", None)
        if compile_trees is not None:
            compile_trees()
        return model

    def score(self, model: Any, rows: Sequence[Any], context: ScoringContext) -> Scores:
        """Recommend for each row: from the batch, else live (one call per k)."""
        invalid: list[tuple[int, str, str, Any]] = []
        unknown: list[str] = []
        owns: list[str | None] = []
        for i, r in enumerate(rows):
            try:
                owns.append(own_segment(model, r.user_id, r.segment, at=i))
            except InvalidRowsError as error:
                invalid += error.errors
            except UnknownEntitiesError:
                unknown.append(r.user_id)
        if invalid:
            raise InvalidRowsError(invalid)
        if unknown:
            shown = ", ".join(repr(u) for u in sorted(set(unknown))[:10])
            raise UnknownEntitiesError(
                f"unknown user_id {shown}: the model has no history for them; "
                "give a segment (job role) for that segment's popular items"
            )
        batch = _batch(context.serving, context.version)
        ks = [r.k or model.k for r in rows]
        answers = [
            from_batch(batch, model, r.user_id, k, r.segment, own)
            for r, k, own in zip(rows, ks, owns, strict=True)
        ]
        live: dict[tuple[int, str | None], list[int]] = {}
        for i, answer in enumerate(answers):
            if answer is None:
                live.setdefault((ks[i], rows[i].segment), []).append(i)
        for (k, segment), positions in live.items():
            users = list(dict.fromkeys(rows[i].user_id for i in positions))
            found = _live(model, users, k, segment)
            for i in positions:
                items = found.get(rows[i].user_id, [])
                answers[i] = Answer(items, "live", None, segment or owns[i])
        done = [a for a in answers if a is not None]
        return Scores(
            columns={
                "user_id": [r.user_id for r in rows],
                "segment": [a.segment for a in done],
                "item_ids": [[x[1] for x in a.items] for a in done],
                "scores": [[x[2] for x in a.items] for a in done],
                "reasons": [[x[3] for x in a.items] for a in done],
                "source": [a.source for a in done],
            }
        )

    def example_rows(self, model: Any) -> list[dict[str, Any]]:
        """Two known users, the model's ``k`` items each."""
        users = model.user_ids()[:2]
        return [{"user_id": u, "k": model.k} for u in users]

    def routes(self, context: ServingContext) -> APIRouter:
        """``GET /users/{user_id}/recommendations`` (under ``/v1/recsys``)."""
        router = APIRouter()

        @router.get("/users/{user_id}/recommendations", response_model=RecsysResponse)
        async def recommendations(
            user_id: Annotated[str, PathParam(min_length=1, max_length=256)],
            k: Annotated[
                int | None,
                Query(ge=1, le=MAX_K, description="How many items (the model's k)."),
            ] = None,
            segment: Annotated[
                str | None,
                Query(
                    min_length=1,
                    max_length=256,
                    description="Segment (job role) of a new user; for a known "
                    "user it replaces theirs.",
                ),
            ] = None,
        ) -> Response:
            """Top ``k`` items for a user, each with a short reason.

            A known user gets the day's batch result when the served version
            has one, else live scoring. An unknown user gets the popular items
            of the ``segment`` given (a 404 without one); an unknown segment is
            a 422.
            """
            started = time.perf_counter()
            loaded = context.served(WORKLOAD)
            # In memory (the batch loaded, or a user scored live from the
            # model's arrays): on the event loop; a batch file to read first
            # in a worker thread.
            args = (loaded, user_id, k, segment, started)
            if context.batch_in_memory(WORKLOAD, loaded.version, KEY, ORDER):
                return respond(*args)
            return await run_in_threadpool(respond, *args)

        def respond(
            loaded: Any,
            user_id: str,
            k: int | None,
            segment: str | None,
            started: float,
        ) -> Response:
            model = loaded.model
            k = k or model.k
            try:
                own = own_segment(model, user_id, segment)
            except InvalidRowsError as error:
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", field),
                            "msg": message,
                            "input": value,
                        }
                        for _, field, message, value in error.errors
                    ]
                ) from error
            except UnknownEntitiesError as error:
                raise HTTPException(404, detail=str(error)) from error
            batch = _batch(context, loaded.version)
            answer = from_batch(batch, model, user_id, k, segment, own)
            if answer is None:
                live = model.recommend_one(user_id, k, segment)
                answer = Answer(live, "live", None, segment or own)
            context.log(
                WORKLOAD,
                [{"user_id": user_id, "k": k, "segment": segment}],
                [
                    {
                        "item_ids": [x[1] for x in answer.items],
                        "scores": [x[2] for x in answer.items],
                        "reasons": [x[3] for x in answer.items],
                        "source": answer.source,
                    }
                ],
                loaded.version,
                started,
            )
            # RecsysResponse's fields, serialised in one pydantic-core call
            # (FastAPI would validate the answer again, item by item).
            content = {
                "user_id": user_id,
                "model": WORKLOAD,
                "model_version": loaded.version,
                "source": answer.source,
                "batch_date": answer.day,
                "segment": answer.segment,
                "items": [
                    {"rank": r, "item_id": i, "score": s, "reason": w}
                    for r, i, s, w in answer.items
                ],
            }
            return Response(jsonbytes.dumps(content), media_type="application/json")

        return router
