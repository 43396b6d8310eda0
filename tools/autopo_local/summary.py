"""What a day's run did, from its state files and the warehouse: for people and for make."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from autopo_pipelines.config import required_config
from autopo_pipelines.day import Day
from autopo_pipelines.day.checks import day_problems
from autopo_pipelines.day.outputs import row_accounting
from autopo_pipelines.day.parts import DayParts, collect_parts
from autopo_pipelines.layout import DataLayout
from autopo_pipelines.orchestration.connections import WAREHOUSE_CONN_ENV
from autopo_pipelines.warehouse import count_rows


def day_summary(pipeline: str, date: dt.date, layout: DataLayout, conninfo: str | None) -> dict[str, Any]:
    """The latest attempt at the day, whichever run made it."""
    day = Day(required_config(pipeline), layout, date)
    listing = day.listing()
    aggregate = day.state.aggregate()
    if listing is not None and aggregate is not None and aggregate.run_id != listing.run_id:
        aggregate = None
    parts = aggregate.files if aggregate is not None else []
    outputs = (aggregate.outputs if aggregate is not None else None) or {}
    counts = row_accounting(aggregate)
    table_rows = None
    tracked = None
    if conninfo:
        table = day.definition.snapshot
        table_rows = count_rows(conninfo, table.name, table.date_column, date)
        tracked = tracked_run(conninfo, pipeline, date)
    collected = collect_parts(day, listing) if listing is not None else DayParts([], [])
    unrouted = [asdict(file) for file in listing.unrouted] if listing is not None else []
    return {
        "pipeline": pipeline,
        "date": date.isoformat(),
        "files_seen": listing.files_seen if listing is not None else 0,
        "files_routed": len(listing.routed) if listing is not None else 0,
        "files_processed": sum(1 for p in parts if p.get("status") == "completed"),
        "files_unchanged": sum(1 for p in parts if p.get("status") == "skipped"),
        "files_failed": len(collected.failed),
        "files_unrouted": len(unrouted),
        "files_superseded": len(listing.superseded) if listing is not None else 0,
        "files_other_dates": listing.other_dates if listing is not None else 0,
        "rows_in": counts.rows_in,
        "rows_out": counts.rows_out,
        "rows_rejected": counts.rows_rejected,
        "rows_skipped": counts.rows_skipped,
        # Every row in is skipped, rejected, in the snapshot, or merged into a row that is.
        "rows_merged": counts.rows_merged,
        "status_counts": dict(sorted((outputs.get("status_counts") or {}).items())),
        "outputs": outputs.get("files", {}),
        "table_rows": table_rows,
        "tracked": tracked,
        "failures": collected.failed,
        # Files of the last loaded snapshot this run kept (or, on request, left out): never silently.
        "retained": [dict(kept) for kept in collected.retained.values()],
        "dropped": [dict(kept) for kept in collected.dropped.values()],
        "unrouted": unrouted,
        "notes": list(listing.inputs.notes) if listing is not None else [],
        # Without a listing day_problems says so before it looks at any part.
        "problems": day_problems(day, collected),
    }


def tracked_run(conninfo: str, pipeline: str, date: dt.date) -> dict[str, Any] | None:
    """The date's row in pipeline_runs, as the tracking plugin left it."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT status, attempt, processed_files, skipped_files, failed_files, missing_stores, notes "
            "FROM pipeline_runs WHERE pipeline_name = %s AND date = %s",
            (pipeline, date),
        ).fetchone()
    if row is None:
        return None
    keys = ("status", "attempt", "processed_files", "skipped_files", "failed_files", "missing_stores", "notes")
    return dict(zip(keys, row, strict=True))


def render_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"== {summary['pipeline']} {summary['date']} ==",
        f"files: {summary['files_seen']} seen, {summary['files_routed']} for the date, "
        f"{summary['files_processed']} processed, {summary['files_unchanged']} unchanged, "
        f"{summary['files_failed']} failed, "
        f"{summary['files_unrouted']} unrouted, {summary['files_superseded']} superseded, "
        f"{summary['files_other_dates']} for other dates",
        f"rows: {summary['rows_in']} in, {summary['rows_out']} out, {summary['rows_rejected']} rejected, "
        f"skipped {summary['rows_skipped'] or {}}, merged into another row (duplicate keys) "
        f"{summary['rows_merged']}",
    ]
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    if summary["status_counts"]:
        lines.append("status: " + ", ".join(f"{k} {v}" for k, v in summary["status_counts"].items()))
    for path in summary["outputs"].values():
        lines.append(f"output: {_shown(path)}")
    if summary["table_rows"] is not None:
        lines.append(f"table rows for {summary['date']}: {summary['table_rows']}")
    if summary["tracked"]:
        tracked = summary["tracked"]
        lines.append(
            f"tracking (pipeline_runs): {tracked['status']}, attempt {tracked['attempt']}, "
            f"files processed {tracked['processed_files']} / skipped {tracked['skipped_files']} / "
            f"failed {tracked['failed_files']}, missing stores {tracked['missing_stores'] or 'none'}"
        )
    for failure in summary["failures"]:
        lines.append(f"FAILED {failure['error']}")
    for kept in summary["retained"]:
        lines.append(f"retained {kept['file_name']}: {kept['reason']}")
    for left in summary["dropped"]:
        lines.append(f"dropped {left['file_name']}: {left['reason']}")
    for unrouted in summary["unrouted"]:
        lines.append(f"unrouted {unrouted['name']}: {unrouted['reason']}")
    lines.append("result: " + ("OK" if not summary["problems"] else "FAILED: " + "; ".join(summary["problems"])))
    return "\n".join(lines)


def _shown(path: str) -> str:
    """A path below the current folder as relative to it (``data/seeds/...``), others as they are."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print what a pipeline day's run did.")
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--db-url", default=os.environ.get(WAREHOUSE_CONN_ENV))
    args = parser.parse_args(argv)
    layout = DataLayout(args.data.resolve()) if args.data else DataLayout.from_env()
    summary = day_summary(args.pipeline, args.date, layout, args.db_url)
    print(render_summary(summary))
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
