"""The path for adding a demand feature (docs/adding-a-feature.md), walked in-process.

The test adds ``rmean_7_minus_28`` (the last week's mean sales minus the last
four weeks': a trend), derived from the origin state, by the steps the doc
lists, patched for the test only: (1) computed in ``features._assemble``, the
one function both training and serving build their inputs with; (2) named in
``FEATURE_COLUMNS``; (3) given an expectation in the training contract. It
then goes through the real pipeline: the ``features`` stage publishes Feast,
the point-in-time training set from Feast equals the in-memory one (the skew
test), the workload's ``train`` fits on it, and forecasts from the Feast
online state equal those from the model's own state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from loopml.core.config import Settings, load_settings
from loopml.core.io import write_parquet
from loopml.core.runtime import configure_environment
from loopml.sdk.feast import open_store
from loopml.stages import features as features_stage
from loopml.workloads.demand import data, features, schema
from loopml.workloads.demand.online import OnlineFeatures
from loopml.workloads.demand.training_set import training_examples
from loopml.workloads.demand.workload import DemandWorkload

pytestmark = pytest.mark.filterwarnings("ignore")

NEW = "rmean_7_minus_28"


@pytest.fixture()
def with_new_feature(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Steps 1-3 of the doc, undone after the test."""
    assemble = features._assemble

    def _assemble(state: pd.DataFrame, targets: pd.DataFrame, how: str) -> pd.DataFrame:
        merged = assemble(state, targets, how)
        merged[NEW] = merged["rmean_7"] - merged["rmean_28"]  # step 1
        return merged

    monkeypatch.setattr(features, "_assemble", _assemble)
    # Step 2: the list every module imported (train, evaluate, serving...).
    features.FEATURE_COLUMNS.append(NEW)
    # Step 3: the expectation (a sales difference: finite, may be negative).
    expectation = pa.Column("float64", pa.Check.in_range(-1e6, 1e6), nullable=False)
    monkeypatch.setattr(
        schema,
        "TRAINING_SCHEMA",
        schema.TRAINING_SCHEMA.add_columns({NEW: expectation}),
    )
    try:
        yield
    finally:
        features.FEATURE_COLUMNS.remove(NEW)


@pytest.fixture()
def settings(tiny_env: Path) -> Settings:
    loaded = load_settings("default")
    configure_environment(loaded.home)
    return loaded


def test_a_new_feature_reaches_training_and_serving_without_skew(
    settings: Settings, with_new_feature: None
) -> None:
    sales = data.generate(n_stores=2, n_items=3, n_days=200)
    # The features stage publishes the validated table to Feast (offline +
    # online): the feature is derived from state the views already hold.
    write_parquet(sales, settings.data_dir("demand") / "validated.parquet")
    features_stage.run(settings, "demand")
    store = open_store(settings)

    # Step 4, the skew test: the training set read from Feast at each origin
    # equals the in-memory one, the new column included, value for value.
    via_feast = training_examples(store, sales, horizon=14, origin_step=7)
    in_memory = features.build_training_examples(sales, horizon=14, origin_step=7)
    assert NEW in via_feast.columns and via_feast[NEW].notna().all()
    assert via_feast[NEW].abs().max() > 0  # a real, varying feature
    pd.testing.assert_frame_equal(via_feast, in_memory, check_exact=True)
    # The contract keeps it (it filters undeclared columns) and checks it.
    assert NEW in schema.validate_training_examples(via_feast).columns
    with pytest.raises(Exception, match=NEW):
        schema.validate_training_examples(via_feast.assign(**{NEW: float("nan")}))

    # Step 5: the workload's own train (Feast training set) fits on it.
    model = DemandWorkload().train(settings, sales).model
    assert NEW in model.forecaster.feature_names_

    # Step 6: serving. Forecasts from the Feast online state (what the API
    # reads) equal those from the state bundled with the model.
    origin = pd.Timestamp(sales["date"].max())
    rows = pd.DataFrame(
        {
            "store_id": ["S01", "S02", "S02"],
            "item_id": ["I001", "I002", "I003"],
            "date": [origin + pd.Timedelta(days=d) for d in (1, 7, 14)],
        }
    )
    keys = list(zip(rows["store_id"], rows["item_id"], strict=True))
    online, found = OnlineFeatures(store).state_for(keys)
    assert all(found) and (online["origin"] == origin).all()
    served = model.forecast(rows, state=online, origin=origin)
    assert served.tolist() == model.forecast(rows).tolist()
    # The served inputs carry the feature with the offline value.
    inputs = features.build_features(online, model.requests_frame(rows), origin)
    state = features.origin_state(sales, origin).set_index(["store_id", "item_id"])
    expected = [state.loc[k, "rmean_7"] - state.loc[k, "rmean_28"] for k in keys]
    assert inputs[NEW].tolist() == pytest.approx(expected, rel=1e-12)
