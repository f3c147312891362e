"""The inference log written by a child process, so the service shares no GIL with it.

The writer thread of :class:`~loopml.monitoring.inference_log.InferenceLog`
turns every served row into Arrow columns and parquet. In the serving
process that work holds the GIL while requests wait for it. Measured on the
shared 2-core machine (two services side by side, six interleaved rounds of
3 s, the recsys route scoring live at concurrency 1), the p99 was 6.1 ms
with the thread and 5.2 ms with this process; the floor app's was 1.6 ms.
:class:`InferenceLogProcess` keeps the log's surface and files but moves
that work out:

* a request turns its entry into JSON in one pydantic-core call (inputs as
  ``model_dump(mode="json")`` gives them; about 4 us for a one-row
  request) and appends the bytes, length first, to a bounded deque (a full
  one drops the entry and counts it), without a lock or waking anyone;
* a feeder thread collects the bytes every :data:`FEED_SECONDS` and writes
  them to the child's stdin; the pipe write releases the GIL. Every wake-up
  of the feeder takes the GIL from the event loop for a moment, and the
  requests it lands on wait: with one row per request at concurrency 1, the
  p99 was 1.2-1.3 ms when the feeder woke every 50 ms and 0.9-1.2 ms every
  250 ms (three interleaved runs of 5 s; 0.8-1.0 ms with no feeding at
  all). Encoding in the feeder instead made each wake-up longer (p99 1.6-2.3
  ms at 50 ms);
* the child, ``python -m loopml.monitoring.log_process ROOT``, decodes the
  entries and writes them with an ``InferenceLog`` of its own: the same part
  files, rows and columns. After each part it prints its rows written and
  dropped, which a reader thread adds to this object's counters.

The child is started with the first entry. It ignores Ctrl-C and stops at the
end of its stdin, after writing everything it holds, so
:meth:`InferenceLogProcess.close` loses nothing and a service killed outright
still gets its entries written. If the child dies, the rows it held and the
ones that could not be handed over are counted as dropped, and a new child is
started (at most every :data:`RESTART_SECONDS`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic_core import from_json, to_json

from loopml.monitoring.inference_log import InferenceLog, _Entry

log = logging.getLogger(__name__)

#: A dead writer process is started again at most this often.
RESTART_SECONDS = 5.0
#: Entries handed to the child in one pipe write at most.
BATCH = 256
#: The feeder collects what requests left this often (no wake-up per request).
FEED_SECONDS = 0.25
_LENGTH = 4  # bytes of the length before each entry


def _plain(value: Any) -> Any:
    """JSON for what pydantic-core cannot write: numpy scalars, else text."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


def encode(entry: _Entry) -> bytes:
    """One entry as the child reads it: its length (4 bytes), then JSON.

    NaN and infinities are written as JSON's common extension (``NaN``) and
    read back as floats; dates and times as ISO text.
    """
    body = to_json(
        (
            entry.workload,
            entry.ts,
            entry.inputs,
            entry.outputs,
            entry.model_version,
            entry.latency_seconds,
            entry.source,
            entry.request_id,
        ),
        inf_nan_mode="constants",
        fallback=_plain,
    )
    return len(body).to_bytes(_LENGTH, "little") + body


def decode(body: bytes) -> _Entry:
    """The entry :func:`encode` wrote (without its length)."""
    workload, ts, inputs, outputs, version, latency, source, request_id = from_json(
        body
    )
    return _Entry(
        workload,
        dt.datetime.fromisoformat(ts),
        inputs,
        outputs,
        version,
        latency,
        source,
        request_id,
    )


def _rows(entry: _Entry) -> int:
    return len(entry.inputs)


class _Child:
    """One writer process and the thread that reads its counters."""

    def __init__(self, owner: InferenceLogProcess) -> None:
        self.owner = owner
        self.sent = 0  # rows handed over
        self.written = 0  # rows it reported written
        self.dropped = 0  # rows it reported dropped
        self.ready = threading.Event()  # set by its first report
        command = [
            sys.executable,
            "-m",
            __name__,
            str(owner.root),
            "--flush-rows",
            str(owner.flush_rows),
            "--flush-seconds",
            str(owner.flush_seconds),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C goes to the service
        )
        self.reader = threading.Thread(
            target=self._read, name="inference-log-reports", daemon=True
        )
        self.reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        for line in stdout:
            try:
                written, dropped = (int(x) for x in line.split())
            except ValueError:
                continue
            self.owner._count(written - self.written, dropped - self.dropped)
            self.written, self.dropped = written, dropped
            self.ready.set()

    @property
    def stdin(self) -> IO[bytes]:
        stdin = self.process.stdin
        assert stdin is not None  # noqa: S101 - Popen(stdin=PIPE)
        return stdin

    def finish(self, timeout: float) -> None:
        """End its input, wait for it to write what it holds, count the rest."""
        with contextlib.suppress(OSError):  # it died: the pipe is broken
            self.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the inference log writer did not stop in %.0fs", timeout)
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout)
        lost = self.sent - self.written - self.dropped
        if lost > 0:
            log.error("the inference log writer lost %d rows", lost)
            self.owner._count(0, lost)


class InferenceLogProcess(InferenceLog):
    """:class:`InferenceLog` whose rows are written by a child process.

    The same constructor, :meth:`log`, :meth:`close`, ``dropped`` and
    ``rows_written``. A request appends its encoded entry to a deque (no
    lock, no wake-up); the feeder thread collects them every
    :data:`FEED_SECONDS` and hands them to the child, which writes them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """:class:`InferenceLog`'s arguments; the child starts with the first entry."""
        super().__init__(*args, **kwargs)
        self._waiting: deque[tuple[bytes, int]] = deque()  # (encoded, rows)
        self._stop = threading.Event()
        self._child: _Child | None = None
        self._retry_at = 0.0
        self._counts = threading.Lock()

    def _put(self, entry: _Entry) -> bool:
        if len(self._waiting) >= self.max_queue:
            return False
        try:  # here, not in the feeder: see the module's notes
            data = encode(entry)
        except Exception:  # a value JSON cannot hold: drop it, keep serving
            log.exception("could not encode %d inference rows", _rows(entry))
            self._count(0, _rows(entry))
            return True  # counted as dropped here, not as a full queue
        self._waiting.append((data, _rows(entry)))  # atomic under the GIL
        return True

    def _count(self, written: int, dropped: int) -> None:
        with self._counts:
            self.rows_written += written
            self.dropped += dropped

    def close(self, timeout: float = 30.0) -> None:
        """Hand over everything waiting, then wait for the child to write it."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is None:  # never started: hand over from here
            self._run(timeout)
            return
        thread.join(timeout)
        if thread.is_alive():
            log.error("the inference log feeder did not stop in %.0fs", timeout)

    def _run(self, timeout: float = 30.0) -> None:
        """The feeder: what waits goes to the child, every FEED_SECONDS."""
        while True:
            stopping = self._stop.wait(FEED_SECONDS)
            while self._waiting:
                entries: list[tuple[bytes, int]] = []
                while self._waiting and len(entries) < BATCH:
                    entries.append(self._waiting.popleft())
                self._hand_over(entries)
            if stopping:
                break
        child, self._child = self._child, None
        if child is not None:
            child.finish(timeout)

    def _hand_over(self, entries: Sequence[tuple[bytes, int]]) -> None:
        rows = sum(n for _, n in entries)
        child = self._live_child()
        if child is None:  # waiting to start another
            self._count(0, rows)
            return
        data = b"".join(data for data, _ in entries)
        try:
            child.stdin.write(data)  # the GIL is released while it writes
            child.stdin.flush()
        except OSError:  # it died (a broken pipe): count, start another later
            log.error("the inference log writer process died; starting a new one")
            self._child = None
            child.finish(timeout=5.0)
            self._count(0, rows)
            return
        child.sent += rows

    def _live_child(self) -> _Child | None:
        """The running child, a new one if it died, None while waiting to retry."""
        child = self._child
        if child is not None and child.process.poll() is None:
            return child
        if child is not None:
            log.error(
                "the inference log writer process exited (%s); starting a new one",
                child.process.returncode,
            )
            self._child = None
            child.finish(timeout=5.0)
        now = time.monotonic()
        if now < self._retry_at:
            return None
        self._retry_at = now + RESTART_SECONDS
        try:
            self._child = _Child(self)
        except OSError:
            log.exception("could not start the inference log writer process")
            return None
        return self._child


class _ReportingLog(InferenceLog):
    """The child's log: prints ``<rows written> <rows dropped>`` after each part.

    Its writer thread pauses between pieces of a part like the service's
    (:func:`~loopml.monitoring.inference_log.yield_gil`), though no request
    waits on this process's GIL: without the pauses the child used less CPU
    (36 against about 75 us per one-row request, c=1), but the service's p99
    for 28-row requests at c=1 rose from about 1.2 to 1.9 ms (median of six
    interleaved rounds of 5 s, two services side by side); a pause at most
    every millisecond, niceness 10, ``SCHED_IDLE`` and a shorter switch
    interval did not bring it back.

    When nobody reads the counts any more (the service died: its end of the
    pipe is closed), it stops reporting and goes on writing: every entry
    the service handed over still reaches a part file.
    """

    #: Whether the service stopped reading the counts.
    orphaned = False

    def _write(self, entries: list[_Entry]) -> None:
        super()._write(entries)
        self.report()

    def report(self) -> None:
        if self.orphaned:
            return
        try:
            sys.stdout.write(f"{self.rows_written} {self.dropped}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the service is gone; the rows are not
            self.orphaned = True
            # Python's own flush at exit would fail again: write nowhere.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def _read_entries(stdin: IO[bytes], into: InferenceLog) -> None:
    """Queue every entry on ``stdin`` until it ends (waits when the queue is full)."""
    while True:
        head = stdin.read(_LENGTH)
        if len(head) < _LENGTH:
            return
        size = int.from_bytes(head, "little")
        body = stdin.read(size)
        if len(body) < size:
            log.error("the inference log's input ended inside an entry")
            return
        try:
            entry = decode(body)
        except (ValueError, TypeError):
            log.exception("skipped an inference log entry that could not be read")
            continue
        into._queue.put(entry)  # blocks: the pipe, then the service's queue fill


def main(argv: list[str] | None = None) -> None:
    """The child: read entries from stdin and write them under ROOT."""
    parser = argparse.ArgumentParser(
        description="Write inference-log entries read from stdin (run by the "
        "service, not by hand).",
    )
    parser.add_argument("root", type=Path, help="the inference log's folder")
    parser.add_argument("--flush-rows", type=int, default=5_000)
    parser.add_argument("--flush-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service says when to stop
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s inference-log-writer %(levelname)s %(message)s",
    )
    writer = _ReportingLog(
        args.root, flush_rows=args.flush_rows, flush_seconds=args.flush_seconds
    )
    writer.start()
    writer.report()  # ready: Ctrl-C is ignored from here on
    try:
        _read_entries(sys.stdin.buffer, writer)
    finally:
        writer.close()
        writer.report()


if __name__ == "__main__":
    main()
