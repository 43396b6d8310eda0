"""Telling people about a failed or late day: a Slack-compatible webhook and email.

Two entry points Airflow calls:

* ``run_failed``: the DAG's ``on_failure_callback`` (run by the DAG processor), for
  a failed run: names the failed files and their errors, to the webhook and, where
  the config asks, by email.
* ``deadline_missed``: the callback of the DAG's Deadline Alert (run by the
  triggerer), when a scheduled run's snapshot is not loaded by ``alerts.deadline``:
  an email naming the pipeline, the date, what is late and the stores that have
  not sent files. Airflow creates a deadline for every run, backfills included,
  and keeps it for a failed run (3.3.2): a backfill run, or a run that already
  failed (and said so through ``run_failed``), sends nothing.

And one the DAG's last task calls:

* ``check_arrivals_deadline``: for a pipeline with ``processing: as_they_arrive``. Its
  runs end within minutes with what has arrived, and Airflow drops a run's deadline
  when the run succeeds, so a Deadline Alert per run cannot ask whether the *day* is
  complete by ``alerts.deadline``. Instead every run's check_day, once the deadline has
  passed, looks at the date as the runs have left it; the first that finds stores missing
  or the snapshot not loaded sends the same email, once per business date.

The texts are built from the day's state (``autopo_pipelines.day``), so they say what
the pipeline knows, not Airflow's internal reasons.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pendulum

from autopo_pipelines.config import PipelineConfig, required_config
from autopo_pipelines.dates import business_date_of_run, deadline_moment
from autopo_pipelines.day import Day
from autopo_pipelines.day.checks import day_problems
from autopo_pipelines.day.listing import Readiness, readiness
from autopo_pipelines.day.state import DeadlineNotice, now_iso
from autopo_pipelines.loopback import is_loopback_host
from autopo_pipelines.orchestration.data_root import data_layout

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 10


def slack_escape(text: str) -> str:
    """Text as Slack shows it literally: "&", "<" and ">" escaped, the only characters its message
    markup gives a meaning (``<!channel>`` mentions everyone, ``<http://x|y>`` is a link shown as y)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Message:
    subject: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join([self.subject, *self.lines])

    @property
    def slack_text(self) -> str:
        """The text for a Slack-compatible webhook. Our own words carry no markup, so escaping the whole
        text escapes exactly what came from files, errors and config, and changes nothing else."""
        return slack_escape(self.text)

    @property
    def html(self) -> str:
        items = "".join(f"<li>{html.escape(line.lstrip('- '))}</li>" for line in self.lines)
        return f"<p>{html.escape(self.subject)}</p><ul>{items}</ul>"


# --- what to say ---------------------------------------------------------------------


def failure_message(day: Day) -> Message:
    """What went wrong with the day in this run: each failed file with its error, and the day's state."""
    problems = day_problems(day) or ["the run failed; see its tasks' logs"]
    lines = [f"- {problem}" for problem in problems]
    load = day.state.load()
    if load is not None and load.run_id == day.run_id:
        lines.append(f"- the good files were loaded: {load.rows} rows in {load.table}")
    else:
        lines.append("- nothing of the day was loaded by this run")
    lines.append(f"- run {day.run_id}: fix or re-send the files, then clear their failed map index in Airflow")
    return Message(f"autopo: {day.pipeline} {day.date.isoformat()} failed", lines)


def lateness_message(
    day: Day, now: dt.datetime, state: Readiness | None = None, problems: list[str] | None = None
) -> Message:
    """What is late at the deadline: the files that have not come, or the step the day is in. ``state`` and
    ``problems``: the day's readiness and day_problems, when the caller has them already."""
    config = day.config
    deadline = config.alerts.deadline
    local = f"{deadline:%H:%M} {config.timezone}" if deadline else "its deadline"
    state = state if state is not None else readiness(day, now)
    lines = []
    if state.missing_stores:
        lines.append(f"- stores that have not sent files: {', '.join(state.missing_stores)}")
    if not state.files:
        lines.append(f"- no file for {day.date.isoformat()} has arrived at {day.source().describe()}")
    listing = day.listing()
    if listing is None:
        lines.append("- the day has not started: it is waiting for files")
    elif problems := (problems if problems is not None else day_problems(day)):
        lines += [f"- {problem}" for problem in problems]
    elif config.as_they_arrive and _loaded_by_its_run(day):
        lines.append(
            f"- the snapshot holds the {len(listing.routed)} file(s) that have arrived (run {listing.run_id}); "
            "it is loaded again as more arrive"
        )
    else:
        lines.append("- the day is still being processed")
    return Message(f"autopo: {config.name} {day.date.isoformat()} not loaded by {local}", lines)


def _loaded_by_its_run(day: Day) -> bool:
    listing, load = day.listing(), day.state.load()
    return listing is not None and load is not None and load.run_id == listing.run_id


def late_day(day: Day, now: dt.datetime) -> Message | None:
    """What is late about the date (as its runs have left it, whichever run) once its deadline has
    passed; None before the deadline, or when every expected store's file is loaded and none failed."""
    moment = deadline_moment(day.config, day.date)
    if moment is None or now < moment:
        return None
    latest = day.for_run(None)
    # Listed and judged once: the message below says the same.
    state = readiness(latest, now)
    problems = day_problems(latest) if latest.listing() is not None else None
    complete = problems == [] and _loaded_by_its_run(latest) and not state.missing_stores
    return None if complete else lateness_message(latest, now, state, problems)


# --- where to say it -------------------------------------------------------------------


class WebhookConnectionError(ValueError):
    """The webhook's connection points where a message (and the token in its URL) must not go."""


class WebhookDeliveryError(RuntimeError):
    """The webhook could not be reached or did not accept the message; says so without its URL's path."""


# What RFC 3986 allows in a URL's authority. Parsers disagree on anything else (a backslash is a path
# separator to urllib3, which sends the message, and part of the user name to urllib.parse), so a
# plain-http URL with anything else is not taken for this machine's.
_AUTHORITY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]%]*")


def check_webhook_url(conn_id: str, url: str) -> str:
    """``url`` when it is https, or plain http to this machine; else WebhookConnectionError naming the
    connection (the host only: the rest of a webhook URL is its secret)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        scheme, host, authority = parsed.scheme, parsed.hostname or "", parsed.netloc
    except (ValueError, TypeError):
        scheme, host, authority = "", "", ""
    if scheme == "https" and host:
        return url
    if scheme == "http" and is_loopback_host(host) and _AUTHORITY.fullmatch(authority):
        return url
    where = f"{scheme}://{host}" if scheme and host else "an address that is not a URL"
    raise WebhookConnectionError(
        f"the webhook connection {conn_id!r} points at {where}: the failure webhook is only sent over https "
        "(plain http only to this machine: localhost, 127.0.0.0/8, ::1); nothing was sent; "
        f"set the connection's host to the webhook's https:// URL"
    )


def post_webhook(conn_id: str, message: Message) -> None:
    """POST a Slack-compatible ``{"text": ...}`` with the http provider's HttpHook on the connection: the URL
    (and any token in it) is the connection's as HttpHook reads it (the whole URL in ``host``, as for Slack),
    and must be https (or plain http to this machine). A redirect is not followed (it could lead to plain
    http elsewhere) and, like any answer but 2xx, is a WebhookDeliveryError."""
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.sdk.log import mask_secret

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    url = check_webhook_url(conn_id, hook.url_from_endpoint(None))
    parsed = urllib.parse.urlsplit(url)
    secret = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    if len(secret) > 1:
        mask_secret(secret)  # in Airflow's logs, the provider's own lines included
    where = f"the webhook connection {conn_id!r} ({parsed.scheme}://{parsed.hostname})"
    try:
        response = hook.run(
            json={"text": message.slack_text},
            extra_options={"timeout": WEBHOOK_TIMEOUT_S, "allow_redirects": False, "check_response": False},
        )
    except Exception as exc:  # requests names the whole URL in its errors: not in ours
        detail = str(exc).replace(secret, "/...") if len(secret) > 1 else str(exc)
        raise WebhookDeliveryError(f"{where}: {type(exc).__name__}: {detail}") from None
    if not 200 <= response.status_code < 300:
        raise WebhookDeliveryError(f"{where} answered {response.status_code} {response.reason}")


def send_email(config: PipelineConfig, message: Message) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=config.alerts.email_conn_id) as hook:
        hook.send_email_smtp(to=config.alerts.email_to, subject=message.subject, html_content=message.html)


def _deliver(what: str, send: Any, *args: Any) -> None:
    # A notification that cannot go out is logged loudly; it must not hide the run's own failure.
    try:
        send(*args)
    except Exception:
        log.exception("%s could not be sent", what)


# --- the callbacks Airflow calls ----------------------------------------------------------


def run_failed(context: Any) -> None:
    """``on_failure_callback`` of a pipeline's DAG: the failed files and their errors, to the webhook/email."""
    dag_run = context["dag_run"]
    config = required_config(dag_run.dag_id)
    date = business_date_of_run(config, dag_run)
    message = failure_message(Day(config, data_layout(), date, dag_run.run_id))
    if config.alerts.webhook_conn_id:
        _deliver("failure webhook", post_webhook, config.alerts.webhook_conn_id, message)
    if config.alerts.email_on_failure:
        _deliver("failure email", send_email, config, message)


def check_arrivals_deadline(day: Day, run_type: str, now: dt.datetime) -> None:
    """check_day of an ``as_they_arrive`` pipeline's run: once the date's deadline has passed with the day
    incomplete, email it, once per business date (the notice is kept in the day's state). Backfill runs
    have no deadline to miss. An email that cannot be sent is logged, not recorded: the next run tries again."""
    if run_type == "backfill" or day.config.alerts.deadline is None or day.run_id is None:
        return
    notice = day.state.deadline_notice()
    if notice is not None:
        log.info("%s: the missed deadline was reported by run %s at %s", day.describe(), notice.run_id, notice.sent_at)
        return
    message = late_day(day, now)
    if message is None:
        return
    try:
        send_email(day.config, message)
    except Exception:
        log.exception("%s: deadline email could not be sent; the next run of the date tries again", day.describe())
        return
    day.state.save_deadline_notice(DeadlineNotice(run_id=day.run_id, sent_at=now_iso(), subject=message.subject))
    log.warning("%s: %s (emailed to %s)", day.describe(), message.subject, ", ".join(day.config.alerts.email_to))


async def deadline_missed(pipeline: str, context: dict[str, Any]) -> None:
    """Deadline Alert callback (on the triggerer): email that the day's snapshot is late."""
    dag_run = context["dag_run"]
    if dag_run.get("run_type") == "backfill":
        log.info("%s %s: a backfill run has no deadline to miss", pipeline, dag_run.get("dag_run_id"))
        return
    if dag_run.get("state") == "failed":
        log.info("%s %s: the run failed and said so; no second message", pipeline, dag_run.get("dag_run_id"))
        return
    config = required_config(pipeline)
    date = business_date_of_run(config, dag_run)
    # Off the triggerer's event loop: the day's state may be read from a bucket.
    message = await asyncio.to_thread(
        lambda: lateness_message(Day(config, data_layout(), date, dag_run["dag_run_id"]), pendulum.now("UTC"))
    )
    await asyncio.to_thread(send_email, config, message)
