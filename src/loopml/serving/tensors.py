"""The Open Inference Protocol's binary tensor extension (Triton's, over HTTP).

A request with an ``Inference-Header-Content-Length: n`` header is ``n``
bytes of JSON, then the raw bytes of every input whose ``parameters`` give a
``binary_data_size``, in the order of ``inputs``: little-endian numbers, or
for ``BYTES`` each element as a 4-byte little-endian length and its bytes.
:class:`BinaryTensorRoute` turns such a request into the plain JSON one
before FastAPI validates it, so both forms share one validation and one
error format; :func:`binary_response` writes outputs the same way when the
client asks for them (``binary_data_output``, or an output's
``binary_data``), as ``tritonclient``'s ``infer`` does by default.

A malformed binary body is a 400 that says why, never a 5xx.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import numpy as np
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

HEADER = "inference-header-content-length"
#: Little-endian numpy types of the protocol's fixed-size datatypes.
NUMPY_TYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def _bad(detail: str) -> HTTPException:
    return HTTPException(400, detail=f"binary tensor request: {detail}")


def decode_tensor(name: str, datatype: Any, raw: bytes) -> list[Any]:
    """The elements of one tensor's raw bytes, as JSON values.

    Raises:
        HTTPException: 400 for an unknown datatype, a size that is not a
            whole number of elements, or a ``BYTES`` element that is cut off
            or not UTF-8.
    """
    if datatype == "BYTES":
        values: list[Any] = []
        offset = 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise _bad(f"input {name!r}: a BYTES length prefix is cut off")
            (size,) = struct.unpack_from("<I", raw, offset)
            start, offset = offset + 4, offset + 4 + size
            if offset > len(raw):
                raise _bad(f"input {name!r}: a BYTES element is cut off")
            try:
                values.append(raw[start:offset].decode("utf-8"))
            except UnicodeDecodeError:
                raise _bad(
                    f"input {name!r}: element {len(values)} is not UTF-8 text"
                ) from None
        return values
    dtype = NUMPY_TYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise _bad(f"input {name!r}: unknown datatype {datatype!r}")
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise _bad(
            f"input {name!r}: {len(raw)} bytes is not a whole number of "
            f"{datatype} elements ({width} bytes each)"
        )
    values = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def json_request(body: bytes, header_length: str) -> bytes:
    """The JSON request equal to a binary one: each binary input's ``data`` filled.

    Raises:
        HTTPException: 400 when the header length, the JSON header or the
            sizes of the binary inputs do not match the body.
    """
    try:
        length = int(header_length)
    except ValueError:
        raise _bad(f"{HEADER} {header_length[:40]!r} is not a number") from None
    if not 0 <= length <= len(body):
        raise _bad(f"{HEADER} {length} is outside the body's {len(body)} bytes")
    try:
        header = json.loads(body[:length])
    except ValueError:  # not JSON, or not UTF-8
        raise _bad(f"the first {length} bytes are not a JSON object") from None
    inputs = header.get("inputs") if isinstance(header, dict) else None
    offset = length
    for tensor in inputs if isinstance(inputs, list) else []:
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        name = tensor.get("name")
        size = parameters.pop("binary_data_size")
        if not isinstance(size, int) or size < 0 or offset + size > len(body):
            raise _bad(f"input {name!r}: binary_data_size {size!r} overruns the body")
        tensor["data"] = decode_tensor(
            str(name), tensor.get("datatype"), body[offset : offset + size]
        )
        offset += size
    if offset != len(body):
        raise _bad(f"{len(body) - offset} bytes follow the last binary input")
    return json.dumps(header).encode()


class BinaryTensorRoute(APIRoute):
    """A route that also takes the binary tensor extension's bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given the JSON form of a binary request."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            header_length = request.headers.get(HEADER)
            if header_length is not None:
                body = json_request(await request.body(), header_length)
                headers = [
                    (k, v)
                    for k, v in request.scope["headers"]
                    if k not in (HEADER.encode(), b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]

                async def receive() -> Message:
                    return {"type": "http.request", "body": body, "more_body": False}

                request = Request({**request.scope, "headers": headers}, receive)
            return await handler(request)

        return route


def _encode(datatype: str, data: Sequence[Any]) -> bytes | None:
    """Raw bytes of a tensor, or None when it cannot be binary (nulls)."""
    if any(v is None for v in data):
        return None
    if datatype == "BYTES":
        parts = [str(v).encode() for v in data]
        return b"".join(struct.pack("<I", len(p)) + p for p in parts)
    dtype = NUMPY_TYPES.get(datatype)
    return None if dtype is None else np.asarray(data, dtype=dtype).tobytes()


def binary_response(answer: dict[str, Any], binary: set[str]) -> Response:
    """An inference answer with the ``binary`` outputs as raw bytes after the JSON.

    Outputs that hold a null stay JSON (the extension has no null).
    """
    blobs: list[bytes] = []
    outputs = []
    for tensor in answer["outputs"]:
        raw = (
            _encode(tensor["datatype"], tensor["data"])
            if tensor["name"] in binary
            else None
        )
        if raw is None:
            outputs.append(tensor)
            continue
        blobs.append(raw)
        plain = {k: v for k, v in tensor.items() if k != "data"}
        outputs.append({**plain, "parameters": {"binary_data_size": len(raw)}})
    header = json.dumps({**answer, "outputs": outputs}).encode()
    return Response(
        header + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
