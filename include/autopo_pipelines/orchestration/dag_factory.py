"""Build one Airflow DAG per pipeline config.

sensor -> list_files -> transform_file (mapped, one per batch of files,
``airflow.files_per_task``) -> aggregate_and_flush -> load_snapshot -> check_day

``processing`` chooses what the sensor waits for: ``whole_day``, every expected store
(or the cutoff); ``as_they_arrive``, nothing: a run goes on at once when files are new
or changed since the date's last run, and is skipped when none are.

Task bodies are a few lines: they resolve the business date and the
warehouse from Airflow's context into a :class:`~autopo_pipelines.day.Day` and
call that step's module in ``autopo_pipelines.day``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import warnings
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pendulum
from airflow.configuration import conf
from airflow.sdk import DAG, Param, PokeReturnValue, TriggerRule, get_current_context, task
from airflow.sdk.api.client import ServerResponseError

# Where airflow.sdk re-exports them from: its type stub (airflow/sdk/__init__.pyi) does not list them.
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowFailException, AirflowRuntimeError, AirflowSkipException

from autopo_pipelines import day_lock
from autopo_pipelines.config import PipelineConfig, default_config_dir, load_configs
from autopo_pipelines.dates import BusinessDateError, business_date_at, business_date_of
from autopo_pipelines.day import Day
from autopo_pipelines.day.checks import day_problems, outputs_are_stale
from autopo_pipelines.day.file_run import run_batch
from autopo_pipelines.day.listing import arrivals, list_day_batches, readiness
from autopo_pipelines.day.outputs import aggregate_day, load_day, row_accounting
from autopo_pipelines.day.state import FileTask
from autopo_pipelines.errors import ReferenceDataError
from autopo_pipelines.orchestration import alerts, metrics
from autopo_pipelines.orchestration.connections import WarehouseConnectionMissing, warehouse_conninfo
from autopo_pipelines.orchestration.data_root import data_layout
from autopo_pipelines.sources import SourceError
from autopo_pipelines.task_ids import TaskId
from autopo_pipelines.warehouse import LoadConnectionError, LoadError

log = logging.getLogger(__name__)


def business_date(config: PipelineConfig, context: Any) -> dt.date:
    """Run conf ``{"date": "YYYY-MM-DD"}`` (or the trigger form's param) wins; else the logical date in the
    pipeline's timezone (autopo_pipelines.dates). A conf date that is not a date fails the task at once."""
    dag_run = context["dag_run"]
    requested = (dag_run.conf or {}).get("date") or context["params"].get("date")
    try:
        return business_date_of(config, requested, context.get("logical_date"), dag_run.run_after)
    except BusinessDateError as exc:
        raise AirflowFailException(str(exc)) from exc


def warehouse() -> str:
    """The warehouse's address; a missing connection fails the task at once, naming it (a retry cannot define it)."""
    try:
        return warehouse_conninfo()
    except WarehouseConnectionMissing as exc:
        raise AirflowFailException(str(exc)) from exc


def run_day(config: PipelineConfig, *, conninfo: str | None = None) -> Day:
    """The day the running task works on: its business date and run, the data root, the warehouse."""
    context = get_current_context()
    return Day(config, data_layout(), business_date(config, context), context["run_id"], conninfo)


def holding_the_day(config: PipelineConfig) -> Day:
    """The run's day, with the date held by this run: every task that writes the day's state holds it,
    also when it is cleared and rerun after another run of the date has started."""
    day = run_day(config, conninfo=warehouse())
    assert day.run_id is not None and day.conninfo is not None  # run_day always sets them
    day_lock.acquire(day.conninfo, config.name, day.date, day.run_id, run_is_live(config.name))
    return day


def run_is_live(dag_id: str) -> Callable[[str], bool]:
    """Whether another run of the DAG is still queued or running, asked of Airflow itself."""
    ti = get_current_context()["ti"]

    def is_live(run_id: str) -> bool:
        try:
            return ti.get_dagrun_state(dag_id=dag_id, run_id=run_id) in ("queued", "running")
        except (AirflowRuntimeError, ServerResponseError) as exc:
            # No such run any more (deleted, or never was): it holds nothing. A worker gets the API's 404
            # as AirflowRuntimeError; dag.test(), which calls the API in-process, as the response error.
            if isinstance(exc, AirflowRuntimeError):
                status = (exc.error.detail or {}).get("status_code")
            else:
                status = exc.response.status_code
            if status != HTTPStatus.NOT_FOUND:
                raise
            return False

    return is_live


# "off" builds the DAGs without Deadline Alerts, for `airflow dags test` / dag.test(): in Airflow 3.3.2
# a successful dag.test() run of a DAG with one fails at the end (DagRun.update_state looks the SDK's
# DeadlineAlert objects up as database ids). The scheduler's path is not affected.
DEADLINE_ALERTS_ENV = "AUTOPO_DEADLINE_ALERTS"


def build_dag(config: PipelineConfig, *, with_deadlines: bool = True) -> DAG:
    """The pipeline's DAG: its tasks' bodies are the step functions below, wired here."""
    airflow = config.airflow
    with DAG(
        dag_id=config.name,
        description=config.description or None,
        schedule=airflow.schedule,
        start_date=pendulum.datetime(
            airflow.start_date.year, airflow.start_date.month, airflow.start_date.day, tz=config.timezone
        ),
        catchup=airflow.catchup,
        max_active_runs=airflow.max_active_runs,
        default_args=_default_args(config),
        tags=sorted({"autopo", *airflow.tags}),
        params={
            "date": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Business date to process (YYYY-MM-DD); empty: the run's logical date",
            )
        },
        doc_md=f"{config.description}\n\nGenerated from `dags/configs/{config.name}.yaml`.",
        **_alerting(config, with_deadlines),
    ) as dag:

        @task.sensor(
            task_id=TaskId.WAIT_FOR_FILES,
            mode=config.sensor.mode,
            poke_interval=config.sensor.poke_interval_seconds,
            timeout=config.sensor.timeout_seconds,
        )
        def wait_for_files() -> PokeReturnValue:
            return poke_for_files(config)

        @task(task_id=TaskId.LIST_FILES)
        def list_files() -> list[list[dict[str, Any]]]:
            return list_files_step(config)

        # Named after its file in the grid (a one-file batch: cleared like a file), else "<first> (+N more)".
        @task(task_id=TaskId.TRANSFORM_FILE, pool=config.pool, map_index_template="{{ file_name }}")
        def transform_file(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return transform_step(config, files)

        @task(task_id=TaskId.AGGREGATE_AND_FLUSH, trigger_rule=TriggerRule.ALL_DONE)
        def aggregate_and_flush() -> dict[str, Any]:
            return aggregate_step(config)

        @task(task_id=TaskId.LOAD_SNAPSHOT)
        def load_snapshot() -> int:
            return load_step(config)

        @task(task_id=TaskId.CHECK_DAY, trigger_rule=TriggerRule.ALL_DONE)
        def check_day() -> dict[str, Any]:
            return check_step(config)

        batches = list_files()
        transformed = transform_file.expand(files=batches)
        aggregated = aggregate_and_flush()
        loaded = load_snapshot()
        wait_for_files() >> batches
        checked = check_day()
        transformed >> aggregated >> loaded >> checked
        # check_day also waits for the files themselves: when only a failed file and
        # check_day are cleared, it must judge the day after the file is redone.
        transformed >> checked
    return dag


def _default_args(config: PipelineConfig) -> dict[str, Any]:
    airflow = config.airflow
    return {
        "owner": airflow.owner,
        "queue": config.queue,
        "retries": airflow.retries,
        "retry_delay": dt.timedelta(seconds=airflow.retry_delay_seconds),
        "retry_exponential_backoff": airflow.retry_exponential_backoff,
        "max_retry_delay": dt.timedelta(seconds=airflow.max_retry_delay_seconds),
    }


def _alerting(config: PipelineConfig, with_deadlines: bool) -> dict[str, Any]:
    alerting: dict[str, Any] = {}
    if config.alerts.webhook_conn_id or config.alerts.email_on_failure:
        alerting["on_failure_callback"] = alerts.run_failed
    # As files arrive, runs end with what has arrived and Airflow drops a succeeded run's deadline:
    # check_day watches the day's deadline instead (alerts.check_arrivals_deadline).
    if config.alerts.deadline is not None and with_deadlines and not config.as_they_arrive:
        # Measured from the scheduled start (the logical date of a cron run): runs triggered
        # without a logical date have no deadline; backfill runs are let off by the callback.
        alerting["deadline"] = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=config.deadline_after_start(),
            callback=AsyncCallback(alerts.deadline_missed, kwargs={"pipeline": config.name}),
        )
    return alerting


# --- the tasks' bodies: each resolves its Day from Airflow's context and calls its step ---------------


def poke_for_files(config: PipelineConfig) -> PokeReturnValue:
    """wait_for_files: done when the day's files are there (readiness), and no other run holds the date."""
    day = run_day(config)
    holder = day_lock.busy_with(warehouse(), config.name, day.date, str(day.run_id), run_is_live(config.name))
    if holder is not None:
        # Serialised, not interleaved: a manual run waits for the backfill's run of the same date.
        log.info("%s is being processed by run %s; waiting for it to end", day.describe(), holder)
        return PokeReturnValue(is_done=False)
    if config.as_they_arrive:
        return poke_for_arrivals(day)
    try:
        state = readiness(day, pendulum.now("UTC"))
    except SourceError as exc:
        # A missing bucket or folder, or no access: poking for hours will not change that.
        raise AirflowFailException(str(exc)) from exc
    log.info("%d file(s) for %s present: %s; %s", len(state.files), day.date, state.files, state.reason)
    if not state.files:
        refuse_past_date_without_files(day)
    return PokeReturnValue(is_done=state.ready)


def refuse_past_date_without_files(day: Day) -> None:
    """Files for a past day (a backfill, a rerun) are there or they are not: waiting hours for them helps nobody."""
    if day.date < business_date_at(day.config, pendulum.now("UTC")):
        raise AirflowFailException(
            f"no {day.pipeline} files for {day.date.isoformat()} at {day.source().describe()}; "
            "not waiting for a past date"
        )


def poke_for_arrivals(day: Day) -> PokeReturnValue:
    """wait_for_files of an ``as_they_arrive`` pipeline: go on at once with what has arrived; skip the run
    (its tasks, not a failure) when no file is new or changed since the date's last run. A manual run
    always goes on: whoever triggers it wants the date processed."""
    try:
        found = arrivals(day)
    except SourceError as exc:
        raise AirflowFailException(str(exc)) from exc
    log.info("%s: %s", day.describe(), found.describe())
    if not found.files:
        refuse_past_date_without_files(day)
        raise AirflowSkipException(f"no {day.pipeline} file for {day.date.isoformat()} has arrived yet")
    if not found.anything_new and run_type() != "manual":
        raise AirflowSkipException(
            f"nothing new for {day.date.isoformat()} since run {found.handled_by} took its {len(found.files)} file(s)"
        )
    if found.new or found.gone:
        log.info("new or changed: %s; gone: %s", found.new, found.gone)
    return PokeReturnValue(is_done=True)


def list_files_step(config: PipelineConfig) -> list[list[dict[str, Any]]]:
    """list_files: the day's files in the batches the mapped transforms run."""
    day = holding_the_day(config)
    # Read when the day is listed, not when the DAG is parsed: it is the limit the API server
    # applies to this task's pushed list, and can change without the DAG file changing.
    max_map_length = conf.getint("core", "max_map_length")
    # Run conf {"drop_missing": true}: files gone from the source lose their rows on purpose.
    drop_missing = bool((get_current_context()["dag_run"].conf or {}).get("drop_missing"))
    try:
        batches = list_day_batches(day, max_map_length, drop_missing=drop_missing)
    except (ReferenceDataError, SourceError) as exc:
        raise AirflowFailException(str(exc)) from exc
    return [[t.as_dict() for t in batch] for batch in batches]


def transform_step(config: PipelineConfig, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """transform_file: one mapped task's batch of files into parts."""
    context = get_current_context()
    context["file_name"] = batch_label(files)  # type: ignore[typeddict-unknown-key]
    day = holding_the_day(config)
    tasks = [FileTask(**file) for file in files]
    outcome = run_batch(day, tasks)
    metrics.files_done(
        config.name,
        processed=len(outcome.results),
        failed=len(outcome.failed),
        transform_seconds=outcome.transform_seconds,
    )
    if outcome.failed:
        # Bad content does not get better by retrying: fail the batch now, naming its bad files.
        raise AirflowFailException(bad_files_message(outcome.failed, len(tasks)))
    return outcome.results


def aggregate_step(config: PipelineConfig) -> dict[str, Any]:
    """aggregate_and_flush: the day's CSV files from this run's parts."""
    day = holding_the_day(config)
    if day.listing() is None:
        raise AirflowSkipException("the day's files were not listed in this run")
    result = aggregate_day(day)
    if result is None:
        raise AirflowSkipException("no file of the day was transformed successfully")
    return result


def load_step(config: PipelineConfig) -> int:
    """load_snapshot: the date's rows in the warehouse replaced by the day's snapshot."""
    day = holding_the_day(config)
    try:
        rows = load_day(day)
    except LoadConnectionError:
        raise  # the database is away: the retry loads the day when it is back
    except LoadError as exc:
        # Rows the table refuses are refused again on retry: fail now, with the reason.
        raise AirflowFailException(str(exc)) from exc
    report_load(day, rows)
    return rows


def report_load(day: Day, rows: int) -> None:
    """A load's metrics: its rows, the rows the day's files had refused (from the aggregate it loaded)."""
    loaded_at = time.time()
    with metrics.reporting(day.config.name, "load"):
        rejected = row_accounting(day.state.aggregate()).rows_rejected
        metrics.day_loaded(day.config.name, rows=rows, rejected=rejected, at=loaded_at)


def check_step(config: PipelineConfig) -> dict[str, Any]:
    """check_day: the day's verdict; the date is released whatever it is."""
    day = run_day(config, conninfo=warehouse())
    try:
        if config.as_they_arrive and day.listing() is None:
            # The sensor found nothing new: the date stays as the last run left it (its verdict stands).
            check_arrivals_deadline(day)
            raise AirflowSkipException("nothing new since the date's last run; the date stays as that run left it")
        if outputs_are_stale(day):
            # A failed file was cleared and redone without its downstream tasks (Airflow's
            # "only failed" also filters the downstream ones): bring the day up to date here.
            log.info("file results changed after the day was aggregated: rewriting and reloading it")
            aggregate_day(day)
            report_load(day, load_day(day))
        problems = day_problems(day)
        report_verdict(config.name)
        if config.as_they_arrive:
            check_arrivals_deadline(day)
        if problems:
            raise AirflowFailException("; ".join(problems))
        return {"date": day.date.isoformat(), "status": "completed"}
    finally:
        day_lock.release(str(day.conninfo), config.name, day.date, str(day.run_id))


def check_arrivals_deadline(day: Day) -> None:
    """An ``as_they_arrive`` day past its deadline and still incomplete is emailed once (alerts)."""
    alerts.check_arrivals_deadline(day, run_type(), pendulum.now("UTC"))


def run_type() -> str:
    """The run's type as Airflow names it: scheduled, manual, backfill, asset_triggered."""
    kind = get_current_context()["dag_run"].run_type
    return str(getattr(kind, "value", kind))


def report_verdict(pipeline: str) -> None:
    """The day's duration: from its run's start to now, its verdict."""
    with metrics.reporting(pipeline, "verdict"):
        started = get_current_context()["dag_run"].start_date
        if started is not None:
            metrics.day_judged(pipeline, (dt.datetime.now(dt.UTC) - started).total_seconds())


def batch_label(files: list[dict[str, Any]]) -> str:
    """A mapped transform's name in the grid: its file, or its first file and how many more."""
    if len(files) == 1:
        return str(files[0]["name"])
    return f"{files[0]['name']} (+{len(files) - 1} more)"


def bad_files_message(failed: dict[str, str], batch_files: int) -> str:
    """Why a batch failed: each bad file's own error (they name the file, sheet, row and column)."""
    if batch_files == 1:
        return next(iter(failed.values()))
    return f"{len(failed)} of {batch_files} files failed: " + "; ".join(failed.values())


def build_dags(config_dir: Path | None = None) -> dict[str, DAG]:
    """Every valid config's DAG; a broken config is reported and the others still load."""
    loaded = load_configs(config_dir or default_config_dir())
    for error in loaded.errors:
        log.error("pipeline config not loaded: %s", error)
        # Airflow records parse-time warnings against the DAG file, where the UI and
        # `airflow dags list-import-errors` users look for them.
        warnings.warn(f"pipeline config not loaded: {error}", UserWarning, stacklevel=2)
    with_deadlines = os.environ.get(DEADLINE_ALERTS_ENV, "on").lower() != "off"
    return {name: build_dag(config, with_deadlines=with_deadlines) for name, config in loaded.configs.items()}
