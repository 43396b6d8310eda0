"""The ``airflow_stack`` fixture: a real Airflow (API server, scheduler, DAG processor, triggerer) per session."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_stack import METADATA_DB, AirflowStack, drop_metadata_db, report, start_airflow_stack

from autopo_pipelines.config import default_config_dir
from autopo_pipelines.embedded_pg import EmbeddedPostgres
from loopback_servers import webhook_connection, webhook_server


@pytest.fixture(scope="session")
def webhook_posts() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A Slack-compatible webhook endpoint on loopback for the stack's failure notifications."""
    with webhook_server() as (url, posts):
        yield url, posts


def stack_configs(target: Path) -> Path:
    """The project's pipeline configs, with the failure webhook turned on (its URL in an Airflow connection)."""
    target.mkdir(parents=True)
    for path in default_config_dir().glob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw.setdefault("alerts", {})["webhook_conn_id"] = "autopo_webhook"
        (target / path.name).write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def airflow_stack(
    request: pytest.FixtureRequest,
    pg_server: EmbeddedPostgres,
    pg_url: str,
    webhook_posts: tuple[str, list[dict[str, Any]]],
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
            config_dir=stack_configs(base / "configs"),
            extra_env={"AIRFLOW_CONN_AUTOPO_WEBHOOK": webhook_connection(webhook_posts[0])},
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
        shutil.rmtree(base, ignore_errors=True)
