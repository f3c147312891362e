"""The ``loopml`` command line: one command per stage, plus run, serve and ui.

Every stage reads and writes stored artefacts under the home folder, MLflow
and the registry, so any command can be run alone, by a person, DVC, Airflow
or CI.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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
console = Console()
err_console = Console(stderr=True)

WorkloadOpt = Annotated[
    str, typer.Option("--workload", "-w", help="Workload to act on: demand or recsys.")
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        help="Data source: 'generated' (seeded generator), 'online-retail' "
        "(UCI Online Retail parquet) or 'bike-sharing' (UCI Bike Sharing "
        "day.csv); see --data-path. 'generated' and 'online-retail' apply to "
        "both workloads, 'bike-sharing' to demand only.",
    ),
]
#: --dataset values the recsys workload reads as well as demand.
RECSYS_DATASETS = ("generated", "online-retail")
DataPathOpt = Annotated[
    Path | None,
    typer.Option(
        help="File to read for a real dataset; defaults, under "
        "../shared/datasets/: online_retail/online_retail.parquet and "
        "bike_sharing/day.csv.",
    ),
]


class _State:
    """Options given before the command (the profile)."""

    profile: str | None = None
    verbose: bool = False


def _settings(**demand: Any) -> Settings:
    from loopml.core.params import apply_params_file

    overrides = {k: v for k, v in demand.items() if v is not None}
    kwargs: dict[str, Any] = {"demand": overrides} if overrides else {}
    # A dataset both workloads can read (online-retail) applies to recsys too.
    if overrides.get("dataset") in RECSYS_DATASETS:
        kwargs["recsys"] = overrides
    try:
        # LOOPML_PARAMS_FILE (set by dvc.yaml) lays params.yaml under the options.
        kwargs = apply_params_file(kwargs)
        settings = load_settings(_State.profile, **kwargs)
    except (ValueError, FileNotFoundError) as error:
        err_console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from error
    configure_environment(settings.home)
    setup_logging(
        settings.home,
        settings.log_level,
        json_lines=settings.log_json,
        production=settings.profile == "production",
        console_level="INFO" if _State.verbose else "WARNING",
    )
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

    try:
        with stage_context(name):
            return call()
    except (StageError, ValueError, FileNotFoundError) as error:
        err_console.print(f"[red]{name} failed:[/red] {error}")
        raise typer.Exit(1) from error


def _run_stage(name: str, settings: Settings, workload: str) -> None:
    from loopml.core.errors import StageError
    from loopml.orchestration.runner import run_stage

    try:
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
def main(
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
            help="Show INFO logs on the console too "
            "(they always go to <home>/logs/loopml.log).",
        ),
    ] = False,
) -> None:
    """Choose the profile (and verbosity) for the command that follows."""
    _State.profile = profile
    _State.verbose = verbose


@app.command()
def ingest(
    workload: WorkloadOpt = "demand",
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
    """Store the raw data: the whole history, or one day's batch (--date)."""
    day = _parse_day(date)
    if force and day is None:
        raise typer.BadParameter("only applies with --date", param_hint="--force")
    settings = _settings(dataset=dataset, data_path=data_path)
    if day is None and file is None:
        _run_stage("ingest", settings, workload)
        return
    from loopml.stages import ingest as ingest_stage

    result = _call_stage(
        "ingest",
        lambda: ingest_stage.run(settings, workload, day=day, force=force, source=file),
    )
    console.print(f"[green]ingest[/green] {workload}: {result.summary}")


@app.command()
def validate(workload: WorkloadOpt = "demand") -> None:
    """Check the raw data; on failure quarantine it, report, and exit 1."""
    _run_stage("validate", _settings(), workload)


features_app = typer.Typer(
    help="Publish validated data to the Feast feature store (offline tables, "
    "definitions, online store up to the latest validated day; part of "
    "`loopml run`), or `push` a fresh event to the online store.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(features_app, name="features")


@features_app.callback()
def features(ctx: typer.Context, workload: WorkloadOpt = "demand") -> None:
    """Apply the workload's Feast definitions and materialize the online store.

    Writes the offline tables under <home>/feature_store/data, applies the
    entities and feature views, and loads the online store (SQLite by default,
    Redis in production) up to the latest validated day, incrementally after
    the first run. `loopml run` does this between validate and train.
    """
    if ctx.invoked_subcommand is None:
        _run_stage("features", _settings(), workload)


@features_app.command("push")
def features_push(
    item_id: Annotated[str, typer.Option(help="Item of the series or interaction.")],
    workload: WorkloadOpt = "demand",
    store_id: Annotated[
        str | None, typer.Option(help="demand: store of the series.")
    ] = None,
    sales: Annotated[
        float | None, typer.Option(min=0, help="demand: sales of the day so far.")
    ] = None,
    user_id: Annotated[str | None, typer.Option(help="recsys: the user.")] = None,
    interactions: Annotated[
        float,
        typer.Option(min=1, help="recsys: the user's interactions today so far."),
    ] = 1,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="ISO-TIME",
            help="Event time, e.g. 2026-01-02T14:00 (UTC); default now.",
        ),
    ] = None,
) -> None:
    """Push a live event to the online store now.

    demand (--store-id, --item-id, --sales): today's sales so far of one
    series; the next `/v1/demand/predict` for it reports them as
    `sales_today`, without waiting for the daily batch. recsys (--user-id,
    --item-id, --interactions): the user's interactions today so far and the
    latest item (`recsys_user_today`).
    """
    try:
        when = None if at is None else dt.datetime.fromisoformat(at)
    except ValueError as error:
        raise typer.BadParameter(
            f"{at!r} is not a time like 2026-01-02T14:00", param_hint="--at"
        ) from error
    if workload not in ("demand", "recsys"):
        raise typer.BadParameter("push supports demand and recsys", param_hint="-w")
    settings = _settings()
    from loopml.feature_store.online import OnlineFeatures

    if workload == "recsys":
        if user_id is None:
            raise typer.BadParameter("recsys needs --user-id", param_hint="--user-id")
        OnlineFeatures(settings).push_interactions(user_id, item_id, interactions, when)
        console.print(
            f"[green]pushed[/green] interactions_today={interactions:g} for "
            f"{user_id} ({item_id})"
        )
        return
    if store_id is None or sales is None:
        raise typer.BadParameter(
            "demand needs --store-id and --sales", param_hint="--store-id"
        )
    OnlineFeatures(settings).push_sales(store_id, item_id, sales, when)
    console.print(
        f"[green]pushed[/green] sales_today={sales:g} for {store_id}/{item_id}"
    )


@app.command()
def train(workload: WorkloadOpt = "demand") -> None:
    """Fit on validated data, log to MLflow, register as 'challenger'."""
    _run_stage("train", _settings(), workload)


@app.command()
def evaluate(workload: WorkloadOpt = "demand") -> None:
    """Rolling-origin backtest of model and baseline; metrics go to MLflow."""
    _run_stage("evaluate", _settings(), workload)


@app.command()
def promote(workload: WorkloadOpt = "demand") -> None:
    """Make the evaluated candidate 'champion' if it beats the bar; says why."""
    _run_stage("promote", _settings(), workload)


@app.command()
def batch(
    workload: WorkloadOpt = "recsys",
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="The day the results are for (default: the day after the last "
            "validated interaction). Re-running a day replaces its results.",
        ),
    ] = None,
) -> None:
    """Score every known user with the champion: the day's top-k, stored.

    Writes <home>/batch/<workload>/date=D.parquet and the SQL table
    `recommendations` (SQLite at <home>/batch/<workload>.db; PostgreSQL in
    production), each replaced whole for the day. Needs a champion.
    """
    day = _parse_day(date)
    settings = _settings()
    from loopml.stages import batch as batch_stage

    result = _call_stage(
        "batch", lambda: batch_stage.run(settings, workload, day, require_champion=True)
    )
    console.print(f"[green]batch[/green] {workload}: {result.summary}")


@app.command()
def monitor(
    workload: WorkloadOpt = "demand",
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
    `monitor:` settings), prediction drift and live WAPE (demand), missing
    data, the model's age. Writes <home>/reports/<workload>/monitor-D.html and
    .json and <home>/state/<workload>/monitor.json (read by the service's
    /metrics). Drift posts one alert to LOOPML_ALERT_WEBHOOK_URL per incident
    and cool-down. Exits 0 when it ran, drift or not; 1 when it could not run.
    """
    day = _parse_day(date)
    settings = _settings()
    from loopml.stages import monitor as monitor_stage

    result = _call_stage("monitor", lambda: monitor_stage.run(settings, workload, day))
    colour = "yellow" if result.status == "drift" else "green"
    console.print(f"[{colour}]monitor[/{colour}] {workload}: {result.summary}")


@app.command()
def tune(
    workload: WorkloadOpt = "demand",
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
    """
    settings = _settings()
    if trials is not None:
        cfg = settings.tune.model_copy(update={"num_samples": trials})
        settings = settings.model_copy(update={"tune": cfg})
    _run_stage("tune", settings, workload)


@app.command()
def rollback(
    workload: WorkloadOpt = "demand",
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
    """
    from loopml.stages import rollback as rollback_stage

    settings = _settings()
    result = _call_stage(
        "rollback", lambda: rollback_stage.run(settings, workload, to_version, reason)
    )
    console.print(f"[green]rollback[/green] {workload}: {result.summary}")


@app.command()
def retrain(
    workload: WorkloadOpt = "demand",
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
    """
    day = _parse_day(date)
    settings = _settings()
    from loopml.stages import retrain as retrain_stage

    result = _call_stage("retrain", lambda: retrain_stage.run(settings, workload, day))
    if result.status == "skipped":
        console.print(f"[green]retrain[/green] {workload}: {result.summary}")
        return
    colour = "green" if result.status == "ok" else "yellow"
    console.print(f"[{colour}]retrain[/{colour}] {workload}: {result.summary}")


@app.command()
def replay(
    workload: Annotated[
        str,
        typer.Option(
            "--workload", "-w", help="Workload to replay: demand (its generator)."
        ),
    ] = "demand",
    days: Annotated[
        int, typer.Option(min=1, help="How many days after the history to replay.")
    ] = 30,
    drift_from: Annotated[
        int | None,
        typer.Option(
            "--drift-from",
            min=1,
            help="Replay day (1 = the first) from which the generated data drifts: "
            "demand level x1.6 and the weekly pattern shifted by three days.",
        ),
    ] = None,
) -> None:
    """Live N generated days one by one: ingest, score, monitor, retrain.

    Starts from the home's champion (without one, runs the whole loop on the
    history first). Each day after the last validated one is ingested as a
    daily batch and validated, the champion's next-day forecasts are logged
    (a daily batch job), `loopml monitor` judges the day and `loopml
    retrain` applies the policy. Prints the per-day table (drift, trigger,
    decision) and writes it to <home>/reports/demand/replay-*.json and .md.
    Only the generated demand dataset can be replayed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from loopml.core.errors import StageError
    from loopml.orchestration import replay as replay_mod

    if workload != "demand":
        raise typer.BadParameter("only demand can be replayed", param_hint="--workload")
    if drift_from is not None and drift_from > days:
        raise typer.BadParameter(
            f"must be at most --days ({days})", param_hint="--drift-from"
        )
    settings = _settings()
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
            report = replay_mod.run(settings, days, drift_from, on_day=advance)
        except (StageError, ValueError, FileNotFoundError) as error:
            progress.stop()
            err_console.print(f"[red]replay failed:[/red] {error}")
            raise typer.Exit(1) from error
    table = Table(title=f"replay: {days} days from {report.first_date}")
    for column in ("day", "date", "input", "drift share", "largest score"):
        table.add_column(column)
    for column in ("drifted", "live ratio (n)"):
        table.add_column(column)
    for column in ("trigger", "decision", "champion"):
        table.add_column(column)
    for d in report.days:
        table.add_row(
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
    console.print(table)
    console.print(
        f"{len(report.retrains)} retrain(s) in {report.seconds:.0f} s; "
        f"report: {report.paths['md']} (and .json); see `loopml history -w demand`."
    )


@app.command()
def run(
    workload: Annotated[
        list[str] | None,
        typer.Option("--workload", "-w", help="Workloads to run (default: all)."),
    ] = None,
    dataset: DatasetOpt = None,
    data_path: DataPathOpt = None,
    tune_first: Annotated[
        bool,
        typer.Option(
            "--tune", help="Tune hyper-parameters (loopml tune) before train."
        ),
    ] = False,
) -> None:
    """Run the whole loop, from ingest to batch scoring and monitoring.

    Stages: ingest, validate, features, train, evaluate, promote, batch,
    monitor (`monitor.in_run`). Each workload stops at its first failed
    stage; the others go on. With --dataset online-retail both workloads
    read the UCI Online Retail file.
    """
    from loopml.monitoring.status import collect
    from loopml.orchestration.runner import TimedResult, run_loop
    from loopml.sdk.workload import WORKLOADS

    settings = _settings(dataset=dataset, data_path=data_path)
    names = workload or list(WORKLOADS)

    def progress(timed: TimedResult) -> None:
        colour = "red" if timed.result.status == "failed" else "green"
        console.print(
            f"[{colour}]{timed.result.stage:<9}[/{colour}] {timed.result.workload}: "
            f"{timed.result.summary} ({timed.seconds:.1f}s)"
        )

    results = run_loop(settings, names, on_stage=progress, tune_first=tune_first)
    status = collect(settings)
    table = Table(title="loopml run")
    for column in ("workload", "stage", "status", "seconds", "key metrics"):
        table.add_column(column)
    for timed in results:
        res = timed.result
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in res.metrics.items())
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
def status(
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
    """Show each workload's champion, its key metrics and the last run."""
    from loopml.monitoring.status import collect

    if card is not None:
        _print_card(card)
        return
    doc = collect(_settings())
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
            ", ".join(f"{k}={v:.3f}" for k, v in champ["metrics"].items())
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
def history(workload: WorkloadOpt = "demand") -> None:
    """Print the promotion history: who, when, from/to version, and why."""
    from loopml.models.registry import read_history

    settings = _settings()
    table = Table(title=f"{workload} promotion history")
    for column in ("when", "who", "action", "from", "to", "reason"):
        table.add_column(column)
    for d in read_history(settings.state_dir(workload) / "history.jsonl"):
        table.add_row(
            d.when,
            d.who,
            d.action,
            d.from_version or "-",
            d.to_version or "-",
            d.reason,
        )
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (0 = any free).")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
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

    One machine: uvicorn with --workers N (no proxy hop). Several
    machines: --ray runs the same app as replicas behind Ray Serve's proxy.
    """
    import uvicorn

    settings = _settings()
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
    uvicorn.run(
        "loopml.serving.app:create_app",
        factory=True,
        host=host or settings.serving.host,
        port=settings.serving.port if port is None else port,
        workers=workers,
        log_level="warning",
    )


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the active tracking store."""
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
        str, typer.Option(help="Kind of workload the template makes.")
    ] = "regression",
    ci: Annotated[
        str, typer.Option(help="CI files to keep: github, gitlab or none.")
    ] = "github",
) -> None:
    """Start a project that runs on loopml (cookiecutter), or add a workload to one."""
    from loopml.devtools import scaffold

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
    except scaffold.ScaffoldError as error:
        err_console.print(f"[red]loopml new failed:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"[green]created[/green] {made}")
    console.print(f"Next: cd {made} && make test && make run")


if __name__ == "__main__":  # pragma: no cover
    app()
