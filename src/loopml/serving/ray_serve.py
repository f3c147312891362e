"""``loopml serve --ray``: the same FastAPI app as a Ray Serve deployment.

Each replica builds the app with :func:`loopml.serving.app.create_app` (the
builder runs on the replica, so models load there, and its lifespan starts
the registry poller and the inference log as under uvicorn). Ray Serve's
HTTP proxy listens on ``serving.host:port`` and spreads requests over the
replicas; on a cluster (``tune.ray_address``, or ``--ray-address``) the
replicas run on its nodes, with the ``LOOPML_*`` settings of this process
as their environment.

Ctrl-C (SIGINT) or SIGTERM stops Serve, then Ray, however the process was
started: :func:`stop_on_signals` installs both handlers, as uvicorn does for
``loopml serve``. Without it, a process started with SIGINT ignored (any
command a script runs in the background with ``&``, and everything it
starts) never saw Ctrl-C and ran until killed, and SIGTERM (what a process
manager sends) killed the driver without stopping Serve.

Use uvicorn (``loopml serve --workers N``) on one machine: requests reach
the app without Ray Serve's proxy hop (not benchmarked side by side here).
Use Ray Serve to spread replicas over several machines or to scale them with
the cluster.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI

from loopml.core.config import Settings
from loopml.core.ray_session import ray_session

log = logging.getLogger(__name__)

#: Environment passed to the replicas (settings, MLflow and Feast options).
PASSED_PREFIXES = ("LOOPML_", "MLFLOW_", "FEAST_", "OMP_NUM_THREADS", "RAY_SERVE_")
#: Ray Serve gives its HTTP proxy 5 s to start, three times; importing the
#: proxy's stack takes longer than that on a busy 2-core machine.
SERVE_DEFAULTS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60"}
#: How often a stopping replica looks for requests still in flight (they are
#: waited for up to Serve's ``graceful_shutdown_timeout_s``, 20 s). Serve's
#: default, 2 s, is also the least a replica takes to stop after Ctrl-C.
GRACEFUL_WAIT_LOOP_S = 0.25


def build_app() -> FastAPI:
    """The service, built on a replica from the environment's settings."""
    from loopml.serving.app import create_app

    return create_app()


def replica_env(settings: Settings) -> dict[str, str]:
    """What a replica needs to build the same app as this process would."""
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES)}
    env.update(
        LOOPML_PROFILE=settings.profile,
        LOOPML_HOME=str(settings.home.resolve()),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),  # one-row predictions
    )
    from loopml.core.config import config_dir

    env.setdefault("LOOPML_CONFIG_DIR", str(config_dir().resolve()))
    return env


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the block; restored after.

    Python leaves SIGINT ignored when the process started with it ignored
    (the shell does that to a background job of a script), and SIGTERM
    ends it at once; either way ``serve.shutdown`` would never run.
    """
    wanted = (signal.SIGINT, signal.SIGTERM)
    saved = {s: signal.getsignal(s) for s in wanted}
    for s in wanted:
        signal.signal(s, _interrupt)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def serve_on_ray(settings: Settings, host: str, port: int, replicas: int) -> None:
    """Run the service on Ray Serve until interrupted (Ctrl-C or SIGTERM)."""
    from ray import serve

    for key, value in SERVE_DEFAULTS.items():
        os.environ.setdefault(key, value)  # before Ray starts: its actors inherit
    env = replica_env(settings)
    # After ray.init: Ray's core worker installs a SIGTERM handler of its own.
    with ray_session(settings, env_vars=env), stop_on_signals():
        serve.start(http_options={"host": host, "port": port})
        ingress: Any = serve.ingress(build_app)
        deployment: Any = serve.deployment(
            ingress(),
            name="loopml",
            num_replicas=replicas,
            graceful_shutdown_wait_loop_s=GRACEFUL_WAIT_LOOP_S,
        )
        log.info("Ray Serve: %d replica(s) on http://%s:%d", replicas, host, port)
        try:
            serve.run(deployment.bind(), name="loopml", route_prefix="/", blocking=True)
        except KeyboardInterrupt as stop:
            print(f"stopping Ray Serve ({stop or 'SIGINT'})", file=sys.stderr)
        finally:
            serve.shutdown()  # type: ignore[no-untyped-call]
