"""Settings: one object from a YAML profile, with ``LOOPML_*`` overrides.

Priority, highest first: keyword arguments, ``LOOPML_*`` environment
variables (nested keys joined by ``__``), the profile's YAML file, defaults.
The profile is chosen by ``LOOPML_PROFILE`` (default ``default``) and read
from ``configs/<profile>.yaml`` (``LOOPML_CONFIG_DIR`` overrides the folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

#: A workload's settings class (any pydantic model).
SectionT = TypeVar("SectionT", bound=BaseModel)

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "token", "admin"}


class MlflowSettings(BaseModel):
    """Where MLflow tracks runs and registers models."""

    tracking_uri: str | None = None
    experiment: str = "loopml"


PRODUCTION_REGISTRY = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
#: The production offline store's database (Feast's PostgreSQL offline store).
PRODUCTION_OFFLINE = "postgresql://postgres@127.0.0.1:5432/test"


class FeatureStoreSettings(BaseModel):
    """Where Feast keeps its registry, offline and online stores.

    ``registry_path`` is a file path for ``registry: file`` (default
    ``<home>/feature_store/registry.db``) or a SQLAlchemy URL for ``sql``.
    ``offline: postgres`` keeps the offline tables in PostgreSQL at
    ``offline_url`` (``postgresql://user[:password]@host:port/db``, optional
    ``?sslmode=``), one table per source named ``<project>__<table>``.
    """

    project: str = Field("loopml", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")
    online: Literal["sqlite", "redis"] = "sqlite"
    redis_connection_string: str = "127.0.0.1:6379"
    redis_key_ttl_seconds: int | None = Field(None, ge=1)
    registry: Literal["file", "sql"] = "file"
    registry_path: str | None = None
    registry_cache_ttl_seconds: int = Field(60, ge=0)
    offline: Literal["file", "postgres"] = "file"
    offline_url: str | None = None
    offline_schema: str = Field("public", pattern=r"^[a-z_][a-z0-9_]*$")

    @classmethod
    def for_profile(cls, profile: str) -> FeatureStoreSettings:
        """Defaults of a profile: embedded stores, or PostgreSQL + Redis."""
        if profile == "production":
            return cls(
                online="redis",
                registry="sql",
                registry_path=PRODUCTION_REGISTRY,
                offline="postgres",
                offline_url=PRODUCTION_OFFLINE,
            )
        return cls()


class GateSettings(BaseModel):
    """The promotion gate (see ``loopml.models.gate``)."""

    #: relative improvement over the champion's primary metric required
    #: (0.02 = 2 %); 0 means strictly better.
    margin: float = Field(0.0, ge=0, lt=1)
    #: how much worse than the champion's a guard metric may be (absolute).
    guard_tolerance: float = Field(0.05, ge=0)
    #: how much worse than the champion's any slice may be (relative).
    slice_tolerance: float = Field(0.10, ge=0)
    #: slices with fewer rows (users, for recsys) are not judged: on a few
    #: users a slice's mean moves by more than the tolerance by chance.
    min_slice_size: int = Field(30, ge=1)
    #: inclusion: how far the challenger's worst group of a sensitive
    #: attribute (``Workload.group_prefix``) may be below its best group on
    #: the primary metric (relative: 0.2 = 20 %).
    max_group_gap: float = Field(0.20, ge=0)


class BatchSettings(BaseModel):
    """Where ``loopml batch`` stores each workload's daily results."""

    #: SQLAlchemy URL of the result tables; empty: the MLflow database when
    #: that is PostgreSQL (the production profile), else SQLite at
    #: ``<home>/batch/<workload>.db``.
    database_url: str | None = None
    #: ``local``: the scorer's blocks in order in this process; ``ray``: on
    #: Ray tasks (``loopml batch --engine ray``), same results.
    engine: Literal["local", "ray"] = "local"
    #: with ``engine: ray``: a cluster (``ray://head:10001``, ``auto``);
    #: empty: ``tune.ray_address``, and when that is empty too a local Ray
    #: under the home folder.
    ray_address: str | None = None
    #: with ``engine: ray``: worker processes (one CPU each); empty: the
    #: cluster's CPUs.
    ray_workers: int | None = Field(None, ge=1)
    #: keys per block (users, series...); empty: the scorer's ``block_rows``.
    #: Both engines cut the same blocks.
    block_rows: int | None = Field(None, ge=1)


class ServingSettings(BaseModel):
    """The online API."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    #: the workloads served (their champions loaded, their routes mounted);
    #: None: every registered workload.
    workloads: list[str] | None = None
    #: rows one scoring request may carry (every protocol).
    max_rows: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    poll_seconds: float = Field(10.0, gt=0)
    #: scorers that use the Feast online store read it (demand: the series
    #: state; they fall back to the model's own state when it cannot be read).
    online_features: bool = True
    #: no fallback: while the online store is unreachable, requests to a
    #: workload whose scorer uses it are a 503 saying so (production: a stale
    #: forecast is worse than none).
    require_online_features: bool = False
    #: after a failed online-store read, try to reopen it at most this often.
    online_retry_seconds: float = Field(30.0, gt=0)
    #: a scorer may keep what it read from the online store this long (demand:
    #: a series' state and sales today); 0: read it for every request. A push
    #: from the serving process empties the cache at once, one from elsewhere
    #: is seen within this time.
    online_cache_seconds: float = Field(1.0, ge=0)
    #: a scoring request of at most this many rows whose scorer answers it
    #: from memory (``OnlineScorer.answers_in_memory``: e.g. every series'
    #: state cached) is scored on the event loop, not in a worker thread;
    #: 0: always a thread.
    inline_max_rows: int = Field(64, ge=0)
    #: requests per second per client address (token bucket); None: no limit.
    #: /healthz, /readyz, /metrics and /v2/health/* are never limited.
    rate_limit_per_second: float | None = Field(None, gt=0)
    #: requests a client may send at once above the rate.
    rate_limit_burst: int = Field(50, ge=1)
    #: where the buckets live: None, in each process (N uvicorn workers give
    #: N independent buckets); a Redis URL (``redis://host:port/db``), shared
    #: by every worker and replica using it.
    rate_limit_redis_url: str | None = None
    #: canary: this share of scoring requests (every workload with an online
    #: scorer) is answered by the `challenger` (when it differs from the
    #: champion); logged with its version.
    canary_share: float = Field(0.0, ge=0, le=1)
    #: shadow: every scoring request is also scored by the challenger after
    #: the answer is sent; only the champion's answer is returned, both logged.
    shadow: bool = False
    #: who writes the inference log: ``process``, a child process fed over a
    #: pipe (the service shares no GIL with the writer); ``thread``, a thread
    #: of the serving process. The same files either way.
    inference_log_writer: Literal["process", "thread"] = "process"


class TuneSettings(BaseModel):
    """Hyper-parameter tuning (``loopml tune``): Ray Tune with an Optuna search.

    ``ray_address`` empty means a local Ray started for the run (temp files
    under the home); a cluster address such as ``ray://head:10001`` or
    ``auto`` runs the trials there. ``max_concurrent`` empty means as many
    trials at once as the cluster has CPUs / ``cpus_per_trial``.
    """

    ray_address: str | None = None
    #: ``loopml run`` tunes before train once per data version: when no
    #: ``tuned.json`` was made on the validated data, else it reuses it.
    in_run: bool = True
    num_samples: int = Field(16, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    #: demand: rolling-origin folds per trial (ASHA may stop a trial after
    #: any of them); they end before the folds ``evaluate`` reports on.
    n_folds: int = Field(2, ge=1)
    #: ASHA keeps the best 1 / reduction_factor of the trials at each rung.
    reduction_factor: int = Field(2, ge=2)


class MonitorSettings(BaseModel):
    """Drift, data quality and live performance (``loopml monitor``).

    Drift is judged per column by a distance, never a p-value: the normed
    Wasserstein distance (how far the values moved, in standard deviations of
    the reference) for numbers, PSI for categories. A distance says how much
    a distribution moved, so a big sample cannot turn a negligible change into
    an alarm. docs/monitoring.md has the measurements behind the thresholds.
    """

    #: run ``monitor`` as the last stage of ``loopml run`` (it costs the
    #: Evidently import, ~15 s on a busy 2-core machine, plus a few seconds).
    in_run: bool = True

    #: current sample: the last N days up to the monitored date.
    window_days: int = Field(7, ge=1)
    #: reference sample: the last N days of the champion's training data.
    reference_days: int = Field(56, ge=7)
    #: a column with fewer rows in either sample gets no verdict.
    min_rows: int = Field(30, ge=1)
    wasserstein_threshold: float = Field(0.6, gt=0)
    psi_threshold: float = Field(0.25, gt=0)
    #: dataset drift: at least this share of the judged columns drifted.
    drift_share: float = Field(0.5, gt=0, le=1)
    #: an open incident is announced again only after this many hours.
    alert_cooldown_hours: float = Field(24.0, ge=0)


class RetrainSettings(BaseModel):
    """The continuous-training policy of ``loopml retrain`` (None: trigger off)."""

    #: retrain when the latest ``loopml monitor`` report on the champion found
    #: drift: any judged column over its threshold, or drifted predictions (the
    #: monitor's ``drift`` status). Not ``dataset_drift`` (half the columns):
    #: demand's level shift moves one of its three columns, ``sales_index``.
    on_drift: bool = True
    #: retrain when the live primary metric is this many times worse than
    #: the champion's backtest (WAPE 1.5x higher, NDCG 1.5x lower).
    max_metric_ratio: float | None = Field(1.5, gt=1)
    #: retrain when the champion's data ends this many days before today.
    max_age_days: int | None = Field(90, ge=1)
    #: retrain at least every N days whatever the monitor says (counted from
    #: the last retrain, or from the champion's data end before the first).
    every_days: int | None = Field(None, ge=1)
    #: no drift or performance retrain within N days of the previous retrain
    #: (age and schedule are deadlines: they fire regardless).
    cooldown_days: int = Field(7, ge=0)


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
    #: Each registered workload's own settings, under its name; validated by
    #: its settings class (``section``), e.g. ``workloads: {demand: {horizon:
    #: 14}}`` or ``LOOPML_WORKLOADS__DEMAND__HORIZON=14``.
    workloads: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: None: the profile's defaults (FeatureStoreSettings.for_profile).
    feature_store: FeatureStoreSettings | None = None
    gate: GateSettings = GateSettings()
    serving: ServingSettings = ServingSettings()
    tune: TuneSettings = TuneSettings()
    monitor: MonitorSettings = MonitorSettings()
    retrain: RetrainSettings = RetrainSettings()
    batch: BatchSettings = BatchSettings()
    #: alert webhook (Slack, Teams or any JSON receiver); from
    #: LOOPML_ALERT_WEBHOOK_URL, never from YAML: the URL is the credential.
    alert_webhook_url: SecretStr | None = None
    alert_kind: Literal["slack", "teams", "generic"] = "slack"

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
        yaml_source = _ProfileFile(settings_cls, yaml_file, _project_above())
        return (init_settings, env_settings, yaml_source)

    #: validated sections by (workload, class): the raw section they came
    #: from (a copy with other values revalidates) and the model.
    _sections: dict[tuple[str, type[BaseModel]], tuple[Any, BaseModel]] = PrivateAttr(
        default_factory=dict
    )

    @model_validator(mode="before")
    @classmethod
    def _workloads_go_under_workloads(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        from loopml.core.plugins import names

        stray = sorted(set(values) & set(names()))
        if stray:
            raise ValueError(
                f"workload settings go under `workloads:` now: move {stray} to "
                f"`workloads: {{{stray[0]}: ...}}` (environment: "
                f"LOOPML_WORKLOADS__{stray[0].upper()}__<KEY>)"
            )
        return values

    @field_validator("workloads")
    @classmethod
    def _known_workloads(cls, value: dict[str, Any]) -> dict[str, Any]:
        from loopml.core.plugins import names

        known = names()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"settings for unregistered workload(s) {unknown}; registered: "
                f"{', '.join(known) or 'none'}"
            )
        return value

    def section(self, name: str, model: type[SectionT]) -> SectionT:
        """A workload's settings, validated by its settings class (cached).

        Args:
            name: the workload.
            model: its settings class; every field has a default, so a missing
                section is the defaults.

        Raises:
            ValueError: one line per invalid value, named
                ``workloads.<name>.<field>``.
        """
        key, raw = (name, model), self.workloads.get(name, {})
        cached = self._sections.get(key)
        if cached is None or cached[0] is not raw:
            try:
                cached = (raw, model.model_validate(raw))
            except ValidationError as error:
                lines = [
                    f"workloads.{name}."
                    + ".".join(str(p) for p in err["loc"])
                    + f": {err['msg']}"
                    + (f" (got {err['input']!r})" if "input" in err else "")
                    for err in error.errors(include_url=False)
                ]
                raise ValueError("; ".join(lines)) from None
            self._sections[key] = cached
        found = cached[1]
        assert isinstance(found, model)
        return found

    def with_section(self, name: str, values: dict[str, Any]) -> Settings:
        """A copy whose ``workloads.<name>`` has ``values`` laid over it."""
        merged = _deep_merge(self.workloads.get(name, {}), values)
        return self.model_copy(update={"workloads": {**self.workloads, name: merged}})

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_no_tracking_server(self) -> Settings:
        """Only the default profile may fall back to a SQLite file of its own.

        A production run whose ``LOOPML_MLFLOW__TRACKING_URI`` is empty (a CI
        secret that is not set) would register and promote into a throw-away
        database under its home, and report success.
        """
        if self.profile != "default" and not (self.mlflow.tracking_uri or "").strip():
            raise ValueError(
                f"the {self.profile!r} profile names no MLflow tracking server: "
                "set mlflow.tracking_uri in its YAML or LOOPML_MLFLOW__TRACKING_URI "
                "(e.g. postgresql+psycopg2://user@db:5432/mlflow); only the "
                "default profile keeps MLflow in a local SQLite file"
            )
        return self

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


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_dir() -> Path:
    """Find the folder of YAML profiles.

    Returns:
        ``LOOPML_CONFIG_DIR`` when set, else ``./configs`` when it exists,
        else the ``configs`` folder (with a ``default.yaml``) of the nearest
        folder above (a project's, from its ``notebooks/`` say), else the
        ``configs`` folder of the source checkout.
    """
    if env := os.environ.get("LOOPML_CONFIG_DIR"):
        return Path(env)
    local = Path.cwd() / "configs"
    if local.is_dir():
        return local
    above = _project_above()
    if above is not None:
        return above / "configs"
    return Path(__file__).resolve().parents[3] / "configs"


def _project_above() -> Path | None:
    """The nearest folder above the working one with ``configs/default.yaml``."""
    if os.environ.get("LOOPML_CONFIG_DIR") or (Path.cwd() / "configs").is_dir():
        return None
    for folder in Path.cwd().resolve().parents:
        if (folder / "configs" / "default.yaml").is_file():
            return folder
    return None


class _ProfileFile(YamlConfigSettingsSource):
    """A profile's YAML; a relative ``home`` in it counts from ``root``.

    ``root`` is the project's folder when its ``configs/`` was found above
    the working folder, so a command run from ``notebooks/`` uses the
    project's home, not a new ``notebooks/.loopml``.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], yaml_file: Path, root: Path | None
    ) -> None:
        super().__init__(settings_cls, yaml_file=yaml_file)
        self.root = root

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        home = values.get("home")
        relative = isinstance(home, str | Path) and not Path(home).is_absolute()
        if self.root is not None and relative and not str(home).startswith("~"):
            values["home"] = str(self.root / str(home))
        return values


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
