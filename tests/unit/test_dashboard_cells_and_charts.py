"""The grid's status vocabulary and the metrics charts: pure functions, no Airflow, no database."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from autopo_tracking.dashboard import cells, charts

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SVG = "{http://www.w3.org/2000/svg}"


def file_job_statuses() -> set[str]:
    """The statuses the newest CHECK constraint of pipeline_file_jobs allows."""
    latest = ""
    for path in sorted(MIGRATIONS.glob("*.sql")):
        check = r"pipeline_file_jobs_status_check CHECK \(status IN \((.*?)\)\)"
        for match in re.finditer(check, path.read_text(), re.S):
            latest = match.group(1)
    return set(re.findall(r"'(\w+)'", latest))


def test_every_status_the_table_allows_has_a_letter_and_a_symbol() -> None:
    statuses = file_job_statuses()
    assert statuses >= {"queued", "processing", "completed", "failed", "skipped", "unrouted", "retained"}
    for status in statuses | {"missing", "none"}:
        assert status in cells.BY_STATUS, f"the grid has no look for {status!r}"
        look = cells.look_of(status)
        assert look.symbol and look.label, status
    letters = [look.letter for look in cells.LOOKS if look.status != "none"]
    assert len(letters) == len(set(letters)), "two statuses share a letter"
    assert all(letters)


def test_a_cell_shows_its_most_urgent_file() -> None:
    assert cells.most_urgent(["completed", "failed", "skipped"]) == "failed"
    assert cells.most_urgent(["skipped", "completed"]) == "completed"
    # A superseded or vanished copy says nothing against a store's good file of the day.
    assert cells.most_urgent(["unrouted", "completed"]) == "completed"
    assert cells.most_urgent(["retained", "unrouted"]) == "retained"
    assert cells.most_urgent(["something new", "completed"]) == "completed"


def test_the_bar_chart_is_valid_svg_with_a_bar_per_value_and_gaps() -> None:
    start = dt.date(2024, 12, 1)
    points = [(start + dt.timedelta(days=n), value) for n, value in enumerate([10.0, None, 2500.0, 0.0])]
    svg = charts.bar_chart("stock_health: rows <loaded> & more", "rows", points)
    root = ET.fromstring(svg)  # well-formed: the title was escaped
    assert root.get("aria-label") == "stock_health: rows <loaded> & more"
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3  # the date without a value is a gap
    tips = [bar.find(f"{SVG}title").text for bar in bars]  # type: ignore[union-attr]
    assert tips == ["2024-12-01: 10 rows", "2024-12-03: 2500 rows", "2024-12-04: 0 rows"]
    heights = [float(bar.get("height", "nan")) for bar in bars]
    assert heights[1] == max(heights) and heights[2] == 0.0
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "2024-12-01" in texts and "2024-12-04" in texts


def test_an_empty_chart_still_draws() -> None:
    root = ET.fromstring(charts.bar_chart("nothing", "rows", []))
    assert root.findall(f"{SVG}rect") == []


def test_every_run_status_has_a_symbol_of_its_own() -> None:
    run_statuses = ["pending", "processing", "completed", "completed_with_errors", "failed"]
    symbols = [cells.badge_symbol(status) for status in run_statuses]
    assert "?" not in symbols and len(set(symbols)) == len(symbols)


def test_a_grid_rows_cells_are_buttons_for_files_and_spans_for_the_rest() -> None:
    html = cells.row_html(["failed", "none", "missing", 'odd"<x>'], [7, None, None, 9], [2, 0, 0, 1])
    found = re.findall(r"<td>(.*?)</td>", html)
    assert found == [
        '<button class="cell cell-failed" aria-label="failed" data-file-job="7" data-files="2">\u2716F</button>',
        '<span class="cell cell-none" aria-label="no run for this date">\u00b7</span>',
        '<span class="cell cell-missing" aria-label="missing">\u25cbM</span>',
        # A status the grid does not know is shown as such, escaped.
        '<button class="cell cell-odd&quot;&lt;x&gt;" aria-label="odd&quot;&lt;x&gt;" data-file-job="9">?</button>',
    ]
