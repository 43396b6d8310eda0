"""check_day: whether the day is complete, and whether its outputs predate a redone file."""

from __future__ import annotations

from autopo_pipelines.day.core import Day
from autopo_pipelines.day.listing import files_present
from autopo_pipelines.day.parts import DayParts, collect_parts
from autopo_pipelines.day.state import AggregateRecord


def outputs_are_stale(day: Day) -> bool:
    """True when a file's result changed after this run aggregated the day (a cleared file was redone)."""
    listing = day.listing()
    aggregate = day.state.aggregate()
    if listing is None or aggregate is None or aggregate.run_id != day.run_id:
        return False
    parts = collect_parts(day, listing)
    return bool(parts.parts) and _built_from_other_parts(aggregate, parts)


def _built_from_other_parts(aggregate: AggregateRecord, parts: DayParts) -> bool:
    """The aggregate was written from other parts than the files' latest results."""
    return aggregate.parts != parts.directories


def day_problems(day: Day, parts: DayParts | None = None) -> list[str]:
    """Why the day is not complete, in words for the run's log; empty when it is.

    A day without a run_id judges the latest attempt, whichever run made it. ``parts``: the
    day's collect_parts when the caller has them already.
    """
    listing = day.listing()
    if listing is None:
        if not files_present(day):
            return [f"no {day.pipeline} files for {day.date.isoformat()} at {day.source().describe()}"]
        return ["the day's files were not listed in this run (see the list_files task)"]
    if not listing.routed:
        return [f"no file for {day.date.isoformat()} matched the pipeline's file pattern"]
    parts = parts if parts is not None else collect_parts(day, listing)
    problems = [str(failure["error"]) for failure in parts.failed]
    aggregate = day.state.aggregate()
    if aggregate is None or aggregate.run_id != listing.run_id:
        problems.append("the day's outputs were not written in this run (see the aggregate_and_flush task)")
        return problems
    if aggregate.outputs and _built_from_other_parts(aggregate, parts):
        problems.append(
            "the day's outputs predate the latest file results: clear aggregate_and_flush with its downstream tasks"
        )
    load = day.state.load()
    if aggregate.outputs and (load is None or load.aggregate_id != aggregate.aggregate_id):
        problems.append("the snapshot was not loaded into the warehouse (see the load_snapshot task)")
    return problems
