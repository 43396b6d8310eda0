"""A screenshot of the dashboard's stores x dates grid, taken from the running local stack (``make up``).

Signs in to Airflow's UI as the local admin (the login ``make status`` prints), opens the dashboard
from Airflow's navigation, shows the grid of a pipeline up to a date and saves the page as a PNG:
what the README shows (``make dashboard-screenshot``; DATE=2024-12-04, the demo's day, by default).

    python -m autopo_local.screenshot --date 2024-12-04 --out docs/img/dashboard-grid.png
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from autopo_local.browser import launch, open_nav_entry, show_grid, sign_in
from autopo_local.stack import ADMIN_USER, LocalStack

WIDTH = 1100
MAX_HEIGHT = 2000


def take(url: str, password: str, pipeline: str, end: dt.date, days: int, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            # Light mode whatever the machine prefers: the README's picture looks the same every time.
            context = browser.new_context(viewport={"width": WIDTH, "height": 900}, color_scheme="light")
            page = context.new_page()
            sign_in(page, url, ADMIN_USER, password)
            open_nav_entry(page)
            frame = show_grid(page, pipeline, end, days)
            # The frame scrolls inside Airflow's page: make the window tall enough to show the whole grid.
            height = int(frame.evaluate("document.documentElement.scrollHeight"))
            page.set_viewport_size({"width": WIDTH, "height": min(height + 16, MAX_HEIGHT)})
            frame.locator("table.grid").scroll_into_view_if_needed()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot the dashboard's grid from the running `make up` stack.")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ".airflow")))
    parser.add_argument("--pipeline", default="stock_health")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2024, 12, 4), help="the grid's last date")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path("docs/img/dashboard-grid.png"))
    args = parser.parse_args(argv)
    stack = LocalStack(home=args.home.absolute(), data_root=Path("data").absolute(), pg_dir=Path(".pg").absolute())
    if not stack.running_components():
        print("the local stack is not running: `make up` first (and `make demo` for the demo's day)", file=sys.stderr)
        return 1
    state = stack.state()
    if not stack.wait_until_serving(state["url"]):
        return 1
    take(state["url"], state["password"], args.pipeline, args.date, args.days, args.out)
    print(f"{args.out}: the {args.pipeline} grid up to {args.date} ({args.days} days) from {state['url']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
