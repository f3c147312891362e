"""Feast for workloads: the profile's store, point-in-time sets, online reads.

What a workload needs to build its training set from Feast and read its
online features, without knowing the profile: :func:`open_store`,
:func:`point_in_time` (``get_historical_features`` that never loses a row)
and :func:`online_values` (a fast read of an online response).

The store of the active profile: its config, definitions and handle.

Nothing here is a Feast "repo folder": definitions are built in code by each
workload's ``feature_views`` module, and ``feature_store.yaml`` is rendered from
the loopml settings (so the ``feast`` CLI can inspect the same store with
``feast -c <home>/feature_store feature-views list``). Never run ``feast apply``
there: with no definition files it would plan to delete every object.

Profiles: ``default`` keeps everything under ``<home>/feature_store`` (file
registry, parquet offline store, SQLite online store); ``production`` uses a
SQL registry and Feast's PostgreSQL offline store on PostgreSQL (tables
``<project>__<table>``, see :mod:`loopml.sdk.pg_offline`) and Redis online.
Workloads build their batch sources with :func:`batch_source`, which picks
the profile's kind.
"""

from __future__ import annotations

import logging
import re
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from loopml.core.config import PRODUCTION_REGISTRY, FeatureStoreSettings
from loopml.sdk import pg_offline

if TYPE_CHECKING:
    from feast import FeatureStore

    from loopml.core.config import Settings

log = logging.getLogger(__name__)


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
    offline: dict[str, Any] = {"type": "file"}
    if fs.offline == "postgres":
        offline = pg_offline.offline_config(fs)
    return {
        "project": fs.project,
        "provider": "local",
        "registry": registry,
        "offline_store": offline,
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
    if config["offline_store"].get("password"):
        config["offline_store"]["password"] = "***"
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


#: The event-time column of every loopml entity frame and offline table.
TIMESTAMP = "event_timestamp"


def batch_source(
    name: str, file_name: str, data_dir: Path, settings: Settings | None = None
) -> Any:
    """The batch source of one offline table, of the profile's offline store.

    Args:
        name: the source's name.
        file_name: the table's file name in ``offline_tables`` (its stem names
            the PostgreSQL table, ``<project>__<stem>``).
        data_dir: the folder of the parquet tables (file store).
        settings: the active settings; None: the file store.

    Returns:
        A ``FileSource`` over ``data_dir / file_name``, or with
        ``offline: postgres`` a ``PostgreSQLSource`` over the project's table.
    """
    fs = feature_store_settings(settings) if settings is not None else None
    if fs is not None and fs.offline == "postgres":
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (  # noqa: E501
            PostgreSQLSource,
        )

        table = pg_offline.table_name(fs.project, file_name)
        return PostgreSQLSource(name=name, table=table, timestamp_field=TIMESTAMP)
    from feast import FileSource

    return FileSource(
        name=name, path=str(data_dir / file_name), timestamp_field=TIMESTAMP
    )


ROW_ID = "_loopml_row"
#: Entity rows x feature rows per entity that one offline query may join; the
#: file offline store merges every feature row of an entity before filtering.
MAX_FANOUT = 400_000


class MissingFeaturesError(ValueError):
    """The offline store lacks feature rows that the labels require."""


def point_in_time(
    store: FeatureStore,
    entity_df: pd.DataFrame,
    features: list[str],
    join_keys: list[str],
    rows_per_entity: int = 1000,
) -> pd.DataFrame:
    """``get_historical_features`` that returns exactly the caller's rows.

    Args:
        store: the feature store.
        entity_df: join keys and a tz-aware ``event_timestamp``; other columns
            are kept.
        features: ``"view:feature"`` references.
        join_keys: the entity columns of ``entity_df``.
        rows_per_entity: about how many feature rows one entity has, to size
            the batches sent to the offline store.

    Returns:
        ``entity_df`` (same index and order) plus one column per feature; a
        row Feast did not answer has NaN features.
    """
    names = [ref.split(":", 1)[1] for ref in features]
    if entity_df.empty:
        return entity_df.assign(**dict.fromkeys(names, np.nan))
    pairs = entity_df[[*join_keys, TIMESTAMP]].drop_duplicates(ignore_index=True)
    pairs[ROW_ID] = np.arange(len(pairs))
    if store.config.offline_store.type == "postgres":
        # One query: PostgreSQL joins through the index, no fan-out to bound.
        answered = pg_offline.historical_features(store, pairs, features)
        answered = answered[[ROW_ID, *names]]
    else:
        batch = max(1, MAX_FANOUT // max(rows_per_entity, 1))
        parts = [
            store.get_historical_features(
                entity_df=pairs.iloc[start : start + batch], features=features
            ).to_df()[[ROW_ID, *names]]
            for start in range(0, len(pairs), batch)
        ]
        answered = pd.concat(parts, ignore_index=True)
    if answered[ROW_ID].duplicated().any():
        raise MissingFeaturesError("the offline store answered an entity row twice")
    if lost := len(pairs) - len(answered):
        # Kept with missing features (the left join below); callers that
        # need every row filled check for it, so this is a detail, not a fault.
        log.info(
            "offline store had no row in the TTL for %d of %d entity rows; "
            "they keep missing features",
            lost,
            len(pairs),
        )
    found = pairs.merge(answered, on=ROW_ID, how="left", validate="one_to_one")
    merged = entity_df.reset_index(names="_index").merge(
        found.drop(columns=ROW_ID), on=[*join_keys, TIMESTAMP], how="left"
    )
    return merged.set_index("_index").rename_axis(entity_df.index.name)


def online_values(proto: Any) -> dict[str, list[Any]]:
    """Feature name -> raw values (None unless PRESENT) of an online response.

    Reads the response proto directly: ``OnlineResponse.to_dict()`` converts
    value by value through Feast's type map and costs ~2.5 ms for 50 entities
    x 43 features, this ~0.4 ms. Timestamps stay Unix seconds.
    """
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    present = FieldStatus.PRESENT
    columns: dict[str, list[Any]] = {}
    for name, vector in zip(
        proto.metadata.feature_names.val, proto.results, strict=True
    ):
        values, statuses = vector.values, list(vector.statuses)
        # The value type of the feature, from its first set value. A missing
        # entity can come back PRESENT with no value set (Redis online store).
        kind = next(
            (
                k
                for v, s in zip(values, statuses, strict=True)
                if s == present and (k := v.WhichOneof("val")) is not None
            ),
            None,
        )
        if kind is None:
            columns[name] = [None] * len(statuses)
            continue
        # One value type per feature: read that field of every value at once.
        raw = map(attrgetter(kind), values)
        pairs = zip(raw, statuses, values, strict=True)
        columns[name] = [
            x if s == present and v.WhichOneof("val") is not None else None
            for x, s, v in pairs
        ]
    return columns
