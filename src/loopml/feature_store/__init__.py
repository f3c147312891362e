"""Feast for loopml: store config per profile, training sets and online reads.

* :mod:`.repo` renders the store config from the settings and opens the store;
* :mod:`.training` builds point-in-time training sets (``get_historical_features``
  only), with a guard against rows the offline store silently drops;
* :mod:`.online` reads a request's features from the online store and pushes
  fresh events.

Importing this package does not import Feast (it takes seconds); the
functions that need it do.
"""

from loopml.core.config import FeatureStoreSettings
from loopml.sdk.feast import feature_store_settings, open_store

__all__ = ["FeatureStoreSettings", "feature_store_settings", "open_store"]
