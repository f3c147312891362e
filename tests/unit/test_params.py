"""params.yaml: read only when LOOPML_PARAMS_FILE says so, checked, laid over."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import load_settings
from loopml.core.params import PARAMS_ENV, apply_params_file, load_params
from loopml.workloads.demand.config import DemandSettings

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_params_file_is_valid_and_complete() -> None:
    params = load_params(REPO / "params.yaml")
    settings = load_settings("default", **params)
    assert settings.seed == params["seed"]
    assert (
        DemandSettings.of(settings).model.n_estimators
        == params["workloads"]["demand"]["model"]["n_estimators"]
    )
    # Every data and model setting is pinned, so the profile cannot change a run.
    fields = set(DemandSettings.model_fields)
    assert set(params["workloads"]["demand"]) == fields


def test_nothing_is_read_without_the_variable(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PARAMS_ENV, raising=False)
    given = {"workloads": {"demand": {"dataset": "generated"}}}
    assert apply_params_file(given) == given


def test_params_beat_environment_and_options_beat_params(
    tiny_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path / "params.yaml",
        "seed: 7\nworkloads:\n  demand:\n    n_items: 3\n"
        "    model:\n      num_leaves: 9\n",
    )
    monkeypatch.setenv(PARAMS_ENV, str(path))
    monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__N_ITEMS", "5")
    kwargs = apply_params_file({"workloads": {"demand": {"dataset": "online-retail"}}})
    settings = load_settings("default", **kwargs)
    assert settings.seed == 7
    assert (
        DemandSettings.of(settings).n_items == 3
    )  # params.yaml over LOOPML_WORKLOADS__DEMAND__N_ITEMS
    assert (
        DemandSettings.of(settings).dataset == "online-retail"
    )  # the CLI option on top
    assert DemandSettings.of(settings).model.num_leaves == 9
    assert (
        DemandSettings.of(settings).model.n_estimators == 60
    )  # untouched: from the env
    assert DemandSettings.of(settings).n_stores == 2  # untouched: from the env


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("home: /tmp/elsewhere\n", "not parameters"),
        ("demand:\n  n_items: 3\n", "not parameters"),
        ("workloads:\n  demand:\n    n_itemz: 3\n", "n_itemz"),
        ("workloads:\n  demand:\n    model:\n      leaves: 3\n", "demand.model."),
        ("workloads:\n  demand:\n    model: 3\n", "mapping"),
        ("workloads:\n  nope:\n    x: 3\n", "unknown workload"),
        ("- a list\n", "mapping"),
        ("demand: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_params_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, match: str
) -> None:
    monkeypatch.setenv(PARAMS_ENV, str(_write(tmp_path / "params.yaml", text)))
    with pytest.raises(ValueError, match=match):
        apply_params_file({})


def test_missing_params_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PARAMS_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        apply_params_file({})
