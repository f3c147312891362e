"""A raw asyncio HTTP/1.1 keep-alive load client (no HTTP library, no threads).

Each of ``concurrency`` connections sends the same request back to back and
reads the answer (``Content-Length`` or chunked); one event loop in one
thread, so the client costs a few tens of microseconds of CPU per request
(measured and reported: ``cpu_us_per_request``) and is not what limits the
server. Any status but 200 stops the run with the answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Result:
    """What one timed run measured."""

    requests: int
    seconds: float
    latencies: np.ndarray  # seconds, one per request
    cpu_seconds: float  # the client's own CPU time

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        """A latency percentile in milliseconds."""
        return float(np.percentile(self.latencies, q) * 1e3)

    @property
    def cpu_us_per_request(self) -> float:
        """Client CPU per request, microseconds."""
        return self.cpu_seconds / max(self.requests, 1) * 1e6


def request_bytes(
    method: str, path: str, body: bytes | None = None, host: str = "127.0.0.1"
) -> bytes:
    """One HTTP/1.1 request, ready to send again and again."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length is not None:
        return status, await reader.readexactly(length)
    if not chunked:
        raise RuntimeError("a response without Content-Length or chunks")
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def fetch(host: str, port: int, request: bytes) -> tuple[int, bytes]:
    """One request on its own connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()


async def _run(
    host: str, port: int, request: bytes, concurrency: int, seconds: float
) -> Result:
    connections = [
        await asyncio.open_connection(host, port) for _ in range(concurrency)
    ]
    for reader, writer in connections:  # warm each connection up
        writer.write(request)
        status, body = await read_response(reader)
        if status != 200:
            raise RuntimeError(f"{status}: {body[:500]!r}")
    times: list[float] = []
    clock = time.perf_counter
    cpu = time.process_time()
    started = clock()
    deadline = started + seconds

    async def worker(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while clock() < deadline:
            sent = clock()
            writer.write(request)
            status, body = await read_response(reader)
            times.append(clock() - sent)
            if status != 200:
                raise RuntimeError(f"{status}: {body[:500]!r}")

    await asyncio.gather(*(worker(r, w) for r, w in connections))
    elapsed = clock() - started
    cpu = time.process_time() - cpu
    for _, writer in connections:
        writer.close()
    return Result(len(times), elapsed, np.array(times), cpu)


def run(
    host: str, port: int, request: bytes, concurrency: int, seconds: float
) -> Result:
    """``concurrency`` keep-alive connections posting for ``seconds``."""
    return asyncio.run(_run(host, port, request, concurrency, seconds))


def get(host: str, port: int, request: bytes) -> tuple[int, bytes]:
    """One request (for checks before timing)."""
    return asyncio.run(fetch(host, port, request))
