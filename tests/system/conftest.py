"""The ``airflow_stack`` fixture: a real Airflow (API server, scheduler, DAG processor, triggerer) per session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml
from airflow_stack import METADATA_DB, AirflowStack, drop_metadata_db, report, start_airflow_stack

from autopo_local.embedded_pg import EmbeddedPostgres
from autopo_pipelines.config import default_config_dir
from loopback_servers import Mailbox, smtp_connection, smtp_server, webhook_connection, webhook_server


@pytest.fixture(scope="session")
def webhook_posts() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A Slack-compatible webhook endpoint on loopback for the stack's failure notifications."""
    with webhook_server() as (url, posts):
        yield url, posts


@pytest.fixture(scope="session")
def mailbox() -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server on loopback for the stack's emails."""
    with smtp_server() as server:
        yield server


SCHEDULED = "stock_sla"
# stock_health processed as files arrive: the README's example schedule, every 15 minutes 05:00-09:45 local.
ARRIVALS = "stock_arrivals"
ARRIVALS_SCHEDULE = "*/15 5-9 * * *"
SLA_RECIPIENTS = ["purchasing@example.com"]
SLA_TZ = "Asia/Jakarta"


@dataclass(frozen=True)
class SlaSchedule:
    """stock_sla's schedule, set for this session: its daily start 30 minutes ago, its deadline 2 h after."""

    start: dt.time
    deadline: dt.time

    @classmethod
    def for_now(cls) -> SlaSchedule:
        start = pendulum.now(SLA_TZ).subtract(minutes=30)
        deadline = start.add(hours=2)
        return cls(dt.time(start.hour, start.minute), dt.time(deadline.hour, deadline.minute))


@pytest.fixture(scope="session")
def sla_schedule() -> SlaSchedule:
    return SlaSchedule.for_now()


def stack_configs(target: Path, schedule: SlaSchedule) -> Path:
    """The project's pipeline configs, with the failure webhook turned on (its URL in an Airflow connection),
    and ``stock_sla``: stock_health on a daily schedule with a deadline 2 h after the start, two expected stores,
    and business date = the day before the run (offset 1).

    With catchup off the scheduler starts a run for the latest start at once (30 minutes ago): that run waits
    for the previous day's files, which no test sends, and its deadline is 90 minutes away; the tests' own
    runs (a manual run, backfills) go beside it (max_active_runs 4)."""
    target.mkdir(parents=True)
    for path in default_config_dir().glob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["alerts"] = {"webhook_conn_id": "autopo_webhook"}
        # Triggered by the tests only: a scheduled run of today would hold the DAG's one active run.
        raw["airflow"]["schedule"] = None
        (target / path.name).write_text(yaml.safe_dump(raw), encoding="utf-8")
    raw = yaml.safe_load((default_config_dir() / "stock_health.yaml").read_text(encoding="utf-8"))
    raw["name"] = SCHEDULED
    raw["timezone"] = SLA_TZ
    raw["business_date_offset_days"] = 1
    raw["expected_stores"] = ["STORE-001", "STORE-002"]
    raw["sensor"] = {"mode": "reschedule", "poke_interval_seconds": 3, "timeout_seconds": 900}
    raw["airflow"].update(
        {
            "schedule": f"{schedule.start.minute} {schedule.start.hour} * * *",
            "pool": SCHEDULED,
            "retries": 0,
            "max_active_runs": 4,
        }
    )
    raw["alerts"] = {
        "deadline": schedule.deadline.strftime("%H:%M"),
        "email_to": SLA_RECIPIENTS,
        "email_conn_id": "autopo_smtp",
    }
    (target / f"{SCHEDULED}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    raw = yaml.safe_load((default_config_dir() / "stock_health.yaml").read_text(encoding="utf-8"))
    raw.update(name=ARRIVALS, timezone=SLA_TZ, processing="as_they_arrive", alerts={})
    # Scheduled runs of today find no file for today and are skipped; the tests' runs go beside them.
    raw["airflow"].update(schedule=ARRIVALS_SCHEDULE, pool=ARRIVALS, queue=ARRIVALS, retries=0, max_active_runs=4)
    (target / f"{ARRIVALS}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def airflow_stack(
    request: pytest.FixtureRequest,
    pg_server: EmbeddedPostgres,
    pg_url: str,
    webhook_posts: tuple[str, list[dict[str, Any]]],
    mailbox: tuple[int, Mailbox],
    sla_schedule: SlaSchedule,
) -> Iterator[AirflowStack]:
    """Airflow running the way a user runs it, on 127.0.0.1, with this checkout's DAGs.

    Metadata in the session cluster's ``airflow_meta`` database; the pipelines
    write to ``pg_url`` (``AIRFLOW_CONN_AUTOPO_DB``) and read a temporary data
    root (``stack.data_root``). Stopped, and its database dropped, at the end;
    the components' logs are printed when a test of the session failed.
    """
    # Not under pytest's basetemp: that is 0700 and reset by every concurrent pytest session.
    base = Path(tempfile.mkdtemp(prefix="autopo-airflow-system-"))
    cluster = pg_server.url.rsplit("/", 1)[0]  # postgresql://autopo@127.0.0.1:PORT
    admin_url = f"{cluster}/postgres"
    try:
        # On error it stops what it started and raises with the components' logs.
        stack = start_airflow_stack(
            home=base / "airflow-home",
            admin_db_url=admin_url,
            cluster_url_base=cluster,
            data_root=base / "data",
            warehouse_url=pg_url,
            config_dir=stack_configs(base / "configs", sla_schedule),
            extra_env={
                "AIRFLOW_CONN_AUTOPO_WEBHOOK": webhook_connection(webhook_posts[0]),
                "AIRFLOW_CONN_AUTOPO_SMTP": smtp_connection(mailbox[0]),
            },
            dag_ids=("stock_health", SCHEDULED, ARRIVALS),
        )
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    report(
        request.config,
        "\nairflow stack up in {startup_total:.1f}s (db migrate {db_migrate:.1f}s, pools {pools:.1f}s; "
        "after the components started: API ready {api_ready:.1f}s, DAGs parsed {dags_parsed:.1f}s, "
        "all healthy {all_healthy:.1f}s)".format(**stack.timings),
    )
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            report(request.config, "\n" + stack.logs_report(lines=80))
        stopping = time.monotonic()
        problems = stack.stop()
        for problem in problems:
            report(request.config, f"airflow stack teardown: {problem}")
        report(request.config, f"\nairflow stack stopped in {time.monotonic() - stopping:.1f}s")
        drop_metadata_db(admin_url, METADATA_DB)
        if os.environ.get("AUTOPO_KEEP_SYSTEM_STACK"):
            report(request.config, f"system stack home and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
