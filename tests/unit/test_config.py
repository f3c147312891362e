"""Settings: profile file, environment overrides and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import load_settings
from loopml.workloads.demand.config import DemandSettings


def test_default_profile_needs_no_server(tiny_env: Path) -> None:
    settings = load_settings("default")
    assert settings.profile == "default"
    assert settings.home == tiny_env.resolve()
    assert settings.tracking_uri == f"sqlite:///{tiny_env.resolve() / 'mlflow.db'}"


def test_environment_overrides_yaml(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__N_ITEMS", "7")
    monkeypatch.setenv("LOOPML_SEED", "11")
    settings = load_settings("default")
    assert DemandSettings.of(settings).n_items == 7
    assert settings.seed == 11
    # A key only in the YAML file is still read.
    assert settings.mlflow.experiment == "loopml"


def test_keyword_overrides_win_and_merge(tiny_env: Path) -> None:
    settings = load_settings(
        "default", workloads={"demand": {"dataset": "online-retail"}}
    )
    assert DemandSettings.of(settings).dataset == "online-retail"
    assert DemandSettings.of(settings).n_items == 4  # from the environment, not lost


def test_production_profile_points_at_postgres(tiny_env: Path) -> None:
    settings = load_settings("production")
    assert settings.tracking_uri.startswith("postgresql")


def test_unknown_profile_names_known_ones(tiny_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="known profiles"):
        load_settings("nope")


def test_invalid_value_is_refused(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__HORIZON", "0")
    settings = load_settings("default")  # sections are validated when read
    with pytest.raises(ValueError, match=r"workloads\.demand\.horizon: .*greater"):
        DemandSettings.of(settings)


def test_workload_sections_go_under_workloads(tiny_env: Path) -> None:
    with pytest.raises(ValueError, match="move \\['demand'\\] to `workloads:"):
        load_settings("default", demand={"horizon": 7})
    with pytest.raises(ValueError, match="unregistered workload"):
        load_settings("default", workloads={"nope": {"x": 1}})


def test_a_section_copy_is_revalidated(tiny_env: Path) -> None:
    settings = load_settings("default")
    shorter = settings.with_section("demand", {"horizon": 7})
    assert DemandSettings.of(shorter).horizon == 7
    assert DemandSettings.of(settings).horizon == 14  # the tiny env's, untouched


def test_placeholder_admin_token_refused_in_production(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_ADMIN_TOKEN", "changeme")
    with pytest.raises(ValueError, match="placeholder"):
        load_settings("production")
    assert load_settings("default").admin_token is not None


def test_a_project_subfolder_uses_the_projects_configs_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a project's ``notebooks/`` (where Jupyter starts), not loopml's."""
    project = tmp_path / "shop"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "default.yaml").write_text(
        "profile: default\nhome: .loopml\nmlflow:\n  experiment: shop\n"
    )
    (project / "notebooks").mkdir()
    for name in ("LOOPML_HOME", "LOOPML_CONFIG_DIR", "LOOPML_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(project / "notebooks")
    settings = load_settings()
    assert settings.mlflow.experiment == "shop"
    assert settings.home == (project / ".loopml").resolve()
    monkeypatch.setenv("LOOPML_HOME", "elsewhere")  # relative to where you are
    assert load_settings().home == (project / "notebooks" / "elsewhere").resolve()
    monkeypatch.delenv("LOOPML_HOME")
    monkeypatch.chdir(project)  # the project's own folder: as always
    assert load_settings().home == (project / ".loopml").resolve()


def test_production_without_a_tracking_server_is_refused(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset CI secret must not promote into a throw-away SQLite registry."""
    monkeypatch.setenv("LOOPML_MLFLOW__TRACKING_URI", "")
    with pytest.raises(ValueError, match="names no MLflow tracking server"):
        load_settings("production")
    assert load_settings("default").tracking_uri.startswith("sqlite:///")


def test_commands_follow_the_dataset_a_home_was_ingested_from(
    tiny_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`loopml --home .loopml-bike-sharing train` read the generated data's
    settings: its model was logged as trained on generated data."""
    import json

    from loopml import cli
    from loopml.stages import ingest

    settings = load_settings("default")
    record = ingest.run(settings, "demand").details  # the configured: generated
    assert record["dataset"] is None or record["dataset"] == "generated"
    state = settings.state_dir("demand") / "ingest.json"
    state.write_text(
        json.dumps({"dataset": "bike-sharing", "data_path": "/data/day.csv"})
    )
    followed = cli._home_dataset(settings, ["demand"])
    section = DemandSettings.of(followed)
    assert (section.dataset, str(section.data_path)) == (
        "bike-sharing",
        "/data/day.csv",
    )
    assert "demand: dataset bike-sharing, as this home was ingested" in " ".join(
        capsys.readouterr().out.split()
    )
    assert DemandSettings.of(settings).dataset == "generated"  # a copy changed
    state.write_text("{broken")
    assert cli._home_dataset(settings, ["demand"]) is settings
