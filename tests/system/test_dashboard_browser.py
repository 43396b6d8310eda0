"""The dashboard in a real browser: a failed store file seen in the grid, retried from its details, completed.

Debian's chromium (``/usr/bin/chromium``, apt; tools/system_packages.sh) driven by Playwright, against
the session's real Airflow stack: sign in on Airflow's login form, open the plugin's entry in Airflow's
navigation, and in the frame the UI shows it in, go to the stores x dates grid of the day, open the
failed store's cell, replace the file on disk and retry it (Airflow's clearTaskInstances: a preview,
then the clear), until the dialog says the retry ended and the cell shows completed; then the details'
task log link opens the task instance in Airflow's UI, out of the frame.

Screenshots of each step go to ``$AUTOPO_SCREENSHOTS`` when set, else to the test's tmp_path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import ADMIN_USER, AirflowStack, report
from playwright.sync_api import Frame, Locator, Page, expect, sync_playwright

from autopo_local.browser import CHROMIUM, NAV_ENTRY, PLUGIN_ROUTE, launch, open_nav_entry, show_grid, sign_in
from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout
from autopo_tracking import plugin
from autopo_tracking.dashboard import cells

pytestmark = pytest.mark.system

DAG_ID = "stock_health"
# Not test_clear_failed_file's date: both tests run on the session's stack and warehouse.
DATE = dt.date(2024, 12, 9)
BAD_STORE = "STORE-002"
GOOD_STORES = ("STORE-001", "STORE-003")
RUN_TIMEOUT_S = 150
# The dashboard polls the file every 3 s after the clear; the rerun is two tasks and a reload.
RETRY_TIMEOUT_MS = 180_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"{CHROMIUM} is missing in CI: tools/system_packages.sh installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (tools/system_packages.sh) to run this test")
    return CHROMIUM


class Shots:
    """Numbered screenshots of the whole page (Airflow's UI with the dashboard in its frame)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def __call__(self, page: Page, name: str) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Shots]:
    folder = Path(os.environ["AUTOPO_SCREENSHOTS"]) if os.environ.get("AUTOPO_SCREENSHOTS") else tmp_path / "shots"
    taken = Shots(folder.absolute())
    yield taken
    report(request.config, f"\ndashboard browser test: {len(taken.taken)} screenshots in {taken.folder}")


def cell_text(status: str) -> str:
    look = cells.look_of(status)
    return look.symbol + look.letter


def fail_one_file(stack: AirflowStack, pg_url: str) -> tuple[str, Path]:
    """A 3-store day whose STORE-002 file is damaged, run through the REST API until it fails; (run id, file)."""
    day = generate_sample_day(DataLayout(stack.data_root), DATE, stores=3, skus=20)
    bad = next(f for f in day.files if f.name.startswith(BAD_STORE))
    bad.write_bytes(b"PK\x03\x04 definitely not a workbook \x00\xff" * 8)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM stock_health_snapshots WHERE snapshot_date = %s", (DATE,))
        conn.execute("DELETE FROM pipeline_runs WHERE pipeline_name = %s AND date = %s", (DAG_ID, DATE))
    run_id = stack.client.trigger(DAG_ID, {"date": DATE.isoformat()})
    state = stack.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    failed = [
        ti["rendered_map_index"]
        for ti in stack.client.task_instances(DAG_ID, run_id)
        if ti["task_id"] == "transform_file" and ti["state"] == "failed"
    ]
    assert (state, failed) == ("failed", [bad.name])
    return run_id, bad


def take_failure_post(posts: list[dict[str, Any]]) -> None:
    """The failed run's webhook post (the DAG processor sends it a moment after the run ends), taken off the
    session's list: test_clear_failed_file counts the posts of its own failure."""
    deadline = time.monotonic() + 60
    prefix = f"autopo: {DAG_ID} {DATE.isoformat()} failed"
    while time.monotonic() < deadline:
        mine = [p for p in posts if p["json"]["text"].startswith(prefix)]
        if mine:
            posts.remove(mine[0])
            return
        time.sleep(0.5)
    raise AssertionError(f"no failure webhook for {DATE} in 60 s: {posts}")


def check_grid_shapes(frame: Frame) -> None:
    """Each status has a symbol and a letter of its own besides its colour, in the cells and the legend."""
    texts = {look.status: look.symbol + look.letter for look in cells.LOOKS}
    assert len(set(texts.values())) == len(texts), texts
    legend = frame.get_by_role("list", name="Legend")
    for look in cells.LOOKS:
        expect(legend.locator(f".cell-{look.status}")).to_have_text(texts[look.status])
    grid = frame.locator("table.grid")
    # The grid ends on DATE: its cells are the rows' last ones.
    expect(grid.locator("thead th").last).to_have_attribute("data-date", DATE.isoformat())
    for store in GOOD_STORES:
        expect(day_cell(frame, store)).to_have_text(cell_text("completed"))
    # A date without a run shows its dot, not an empty coloured box.
    day_before = grid.locator(f'tr[data-store="{BAD_STORE}"] td:nth-last-child(2) .cell')
    expect(day_before).to_have_text(cell_text("none"))
    day_before.hover()
    expect(day_before).to_have_attribute("title", f"{BAD_STORE} {DATE - dt.timedelta(days=1)}: no run for this date")


def check_grid_keys(frame: Frame) -> None:
    """The grid is one tab stop; the arrow keys move from cell to cell (the cell's tooltip follows)."""
    grid = frame.locator("table.grid")
    expect(grid.locator('.cell[tabindex="0"]')).to_have_count(1)
    failed = day_cell(frame, BAD_STORE)
    failed.focus()
    failed.press("ArrowLeft")
    before = grid.locator(f'tr[data-store="{BAD_STORE}"] td:nth-last-child(2) .cell')
    expect(before).to_be_focused()
    expect(before).to_have_attribute("tabindex", "0")
    before.press("ArrowRight")
    expect(failed).to_be_focused()
    failed.press("ArrowUp")
    expect(day_cell(frame, GOOD_STORES[0])).to_be_focused()
    expect(day_cell(frame, GOOD_STORES[0])).to_have_attribute("title", f"{GOOD_STORES[0]} {DATE}: completed")


def day_cell(frame: Frame, store: str) -> Locator:
    """The store's cell of DATE, the grid's last column."""
    return frame.locator(f'table.grid tr[data-store="{store}"] td:last-child .cell')


def expect_completed(cell: Locator) -> None:
    expect(cell).to_have_class(re.compile(r"\bcell-completed\b"))
    expect(cell).to_have_text(cell_text("completed"))
    # The tooltip is made from the row's store, the column's date and the legend when the pointer comes onto
    # the cell: the pointer leaves first, since after a reload it may already be where the cell is drawn (then
    # hovering moves nothing and no event comes).
    cell.page.mouse.move(0, 0)
    cell.hover()
    expect(cell).to_have_attribute("title", f"{BAD_STORE} {DATE}: completed")


def test_retry_a_failed_file_from_the_dashboard(
    chromium: Path,  # first (session scope too): without the browser, skip (or fail in CI) before the stack starts
    airflow_stack: AirflowStack,
    pg_url: str,
    tmp_path: Path,
    shots: Shots,
    webhook_posts: tuple[str, list[dict[str, Any]]],
    request: pytest.FixtureRequest,
) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}
    # The menu entry the test looks for is the one the plugin registers.
    assert [v["name"] for v in plugin.AutopoTrackingPlugin.external_views] == [NAV_ENTRY]

    run_id, bad = fail_one_file(airflow_stack, pg_url)
    take_failure_post(webhook_posts[1])
    timings["failing run"] = time.monotonic() - started
    password = json.loads((airflow_stack.home / "simple_auth_manager_passwords.json").read_text())[ADMIN_USER]

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light").new_page()
        page.set_default_timeout(30_000)
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        try:
            t0 = time.monotonic()
            # 1. Sign in as a user does: the UI sends a visitor to Airflow's login form.
            page.goto(airflow_stack.api_url + "/")
            page.wait_for_url(re.compile(r"/auth/login"))
            shots(page, "login")
            sign_in(page, airflow_stack.api_url, ADMIN_USER, password)
            shots(page, "signed-in")

            # 2. The plugin's entry in Airflow's navigation opens the dashboard in the UI's frame.
            dashboard = open_nav_entry(page)
            expect(dashboard.get_by_role("heading", level=1)).to_have_text("Today")
            shots(page, "dashboard-today")

            # 3. The grid of the day: the failed store's cell, F with its cross, the others completed.
            frame = show_grid(page, DAG_ID, DATE, 7)
            expect(frame.get_by_role("heading", level=1)).to_have_text(f"Stores × dates: {DAG_ID}")
            failed_cell = day_cell(frame, BAD_STORE)
            expect(failed_cell).to_have_class(re.compile(r"\bcell-failed\b"))
            expect(failed_cell).to_have_text(cell_text("failed"))
            assert "F" in failed_cell.inner_text()
            check_grid_shapes(frame)
            check_grid_keys(frame)
            shots(page, "grid-failed")

            # 4. The cell's details: the file and its error.
            failed_cell.click()
            dialog = frame.locator("dialog#file-dialog")
            expect(dialog).to_be_visible()
            expect(dialog.locator("#file-dialog-title")).to_have_text(bad.name)
            expect(dialog.locator("dd.file-error")).to_contain_text("damaged or incomplete")
            expect(dialog.locator("dd.file-error")).to_contain_text(bad.name)
            shots(page, "details")

            # 5. The store sends a good file; Retry… previews what Airflow will clear.
            pristine = generate_sample_day(DataLayout(tmp_path / "pristine"), DATE, stores=3, skus=20)
            shutil.copyfile(next(f for f in pristine.files if f.name == bad.name), bad)
            dialog.get_by_role("button", name="Retry…").click()
            expect(dialog.get_by_role("heading", name="Retry preview")).to_be_visible()
            preview = dialog.locator("ul.clear-preview li")
            expect(preview).to_have_count(2)
            expect(preview.filter(has_text=re.compile(r"^transform_file\[\d+\]: failed$"))).to_have_count(1)
            expect(preview.filter(has_text=re.compile(r"^check_day: failed$"))).to_have_count(1)
            expect(dialog.locator("ul.clear-files li")).to_have_text([bad.name])
            expect(dialog).to_contain_text(run_id)
            shots(page, "retry-preview")

            # 6. Confirm: Airflow clears the two task instances; the dialog follows the file to its end.
            dialog.get_by_role("button", name="Clear 2 task instance(s) and rerun").click()
            expect(dialog.locator(".retry-cleared")).to_contain_text("Cleared 2 task instance(s)")
            shots(page, "retry-cleared")
            t1 = time.monotonic()
            expect(dialog.locator(".retry-result")).to_have_text(
                "The retry ended: completed.", timeout=RETRY_TIMEOUT_MS
            )
            timings["retry in the browser"] = time.monotonic() - t1
            expect(dialog.locator("dd.file-error")).to_have_text("none")
            shots(page, "retry-completed")

            # 7. The cell shows completed (letter, shape and its tooltip), in the open page and once the
            # grid is loaded again.
            dialog.get_by_role("button", name="Close").click()
            expect(dialog).to_be_hidden()
            expect_completed(failed_cell)
            shots(page, "grid-completed")
            frame.goto(frame.url)
            expect_completed(failed_cell)

            # 8. The details' task log link opens the task instance in Airflow's UI, out of the frame.
            failed_cell.click()
            log_link = dialog.locator("a.log-link")
            expect(log_link).to_have_text(re.compile(rf"^transform_file\[\d+\] in {re.escape(run_id)}$"))
            log_link.click()
            page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/]+/tasks/transform_file/mapped/\d+$"))
            expect(page.get_by_text(f"transform_file [{bad.name}]", exact=True)).to_be_visible()
            expect(page.get_by_text("Task Tries", exact=True)).to_be_visible()
            expect(page.get_by_text(re.compile(r"Done\. Returned value was")).first).to_be_visible(timeout=30_000)
            expect(page.locator(f'iframe[src*="{PLUGIN_ROUTE}/"]')).to_have_count(0)
            shots(page, "task-log")
            timings["browser"] = time.monotonic() - t0
            assert page_errors == []
        except BaseException:
            shots(page, "failure")
            raise
        finally:
            browser.close()

    # Airflow agrees: the run the retry cleared has ended well.
    assert airflow_stack.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S) == "success"
    timings["test total"] = time.monotonic() - started
    report(
        request.config, "\ndashboard browser test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    )
