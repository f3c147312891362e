"""The Feast store of the active profile: its config, definitions and handle.

Nothing here is a Feast "repo folder": definitions are built in code by each
workload's ``feature_views`` module, and ``feature_store.yaml`` is rendered from
the loopml settings (so the ``feast`` CLI can inspect the same store with
``feast -c <home>/feature_store feature-views list``). Never run ``feast apply``
there: with no definition files it would plan to delete every object.

Profiles: ``default`` keeps everything under ``<home>/feature_store`` (file
registry, parquet offline store, SQLite online store); ``production`` uses a
SQL registry on PostgreSQL and Redis online.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import yaml

from loopml.core.config import PRODUCTION_REGISTRY, FeatureStoreSettings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from loopml.core.config import Settings

log = logging.getLogger(__name__)

#: Workload name -> module defining its Feast objects (see WorkloadFeatures).
FEATURE_MODULES: dict[str, str] = {
    "demand": "loopml.workloads.demand.feature_views",
    "recsys": "loopml.workloads.recsys.feature_views",
}


class WorkloadFeatures(Protocol):
    """What a workload's ``feature_views`` module provides."""

    MATERIALIZED_VIEWS: tuple[str, ...]

    def offline_tables(
        self, validated: pd.DataFrame, settings: Settings | None = None
    ) -> dict[str, pd.DataFrame]:
        """Parquet tables (by file name) behind the batch sources."""

    def feast_objects(
        self, data_dir: Path, settings: Settings | None = None
    ) -> list[Any]:
        """Entities, sources and feature views to apply (``settings`` may
        parametrise them, e.g. a popularity window)."""


def workload_features(name: str) -> WorkloadFeatures:
    """The feature definitions module of a workload.

    Raises:
        KeyError: when the workload has no feature views.
    """
    if name not in FEATURE_MODULES:
        raise KeyError(
            f"workload {name!r} has no feature views; known: {list(FEATURE_MODULES)}"
        )
    return cast(WorkloadFeatures, importlib.import_module(FEATURE_MODULES[name]))


def feature_store_settings(settings: Settings) -> FeatureStoreSettings:
    """The feature-store section of the settings, or the profile's defaults.

    While ``feature_store`` is unset (None) the profile decides.
    """
    return settings.feature_store or FeatureStoreSettings.for_profile(settings.profile)


def store_dir(settings: Settings) -> Path:
    """The folder holding ``feature_store.yaml`` and the embedded stores."""
    return settings.home / "feature_store"


def data_dir(settings: Settings) -> Path:
    """The folder of the offline parquet tables."""
    return store_dir(settings) / "data"


def repo_config(settings: Settings, fs: FeatureStoreSettings) -> dict[str, Any]:
    """The content of ``feature_store.yaml`` for these settings."""
    root = store_dir(settings)
    if fs.registry == "sql":
        registry: dict[str, Any] = {
            "registry_type": "sql",
            "path": fs.registry_path or PRODUCTION_REGISTRY,
            "cache_ttl_seconds": fs.registry_cache_ttl_seconds,
            # Reuse connections instead of opening one per registry read.
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        }
    else:
        registry = {
            "registry_type": "file",
            "path": fs.registry_path or str(root / "registry.db"),
            "cache_ttl_seconds": fs.registry_cache_ttl_seconds,
        }
    if fs.online == "redis":
        online: dict[str, Any] = {
            "type": "redis",
            "connection_string": fs.redis_connection_string,
        }
        if fs.redis_key_ttl_seconds:
            online["key_ttl_seconds"] = fs.redis_key_ttl_seconds
    else:
        online = {"type": "sqlite", "path": str(root / "online.db")}
    return {
        "project": fs.project,
        "provider": "local",
        "registry": registry,
        "offline_store": {"type": "file"},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def render_yaml(settings: Settings, fs: FeatureStoreSettings | None = None) -> Path:
    """Write ``<home>/feature_store/feature_store.yaml`` and return its path.

    Passwords in the registry URL or Redis connection string are written as
    ``***``: secrets stay in the environment, never on disk. The store itself
    is built in code (:func:`open_store`), so nothing reads this file but the
    ``feast`` CLI.
    """
    fs = fs or feature_store_settings(settings)
    config = repo_config(settings, fs)
    registry, online = config["registry"], config["online_store"]
    if registry["registry_type"] == "sql":
        from sqlalchemy.engine import make_url

        url = make_url(registry["path"])
        registry["path"] = url.render_as_string(hide_password=True)
    if online["type"] == "redis":
        online["connection_string"] = re.sub(
            r"password=[^,]*", "password=***", online["connection_string"]
        )
    path = store_dir(settings) / "feature_store.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Rendered by loopml from the active profile; edits are overwritten.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), "utf-8")
    return path


def open_store(
    settings: Settings, fs: FeatureStoreSettings | None = None
) -> FeatureStore:
    """A Feast ``FeatureStore`` for the active profile (config built in code).

    Args:
        settings: loopml settings (the home folder and profile).
        fs: feature-store settings; default from :func:`feature_store_settings`.

    Returns:
        The store; nothing is applied or materialized.
    """
    from feast import FeatureStore, RepoConfig

    fs = fs or feature_store_settings(settings)
    root = store_dir(settings)
    data_dir(settings).mkdir(parents=True, exist_ok=True)
    render_yaml(settings, fs)
    config = RepoConfig(repo_path=root, **repo_config(settings, fs))
    return FeatureStore(repo_path=str(root), config=config)


def drop_project(store: FeatureStore) -> None:
    """Delete one project's online data and registry entries, nothing else.

    ``FeatureStore.teardown`` deletes every project of a shared registry;
    this removes only ``store.project`` (used by tests and clean-ups).
    """
    from feast.errors import ProjectNotFoundException

    project = store.project
    views = store.list_feature_views()
    entities = store.list_entities()
    store._get_provider().teardown_infra(project, views, entities)
    try:
        store.registry.delete_project(project)
    except ProjectNotFoundException:
        log.debug("Feast project %s was never registered", project)
    log.info("dropped Feast project %s", project)


def describe_views(store: FeatureStore, names: tuple[str, ...]) -> dict[str, Any]:
    """What a training run read from Feast, to record with the run.

    Args:
        store: the feature store.
        names: feature view names.

    Returns:
        Per view: its features, TTL, Feast's definition version (``version``
        and ``current_version_number`` when versioning is on), a SHA-256 of
        the definition (changes whenever the definition does) and the end of
        its last materialization.
    """
    import hashlib

    described: dict[str, Any] = {}
    for name in names:
        view = store.get_feature_view(name)
        spec = view.to_proto().spec.SerializeToString(deterministic=True)
        end = view.most_recent_end_time
        described[name] = {
            "features": [feature.name for feature in view.features],
            "ttl_seconds": int(view.ttl.total_seconds()) if view.ttl else None,
            "version": view.version,
            "version_number": view.current_version_number,
            "definition_sha256": hashlib.sha256(spec).hexdigest(),
            "materialized_until": end.isoformat() if end else None,
        }
    return described
