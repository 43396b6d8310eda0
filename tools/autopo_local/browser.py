"""Airflow's UI in a real browser, as a user uses it: Debian's chromium driven by Playwright.

Playwright (requirements-dev.txt) drives the system's browser, ``/usr/bin/chromium`` from apt
(tools/system_packages.sh installs it); Playwright's own browser download is not used. Shared by
tests/system/test_dashboard_browser.py and ``make dashboard-screenshot`` (``autopo_local.screenshot``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from playwright.sync_api import Browser, Frame, FrameLocator, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches out: on a closed network chromium's background connections
# (updates, sync, Google's hosts) are refused at every start. --no-sandbox: root has no user namespace
# sandbox here.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# The dashboard's entry in Airflow's navigation: the plugin's external view (autopo_tracking/plugin.py).
NAV_ENTRY = "Stores"
PLUGIN_ROUTE = "autopo"


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install -y chromium (tools/system_packages.sh)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Open the UI, which sends a visitor without a login to Airflow's login form; fill it in and sign in."""
    page.goto(base_url.rstrip("/") + "/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.get_by_test_id("nav-sidebar").wait_for()


def open_nav_entry(page: Page, name: str = NAV_ENTRY) -> FrameLocator:
    """Click the plugin's entry in Airflow's navigation; the frame the UI shows its page in.

    Airflow 3.3's sidebar (layouts/Nav/PluginMenus.tsx) shows a nav view without a category as a button
    of its own when it is the only one, and puts them all in a "Plugins" menu when there are two or more.
    """
    nav = page.get_by_test_id("nav-sidebar")
    entry = nav.get_by_role("link", name=name, exact=True)
    plugins = nav.get_by_role("button", name="Plugins", exact=True)
    entry.or_(plugins).first.wait_for()
    if entry.count() == 0:
        plugins.click()
        entry = page.get_by_role("menuitem", name=name, exact=True)
    entry.click()
    page.wait_for_url(re.compile(rf"/plugin/{PLUGIN_ROUTE}$"))
    return page.frame_locator(f'iframe[src*="{PLUGIN_ROUTE}/"]')


def dashboard_frame(page: Page) -> Frame:
    """The dashboard's frame as a ``Frame`` (its URL, waiting for a navigation inside it)."""
    handle = page.locator(f'iframe[src*="{PLUGIN_ROUTE}/"]').element_handle()
    frame = handle.content_frame() if handle is not None else None
    if frame is None:
        raise RuntimeError("the plugin page shows no dashboard frame")
    return frame


def show_grid(page: Page, pipeline: str, end: dt.date, days: int) -> Frame:
    """In the dashboard's frame, as a user: the "Stores × dates" tab, then its form (pipeline, "Up to", days)."""
    frame = dashboard_frame(page)
    frame.get_by_role("navigation", name="autopo views").get_by_role("link", name="Stores × dates").click()
    frame.wait_for_url(re.compile(r"/grid$"))
    form = frame.locator("form.filters")
    form.get_by_label("Pipeline").select_option(pipeline)
    form.get_by_label("Up to").fill(end.isoformat())
    form.get_by_label("Days").fill(str(days))
    form.get_by_role("button", name="Show").click()
    frame.wait_for_url(re.compile(rf"/grid\?pipeline={re.escape(pipeline)}&end={end.isoformat()}&days={days}$"))
    frame.locator(f'table.grid[data-pipeline="{pipeline}"]').wait_for()
    return frame
