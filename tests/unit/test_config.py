"""Settings: profile file, environment overrides and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import load_settings


def test_default_profile_needs_no_server(tiny_env: Path) -> None:
    settings = load_settings("default")
    assert settings.profile == "default"
    assert settings.home == tiny_env.resolve()
    assert settings.tracking_uri == f"sqlite:///{tiny_env.resolve() / 'mlflow.db'}"


def test_environment_overrides_yaml(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DEMAND__N_ITEMS", "7")
    monkeypatch.setenv("LOOPML_SEED", "11")
    settings = load_settings("default")
    assert settings.demand.n_items == 7
    assert settings.seed == 11
    # A key only in the YAML file is still read.
    assert settings.mlflow.experiment == "loopml"


def test_keyword_overrides_win_and_merge(tiny_env: Path) -> None:
    settings = load_settings("default", demand={"dataset": "online-retail"})
    assert settings.demand.dataset == "online-retail"
    assert settings.demand.n_items == 4  # from the environment, not lost


def test_production_profile_points_at_postgres(tiny_env: Path) -> None:
    settings = load_settings("production")
    assert settings.tracking_uri.startswith("postgresql")


def test_unknown_profile_names_known_ones(tiny_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="known profiles"):
        load_settings("nope")


def test_invalid_value_is_refused(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DEMAND__HORIZON", "0")
    with pytest.raises(ValueError, match="horizon"):
        load_settings("default")


def test_placeholder_admin_token_refused_in_production(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_ADMIN_TOKEN", "changeme")
    with pytest.raises(ValueError, match="placeholder"):
        load_settings("production")
    assert load_settings("default").admin_token is not None
