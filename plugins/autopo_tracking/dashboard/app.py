"""The dashboard app the plugin mounts on Airflow's API server at ``/autopo``.

* ``/autopo/api/v1/...``: the admin API, JSON (OpenAPI at ``/autopo/api/v1/openapi.json``). A request
  without an Airflow login is answered 401, as Airflow's own API answers it.
* ``/autopo/``, ``/autopo/grid``, ``/autopo/history``, ``/autopo/failed``, ``/autopo/metrics``: the pages,
  rendered here (Jinja2, a little plain JavaScript, no build step; docs/dashboard.md says why). Airflow
  shows them in its UI frame; the browser's Airflow login (the ``_token`` cookie) is theirs, and a
  visitor without one is sent to Airflow's login page.

Nothing here changes state: a retry is Airflow's own ``clearTaskInstances``, which the page (or a
script) sends with the body ``/api/v1/file-jobs/{id}/retry-plan`` gives; Airflow checks the user's
permission and writes the audit log.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import psycopg
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep, bearer_scheme, get_user, requires_authenticated
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator

from autopo_pipelines.config import PipelineConfig
from autopo_pipelines.dates import business_date_at
from autopo_pipelines.orchestration.connections import WarehouseConnectionMissing
from autopo_tracking.dashboard import access, cells, charts, queries
from autopo_tracking.dashboard.models import (
    FileJob,
    FileJobPage,
    Grid,
    Metrics,
    Pipeline,
    RetryPlan,
    Run,
    RunPage,
    Today,
)
from autopo_tracking.dashboard.reader import WarehouseReader

log = logging.getLogger(__name__)

URL_PREFIX = "/autopo"
HERE = Path(__file__).parent
RUN_STATUSES = ("pending", "processing", "completed", "completed_with_errors", "failed")
MAX_DAYS = 120
MAX_PAGE = 500

templates = Jinja2Templates(directory=HERE / "templates")
reader = WarehouseReader()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Viewer:
    """The signed-in user, the pipelines they may read, and a warehouse connection for the request."""

    def __init__(self, user: Any, conn: psycopg.Connection[Any]) -> None:
        self.user = user
        self.conn = conn
        self.configs = access.pipeline_configs()
        self.visible = access.readable(user, self.configs)

    @property
    def names(self) -> list[str]:
        return [config.name for config in self.visible]

    @functools.cached_property
    def retryable(self) -> set[str]:
        """The visible pipelines whose task instances the user may clear: asked once per request."""
        return {config.name for config in self.visible if access.can_retry(self.user, config.name)}

    def chosen(self, pipeline: str | None) -> list[PipelineConfig]:
        return access.chosen(pipeline, self.visible, self.configs)

    def one(self, pipeline: str | None) -> PipelineConfig:
        """The named pipeline, or the first the user may read (404 when there is none)."""
        configs = self.chosen(pipeline)
        if not configs:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "there is no pipeline you may read")
        return configs[0]

    def pipeline(self, config: PipelineConfig) -> Pipeline:
        return Pipeline(
            name=config.name,
            description=config.description,
            timezone=config.timezone,
            expected_stores=config.expected_stores,
            deadline=config.alerts.deadline.strftime("%H:%M") if config.alerts.deadline else None,
            business_date=business_date_at(config, _now()),
            can_retry=config.name in self.retryable,
        )


def _connection() -> Iterator[psycopg.Connection[Any]]:
    try:
        with reader.connection() as conn:
            yield conn
    except WarehouseConnectionMissing as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    except psycopg.OperationalError:
        # The reason names hosts, ports and users: the log has it, the people using the page do not.
        log.exception("dashboard: the warehouse cannot be read")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the warehouse cannot be read now; the API server's log says why"
        ) from None


Conn = Annotated[psycopg.Connection[Any], Depends(_connection)]


def _viewer(user: GetUserDep, conn: Conn) -> Viewer:
    return Viewer(user, conn)


class LoginRequired(Exception):
    pass


async def _page_user(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Any:
    """Airflow's user of a page request; a browser without a login goes to Airflow's login page, as does one
    whose token Airflow no longer accepts (403 "Invalid JWT token": e.g. signed before the API server's secret
    changed), as Airflow's own UI sends it there."""
    try:
        return await get_user(request, None, bearer)
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise LoginRequired from None
        raise


def _page_viewer(user: Annotated[Any, Depends(_page_user)], conn: Conn) -> Viewer:
    return Viewer(user, conn)


ApiViewer = Annotated[Viewer, Depends(_viewer)]
PageViewer = Annotated[Viewer, Depends(_page_viewer)]
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="how many dates, up to end")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0)]


def _blank_is_none(value: object) -> object:
    """A page's form sends a date field left empty as ``name=``: no date given, not a bad one."""
    return None if value == "" else value


# A date in a page's query: empty is none (the API's own parameters stay strict).
FormDate = Annotated[dt.date | None, BeforeValidator(_blank_is_none)]


# The dates a grid or metrics may end on: a date range further out is no business date (and 0001-01-01
# less 120 days is no date at all).
FIRST_END, LAST_END = dt.date(1900, 1, 1), dt.date(9999, 1, 1)


def _end_of(config: PipelineConfig, end: dt.date | None) -> tuple[dt.date, dt.date]:
    latest = business_date_at(config, _now())
    if end is not None and not FIRST_END <= end <= LAST_END:
        detail = f"end: {end} is not between {FIRST_END} and {LAST_END}"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    return (end or latest), latest


# --- the admin API -------------------------------------------------------------------------------

api = APIRouter(prefix="/api/v1", dependencies=[Depends(requires_authenticated())])


@api.get("/pipelines", response_model=list[Pipeline], summary="The pipelines you may read")
def list_pipelines(viewer: ApiViewer) -> list[Pipeline]:
    return [viewer.pipeline(config) for config in viewer.visible]


@api.get("/today", response_model=Today, summary="Each pipeline's run of its current business date")
def get_today(viewer: ApiViewer) -> Today:
    now = _now()
    return Today(now=now, pipelines=queries.today(viewer.conn, viewer.visible, now))


@api.get("/runs", response_model=RunPage, summary="Runs, newest date first, with filters")
def list_runs(
    viewer: ApiViewer,
    pipeline: str | None = None,
    run_status: Annotated[str | None, Query(alias="status", pattern="^(" + "|".join(RUN_STATUSES) + ")$")] = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunPage:
    names = [config.name for config in viewer.chosen(pipeline)]
    return queries.runs_page(
        viewer.conn, names, status=run_status, date_from=date_from, date_to=date_to, limit=limit, offset=offset
    )


class RunDetail(Run):
    file_jobs: list[FileJob]


@api.get("/runs/{pipeline}/{date}", response_model=RunDetail, summary="One date's run and its files")
def get_run(viewer: ApiViewer, pipeline: str, date: dt.date) -> RunDetail:
    config = viewer.one(pipeline)
    run = queries.run_of(viewer.conn, config.name, date)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run of {pipeline} for {date}")
    return RunDetail(**run.model_dump(), file_jobs=queries.files_of_run(viewer.conn, run.id))


@api.get("/grid", response_model=Grid, summary="Stores x dates: each cell a file job's status")
def get_grid(viewer: ApiViewer, pipeline: str | None = None, end: dt.date | None = None, days: Days = 30) -> Response:
    config = viewer.one(pipeline)
    end, latest = _end_of(config, end)
    # Serialised by pydantic-core straight to JSON: FastAPI would validate the thousands of cells again first.
    grid = queries.grid(viewer.conn, config, end, days, latest)
    return Response(grid.model_dump_json(), media_type="application/json")


def _file_job(viewer: Viewer, job_id: int) -> FileJob:
    job = queries.file_job(viewer.conn, job_id, viewer.names)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file job {job_id} that you may read")
    return job


@api.get("/file-jobs/{job_id}", response_model=FileJob, summary="One file's details")
def get_file_job(viewer: ApiViewer, job_id: int) -> FileJob:
    return _file_job(viewer, job_id)


@api.get("/failed-jobs", response_model=FileJobPage, summary="File jobs that are failed now, newest date first")
def list_failed_jobs(
    viewer: ApiViewer,
    pipeline: str | None = None,
    since: dt.date | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> FileJobPage:
    names = [config.name for config in viewer.chosen(pipeline)]
    return queries.failed_jobs(viewer.conn, names, limit=limit, offset=offset, since=since)


@api.get(
    "/file-jobs/{job_id}/retry-plan",
    response_model=RetryPlan,
    summary="The clear that retries a failed file",
    description=(
        "POST `body` to Airflow's `clear_path` (relative to Airflow's base URL) as it is to preview what "
        "will be cleared (dry_run true), then with dry_run false to clear. 403 when you may not clear "
        "the pipeline's task instances; 409 when the file is not failed or was never given to a task."
    ),
)
def get_retry_plan(viewer: ApiViewer, job_id: int) -> RetryPlan:
    job = _file_job(viewer, job_id)
    if not access.can_retry(viewer.user, job.pipeline):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not clear task instances of {job.pipeline}")
    try:
        return queries.retry_plan(viewer.conn, job)
    except queries.NotRetryable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@api.get("/metrics", response_model=Metrics, summary="Per business date: files, rows, errors, file time")
def get_metrics(viewer: ApiViewer, pipeline: str | None = None, end: dt.date | None = None, days: Days = 30) -> Metrics:
    config = viewer.one(pipeline)
    end, _ = _end_of(config, end)
    return queries.metrics(viewer.conn, config.name, end, days)


# --- the pages ------------------------------------------------------------------------------------

pages = APIRouter(include_in_schema=False)


def _render(request: Request, viewer: Viewer, template: str, page: str, **context: Any) -> HTMLResponse:
    base = request.scope.get("root_path", "")
    return templates.TemplateResponse(
        request,
        template,
        {
            "base": base,
            # Airflow's own base path, for links into its UI and calls to its API.
            "airflow_base": base.removesuffix(URL_PREFIX),
            "page": page,
            "pipelines": viewer.visible,
            "retryable_pipelines": [c.name for c in viewer.visible if c.name in viewer.retryable],
            "cells": cells,
            "now": _now(),
            **context,
        },
    )


@pages.get("/", response_class=HTMLResponse)
def today_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    now = _now()
    return _render(request, viewer, "today.html", "today", today=queries.today(viewer.conn, viewer.visible, now))


@pages.get("/grid", response_class=HTMLResponse)
def grid_page(
    request: Request, viewer: PageViewer, pipeline: str | None = None, end: FormDate = None, days: Days = 30
) -> HTMLResponse:
    config = viewer.one(pipeline)
    end, latest = _end_of(config, end)
    return _render(
        request,
        viewer,
        "grid.html",
        "grid",
        grid=queries.grid(viewer.conn, config, end, days, latest),
    )


@pages.get("/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    viewer: PageViewer,
    pipeline: str | None = None,
    run_status: Annotated[str | None, Query(alias="status")] = None,
    date_from: FormDate = None,
    date_to: FormDate = None,
    offset: Offset = 0,
) -> HTMLResponse:
    names = [config.name for config in viewer.chosen(pipeline or None)]
    run_status = run_status if run_status in RUN_STATUSES else None
    runs = queries.runs_page(
        viewer.conn, names, status=run_status, date_from=date_from, date_to=date_to, limit=50, offset=offset
    )
    filters = {"pipeline": pipeline or "", "status": run_status or "", "date_from": date_from, "date_to": date_to}
    return _render(request, viewer, "history.html", "history", runs=runs, filters=filters, statuses=RUN_STATUSES)


@pages.get("/failed", response_class=HTMLResponse)
def failed_page(request: Request, viewer: PageViewer, pipeline: str | None = None, offset: Offset = 0) -> HTMLResponse:
    names = [config.name for config in viewer.chosen(pipeline or None)]
    jobs = queries.failed_jobs(viewer.conn, names, limit=50, offset=offset)
    return _render(request, viewer, "failed.html", "failed", jobs=jobs, pipeline_filter=pipeline or "")


@pages.get("/metrics", response_class=HTMLResponse)
def metrics_page(
    request: Request, viewer: PageViewer, pipeline: str | None = None, end: FormDate = None, days: Days = 30
) -> HTMLResponse:
    config = viewer.one(pipeline)
    end, _ = _end_of(config, end)
    found = queries.metrics(viewer.conn, config.name, end, days)
    rows_chart = charts.bar_chart(
        f"{config.name}: rows loaded per day",
        "rows",
        [(d.date, float(d.rows_loaded) if d.run_status else None) for d in found.days],
    )
    time_chart = charts.bar_chart(
        f"{config.name}: run time per day (minutes)",
        "min",
        [(d.date, d.run_seconds / 60 if d.run_seconds is not None else None) for d in found.days],
        css_class="bars time",
    )
    return _render(
        request, viewer, "metrics.html", "metrics", metrics=found, rows_chart=rows_chart, time_chart=time_chart
    )


def create_app() -> FastAPI:
    app = FastAPI(
        title="autopo dashboard and admin API",
        version="1",
        description=(
            "The tracking tables of the autopo pipelines, as the dashboard shows them. Every endpoint needs an "
            "Airflow login: the `Authorization: Bearer <token>` header (`POST /auth/token`) or the UI's cookie. "
            "Rows are limited to the pipelines whose DAG you may read."
        ),
        openapi_url="/api/v1/openapi.json",
        # No Swagger page: it loads its scripts from a CDN, and the dashboard works offline.
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(api)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def _not_cached(request: Request, call_next: Any) -> Response:
        # What a user may see is theirs: no browser or proxy keeps a page or an answer for the next one.
        response: Response = await call_next(request)
        if "/static/" not in request.url.path:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        # Back to the page asked for once signed in: in the UI's frame (the login there had expired) or
        # on its own. Our own path: the login cannot send the browser anywhere else.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = get_auth_manager().get_url_login(next_url=target)
        return RedirectResponse(login, status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.removeprefix(request.scope.get("root_path", "")).startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return HTMLResponse(
            f"<!doctype html><title>{exc.status_code}</title><p>{html.escape(str(exc.detail))}</p>",
            status_code=exc.status_code,
        )

    return app


app = create_app()
