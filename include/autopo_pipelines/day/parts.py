"""The day's parts: every routed file's outcome in this run, and what the last load keeps.

The rule (docs/stock_health.md, "Reruns"): a date's snapshot holds, per source file, its latest
good version. Each listed file contributes exactly its own part; a file gone from the source, or
whose new version failed, keeps its last loaded version's part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autopo_pipelines.aggregate import Part, read_part_meta
from autopo_pipelines.day.core import Day
from autopo_pipelines.day.state import Listing

RETAINED_GONE = "retained (source gone): its last good version's rows stay in the snapshot"
RETAINED_FAILED = "its previous good version's rows stay in the snapshot"
RETAINED_NEWER_FAILED = "retained: no good newer file of its store replaces it; its rows stay in the snapshot"
DROPPED_ON_REQUEST = "no longer at the source: its rows were dropped on request (drop_missing)"


@dataclass(frozen=True)
class DayParts:
    parts: list[Part]
    failed: list[dict[str, Any]]
    # Files whose last good version stays in the snapshot although this run has no good part of
    # them: location -> why (``RETAINED_GONE`` or ``RETAINED_FAILED``), with their name.
    retained: dict[str, dict[str, str]] = field(default_factory=dict)
    # Files of the last loaded snapshot that this run leaves out: location -> why.
    dropped: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def directories(self) -> list[str]:
        return sorted(str(part.directory) for part in self.parts)


class PartMismatchError(RuntimeError):
    """A part that is not the listed file's own: a bug or a tampered state folder, never to be loaded."""


def collect_parts(day: Day, listing: Listing) -> DayParts:
    """This run's outcome for every routed file: its part, or why it has none.

    Each listed file contributes exactly its own part: a part whose record names another file at the
    source, or one part counted for two files, is an error here rather than rows lost or doubled.
    """
    parts: list[Part] = []
    failed: list[dict[str, Any]] = []
    claimed: dict[str, str] = {}
    for routed in listing.routed:
        name, location = routed.name, routed.location
        record = day.state.result(location, name)
        if record is None or record.run_id != listing.run_id:
            error = f"{name}: not transformed in this run (see its task's log)"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        if record.status == "failed" or record.part is None:
            failed.append({**record.to_json(), "file_path": location})
            continue
        directory = day.layout.locate(record.part)
        meta = read_part_meta(directory)
        if meta is None or meta.get("checksum") != record.checksum:
            error = f"{name}: its transformed part is missing; rerun its task"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        if meta.get("file_path") != location or record.part in claimed:
            raise PartMismatchError(
                f"{name} ({location}): its part {directory} was made from "
                f"{claimed.get(record.part) or meta.get('file_path')}; the day is not aggregated from it"
            )
        claimed[record.part] = location
        # The source's modified time orders the files when rows of several are merged (latest wins).
        parts.append(Part(directory=directory, meta={**meta, "status": record.status, "modified": routed.modified}))
    retained, dropped = _keep_last_good_versions(day, listing, parts, failed)
    # A failed file whose previous version is kept says so, wherever its error is shown.
    failed = [
        {**record, "error": f"{record['error']}; {RETAINED_FAILED}"} if record["file_path"] in retained else record
        for record in failed
    ]
    return DayParts(parts=parts, failed=failed, retained=retained, dropped=dropped)


def baseline(day: Day) -> list[dict[str, Any]]:
    """The parts the date held before the day's run loaded anything (see LoadedParts.before)."""
    loaded = day.state.loaded_parts()
    if loaded is None:
        return []
    return loaded.before(day.run_id) if day.run_id is not None else list(loaded.files)


def _keep_last_good_versions(
    day: Day, listing: Listing, parts: list[Part], failed: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Add to ``parts`` the last loaded version of every file this run has no good part of.

    A file gone from the source keeps it (unless the run asked to drop missing files); a new
    version that fails keeps the previous one's rows. Where the pipeline has stores the unit is the
    store: a store's good file in this run replaces whatever was kept for it, so a re-upload under a
    new name never doubles a store.
    """
    good = {str(part.meta.get("file_path")) for part in parts}
    stores = {part.meta.get("store_id") for part in parts if part.meta.get("store_id") is not None}
    routed = {file.location for file in listing.routed}
    failed_locations = {record["file_path"] for record in failed}
    failed_stores = {
        file.store_id for file in listing.routed if file.location in failed_locations and file.store_id is not None
    }
    retained: dict[str, dict[str, str]] = {}
    dropped: dict[str, dict[str, str]] = {}
    for kept in baseline(day.for_run(listing.run_id)):
        location, name = str(kept["file_path"]), str(kept["file_name"])
        if location in good or (kept.get("store_id") is not None and kept["store_id"] in stores):
            continue  # this run has a good version of the file, or of its store
        if location in routed:
            reason = RETAINED_FAILED
        elif listing.drop_missing:
            dropped[location] = {"file_name": name, "reason": DROPPED_ON_REQUEST}
            continue
        elif kept.get("store_id") is not None and kept["store_id"] in failed_stores:
            reason = RETAINED_NEWER_FAILED
        else:
            reason = RETAINED_GONE
        directory = day.layout.locate(str(kept["part"]))
        meta = read_part_meta(directory)
        if meta is None or meta.get("checksum") != kept.get("checksum"):
            # Never silent: the day is not complete while a file's rows are missing from it.
            error = f"{name}: its last good version's part ({directory}) is gone, so its rows are not in the "
            error += "snapshot; send the file again (or run the date with drop_missing to leave it out)"
            failed.append({"file_name": name, "file_path": location, "error": error})
            continue
        parts.append(Part(directory=directory, meta={**meta, "status": "retained", "modified": kept["modified"]}))
        retained[location] = {"file_name": name, "reason": reason}
    return retained, dropped
