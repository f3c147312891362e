"""Ray for one command: a local instance under the home, or a cluster.

Local Ray writes its session (logs, sockets, spilled objects) under
``<home>/ray`` and its token-authentication secret to ``<home>/ray/auth_token``
instead of ``~/.ray``; the dashboard is off (it costs about a second of
start-up and nobody looks at it during a tuning run). ``tune.ray_address``
(or the ``address`` a caller passes, e.g. ``batch.ray_address``) connects to
a running cluster instead; its token then comes from the environment
(``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), as Ray expects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loopml.core.config import Settings

log = logging.getLogger(__name__)

# Ray puts Unix sockets at <temp>/session_<date>_<pid>/sockets/plasma_store,
# and Linux allows 107 bytes: longer temp dirs go through a short link.
MAX_TEMP_DIR = 40
_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def _temp_dir(home: Path) -> tuple[Path, Path | None]:
    """``<home>/ray``, or a short link to it when that path is too long.

    Returns:
        The directory to give Ray, and the link to remove afterwards (if any).
    """
    target = home / "ray"
    target.mkdir(parents=True, exist_ok=True)
    if len(str(target)) <= MAX_TEMP_DIR:
        return target, None
    digest = hashlib.sha1(str(target).encode(), usedforsecurity=False).hexdigest()
    link = Path(tempfile.gettempdir()) / f"loopml-ray-{digest[:12]}"
    if not (link.is_symlink() and link.resolve() == target.resolve()):
        link.unlink(missing_ok=True)
        link.symlink_to(target, target_is_directory=True)
    log.debug("ray temp dir %s -> %s (socket paths must stay short)", link, target)
    return link, link


def _local_token(home: Path) -> None:
    """Give a local Ray a token file under the home unless one is configured."""
    if any(os.environ.get(name) for name in _AUTH_VARIABLES):
        return
    path = home / "ray" / "auth_token"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    # Ray then enables token auth by itself (RAY_AUTH_MODE is read when ray is
    # imported, too early to set here) and warns that it did: expected here.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)


def _forget_token() -> None:
    """Make Ray read the token again: it caches the first one a process used,
    and a second session (another home, or a cluster) has its own."""
    try:
        from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
    except ImportError:  # a Ray without token authentication
        return
    AuthenticationTokenLoader.instance().reset_cache()


@contextmanager
def ray_session(
    settings: Settings,
    env_vars: dict[str, str] | None = None,
    num_cpus: int | None = None,
    address: str | None = None,
) -> Iterator[float]:
    """Start (or join) Ray for the block, and stop it afterwards.

    A Ray already initialised by the caller is used as it is and left running.
    The process environment is restored on exit (the token path, and a local
    Ray's ``env_vars``, are set only for the session).

    Args:
        settings: ``tune.ray_address`` chooses the cluster; ``home`` holds
            the local instance's files.
        env_vars: environment of every Ray worker, e.g. the ``LOOPML_*``
            settings a cluster's workers need: the job's runtime environment
            on a cluster, this process's environment (for the session) when
            Ray is local.
        num_cpus: CPUs a local Ray offers (default: the machine's).
        address: the cluster; default ``tune.ray_address`` (empty: local).

    Yields:
        The number of CPUs the cluster offers.
    """
    import ray

    saved: dict[str, str | None] = {n: os.environ.get(n) for n in _AUTH_VARIABLES}
    started, link = False, None
    try:
        if not ray.is_initialized():
            address = address or settings.tune.ray_address
            common: dict[str, Any] = {
                "logging_level": logging.WARNING,
                "log_to_driver": False,
            }
            if address:
                if env_vars:
                    common["runtime_env"] = {"env_vars": env_vars}
                log.info("connecting to the Ray cluster at %s", address)
                _forget_token()
                ray.init(address=address, **common)
            else:
                # A local Ray's processes inherit this environment: setting
                # it here instead of as a runtime environment lets tasks and
                # actors use the workers Ray prestarts (a runtime environment
                # needs workers of its own, started through Ray's
                # runtime-env agent, while the prestarted ones sit idle).
                for name, setting in (env_vars or {}).items():
                    saved.setdefault(name, os.environ.get(name))
                    os.environ[name] = setting
                _local_token(settings.home)
                temp_dir, link = _temp_dir(settings.home)
                _forget_token()
                ray.init(
                    include_dashboard=False,
                    num_cpus=num_cpus,
                    _temp_dir=str(temp_dir),
                    **common,
                )
            started = True
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        yield float(resources.get("CPU", 1.0))
    finally:
        if started:
            ray.shutdown()
        if link is not None:
            link.unlink(missing_ok=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
