"""The platform's side of Feast: what a run read, and removing a project."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


def drop_project(store: FeatureStore) -> None:
    """Delete one project's online data, offline tables and registry entries.

    ``FeatureStore.teardown`` deletes every project of a shared registry;
    this removes only ``store.project`` (used by tests and clean-ups). With
    the PostgreSQL offline store its ``<project>__*`` tables are dropped too.
    """
    from feast.errors import FeatureViewNotFoundException, ProjectNotFoundException

    from loopml.sdk import pg_offline

    project = store.project
    views = store.list_feature_views()
    entities = store.list_entities()
    store._get_provider().teardown_infra(project, views, entities)
    # Feast's SQL registry forgets a project's version history only view by
    # view: without this, applying the same project again after the drop
    # fails on a duplicate `feature_view_version_history` key.
    for view in views:
        try:
            store.registry.delete_feature_view(view.name, project)
        except FeatureViewNotFoundException:
            log.debug("Feast view %s was already gone", view.name)
    try:
        store.registry.delete_project(project)
    except ProjectNotFoundException:
        log.debug("Feast project %s was never registered", project)
    offline = store.config.offline_store
    if offline.type == "postgres":
        dropped = pg_offline.drop_tables(offline.model_dump(), project)
        log.debug("dropped offline tables %s", dropped)
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
