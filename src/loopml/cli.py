"""The ``loopml`` command line: one command per stage, plus run, serve and ui.

Every stage reads and writes stored artefacts under the home folder, MLflow
and the registry, so any command can be run alone, by a person, DVC, Airflow
or CI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from loopml.core.config import Settings, load_settings
from loopml.core.logs import setup_logging
from loopml.core.runtime import configure_environment

if TYPE_CHECKING:
    from loopml.stages.common import StageResult

app = typer.Typer(
    help=(
        "loopml: data in, validated, a model trained and tracked in MLflow, "
        "promoted through a gate, served over HTTP.\n\n"
        "Start with `loopml run` (the whole loop on generated data), then "
        "`loopml status`, `loopml serve` and `loopml ui`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: Piped output (CI logs, `| tee`) gets plain long lines and wide tables
#: instead of a phrase cut at column 80.
_PIPED = not sys.stdout.isatty()
console = Console(width=200 if _PIPED else None, soft_wrap=_PIPED)
err_console = Console(stderr=True, soft_wrap=True)


def _print_rows(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> None:
    """A table on a terminal; piped, a header and one tab-separated line a row.

    Piped output (CI logs, grep) must keep each row whole: a table would wrap
    long cells over several lines.
    """
    if not _PIPED:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    sys.stdout.write(f"# {title}\n" + "\t".join(columns) + "\n")
    for row in rows:
        sys.stdout.write("\t".join(str(cell).replace("\n", " ") for cell in row) + "\n")
    sys.stdout.flush()


def _number(value: float, name: str = "") -> str:
    """A metric for people: counts and days as integers, others to 3 decimals."""
    whole = float(value).is_integer()
    if whole and (abs(value) >= 1 or name.endswith(("_days", "_rows", "_count"))):
        return f"{int(value):,}"
    return f"{value:.3f}"


WorkloadOpt = Annotated[
    str | None,
    typer.Option(
        "--workload",
        "-w",
        help="Workload to act on (default: the first registered one, e.g. "
        "demand); `loopml workloads` lists them.",
    ),
]
WorkloadsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--workload", "-w", help="Workloads to act on, repeatable (default: all)."
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        help="Data source of the workloads that read it, e.g. 'generated' "
        "(seeded generator), 'online-retail' (UCI Online Retail; demand and "
        "recsys), 'bike-sharing' (UCI Bike Sharing; demand), 'movielens' "
        "(MovieLens 100K folder; recsys); see --data-path. A workload named "
        "with -w must read it; without -w, the workloads that do are run.",
    ),
]
DataPathOpt = Annotated[
    Path | None,
    typer.Option(
        help="File or folder to read for a real dataset; defaults, under "
        "../shared/datasets/: online_retail/online_retail.parquet and "
        "bike_sharing/day.csv.",
    ),
]


class _State:
    """Options given before the command (the profile)."""

    profile: str | None = None
    verbose: bool = False
    #: the workloads the command runs on (after --dataset routing).
    names: list[str] = []  # noqa: RUF012
    home: Path | None = None


def _one_line(error: BaseException) -> str:
    """A settings error as one line: each field's path and message.

    pydantic's own text takes three lines a field and a documentation link;
    a YAML parser's points at the line with a drawing.
    """
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        parts = []
        for found in error.errors(include_url=False):
            where = ".".join(str(part) for part in found["loc"])
            said = str(found["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {said}" if where else said)
        return "; ".join(parts)
    if isinstance(error, yaml.YAMLError):
        mark = getattr(error, "problem_mark", None)
        where = "a profile"
        if mark is not None:
            where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1},"
        problem = getattr(error, "problem", None) or type(error).__name__
        return f"{where} is not valid YAML: {problem}"
    return " ".join(str(error).split())


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr; the caller raises the returned exit."""
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


def _workload(name: str | None) -> str:
    """The named workload, or the first registered; exit 2 for an unknown one."""
    from loopml.core.plugins import names

    known = names()
    if name is None:
        if not known:
            raise _fail("no workload is registered")
        return known[0]
    if name not in known:
        raise _fail(
            f"unknown workload {name!r}; registered: {', '.join(known)} "
            "(see `loopml workloads`)"
        )
    return name


def _workloads(given: list[str] | None) -> list[str]:
    """The named workloads (each checked), or every registered one."""
    from loopml.core.plugins import names

    return [_workload(n) for n in given] if given else names()


def _settings_class(name: str) -> Any:
    from loopml.core.plugins import load_class

    return getattr(load_class(name), "settings_class", None)


def _data_overrides(
    names: list[str], dataset: str | None, data_path: Path | None, strict: bool
) -> tuple[dict[str, Any], list[str]]:
    """Route --dataset / --data-path to the workloads whose settings read them.

    Returns:
        ``workloads`` keyword values, and the workloads that take part (all of
        ``names`` when ``strict``; else those that read the dataset).

    Raises:
        typer.Exit: a named workload that cannot read it (strict), or none can.
    """
    from loopml.sdk.settings import choices

    if dataset is None and data_path is None:
        return {}, names
    sections: dict[str, Any] = {}
    taking: list[str] = []
    refused: list[str] = []
    for name in names:
        model = _settings_class(name)
        accepted = choices(model, "dataset") if model is not None else None
        reads = dataset is None or (accepted is not None and dataset in accepted)
        has_path = model is not None and "data_path" in model.model_fields
        if not reads or (data_path is not None and not has_path):
            shown = ", ".join(map(str, accepted or ())) or "no --dataset"
            refused.append(f"{name} (reads {shown})")
            continue
        section: dict[str, Any] = {}
        if dataset is not None:
            section["dataset"] = dataset
        if data_path is not None:
            section["data_path"] = str(data_path)
        sections[name] = section
        taking.append(name)
    what = f"--dataset {dataset}" if dataset is not None else "--data-path"
    if refused and (strict or not taking):
        raise _fail(f"{what} does not apply to {'; '.join(refused)}")
    if refused:
        console.print(f"{what}: skipping {'; '.join(refused)}", soft_wrap=True)
    return ({"workloads": sections} if sections else {}), taking


def _home_dataset(settings: Settings, names: list[str]) -> Settings:
    """The dataset a home was ingested from, for commands not naming one.

    ``loopml run --dataset bike-sharing`` makes its own home; a later
    ``loopml --home ... train`` without ``--dataset`` read the configured
    (generated) dataset's settings: its models were logged as trained on
    generated data, ``replay`` failed on the generator's bounds, and the
    recsys reasons were those of the generated data. The home's last
    snapshot ingest (``ingest.json``) says which dataset it holds.
    """
    for name in names:
        from loopml.data.batches import INGESTED

        record = settings.state_dir(name) / INGESTED
        model = _settings_class(name)
        if not record.is_file() or model is None or "dataset" not in model.model_fields:
            continue
        try:
            ingested = json.loads(record.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        held = ingested.get("dataset")
        default = model.model_fields["dataset"].default
        if held and held != settings.workloads.get(name, {}).get("dataset", default):
            values = {"dataset": held, "data_path": ingested.get("data_path")}
            settings = settings.with_section(name, values)
            console.print(f"{name}: dataset {held}, as this home was ingested")
    return settings


def _home_chosen() -> bool:
    """Whether the user named the home (--home or LOOPML_HOME)."""
    return _State.home is not None or bool(os.environ.get("LOOPML_HOME"))


def _settings(
    names: list[str] | None = None,
    dataset: str | None = None,
    data_path: Path | None = None,
    strict: bool = True,
) -> Settings:
    """The settings for a command on ``names`` (validated), logging set up."""
    from loopml.core.params import apply_params_file

    kwargs, names = _data_overrides(names or [], dataset, data_path, strict)
    if _State.home is not None:
        kwargs["home"] = _State.home
    try:
        # LOOPML_PARAMS_FILE (set by dvc.yaml) lays params.yaml under the options.
        kwargs = apply_params_file(kwargs)
        settings = load_settings(_State.profile, **kwargs)
        if dataset not in (None, "generated") and not _home_chosen():
            # One home per dataset: a real dataset's champion never meets the
            # generated data's (the same model name, other data).
            own = settings.home.with_name(f"{settings.home.name}-{dataset}")
            settings = load_settings(_State.profile, **{**kwargs, "home": own})
            console.print(
                f"home {own} (one home per dataset; later commands on this data: "
                f"loopml --home {own} ...)"
            )
        if dataset is None and data_path is None:
            settings = _home_dataset(settings, names)
        for name in names:
            if (model := _settings_class(name)) is not None:
                settings.section(name, model)
    except (ValueError, FileNotFoundError, yaml.YAMLError) as error:
        raise _fail(f"configuration: {_one_line(error)}") from error
    configure_environment(settings.home)
    setup_logging(
        settings.home,
        settings.log_level,
        json_lines=settings.log_json,
        production=settings.profile == "production",
        console_level="INFO" if _State.verbose else "WARNING",
    )
    _State.names = names
    return settings


def _parse_day(date: str | None) -> dt.date | None:
    """The ``--date`` option as a date; a usage error that names it otherwise."""
    try:
        return None if date is None else dt.date.fromisoformat(date)
    except ValueError as error:
        raise typer.BadParameter(
            f"{date!r} is not a date like 2025-02-04", param_hint="--date"
        ) from error


def _call_stage(name: str, call: Callable[[], StageResult]) -> StageResult:
    """Run one stage function in its log context; its failure is exit 1."""
    from loopml.core.errors import StageError
    from loopml.core.logs import stage_context
    from loopml.stages.common import database_errors

    try:
        with stage_context(name), _working(name), database_errors(name):
            return call()
    except (StageError, ValueError, FileNotFoundError) as error:
        err_console.print(f"[red]{name} failed:[/red] {error}")
        raise typer.Exit(1) from error


@contextlib.contextmanager
def _working(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the elapsed time on a terminal (nothing when piped).

    Yields:
        A function that changes the text (the stage now running).
    """
    if _PIPED:
        yield lambda _: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(text, total=None)
        yield lambda new: bar.update(task, description=new)


def _run_stage(name: str, settings: Settings, workload: str) -> None:
    from loopml.core.errors import StageError
    from loopml.stages.runner import run_stage

    try:
        with _working(f"{name} {workload}"):
            timed = run_stage(name, settings, workload)
    except (StageError, ValueError) as error:
        err_console.print(f"[red]{name} failed:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(
        f"[green]{name}[/green] {workload}: {timed.result.summary} "
        f"({timed.seconds:.1f}s)"
    )
    if timed.result.status == "rejected":
        raise typer.Exit(0)


@app.callback()
def options(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="Settings profile from configs/ (default, production); "
            "also LOOPML_PROFILE.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show INFO logs on the console too (loopml's always go to "
            "<home>/logs/loopml.log), and the libraries' notices and warnings.",
        ),
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="The loopml home folder (data, registry, reports); also "
            "LOOPML_HOME. Default: the profile's, and one home per real "
            "dataset (.loopml-online-retail for --dataset online-retail).",
        ),
    ] = None,
) -> None:
    """Choose the profile, the home and the verbosity for the command."""
    _State.profile = profile
    _State.verbose = verbose
    _State.home = home


@app.command()
def ingest(
    workload: WorkloadOpt = None,
    dataset: DatasetOpt = None,
    data_path: DataPathOpt = None,
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="Add that day's batch to <home>/data/<workload>/batches/ "
            "(replacing an earlier batch of that day) and rebuild raw.parquet "
            "as the union of the batches. Without it: the whole history as one "
            "snapshot.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --date: replace a day that validate already accepted.",
        ),
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Read this parquet file (in the raw table's format) instead of "
            "the dataset, e.g. a day's delivery with --date; it is stored as it "
            "is, for validate to judge.",
        ),
    ] = None,
) -> None:
    """Store the raw data: the whole history, or one day's batch (--date).

    Example: loopml ingest -w demand --date 2025-02-04
    """
    day = _parse_day(date)
    if force and day is None:
        raise typer.BadParameter("only applies with --date", param_hint="--force")
    if file is not None and not file.is_file():
        what = "is a folder, not a parquet file" if file.is_dir() else "does not exist"
        raise typer.BadParameter(f"{file} {what}", param_hint="--file")
    name = _workload(workload)
    settings = _settings([name], dataset=dataset, data_path=data_path)
    if day is None and file is None:
        _run_stage("ingest", settings, name)
        return
    from loopml.stages import ingest as ingest_stage

    result = _call_stage(
        "ingest",
        lambda: ingest_stage.run(settings, name, day=day, force=force, source=file),
    )
    console.print(f"[green]ingest[/green] {name}: {result.summary}")


@app.command()
def validate(workload: WorkloadOpt = None) -> None:
    """Check the raw data; on failure quarantine it, report, and exit 1.

    Example: loopml validate -w recsys
    """
    name = _workload(workload)
    _run_stage("validate", _settings([name]), name)


features_app = typer.Typer(
    help="Publish validated data to the Feast feature store (offline tables, "
    "definitions, online store up to the latest validated day; part of "
    "`loopml run`), or `push` a fresh event to the online store.\n\n"
    "Example: loopml features -w recsys",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(features_app, name="features")


@features_app.callback()
def features(ctx: typer.Context, workload: WorkloadOpt = None) -> None:
    """Apply the workload's Feast definitions and materialize the online store.

    Writes the offline tables under <home>/feature_store/data, applies the
    entities and feature views, and loads the online store (SQLite by default,
    Redis in production) up to the latest validated day, incrementally after
    the first run. `loopml run` does this between validate and train.

    Example: loopml features -w recsys
    """
    if ctx.invoked_subcommand is None:
        name = _workload(workload)
        _run_stage("features", _settings([name]), name)
    else:
        ctx.obj = workload


@features_app.command("push")
def features_push(
    ctx: typer.Context,
    fields: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="The event's fields, e.g. demand: store_id=S01 item_id=I001 "
            "sales=12; recsys: user_id=U0001 item_id=C001 interactions=2.",
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            metavar="ISO-TIME",
            help="Event time, e.g. 2026-01-02T14:00 (UTC); default now.",
        ),
    ] = None,
) -> None:
    """Push a live event to the workload's online store now (its push source).

    Give -w before `push` (`loopml features -w recsys push ...`). demand:
    today's sales so far of one series; the next `/v1/demand/predict` for it
    reports them as `sales_today`, without waiting for the daily batch.
    recsys: a user's interactions today so far and their latest item.

    Example: loopml features -w demand push store_id=S01 item_id=I001 sales=12
    """
    import datetime as dt

    try:
        when = dt.datetime.now(dt.UTC) if at is None else dt.datetime.fromisoformat(at)
    except ValueError as error:
        raise typer.BadParameter(
            f"{at!r} is not a time like 2026-01-02T14:00", param_hint="--at"
        ) from error
    pairs = dict(f.partition("=")[::2] for f in fields)
    if any("=" not in f for f in fields):
        raise typer.BadParameter("give fields as KEY=VALUE", param_hint="KEY=VALUE")
    name = _workload(ctx.obj)
    settings = _settings([name])
    import pandas as pd

    from loopml.sdk.capabilities import MissingCapabilityError, require
    from loopml.sdk.feast import open_store
    from loopml.sdk.workload import get_workload

    try:
        views = require(get_workload(name), "feature_views")
        if views.push_source is None:
            raise MissingCapabilityError(f"{name} has no push source: nothing to do")
        row = views.push_row(pairs, pd.Timestamp(when))
    except (MissingCapabilityError, ValueError) as error:
        raise _fail(str(error)) from error
    from feast.data_source import PushMode

    open_store(settings).push(views.push_source, row, to=PushMode.ONLINE)
    shown = ", ".join(f"{k}={v}" for k, v in pairs.items())
    console.print(f"[green]pushed[/green] {shown} to {views.push_source}")


@app.command()
def train(workload: WorkloadOpt = None) -> None:
    """Fit on validated data, log to MLflow, register as 'challenger'.

    Example: loopml train -w demand
    """
    name = _workload(workload)
    _run_stage("train", _settings([name]), name)


@app.command()
def evaluate(workload: WorkloadOpt = None) -> None:
    """Rolling-origin backtest of model and baseline; metrics go to MLflow.

    Example: loopml evaluate -w demand
    """
    name = _workload(workload)
    _run_stage("evaluate", _settings([name]), name)


@app.command()
def promote(workload: WorkloadOpt = None) -> None:
    """Make the evaluated candidate 'champion' if it beats the bar; says why.

    Example: loopml promote -w demand
    """
    name = _workload(workload)
    _run_stage("promote", _settings([name]), name)


@app.command()
def batch(
    workload: WorkloadOpt = None,
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="The day the results are for (default: the day after the last "
            "validated interaction). Re-running a day replaces its results.",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            metavar="local|ray",
            help="local: one process; ray: Ray tasks, same results "
            "(default: batch.engine).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: a Ray cluster, e.g. ray://head:10001 "
            "(default: batch.ray_address, else tune.ray_address, else a local "
            "Ray)."
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --engine ray: worker processes, one CPU each "
            "(default: batch.ray_workers; empty: the cluster's CPUs).",
        ),
    ] = None,
) -> None:
    """Score every entity with the champion: the day's batch, stored.

    recsys: the top-k items of every known user; demand: the forecast of
    every series for every day of the horizon. Writes
    <home>/batch/<workload>/date=D.parquet and the workload's SQL table
    (SQLite at <home>/batch/<workload>.db; PostgreSQL in production), each
    replaced whole for the day. Needs a champion; a workload without a batch
    scorer has nothing to do. --engine ray spreads the blocks over Ray
    workers (a local Ray, or a cluster) and writes the same results.

    Example: loopml batch -w recsys --date 2025-08-30 --engine ray
    """
    day = _parse_day(date)
    workload = _workload(workload)
    settings = _settings([workload])
    if engine not in (None, "local", "ray"):
        raise typer.BadParameter("local or ray", param_hint="--engine")
    chosen = {
        "engine": engine,
        "ray_address": ray_address,
        "ray_workers": ray_workers,
    }
    if update := {key: value for key, value in chosen.items() if value is not None}:
        settings = settings.model_copy(
            update={"batch": settings.batch.model_copy(update=update)}
        )
    from loopml.stages import batch as batch_stage

    result = _call_stage(
        "batch", lambda: batch_stage.run(settings, workload, day, require_champion=True)
    )
    # Skipped only without a batch scorer: nothing to do is not a failure.
    colour = "yellow" if result.status == "skipped" else "green"
    console.print(f"[{colour}]batch[/{colour}] {workload}: {result.summary}")


@app.command()
def monitor(
    workload: WorkloadOpt = None,
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="The monitored day: the current window is the last "
            "monitor.window_days days up to it (default: the last validated day).",
        ),
    ] = None,
) -> None:
    """Compare the recent data with the champion's training data: drift, quality.

    Data drift per column (normed Wasserstein or PSI, thresholds in the
    `monitor:` settings), what the workload measures live (demand: prediction
    drift and live WAPE), missing data, the model's age. A workload without
    a monitor has nothing to do. Writes <home>/reports/<workload>/monitor-D.html and
    .json and <home>/state/<workload>/monitor.json (read by the service's
    /metrics). Drift posts one alert to LOOPML_ALERT_WEBHOOK_URL per incident
    and cool-down. Exits 0 when it ran, drift or not; 1 when it could not run.

    Example: loopml monitor -w demand --date 2025-02-03
    """
    day = _parse_day(date)
    workload = _workload(workload)
    settings = _settings([workload])
    from loopml.stages import monitor as monitor_stage

    result = _call_stage("monitor", lambda: monitor_stage.run(settings, workload, day))
    colour = "yellow" if result.status in ("drift", "skipped") else "green"
    console.print(f"[{colour}]monitor[/{colour}] {workload}: {result.summary}")


@app.command()
def tune(
    workload: WorkloadOpt = None,
    trials: Annotated[
        int | None,
        typer.Option(min=1, help="Number of trials (default: tune.num_samples)."),
    ] = None,
) -> None:
    """Search hyper-parameters with Ray Tune + Optuna; train/evaluate use the best.

    Trials run in parallel (one per CPU, or tune.max_concurrent), each a
    nested MLflow run under a '<workload>-tune' run; ASHA stops weak demand
    trials after a backtest fold. The best parameters go to
    <home>/state/<workload>/tuned.json, which the next train and evaluate
    read (delete it to go back to the profile's parameters).

    Example: loopml tune -w demand --trials 8
    """
    workload = _workload(workload)
    settings = _settings([workload])
    if trials is not None:
        cfg = settings.tune.model_copy(update={"num_samples": trials})
        settings = settings.model_copy(update={"tune": cfg})
    _run_stage("tune", settings, workload)


@app.command()
def rollback(
    workload: WorkloadOpt = None,
    to_version: Annotated[
        str | None,
        typer.Option(
            "--to-version",
            help="Registered version to make champion (default: the champion "
            "before the current one, from `loopml history`).",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why, for the history (default: manual).")
    ] = None,
) -> None:
    """Point 'champion' back at the previous champion, in one registry update.

    The running service follows at its next poll (serving.poll_seconds) or at
    once on POST /admin/reload; the rollback is recorded in `loopml history`.

    Example: loopml rollback -w demand --reason "bad forecasts"
    """
    from loopml.stages import rollback as rollback_stage

    workload = _workload(workload)
    settings = _settings([workload])
    result = _call_stage(
        "rollback", lambda: rollback_stage.run(settings, workload, to_version, reason)
    )
    console.print(f"[green]rollback[/green] {workload}: {result.summary}")


@app.command()
def retrain(
    workload: WorkloadOpt = None,
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="The day to decide for: the monitor report of that day (or the "
            "latest before it), the model's age and the cool-down are judged "
            "then (default: the last validated day).",
        ),
    ] = None,
) -> None:
    """Retrain if the policy says so: drift, live metric decay, age or schedule.

    Reads the `retrain:` settings and the latest `loopml monitor` report on
    the champion. Triggers: drift (a column or the predictions over the
    monitor's thresholds), performance (live metric retrain.max_metric_ratio
    times worse than the backtest), age (data older than
    retrain.max_age_days), schedule (retrain.every_days); drift and
    performance wait out retrain.cooldown_days after a retrain. When one
    fires: features, train, evaluate and promote, as in `loopml run`; the
    triggers and the gate's decision go to the MLflow run and version tags,
    `loopml history` and <home>/state/<workload>/retrain.jsonl. No trigger:
    says why, changes nothing, exits 0. A failed stage exits 1 and leaves
    the champion as it was.

    Example: loopml retrain -w demand --date 2025-03-01
    """
    day = _parse_day(date)
    workload = _workload(workload)
    settings = _settings([workload])
    from loopml.stages import retrain as retrain_stage

    result = _call_stage("retrain", lambda: retrain_stage.run(settings, workload, day))
    if result.status == "skipped":
        console.print(f"[green]retrain[/green] {workload}: {result.summary}")
        return
    colour = "green" if result.status == "ok" else "yellow"
    console.print(f"[{colour}]retrain[/{colour}] {workload}: {result.summary}")


@app.command()
def replay(
    workload: WorkloadOpt = None,
    days: Annotated[
        int, typer.Option(min=1, help="How many days after the history to replay.")
    ] = 30,
    drift_from: Annotated[
        int | None,
        typer.Option(
            "--drift-from",
            min=1,
            help="Replay day (1 = the first) from which the source drifts, when "
            "its day source can (demand: level x1.6 and the weekly pattern "
            "shifted by three days).",
        ),
    ] = None,
) -> None:
    """Live N new days one by one: ingest, score, monitor, retrain.

    Starts from the home's champion (without one, runs the whole loop on the
    history first). Each day after the last validated one comes from the
    workload's day source, is ingested as a daily batch and validated, what a
    daily job would answer is logged (demand: the next-day forecasts), `loopml
    monitor` judges the day and `loopml retrain` applies the policy. Prints
    the per-day table (drift, trigger, decision) and writes it to
    <home>/reports/<workload>/replay-*.json and .md. Needs a day source
    (generated data has days after its end; a real dataset does not).

    Example: loopml replay -w demand --days 30 --drift-from 15
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from loopml.core.errors import StageError
    from loopml.orchestration import replay as replay_mod

    if drift_from is not None and drift_from > days:
        raise typer.BadParameter(
            f"must be at most --days ({days})", param_hint="--drift-from"
        )
    workload = _workload(workload)
    settings = _settings([workload])
    columns = (
        TextColumn("[bold]replay[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=days)

        def advance(day: replay_mod.ReplayDay) -> None:
            progress.update(
                task,
                advance=1,
                description=f"{day.date} drift {day.drift_share or 0:.2f} "
                f"{day.decision}",
            )

        try:
            report = replay_mod.run(
                settings, workload, days, drift_from, on_day=advance
            )
        except (StageError, ValueError, FileNotFoundError) as error:
            progress.stop()
            err_console.print(f"[red]replay failed:[/red] {error}")
            raise typer.Exit(1) from error
    header = ["day", "date", "input", "drift share", "largest score", "drifted"]
    header += ["live ratio (n)", "trigger", "decision", "champion"]
    rows = [
        (
            str(d.day),
            d.date,
            "drifted" if d.drifted_input else "-",
            "-" if d.drift_share is None else f"{d.drift_share:.2f}",
            d.top_score,
            ", ".join(d.drifted) or "-",
            "-" if d.live_ratio is None else f"{d.live_ratio:.2f} ({d.live_n})",
            d.trigger,
            d.decision,
            f"v{d.champion}",
        )
        for d in report.days
    ]
    _print_rows(f"replay: {days} days from {report.first_date}", header, rows)
    console.print(
        f"{len(report.retrains)} retrain(s) in {report.seconds:.0f} s; "
        f"report: {report.paths['md']} (and .json); see `loopml history -w {workload}`."
    )


@app.command()
def run(
    workload: WorkloadsOpt = None,
    dataset: DatasetOpt = None,
    data_path: DataPathOpt = None,
    tune_first: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune hyper-parameters (loopml tune) before train, even when "
            "parameters tuned on this data version exist.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Retrain even when data, parameters, code and lock are those "
            "of the current champion or challenger (else train, evaluate and "
            "promote are skipped).",
        ),
    ] = False,
) -> None:
    """Run the whole loop, from ingest to batch scoring and monitoring.

    Stages: ingest, validate, features, tune (`tune.in_run`: once per data
    version, then its parameters are reused), train, evaluate, promote,
    batch, monitor (`monitor.in_run`). Each workload stops at its first
    failed stage; the others go on. With --dataset, the workloads that read that
    dataset run on it (online-retail: demand and recsys).

    Example: loopml run -w recsys --dataset movielens --data-path ml-100k/
    """
    from loopml.monitoring.status import collect
    from loopml.orchestration.runner import run_loop
    from loopml.stages.runner import TimedResult

    settings = _settings(
        _workloads(workload), dataset, data_path, strict=bool(workload)
    )
    names = _State.names

    def progress(timed: TimedResult) -> None:
        colour = "red" if timed.result.status == "failed" else "green"
        console.print(
            f"[{colour}]{timed.result.stage:<9}[/{colour}] {timed.result.workload}: "
            f"{timed.result.summary} ({timed.seconds:.1f}s)"
        )

    with _working("starting") as show:
        results = run_loop(
            settings,
            names,
            on_stage=progress,
            tune_first=tune_first,
            force=force,
            on_start=lambda stage, w: show(f"{stage} {w}"),
        )
    status = collect(settings)
    table = Table(title="loopml run")
    for column in ("workload", "stage", "status", "seconds", "key metrics"):
        table.add_column(column)
    for timed in results:
        res = timed.result
        metrics = ", ".join(f"{k}={_number(v, k)}" for k, v in res.metrics.items())
        table.add_row(
            res.workload, res.stage, res.status, f"{timed.seconds:.1f}", metrics
        )
    console.print(table)
    for name in names:
        champion = status["workloads"][name]["champion"]
        shown = f"version {champion['version']}" if champion else "none yet"
        console.print(f"[bold]{name} champion:[/bold] {shown}")
    console.print(
        f"Look next: [bold]make ui[/bold] (MLflow at {settings.tracking_uri}), "
        "[bold]make serve[/bold] (API docs at http://127.0.0.1:"
        f"{settings.serving.port}/docs), [bold]loopml status[/bold]; "
        f"logs in {settings.home / 'logs'}."
    )
    if any(t.result.status == "failed" for t in results):
        raise typer.Exit(1)


@app.command()
def workloads(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON.")
    ] = False,
    dvc: Annotated[
        bool,
        typer.Option(
            "--dvc",
            help="Print the DVC pipeline of the registered workloads "
            "(loopml workloads --dvc > dvc.yaml).",
        ),
    ] = False,
) -> None:
    """List the registered workloads and the capabilities each declares.

    Workloads are entry points of the `loopml.workloads` group (a project
    made by `loopml new` registers its own) or LOOPML_PLUGINS items. The
    Airflow DAG file reads `loopml workloads --json`; dvc.yaml is
    `loopml workloads --dvc`.

    Example: loopml workloads --json
    """
    if dvc:
        from loopml.orchestration.dvc_pipeline import render

        sys.stdout.write(render(Path.cwd()))
        return
    from loopml.core.plugins import registered
    from loopml.sdk.capabilities import CAPABILITIES
    from loopml.sdk.workload import Workload, get_workload

    rows: list[dict[str, Any]] = []
    for name, target in registered().items():
        try:
            found = get_workload(name)
        except Exception as error:  # a broken plug-in must not hide the others
            rows.append({"name": name, "entry_point": target, "error": str(error)})
            continue
        rows.append(
            {
                "name": name,
                "entry_point": target,
                "description": found.description,
                "primary_metric": found.primary_metric,
                "higher_is_better": found.higher_is_better,
                "time_column": found.batch_spec.time_column,
                "capabilities": [
                    cap for cap in CAPABILITIES if getattr(found, cap)() is not None
                ]
                # `loopml tune` (and `run`'s tune stage): a search space declared
                + (
                    ["tuning"]
                    if type(found).search_space is not Workload.search_space
                    else []
                ),
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="registered workloads")
    for column in ("workload", "primary metric", "capabilities", "entry point"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row.get("primary_metric", "-"),
            ", ".join(row.get("capabilities", [])) or row.get("error", "-"),
            row["entry_point"],
        )
    console.print(table)


@app.command()
def status(
    workload: WorkloadsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON.")
    ] = False,
    card: Annotated[
        str | None,
        typer.Option(
            "--card",
            metavar="WORKLOAD",
            help="Print the model card (Markdown) of that workload's champion.",
        ),
    ] = None,
) -> None:
    """Show each workload's champion, its key metrics and the last run.

    Example: loopml status -w demand --json
    """
    from loopml.monitoring.status import collect

    if card is not None:
        _print_card(_workload(card))
        return
    names = _workloads(workload)
    doc = collect(_settings(), names)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return
    table = Table(title=f"loopml status ({doc['profile']})")
    for column in ("workload", "champion", "metrics", "data version", "last run"):
        table.add_column(column)
    for name, info in doc["workloads"].items():
        champ = info["champion"]
        last = info["last_run"]
        table.add_row(
            name,
            champ["version"] if champ else "-",
            ", ".join(f"{k}={_number(v, k)}" for k, v in champ["metrics"].items())
            if champ
            else "-",
            (champ["data_version"] or "-")[:12] if champ else "-",
            f"{last['finished']} ({'ok' if last['ok'] else 'failed'})" if last else "-",
        )
    console.print(table)


def _print_card(workload: str) -> None:
    from loopml.models.card import read_card
    from loopml.models.registry import CHAMPION, get_alias
    from loopml.models.tracking import setup_mlflow

    setup_mlflow(_settings())
    champion = get_alias(workload, CHAMPION)
    text = read_card(champion) if champion is not None else None
    if text is None:
        err_console.print(
            f"[red]{workload} has no champion with a model card yet[/red]"
        )
        raise typer.Exit(1)
    sys.stdout.write(text)


@app.command()
def history(workload: WorkloadOpt = None) -> None:
    """Print the promotion history: who, when, from/to version, and why.

    Example: loopml history -w demand
    """
    from loopml.models.registry import read_history

    workload = _workload(workload)
    settings = _settings([workload])
    columns = ("when", "who", "action", "from", "to", "reason")
    rows = [
        (d.when, d.who, d.action, d.from_version or "-", d.to_version or "-", d.reason)
        for d in read_history(settings.state_dir(workload) / "history.jsonl")
    ]
    _print_rows(f"{workload} promotion history", columns, rows)


@app.command()
def serve(
    workload: WorkloadsOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Port, 0..65535 (0 = any free; the URL says which)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Serve the same app as a Ray Serve deployment (local Ray, or "
            "the cluster at tune.ray_address / --ray-address) instead of uvicorn.",
        ),
    ] = False,
    replicas: Annotated[
        int, typer.Option(min=1, help="With --ray: replicas of the app.")
    ] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(help="With --ray: a Ray cluster (e.g. ray://head:10001)."),
    ] = None,
) -> None:
    """Serve the champion models over HTTP (FastAPI; docs at /docs).

    Prints the URL at once and "ready" when the champions are loaded. One
    machine: uvicorn with --workers N (no proxy hop). Several machines:
    --ray runs the same app as replicas behind Ray Serve's proxy (Ctrl-C or
    SIGTERM stops Serve, then Ray).

    Example: loopml serve -w demand --port 8000
    """
    import uvicorn

    names = _workloads(workload)
    if workload:
        # The app is built in uvicorn's (or Ray's) own process, from the
        # environment: pass the choice there.
        os.environ["LOOPML_SERVING__WORKLOADS"] = json.dumps(names)
    settings = _settings()
    # uvicorn's workers build their settings from the environment: the home
    # chosen here (--home, or one home per dataset) must reach them too.
    os.environ["LOOPML_HOME"] = str(settings.home)
    if ray:
        from loopml.serving.ray_serve import serve_on_ray

        if ray_address:
            settings = settings.model_copy(
                update={
                    "tune": settings.tune.model_copy(
                        update={"ray_address": ray_address}
                    )
                }
            )
        serve_on_ray(
            settings,
            host or settings.serving.host,
            settings.serving.port if port is None else port,
            replicas,
        )
        return
    bind_host = host or settings.serving.host
    sock = _bind(bind_host, settings.serving.port if port is None else port)
    url = f"http://{_shown_host(bind_host)}:{sock.getsockname()[1]}"
    console.print(f"serving on [bold]{url}[/bold] (API docs at {url}/docs)")
    threading.Thread(target=_announce_ready, args=(url,), daemon=True).start()
    uvicorn.run(
        "loopml.serving.app:worker_app",
        factory=True,
        fd=sock.fileno(),
        workers=workers,
        log_level="warning",
        # Below the level shown anyway; uvicorn would still build each line.
        access_log=False,
        # uvicorn takes an inherited descriptor for a Unix socket: set
        # TCP_NODELAY itself, or keep-alive answers wait ~40 ms for an ACK.
        http="loopml.serving.nodelay:NoDelayHttpToolsProtocol",
    )


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); exit 2 if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise _fail(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _shown_host(host: str) -> str:
    """The host to put in a URL (a wildcard address means this machine)."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _announce_ready(url: str, seconds: float = 600) -> None:
    """Print "ready" (and what is served) once /readyz answers 200."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.status_code == 200:
            models = answer.json().get("models") or {}
            shown = ", ".join(f"{k} v{v}" for k, v in models.items()) or "-"
            console.print(f"[green]ready[/green]: {shown}")
            return
        time.sleep(0.5)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the active tracking store.

    Example: loopml ui --port 5001
    """
    settings = _settings()
    mlflow_bin = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    console.print(f"MLflow UI on http://127.0.0.1:{port} ({settings.tracking_uri})")
    args = [
        mlflow_bin,
        "ui",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.artifact_root.as_uri(),
        "--port",
        str(port),
    ]
    os.execv(mlflow_bin, args)


@app.command()
def new(
    name: Annotated[
        str,
        typer.Argument(
            help="Project name (the folder is its slug: 'My Shop' -> my-shop); "
            "with --workload-only, the workload name."
        ),
    ],
    workload_only: Annotated[
        bool,
        typer.Option(
            "--workload-only",
            help="Add workload NAME to the existing project in -o (default: .).",
        ),
    ] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="No prompts: options and defaults.")
    ] = False,
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o", help="Where the project goes (or the project)."
        ),
    ] = Path("."),
    first_workload: Annotated[
        str | None,
        typer.Option(
            "--workload", help="The project's first workload (default: its package)."
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="Kind of workload the template makes: 'regression' (delivery "
            "times; MAE) or 'classification' (churn; calibrated probability "
            "and label, ROC AUC)."
        ),
    ] = "regression",
    ci: Annotated[
        str, typer.Option(help="CI files to keep: github, gitlab or none.")
    ] = "github",
) -> None:
    """Start a project that runs on loopml (cookiecutter), or add a workload to one.

    Example: loopml new shop --no-input -o ~/projects
    """
    from loopml.devtools import scaffold

    if not no_input and not sys.stdin.isatty():
        err_console.print(
            "[red]loopml new failed:[/red] no terminal to answer its questions: "
            "pass --no-input (the defaults and the name given) or run it in a terminal"
        )
        raise typer.Exit(2)
    try:
        if workload_only:
            made = scaffold.new_workload(name, output_dir, no_input=no_input, kind=kind)
            console.print(f"[green]added[/green] workload {name} in {made}")
            console.print("Next: make setup (registers it), make test, make run")
            return
        made = scaffold.new_project(
            name,
            output_dir,
            no_input=no_input,
            workload=first_workload,
            kind=kind,
            ci=ci,
        )
    except scaffold.ScaffoldError as error:  # a mistake: 2; a failure: 1
        err_console.print(f"[red]loopml new failed:[/red] {error}")
        failed = isinstance(error, scaffold.ScaffoldFailedError)
        raise typer.Exit(1 if failed else 2) from error
    console.print(f"[green]created[/green] {made}")
    console.print(f"Next: cd {made} && make test && make run")


#: Exceptions that mean the user asked for something that cannot be done.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    LookupError,
    PermissionError,
)


def main() -> None:
    """The ``loopml`` command: one line for a mistake, the trace with --verbose.

    A usage error (unknown option, a value out of range) is one line naming
    the command's ``--help`` (exit 2). Anything a command raises is printed
    as one line, its type and message, with the trace in the log file:
    exit 2 for what the user can fix (a bad value, a missing file, an unknown
    name), 1 for a failure. ``--verbose`` re-raises, showing the trace.
    """
    from typer._click.exceptions import ClickException, UsageError

    try:
        # Not standalone: click's usage errors come here and print one line.
        code = app(prog_name="loopml", standalone_mode=False)
    except UsageError as error:
        where = error.ctx.command_path if error.ctx else "loopml"
        if not error.format_message().strip():  # no command: the help was shown
            raise SystemExit(error.exit_code) from None
        err_console.print(
            f"[red]error:[/red] {error.format_message()} (see `{where} --help`)",
            markup=True,
            highlight=False,
        )
        raise SystemExit(error.exit_code) from None
    except ClickException as error:
        err_console.print(
            f"[red]error:[/red] {error.format_message()}", markup=True, highlight=False
        )
        raise SystemExit(error.exit_code) from None
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        raise SystemExit(130) from None
    except Exception as error:
        if _State.verbose:
            raise
        import logging

        # The trace goes to the log file only (the console shows warnings up).
        logging.getLogger("loopml.cli").info("command failed", exc_info=error)
        kind = "error" if isinstance(error, USER_ERRORS) else type(error).__name__
        err_console.print(
            f"[red]{kind}:[/red] {error} (run with --verbose for the trace)",
            markup=True,
            highlight=False,
        )
        raise SystemExit(2 if isinstance(error, USER_ERRORS) else 1) from None
    # Native thread pools (Arrow's, DuckDB's) torn down during the
    # interpreter's final clean-up can abort the process ("terminate called
    # without an active exception", apache/arrow#34314): collect at exit,
    # before that clean-up, while the libraries are whole. At exit, not
    # here: a caller that runs commands in its own process (tests, a
    # notebook) would pay a full collection of its heap per command.
    import atexit
    import gc

    atexit.unregister(gc.collect)  # once, however many commands ran
    atexit.register(gc.collect)
    if code == 130:  # typer turns Ctrl-C into Exit(130) before it reaches us
        import logging

        logging.getLogger("loopml.cli").info("interrupted (Ctrl-C)")  # the file
        err_console.print("interrupted")
    # As click's standalone mode: always exit, with typer.Exit's code if any.
    raise SystemExit(
        code if isinstance(code, int) and not isinstance(code, bool) else 0
    )


if __name__ == "__main__":  # pragma: no cover
    main()
