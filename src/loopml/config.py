"""Settings: one object from a YAML profile, with ``LOOPML_*`` overrides.

Priority, highest first: keyword arguments, ``LOOPML_*`` environment
variables (nested keys joined by ``__``), the profile's YAML file, defaults.
The profile is chosen by ``LOOPML_PROFILE`` (default ``default``) and read
from ``configs/<profile>.yaml`` (``LOOPML_CONFIG_DIR`` overrides the folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "token", "admin"}


class MlflowSettings(BaseModel):
    """Where MLflow tracks runs and registers models."""

    tracking_uri: str | None = None
    experiment: str = "loopml"


class DemandModelSettings(BaseModel):
    """Hyper-parameters of the LightGBM forecaster."""

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=1)


class DemandSettings(BaseModel):
    """The demand-forecasting workload: data source, size and evaluation."""

    dataset: Literal["generated", "online-retail", "bike-sharing"] = "generated"
    data_path: Path | None = None
    n_stores: int = Field(3, ge=1)
    n_items: int = Field(10, ge=1)
    n_days: int = Field(730, ge=120)
    start: str = "2024-01-01"
    top_n_items: int = Field(50, ge=1)
    horizon: int = Field(28, ge=1, le=90)
    n_folds: int = Field(3, ge=1)
    fold_step: int = Field(28, ge=1)
    origin_step: int = Field(7, ge=1)
    #: a daily batch with fewer / more rows per day than these multiples of the
    #: previous validated batch's rows per day is refused by ``validate``.
    min_rows_ratio: float = Field(0.5, gt=0, le=1)
    max_rows_ratio: float = Field(2.0, ge=1)
    model: DemandModelSettings = DemandModelSettings()


class ServingSettings(BaseModel):
    """The online API."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_rows: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    poll_seconds: float = Field(10.0, gt=0)


class Settings(BaseSettings):
    """Every setting loopml reads; build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="LOOPML_", env_nested_delimiter="__", extra="forbid"
    )

    profile: str = "default"
    home: Path = Path(".loopml")
    seed: int = 42
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    #: bearer token for admin routes; from LOOPML_ADMIN_TOKEN, never from YAML.
    admin_token: SecretStr | None = None
    mlflow: MlflowSettings = MlflowSettings()
    demand: DemandSettings = DemandSettings()
    serving: ServingSettings = ServingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Put the profile's YAML file below the environment."""
        yaml_file = profile_path(os.environ.get("LOOPML_PROFILE", "default"))
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)
        return (init_settings, env_settings, yaml_source)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_placeholder_token(self) -> Settings:
        token = self.admin_token
        placeholder = (
            token is not None
            and token.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        )
        if self.profile != "default" and placeholder:
            raise ValueError(
                "LOOPML_ADMIN_TOKEN is a placeholder; set a real secret outside "
                "the default profile"
            )
        return self

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (SQLite under the home folder by default)."""
        return self.mlflow.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """Where MLflow stores artefacts of the loopml experiment."""
        return self.home / "mlartifacts"

    def data_dir(self, workload: str) -> Path:
        """The folder holding a workload's stored data."""
        return self.home / "data" / workload

    def state_dir(self, workload: str) -> Path:
        """The folder where stages leave their hand-over records."""
        return self.home / "state" / workload


def config_dir() -> Path:
    """Find the folder of YAML profiles.

    Returns:
        ``LOOPML_CONFIG_DIR`` when set, else ``./configs`` when it exists, else
        the ``configs`` folder of the source checkout.
    """
    if env := os.environ.get("LOOPML_CONFIG_DIR"):
        return Path(env)
    local = Path.cwd() / "configs"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "configs"


def profile_path(profile: str) -> Path:
    """Return the YAML file of a profile.

    Raises:
        FileNotFoundError: when the profile has no file.
    """
    path = config_dir() / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir().glob("*.yaml"))
        raise FileNotFoundError(
            f"profile {profile!r} not found at {path}; known profiles: {known}"
        )
    return path


def load_settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Build the settings of a profile.

    Args:
        profile: profile name; defaults to ``LOOPML_PROFILE`` or ``default``.
        **overrides: values that win over the environment and the profile.

    Returns:
        The validated settings.
    """
    if profile is not None:
        os.environ["LOOPML_PROFILE"] = profile
    return Settings(**overrides)
