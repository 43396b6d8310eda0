"""Failure and deadline messages, delivered to a real SMTP server and a real webhook endpoint on loopback.

The callbacks are called here the way Airflow calls them (the DAG processor for
``on_failure_callback``, the triggerer for a Deadline Alert's ``AsyncCallback``),
with the context shapes Airflow 3.3 gives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
import yaml
from openpyxl import Workbook

from autopo_pipelines.config import ConfigError, PipelineConfig, default_config_dir, load_config_file, parse_config
from autopo_pipelines.day import Day
from autopo_pipelines.day.file_run import run_file
from autopo_pipelines.day.listing import list_day_files
from autopo_pipelines.day.outputs import aggregate_day, load_day
from autopo_pipelines.day.state import FileTask
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.alerts import (
    Message,
    WebhookConnectionError,
    WebhookDeliveryError,
    check_webhook_url,
    deadline_missed,
    post_webhook,
    run_failed,
)
from drive_server import FakeDrive, drive_connection, drive_server
from loopback_servers import Mailbox, smtp_connection, smtp_server, webhook_connection, webhook_server

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 3, 5)
RECIPIENTS = ["purchasing@example.com", "ops@example.com"]


def write_store(inbox: Path, store: str) -> None:
    workbook = Workbook()
    workbook.active.append(["SKU", "Stock On Hand", "Sales Qty"])
    workbook.active.append(["A", 10, 30])
    workbook.save(inbox / f"{store}_stock_{DATE:%Y%m%d}.xlsx")


@pytest.fixture
def failed_day(tmp_path: Path, clean_tables: str, monkeypatch: pytest.MonkeyPatch) -> DataLayout:
    """stock_health with alerts on; S1 loads, S2 sent a CSV renamed .xlsx, S3 sent nothing."""
    config = load_config_file(default_config_dir() / "stock_health.yaml")
    raw = config.model_dump(mode="json")
    raw["expected_stores"] = ["S1", "S2", "S3"]
    raw["airflow"]["schedule"] = "0 7 * * *"
    raw["alerts"] = {
        "deadline": "09:00",
        "email_to": RECIPIENTS,
        "email_on_failure": True,
        "webhook_conn_id": "autopo_webhook",
    }
    config, layout = day_with_config(raw, tmp_path, monkeypatch)
    inbox = layout.inbox("stock_health")
    inbox.mkdir(parents=True)
    write_store(inbox, "S1")
    (inbox / f"S2_stock_{DATE:%Y%m%d}.xlsx").write_bytes(b"SKU,Stock On Hand\nA,1\n")
    day = Day(config, layout, DATE, "run-1", clean_tables)
    run_the_day(day, list_day_files(day))
    return layout


def day_with_config(
    raw: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[PipelineConfig, DataLayout]:
    """The pipeline's config as ``raw`` says, and a data root with a supplier master, where the code looks."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "stock_health.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    layout = DataLayout(tmp_path / "data")
    monkeypatch.setenv("AUTOPO_DATA_DIR", str(layout.root))
    layout.reference().mkdir(parents=True)
    (layout.reference() / "suppliers.csv").write_text(
        "sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\nA,SUP,Supplier,7,0,1\n", encoding="utf-8"
    )
    return load_config_file(configs / "stock_health.yaml"), layout


def run_the_day(day: Day, tasks: list[FileTask]) -> None:
    """Each listed file transformed (a bad one fails on its own), then the day aggregated and loaded."""
    for task in tasks:
        try:
            run_file(day, task)
        except InputFileError:
            pass
    aggregate_day(day)
    load_day(day)


def dag_run_json(run_type: str, state: str) -> dict[str, object]:
    """``context["dag_run"]`` as a Deadline Alert callback gets it: the run as the API returns it."""
    return {
        "dag_id": "stock_health",
        "dag_run_id": "run-1",
        "run_type": run_type,
        "state": state,
        "conf": {"date": DATE.isoformat()},
        "logical_date": "2024-03-05T00:00:00+00:00",
        "run_after": "2024-03-05T00:00:00+00:00",
    }


def test_a_failed_run_posts_the_webhook_and_emails_the_failed_files(
    failed_day: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as (port, mailbox), webhook_server() as (url, posts):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_SMTP", smtp_connection(port))
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", webhook_connection(url))
        dag_run = SimpleNamespace(
            dag_id="stock_health", run_id="run-1", conf={"date": DATE.isoformat()}, logical_date=None,
            run_after=pendulum.now("UTC"),
        )  # fmt: skip
        run_failed({"dag_run": dag_run, "reason": "task_failure"})

    (post,) = posts
    assert post["path"] == "/services/hook"
    text = post["json"]["text"]
    assert text.startswith("autopo: stock_health 2024-03-05 failed\n")
    assert "S2_stock_20240305.xlsx: the file is a text/CSV file renamed to .xlsx" in text
    assert "the good files were loaded: 1 rows in stock_health_snapshots" in text
    (mail,) = mailbox.messages
    assert mail["Subject"] == "autopo: stock_health 2024-03-05 failed"
    assert mail["X-Envelope-To"] == ", ".join(RECIPIENTS)
    assert "S2_stock_20240305.xlsx: the file is a text/CSV file renamed to .xlsx" in Mailbox.body(mail)


def test_a_missed_deadline_emails_once_naming_the_missing_stores_and_never_for_backfills_or_failed_runs(
    failed_day: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = {"deadline": {"id": "d-1", "deadline_time": dt.datetime(2024, 3, 5, 2, 0, tzinfo=dt.UTC)}}
    with smtp_server() as (port, mailbox):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_SMTP", smtp_connection(port))
        asyncio.run(deadline_missed("stock_health", {**context, "dag_run": dag_run_json("scheduled", "running")}))
        asyncio.run(deadline_missed("stock_health", {**context, "dag_run": dag_run_json("backfill", "running")}))
        asyncio.run(deadline_missed("stock_health", {**context, "dag_run": dag_run_json("scheduled", "failed")}))

    (mail,) = mailbox.messages
    assert mail["Subject"] == "autopo: stock_health 2024-03-05 not loaded by 09:00 Asia/Jakarta"
    body = Mailbox.body(mail)
    assert "stores that have not sent files: S3" in body
    assert "S2_stock_20240305.xlsx: the file is a text/CSV file renamed to .xlsx" in body


def test_alert_settings_are_checked_when_the_config_is_loaded(tmp_path: Path) -> None:
    raw = load_config_file(default_config_dir() / "stock_health.yaml").model_dump(mode="json")
    raw["alerts"] = {"deadline": "09:00", "email_to": RECIPIENTS}
    raw["airflow"]["schedule"] = None
    with pytest.raises(ConfigError, match=r"alerts\.deadline needs airflow\.schedule to be a daily cron"):
        parse_config(tmp_path / "stock_health.yaml", raw)
    raw["airflow"]["schedule"] = "30 7 * * *"
    raw["alerts"] = {"deadline": "09:00"}
    with pytest.raises(ConfigError, match="needs at least one recipient"):
        parse_config(tmp_path / "stock_health.yaml", raw)
    raw["alerts"] = {"deadline": "06:00", "email_to": RECIPIENTS}
    config: PipelineConfig = parse_config(tmp_path / "stock_health.yaml", raw)
    # 06:00 is before the 07:30 start: the next morning's 06:00.
    assert config.deadline_after_start() == dt.timedelta(hours=22, minutes=30)


# --- what the webhook says, and where it may go ---------------------------------------------------

# A Drive file's name may hold anything, "/" too: Slack would read this as a mention of the whole
# channel, and a link to http://x shown as "y".
HOSTILE_NAME = "<!channel> & <http://x|y>_stock_20240305.xlsx"


@pytest.fixture
def failed_drive_day(tmp_path: Path, clean_tables: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataLayout]:
    """stock_health reading a Drive folder, with the webhook on: S1 loads, the hostile name is a CSV renamed .xlsx."""
    fake = FakeDrive()
    folder = fake.add_folder("stock uploads")
    good = tmp_path / "S1.xlsx"
    workbook = Workbook()
    workbook.active.append(["SKU", "Stock On Hand", "Sales Qty"])
    workbook.active.append(["A", 10, 30])
    workbook.save(good)
    fake.add_file(folder, f"S1_stock_{DATE:%Y%m%d}.xlsx", good.read_bytes())
    fake.add_file(folder, HOSTILE_NAME, b"SKU,Stock On Hand\nA,1\n")
    raw = load_config_file(default_config_dir() / "stock_health.yaml").model_dump(mode="json")
    raw["expected_stores"] = ["S1"]
    raw["source"] = {"kind": "gdrive", "folder_id": folder}
    raw["alerts"] = {"webhook_conn_id": "autopo_webhook"}
    config, layout = day_with_config(raw, tmp_path, monkeypatch)
    with drive_server(fake) as root:
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", drive_connection(root))
        day = Day(config, layout, DATE, "run-1", clean_tables)
        tasks = list_day_files(day)
        assert HOSTILE_NAME in {task.name for task in tasks}
        run_the_day(day, tasks)
        yield layout


def failed_run() -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="stock_health", run_id="run-1", conf={"date": DATE.isoformat()}, logical_date=None,
        run_after=pendulum.now("UTC"),
    )  # fmt: skip


def test_the_webhook_text_escapes_what_slack_would_read_as_markup(
    failed_drive_day: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_server() as (url, posts):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", webhook_connection(url))
        run_failed({"dag_run": failed_run(), "reason": "task_failure"})

    (post,) = posts
    text = post["json"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;_stock_20240305.xlsx: the file is a text/CSV file renamed" in text
    # No markup left: Slack reads "<...>" as a mention or a link, and "&" starts an escape.
    assert "<" not in text and ">" not in text
    assert text.replace("&lt;", "").replace("&gt;", "").replace("&amp;", "").count("&") == 0
    # Otherwise the same message.
    assert text.startswith("autopo: stock_health 2024-03-05 failed\n")
    assert "the good files were loaded: 1 rows in stock_health_snapshots" in text


def test_slack_escaping_keeps_everything_else() -> None:
    message = Message("autopo: p 2024-03-05 failed", ["- a <b> & c: d", "- run x&y: fix"])
    assert message.slack_text == "autopo: p 2024-03-05 failed\n- a &lt;b&gt; &amp; c: d\n- run x&amp;y: fix"
    assert message.text == "autopo: p 2024-03-05 failed\n- a <b> & c: d\n- run x&y: fix"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T0/B0/XXXX",
        "http://127.0.0.1:8080/services/hook",
        "http://127.3.2.1/hook",
        "http://localhost:9000/hook",
        "http://LOCALHOST/hook",
        "http://[::1]:8080/hook",
    ],
)
def test_the_webhook_goes_over_https_or_to_this_machine(url: str) -> None:
    assert check_webhook_url("autopo_webhook", url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T0/B0/SECRET",
        "http://10.0.0.5/hook/SECRET",
        "http://127.0.0.1@evil.example/SECRET",  # the host is evil.example
        "http://localhost.evil.example/SECRET",
        "ftp://127.0.0.1/SECRET",
        "hooks.slack.com/services/SECRET",
    ],
)
def test_a_webhook_over_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(WebhookConnectionError, match="webhook connection 'autopo_webhook'") as raised:
        check_webhook_url("autopo_webhook", url)
    assert "https" in str(raised.value)
    assert "SECRET" not in str(raised.value)  # a webhook URL's path is its secret


def test_a_failed_run_never_posts_to_a_plain_http_webhook_elsewhere(
    failed_day: DataLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AUTOPO_WEBHOOK",
        json.dumps({"conn_type": "http", "host": "http://hooks.example.com/services/T0/B0/SECRET"}),
    )
    sent: list[object] = []
    monkeypatch.setattr(
        "airflow.providers.http.hooks.http.HttpHook.run", lambda *args, **kwargs: sent.append((args, kwargs))
    )
    with caplog.at_level(logging.ERROR, logger="autopo_pipelines.orchestration.alerts"):
        run_failed({"dag_run": failed_run(), "reason": "task_failure"})
    assert sent == []
    assert "failure webhook could not be sent" in caplog.text
    assert "the webhook connection 'autopo_webhook' points at http://hooks.example.com" in caplog.text
    assert "SECRET" not in caplog.text
    with pytest.raises(WebhookConnectionError):
        post_webhook("autopo_webhook", Message("s", []))
    # A host without a scheme in an "http" connection is plain http too.
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", json.dumps({"conn_type": "http", "host": "hooks.example.com"}))
    with pytest.raises(WebhookConnectionError, match="http://hooks.example.com"):
        post_webhook("autopo_webhook", Message("s", []))


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@127.0.0.1/SECRET",  # urllib3 (which sends it) reads evil.example as the host
        "http://127.0.0.1\\@evil.example/SECRET",
        "http://127.0.0.1 .evil.example/SECRET",
        "http://127.0.0.1\t.evil.example/SECRET",
        "http://127.0.0.1%2f@evil.example/SECRET",
        "http://evil.example#@127.0.0.1/SECRET",
        "http://evil.example?@127.0.0.1/SECRET",
    ],
)
def test_a_url_parsers_read_differently_is_refused_unless_it_goes_over_https(url: str) -> None:
    """What the check lets through over plain http, requests (urllib3) also sends to this machine."""
    import requests
    from urllib3.util import parse_url

    try:
        accepted = check_webhook_url("autopo_webhook", url) == url
    except WebhookConnectionError as refused:
        assert "SECRET" not in str(refused)
        return
    assert accepted
    sent_to = parse_url(requests.Request("POST", url).prepare().url)
    assert sent_to.scheme == "https" or sent_to.host in ("127.0.0.1", "localhost", "[::1]"), url


@contextlib.contextmanager
def answering(status: int, headers: dict[str, str] | None = None) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback endpoint that answers every POST with ``status``; the bodies it got, as sent."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/SECRET", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_gets_exactly_the_slack_text_through_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    message = Message("autopo: p 2024-03-05 failed", ["- TOKO é <1>.xlsx: not a workbook", "- run x&y: fix"])
    with answering(200) as (url, bodies):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", webhook_connection(url))
        post_webhook("autopo_webhook", message)
    (body,) = bodies
    assert json.loads(body) == {"text": message.slack_text}


@pytest.mark.parametrize(
    ("status", "headers", "said"),
    [
        (404, {}, "answered 404 Not Found"),
        (500, {}, "answered 500 Internal Server Error"),
        # Not followed: a redirect could lead the message, and the token, to plain http elsewhere.
        (307, {"Location": "http://hooks.example.com/SECRET"}, "answered 307 Temporary Redirect"),
    ],
)
def test_a_webhook_that_does_not_take_the_message_is_logged_and_the_callback_goes_on(
    failed_day: DataLayout,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    headers: dict[str, str],
    said: str,
) -> None:
    with answering(status, headers) as (url, bodies), caplog.at_level(logging.ERROR, logger="autopo_pipelines"):
        monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", webhook_connection(url))
        run_failed({"dag_run": failed_run(), "reason": "task_failure"})  # returns: the run's failure stands
        with pytest.raises(WebhookDeliveryError, match=said):
            post_webhook("autopo_webhook", Message("s", []))
    assert len(bodies) == 2  # once each: nothing retried, nothing followed
    assert "failure webhook could not be sent" in caplog.text
    assert f"the webhook connection 'autopo_webhook' (http://127.0.0.1) {said}" in caplog.text
    assert "SECRET" not in caplog.text


def test_an_unreachable_webhook_is_logged_without_its_secret(
    failed_day: DataLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with answering(200) as (url, _):
        pass  # the server is gone: its port now refuses
    monkeypatch.setenv("AIRFLOW_CONN_AUTOPO_WEBHOOK", webhook_connection(url))
    with caplog.at_level(logging.ERROR, logger="autopo_pipelines"):
        run_failed({"dag_run": failed_run(), "reason": "task_failure"})
    assert "failure webhook could not be sent" in caplog.text
    assert "the webhook connection 'autopo_webhook' (http://127.0.0.1): ConnectionError" in caplog.text
    ours = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records if r.name.startswith("autopo"))
    assert "SECRET" not in ours
