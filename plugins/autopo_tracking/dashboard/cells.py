"""How a file job's status is shown in the stores x dates grid: a letter and a shape as well as a
colour, so that no status rests on colour alone; and which status a cell shows when a store sent
several files for a date."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellLook:
    status: str
    letter: str
    symbol: str
    label: str


# Most urgent first: a cell with several files shows the first of its statuses in this order.
LOOKS: tuple[CellLook, ...] = (
    CellLook("failed", "F", "\u2716", "failed: the file's rows are not in the snapshot"),
    CellLook("missing", "M", "\u25cb", "missing: an expected store sent no file"),
    CellLook("processing", "P", "\u25d4", "processing"),
    CellLook("queued", "Q", "\u2026", "queued: listed, not transformed yet"),
    CellLook("retained", "R", "\u21ba", "retained: the last good version's rows stay in the snapshot"),
    CellLook("completed", "C", "\u2714", "completed"),
    CellLook("skipped", "S", "\u2713", "reused: unchanged since a run that transformed it"),
    # Below a good file of the same store and date: an older copy the newest one superseded, or a file
    # gone from the source, says nothing about the store's day when another file of it was loaded.
    CellLook("unrouted", "U", "?", "unrouted: the file's name yields no store or is no longer at the source"),
    CellLook("none", "", "\u00b7", "no run for this date"),
)
BY_STATUS = {look.status: look for look in LOOKS}
_URGENCY = {look.status: rank for rank, look in enumerate(LOOKS)}


def look_of(status: str) -> CellLook:
    look = BY_STATUS.get(status)
    return look if look is not None else CellLook(status, "?", "?", status)


def urgency(status: str) -> int:
    return _URGENCY.get(status, len(_URGENCY))


def most_urgent(statuses: list[str]) -> str:
    """The status a cell shows for a store's files of one date."""
    return min(statuses, key=urgency)


# A run's status (pipeline_runs.status) as a badge: the same symbols where the words are the same.
_RUN_SYMBOLS = {
    "pending": "\u2026",
    "processing": "\u25d4",
    "completed": "\u2714",
    "completed_with_errors": "\u26a0",
    "failed": "\u2716",
}


def badge_symbol(status: str) -> str:
    """The symbol shown before a run's or a file's status in the lists."""
    return _RUN_SYMBOLS.get(status) or look_of(status).symbol
