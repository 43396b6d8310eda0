"""Typed pipeline configuration, one YAML file per pipeline.

Every setting a pipeline has lives here or in its transform module's own
settings model (the ``settings:`` block), so a new store export format or a
new threshold is a config change, not a code change. Loading validates
everything up front and names the file and the key of any error.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pendulum
import yaml
from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from autopo_pipelines.date_text import DateOrder
from autopo_pipelines.headings import column_index, column_letters, normalise_header
from autopo_pipelines.number_text import DEFAULT_CURRENCY_MARKS
from autopo_pipelines.routing import normalise_store

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CONFIG_DIR_ENV = "AUTOPO_CONFIG_DIR"


def default_config_dir() -> Path:
    """Where every Airflow component finds the pipeline configs.

    ``$AUTOPO_CONFIG_DIR``; else ``configs/`` in Airflow's DAGs folder (``$AIRFLOW__CORE__DAGS_FOLDER``,
    or ``$AIRFLOW_HOME/dags`` as in Airflow's image), where the deployment copies ``dags/``; else this
    checkout's ``dags/configs`` (the package installed in editable mode).
    """
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or (
        str(Path(os.environ["AIRFLOW_HOME"]) / "dags") if os.environ.get("AIRFLOW_HOME") else ""
    )
    if dags_folder and (Path(dags_folder) / "configs").is_dir():
        return (Path(dags_folder) / "configs").expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "dags" / "configs"


class ConfigError(ValueError):
    """A pipeline config that cannot be used; the message names file and key."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {message}")


class StrictModel(BaseModel):
    # Unknown keys are typos more often than not; refusing them is the only
    # way a misspelt setting does not silently fall back to its default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(StrictModel):
    required: bool = False
    # In priority order: when several columns of a sheet match, the one whose alias stands
    # first here is the field (docs/stock_health.md, "Headings").
    aliases: list[str] = Field(min_length=1)


class NumberFormat(StrictModel):
    """How numbers written as text are read (docs/stock_health.md, "Numbers")."""

    decimal: Literal[".", ","] = "."
    # The configured group separator; no-break, narrow no-break and thin spaces and apostrophes
    # are read as group separators whatever this says: they can never be a decimal point.
    thousands: Literal[",", ".", " ", "'", ""] = ","
    # Words taken for a currency before or after a number ("Rp 12.500", "12,500 IDR"), besides
    # any currency symbol ($, €, ₹, ...). Anything else beside the digits is not a number.
    currency_marks: list[str] = Field(default_factory=lambda: list(DEFAULT_CURRENCY_MARKS))

    @model_validator(mode="after")
    def _separators_differ(self) -> NumberFormat:
        if self.decimal == self.thousands:
            raise ValueError("decimal and thousands separators must differ")
        return self


class DateFormat(StrictModel):
    """How dates written as text are read (docs/stock_health.md, "Dates")."""

    # ISO (2024-12-04), compact (20241204), Excel serial numbers and month names (4 Dec 2024)
    # are always read. Numeric day and month (04/12/2024) only in the order set here; null:
    # such dates are rejected, because 04/12 is a different day in each order.
    order: DateOrder | None = None


_COLUMN_LETTERS = re.compile(r"^[A-Z]{1,3}$")


class ColumnOverride(StrictModel):
    """One field's columns for the files an override matches."""

    # Replace the pipeline's aliases for these files (same priority rule).
    aliases: list[str] | None = Field(default=None, min_length=1)
    # Pin the field to a sheet column by its letter, whatever its heading says: for a sheet
    # where two columns would match (an 'Item #' and an 'Item').
    column: str | None = None

    @field_validator("column")
    @classmethod
    def _is_column_letter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        letters = value.strip().upper()
        if not _COLUMN_LETTERS.match(letters) or column_index(letters) >= 16384:
            raise ValueError(f"must be a column letter from A to XFD, got {value!r}")
        return letters

    @model_validator(mode="after")
    def _one_way(self) -> ColumnOverride:
        if (self.aliases is None) == (self.column is None):
            raise ValueError("give either aliases or column")
        return self


class FileOverride(StrictModel):
    """Reading settings for some stores' or files' exports; what it does not set is the pipeline's."""

    # Matched against the store the file name gives (case-insensitive).
    stores: list[str] = Field(default_factory=list)
    # A regular expression searched in the file name (case-insensitive).
    files: str | None = None
    sheet: str | None = None
    header_search_rows: int | None = Field(default=None, ge=1, le=1000)
    numbers: NumberFormat | None = None
    dates: DateFormat | None = None
    columns: dict[str, ColumnOverride] = Field(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _is_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> FileOverride:
        if not self.stores and self.files is None:
            raise ValueError("say which files it is for: stores, files or both")
        return self

    def matches(self, file_name: str, store_id: str | None) -> bool:
        """Both conditions that are given hold."""
        if self.stores and (
            store_id is None or normalise_store(store_id) not in set(map(normalise_store, self.stores))
        ):
            return False
        return self.files is None or re.search(self.files, file_name, re.IGNORECASE) is not None


@dataclass(frozen=True)
class FileReading:
    """How one file is read: the pipeline's settings with the first matching override applied."""

    sheet: str | None
    header_search_rows: int
    columns: dict[str, ColumnSpec]
    # Fields pinned to a sheet column: field -> 0-based column index.
    pins: dict[str, int]
    numbers: NumberFormat
    dates: DateFormat
    # Which entry of ``overrides`` applied (0-based), or None.
    override: int | None = None


class LocalSourceConfig(StrictModel):
    kind: Literal["local"] = "local"
    # Relative paths are taken from the data root; unset means <root>/inbox/<pipeline>.
    path: str | None = None


class GcsSourceConfig(StrictModel):
    kind: Literal["gcs"]
    bucket: str = Field(min_length=1)
    # A folder-like prefix ("exports/po"): only the blobs directly under it are listed.
    prefix: str = ""
    # Credentials live in this Airflow connection only.
    gcp_conn_id: str = "google_cloud_default"


class GdriveSourceConfig(StrictModel):
    kind: Literal["gdrive"]
    # The folder's id (the last part of its URL): only the files directly in it are listed.
    folder_id: str = Field(min_length=1)
    # The shared drive holding the folder, if it is in one (not in someone's My Drive).
    drive_id: str | None = None
    # Credentials live in this Airflow connection only; its "scope" extra must include a Drive
    # scope (https://www.googleapis.com/auth/drive.readonly).
    gcp_conn_id: str = "google_cloud_default"


SourceConfig = Annotated[LocalSourceConfig | GcsSourceConfig | GdriveSourceConfig, Field(discriminator="kind")]


class AggregationConfig(StrictModel):
    files_per_batch: int = Field(default=5, ge=1)
    bytes_per_batch: int = Field(default=10_000_000, ge=1)


class SensorConfig(StrictModel):
    # Reschedule only: a sensor waiting hours must not hold a worker slot.
    mode: Literal["reschedule"] = "reschedule"
    poke_interval_seconds: int = Field(default=60, ge=1)
    timeout_seconds: int = Field(default=6 * 3600, ge=1)


def _files_per_task(value: object) -> object:
    # One message for every wrong value, at the key itself (a union would name its branches).
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"must be a whole number of at least 1, or auto; got {value!r}")


class AirflowSettings(StrictModel):
    owner: str = "autopo"
    tags: list[str] = Field(default_factory=list)
    schedule: str | None = None
    start_date: dt.date = dt.date(2024, 1, 1)
    catchup: bool = False
    max_active_runs: int = Field(default=1, ge=1)
    # Files transformed by one mapped transform_file task, in listing order. 1 keeps a task (and a
    # clear in the UI) per file; more means fewer task instances, each of which costs Airflow a
    # second or two to schedule and start. "auto": one file per task up to TASKS_PER_POOL_SLOT tasks
    # per pool slot, batches beyond (see files_per_task_for). Enlarged at run time when the day has
    # more files than Airflow's [core] max_map_length would allow in tasks of this size.
    files_per_task: Annotated[int | Literal["auto"], BeforeValidator(_files_per_task)] = 1
    pool: str | None = None
    # The Celery queue every task of the pipeline is sent to (default: the pipeline's name): workers
    # started for it (`airflow celery worker -q <queue>`) run this pipeline only, so a backlog or a
    # crash in one pipeline never delays another. Ignored by the local and sequential executors.
    queue: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # How many of the pipeline's tasks may run at once (the size of its pool).
    pool_size: int = Field(default=4, ge=1)
    retries: int = Field(default=2, ge=0)
    retry_delay_seconds: int = Field(default=300, ge=0)
    retry_exponential_backoff: bool = True
    max_retry_delay_seconds: int = Field(default=3600, ge=0)


# "auto" batches: enough tasks to keep every pool slot busy while the last ones finish, few enough
# that starting tasks does not cost more than the files take (make bench, docs/performance.md).
TASKS_PER_POOL_SLOT = 2


def files_per_task_for(settings: AirflowSettings, files: int) -> int:
    """The batch size the settings give a day of ``files`` files (before max_map_length enlarges it)."""
    if settings.files_per_task != "auto":
        return settings.files_per_task
    return max(1, math.ceil(files / (TASKS_PER_POOL_SLOT * settings.pool_size)))


class AlertsConfig(StrictModel):
    """Who hears about a late or failed day, and how. Credentials live in Airflow connections only."""

    # Local time (the pipeline's timezone) on the day of a scheduled run by which its snapshot
    # must be loaded; null: no deadline alert. Needs a daily schedule at a fixed time; with
    # ``processing: as_they_arrive``, a schedule with a run at or after the deadline.
    deadline: dt.time | None = None
    email_to: list[str] = Field(default_factory=list)
    # An SMTP connection (host, port, login, password; extra: from_email, disable_tls, disable_ssl).
    email_conn_id: str = "autopo_smtp"
    email_on_failure: bool = False
    # An HTTP connection to a Slack-compatible incoming webhook; null: no webhook.
    webhook_conn_id: str | None = None


_DAILY_CRON = re.compile(r"^(?P<minute>[0-5]?[0-9]) (?P<hour>[01]?[0-9]|2[0-3]) \* \* \*$")
# A cron that starts runs at the same times every day: minute and hour fields, any day.
_EVERY_DAY_CRON = re.compile(r"^(?P<minute>\S+) (?P<hour>\S+) \* \* \*$")

# How a business day is processed:
# - whole_day: one run per business date; its sensor waits until every expected store has sent a
#   file (or the cutoff passes), then the day is transformed, aggregated and loaded once.
# - as_they_arrive: several runs per business date (a schedule such as every 15 minutes in the
#   morning); each run starts at once with whatever has arrived, transforms only the new or changed
#   files (the others' parts are reused), and loads the day's snapshot again, complete for what has
#   arrived. A run with nothing new since the date's last load does nothing (its tasks are skipped).
Processing = Literal["whole_day", "as_they_arrive"]


class PipelineConfig(StrictModel):
    name: str
    description: str = ""
    transform: str
    timezone: str = "UTC"
    # 0: the business date is the run's logical date; 1: the day before it
    # (a 07:00 run that reports on yesterday's closing stock).
    business_date_offset_days: int = Field(default=0, ge=0, le=31)
    source: SourceConfig = Field(default_factory=LocalSourceConfig)
    # Where the day's CSVs go; relative to the data root; unset: <root>/seeds/<pipeline>.
    output_dir: str | None = None
    file_pattern: str
    sheet: str | None = None
    header_search_rows: int = Field(default=20, ge=1, le=1000)
    # What the parts of a workbook that are read (shared strings, styles, the sheet) may
    # unzip to in all: a zip bomb is refused before it exhausts the worker's memory. 1 GB
    # is ~10x a 200,000-row, 10-column report. Same default as xlsx_reader's.
    max_uncompressed_bytes: int = Field(default=1_000_000_000, ge=1_000_000)
    columns: dict[str, ColumnSpec]
    numbers: NumberFormat = Field(default_factory=NumberFormat)
    dates: DateFormat = Field(default_factory=DateFormat)
    # Per store or file pattern: another sheet, number or date format, or columns. The first
    # entry that matches a file is used; what it leaves out is the settings above.
    overrides: list[FileOverride] = Field(default_factory=list)
    max_reject_ratio: float = Field(default=0.05, ge=0, le=1)
    duplicate_store_files: Literal["newest", "fail"] = "newest"
    # Completeness: the stores expected to send a file each day, and the local time of
    # day (on the run's day) after which the pipeline goes on with whatever arrived.
    expected_stores: list[str] = Field(default_factory=list)
    cutoff: dt.time | None = None
    processing: Processing = "whole_day"
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    sensor: SensorConfig = Field(default_factory=SensorConfig)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _alerts_can_be_sent(self) -> PipelineConfig:
        if (self.alerts.deadline is not None or self.alerts.email_on_failure) and not self.alerts.email_to:
            raise ValueError("alerts.email_to: a deadline alert or email on failure needs at least one recipient")
        if self.alerts.deadline is not None:
            self.deadline_after_start()  # a schedule it cannot be measured from is an error now, not at 9 am
        return self

    @model_validator(mode="after")
    def _arrivals_have_a_schedule(self) -> PipelineConfig:
        if self.processing == "as_they_arrive" and self.airflow.schedule is not None:
            self.schedule_times()  # runs at the same times every day, or an error now
        return self

    @property
    def as_they_arrive(self) -> bool:
        return self.processing == "as_they_arrive"

    def schedule_times(self) -> list[dt.time]:
        """The local times of day at which ``airflow.schedule`` starts a run, every day alike (the minute
        and hour fields of a cron whose day fields are ``* * *``); ValueError for any other schedule."""
        schedule = (self.airflow.schedule or "").strip()
        match = _EVERY_DAY_CRON.match(schedule)
        if match is None or not croniter.is_valid(schedule):
            raise ValueError(
                "needs airflow.schedule to be a cron that runs at the same times every day "
                f"('M H * * *', e.g. '*/15 5-9 * * *'), got {self.airflow.schedule!r}"
            )
        # Naive times of one day: a cron of local times, read without the day's daylight-saving shifts.
        day = dt.datetime(2000, 1, 1)
        times = croniter(schedule, day - dt.timedelta(microseconds=1))
        out = []
        while (moment := times.get_next(dt.datetime)).date() == day.date():
            out.append(moment.time())
        return out

    def schedule_start(self) -> tuple[int, int]:
        """The (hour, minute) local time of the schedule's first run of a day: the time of a daily
        schedule; with ``processing: as_they_arrive``, the first of the day's runs. ValueError for any
        other schedule."""
        if self.as_they_arrive:
            first = self.schedule_times()[0]
            return first.hour, first.minute
        match = _DAILY_CRON.match((self.airflow.schedule or "").strip())
        if match is None:
            raise ValueError(
                "alerts.deadline needs airflow.schedule to be a daily cron at a fixed time ('M H * * *'), "
                f"got {self.airflow.schedule!r}"
            )
        return int(match["hour"]), int(match["minute"])

    def deadline_after_start(self) -> dt.timedelta:
        """How long after a scheduled run starts its deadline falls (``alerts.deadline`` local time)."""
        hour, minute = self.schedule_start()
        if self.alerts.deadline is None:
            raise ValueError("alerts.deadline is not set")
        start = dt.timedelta(hours=hour, minutes=minute)
        deadline = dt.timedelta(hours=self.alerts.deadline.hour, minutes=self.alerts.deadline.minute)
        after = (deadline - start) % dt.timedelta(days=1)
        if not after:
            raise ValueError("alerts.deadline is the schedule's own start time: it must be later")
        if self.as_they_arrive and not any(time >= self.alerts.deadline for time in self.schedule_times()):
            # The day is judged against its deadline by the first run at or after it (alerts.deadline_watch).
            raise ValueError(
                f"alerts.deadline {self.alerts.deadline:%H:%M}: with processing as_they_arrive, airflow.schedule "
                f"({self.airflow.schedule!r}) must start a run at or after the deadline on the same day, "
                "which checks the day against it"
            )
        return after

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not PIPELINE_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            pendulum.timezone(value)
        except Exception as exc:  # pendulum raises several types for unknown zones
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("file_pattern")
    @classmethod
    def _pattern_has_date_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if "date" not in compiled.groupindex:
            raise ValueError("needs a named group 'date' (?P<date>...)")
        return value

    @field_validator("columns")
    @classmethod
    def _columns_have_a_required_one(cls, value: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not any(spec.required for spec in value.values()):
            raise ValueError("at least one column must be required, or no header row can be found")
        _aliases_belong_to_one_field(value)
        return value

    def reading(self, override: FileOverride | None, number: int | None = None) -> FileReading:
        """The reading settings with ``override`` applied."""
        columns = dict(self.columns)
        pins: dict[str, int] = {}
        if override is not None:
            for name, column in override.columns.items():
                if column.aliases is not None:
                    columns[name] = columns[name].model_copy(update={"aliases": column.aliases})
                if column.column is not None:
                    pins[name] = column_index(column.column)
            pinned_twice = [letter for letter, count in Counter(pins.values()).items() if count > 1]
            if pinned_twice:
                raise ValueError(f"column {column_letters(pinned_twice[0])} is pinned to two fields")
            _aliases_belong_to_one_field(columns)
        return FileReading(
            sheet=override.sheet if override is not None and override.sheet is not None else self.sheet,
            header_search_rows=(
                override.header_search_rows
                if override is not None and override.header_search_rows is not None
                else self.header_search_rows
            ),
            columns=columns,
            pins=pins,
            numbers=_merged(self.numbers, override.numbers if override is not None else None),
            dates=override.dates if override is not None and override.dates is not None else self.dates,
            override=number,
        )

    def reading_for(self, file_name: str, store_id: str | None) -> FileReading:
        """How a file is read: the first override that matches it, over the pipeline's settings."""
        for number, override in enumerate(self.overrides):
            if override.matches(file_name, store_id):
                return self.reading(override, number)
        return self.reading(None)

    @property
    def compiled_pattern(self) -> re.Pattern[str]:
        return re.compile(self.file_pattern, re.IGNORECASE)

    @property
    def pool(self) -> str:
        return self.airflow.pool or self.name

    @property
    def queue(self) -> str:
        return self.airflow.queue or self.name


def _merged(base: NumberFormat, override: NumberFormat | None) -> NumberFormat:
    """``base`` with the keys ``override`` sets (not its defaults): an override of the separators
    keeps the pipeline's currency marks. Validated again, as the merge is a new format."""
    if override is None:
        return base
    return NumberFormat.model_validate({**base.model_dump(), **override.model_dump(exclude_unset=True)})


def _aliases_belong_to_one_field(columns: Mapping[str, ColumnSpec]) -> None:
    """An alias of two fields would make one heading two columns; refused when the config loads."""
    owner: dict[str, str] = {}
    for name, spec in columns.items():
        for alias in spec.aliases:
            key = normalise_header(alias)
            if not key:
                raise ValueError(f"{name}: alias {alias!r} has no letters or digits")
            if owner.setdefault(key, name) != name:
                raise ValueError(f"alias {alias!r} is given for both {owner[key]} and {name}")


@dataclass(frozen=True)
class LoadedConfigs:
    configs: dict[str, PipelineConfig]
    errors: list[ConfigError]


def _key_of(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_config(path: Path, raw: Mapping[str, Any]) -> PipelineConfig:
    """Validate one config mapping, and its transform settings, naming file and key on error."""
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(path, _key_of(first["loc"]), first["msg"] + more) from exc
    try:
        definition = load_transform(config.transform)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(path, "transform", f"cannot import {config.transform!r}: {exc}") from exc
    try:
        definition.settings_model.model_validate(config.settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(path, _key_of(("settings", *first["loc"])), first["msg"]) from exc
    for number, override in enumerate(config.overrides):
        unknown = [name for name in override.columns if name not in config.columns]
        if unknown:
            raise ConfigError(
                path,
                f"overrides.{number}.columns.{unknown[0]}",
                f"not a column of this pipeline ({', '.join(config.columns)})",
            )
        try:
            config.reading(override, number)
        except ValueError as exc:
            raise ConfigError(path, f"overrides.{number}.columns", str(exc)) from exc
    missing = [col for col in definition.rows.required if col not in config.columns]
    if missing:
        raise ConfigError(path, "columns", f"the transform needs columns {missing} declared")
    groups = [g for g in definition.pattern_groups if g not in config.compiled_pattern.groupindex]
    if groups:
        raise ConfigError(path, "file_pattern", f"needs the named group(s) {groups} for this transform")
    optional = [col for col in definition.rows.required if not config.columns[col].required]
    if optional:
        raise ConfigError(
            path, f"columns.{optional[0]}.required", "the transform cannot work without this column: must be true"
        )
    return config


def load_config_file(path: Path) -> PipelineConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, f"not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(path, "", "must be a mapping of settings")
    config = parse_config(path, raw)
    if config.name != path.stem:
        raise ConfigError(path, "name", f"must match the file name ({path.stem!r}), got {config.name!r}")
    return config


@functools.lru_cache(maxsize=64)
def _config_at(path: Path, mtime: float) -> PipelineConfig | None:
    try:
        return load_config_file(path)
    except ConfigError:
        return None


def config_for(name: str, directory: Path | None = None) -> PipelineConfig | None:
    """The pipeline's config (``<name>.yaml`` in the config folder), or None when there is no valid
    one (a DAG that is not a pipeline). Read again only when its file changes: listeners and
    callbacks ask on every event."""
    path = (directory or default_config_dir()) / f"{name}.yaml"
    try:
        return _config_at(path, path.stat().st_mtime)
    except FileNotFoundError:
        return None


def required_config(name: str) -> PipelineConfig:
    """config_for, for callers that cannot go on without it (the alerts, the local summary)."""
    config = config_for(name)
    if config is None:
        raise LookupError(f"{name}: no valid pipeline config in {default_config_dir()}")
    return config


def load_configs(directory: Path) -> LoadedConfigs:
    """Load every ``*.yaml`` in a directory; a broken file is reported, not fatal to the rest."""
    configs: dict[str, PipelineConfig] = {}
    errors: list[ConfigError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            config = load_config_file(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        configs[config.name] = config
    return LoadedConfigs(configs=configs, errors=errors)


def load_transform(module_path: str) -> Any:
    """The ``TRANSFORM`` object a pipeline's transform module exposes."""
    module = importlib.import_module(module_path)
    return module.TRANSFORM


def transform_settings(config: PipelineConfig) -> Any:
    return load_transform(config.transform).settings_model.model_validate(config.settings)


def main(argv: list[str] | None = None) -> int:
    """``check``: validate every config, naming file and key; ``pools``: each pipeline's pool and slots."""
    import argparse

    parser = argparse.ArgumentParser(description="Pipeline configs: check them, or list their pools.")
    parser.add_argument("command", choices=["check", "pools"])
    parser.add_argument("--dir", type=Path, default=None, help="config folder (default: $AUTOPO_CONFIG_DIR)")
    args = parser.parse_args(argv)
    loaded = load_configs(args.dir or default_config_dir())
    if args.command == "pools":
        for config in loaded.configs.values():
            print(config.pool, config.airflow.pool_size)
        return 0
    for name in loaded.configs:
        print(f"ok: {name}")
    for error in loaded.errors:
        print(f"error: {error}")
    return 1 if loaded.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
