"""Wire protocols other serving tools speak, so their clients work unchanged.

- MLflow's scoring protocol: ``POST /invocations`` with ``dataframe_split``,
  ``dataframe_records`` or ``instances`` (as ``mlflow models serve``).
- The Open Inference Protocol v2 REST API (KServe, MLServer, Triton):
  ``/v2/health/*``, ``/v2/models/{name}``, ``/v2/models/{name}/infer``.

Both score the demand champion through the same validation as ``/v1``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from loopml.serving import demand
from loopml.serving.model_store import ModelStore
from loopml.serving.schemas import DemandRow

INPUT_DATATYPES = {
    "store_id": "BYTES",
    "item_id": "BYTES",
    "date": "BYTES",
    "price": "FP64",
    "promo": "INT64",
    "holiday": "INT64",
}


class InvocationsRequest(BaseModel):
    """MLflow scoring payload: exactly one of the three forms."""

    dataframe_split: dict[str, Any] | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None


class V2Tensor(BaseModel):
    """One named tensor of an OIP v2 request or response."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2InferRequest(BaseModel):
    """OIP v2 inference request: one tensor per input column."""

    id: str | None = None
    inputs: list[V2Tensor] = Field(min_length=1)


def _records(body: InvocationsRequest) -> tuple[list[Any], str]:
    given = {
        k: v
        for k, v in body.model_dump().items()
        if v is not None and k in ("dataframe_split", "dataframe_records", "instances")
    }
    if len(given) != 1:
        raise HTTPException(
            400,
            detail="give exactly one of dataframe_split, dataframe_records, instances",
        )
    key, value = next(iter(given.items()))
    if key == "dataframe_split":
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(columns, list) or not isinstance(data, list):
            raise HTTPException(
                400, detail="dataframe_split needs 'columns' and 'data'"
            )
        return [dict(zip(columns, row, strict=False)) for row in data], key
    return list(value), key


def build_router(store: ModelStore) -> APIRouter:
    """Routes for the MLflow and OIP v2 protocols over ``store``."""
    router = APIRouter()

    @router.post("/invocations", tags=["protocols"])
    def invocations(body: InvocationsRequest) -> dict[str, Any]:
        """MLflow scoring protocol for the demand champion."""
        records, key = _records(body)
        rows = demand.parse_rows(records, ("body", key))
        values, _ = demand.score(demand.served(store), rows, ("body", key))
        return {"predictions": [{"forecast": float(v)} for v in values]}

    @router.get("/v2/health/live", tags=["protocols"])
    def v2_live() -> dict[str, bool]:
        """OIP v2 liveness."""
        return {"live": True}

    @router.get("/v2/health/ready", tags=["protocols"])
    def v2_ready() -> dict[str, bool]:
        """OIP v2 readiness: the demand champion is loaded."""
        return {"ready": store.get("demand") is not None}

    @router.get("/v2/models/{name}", tags=["protocols"])
    def v2_metadata(name: str) -> dict[str, Any]:
        """OIP v2 model metadata."""
        if name != "demand":
            raise HTTPException(404, detail=f"unknown model {name!r}; try 'demand'")
        loaded = demand.served(store)
        return {
            "name": name,
            "versions": [loaded.version],
            "platform": "mlflow-pyfunc",
            "inputs": [
                {"name": n, "datatype": t, "shape": [-1]}
                for n, t in INPUT_DATATYPES.items()
            ],
            "outputs": [{"name": "forecast", "datatype": "FP64", "shape": [-1]}],
        }

    @router.get("/v2/models/{name}/ready", tags=["protocols"])
    def v2_model_ready(name: str) -> dict[str, Any]:
        """OIP v2 per-model readiness."""
        return {"name": name, "ready": name == "demand" and store.get(name) is not None}

    @router.post("/v2/models/{name}/infer", tags=["protocols"])
    def v2_infer(name: str, body: V2InferRequest, request: Request) -> dict[str, Any]:
        """OIP v2 inference: columns as tensors, one forecast per row."""
        if name != "demand":
            raise HTTPException(404, detail=f"unknown model {name!r}; try 'demand'")
        lengths = {len(t.data) for t in body.inputs}
        if len(lengths) != 1:
            raise HTTPException(400, detail="all input tensors need the same length")
        columns = {t.name: t.data for t in body.inputs}
        unknown = sorted(set(columns) - set(DemandRow.model_fields))
        if unknown:
            raise HTTPException(400, detail=f"unknown input tensors: {unknown}")
        n = lengths.pop()
        records = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        loaded = demand.served(store)
        rows = demand.parse_rows(records, ("body", "inputs"))
        values, _ = demand.score(loaded, rows, ("body", "inputs"))
        return {
            "model_name": name,
            "model_version": loaded.version,
            "id": body.id,
            "outputs": [
                {
                    "name": "forecast",
                    "shape": [n],
                    "datatype": "FP64",
                    "data": [float(v) for v in values],
                }
            ],
        }

    return router
