"""How a file job's status is shown in the stores x dates grid: a letter and a shape as well as a
colour, so that no status rests on colour alone; and which status a cell shows when a store sent
several files for a date."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape as _escape


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


# A run's status (pipeline_runs.status) as a badge: a file's symbol where the words are the same
# (processing, completed, failed), these for the two words only a run has.
_RUN_ONLY_SYMBOLS = {"pending": "\u2026", "completed_with_errors": "\u26a0"}


def badge_symbol(status: str) -> str:
    """The symbol shown before a run's or a file's status in the lists."""
    return _RUN_ONLY_SYMBOLS.get(status) or look_of(status).symbol


@lru_cache(maxsize=64)
def escape(text: str) -> str:
    """HTML-escaped: the statuses are the tracking table's few words, so each is escaped once."""
    return _escape(text, quote=True)


_TEXT = {look.status: look.symbol + look.letter for look in LOOKS}
_WORD = {look.status: look.label.split(":")[0] for look in LOOKS}


def row_html(statuses: list[str], file_job_ids: list[int | None], file_counts: list[int]) -> str:
    """A grid row's cells as HTML: a ``<button>`` for a cell with files (its file job id, and how many
    files when more than one), a ``<span>`` for one without; the status as a class, a symbol and a letter,
    and a word for screen readers. Written here rather than by the template: a 120-day grid is 14,400
    cells, and Jinja looking up each cell's values took most of the page's time."""
    parts = []
    for status, job_id, count in zip(statuses, file_job_ids, file_counts, strict=True):
        css, word = escape(status), escape(_WORD.get(status, status))
        text = _TEXT.get(status, "?")
        if job_id is None:
            parts.append(f'<td><span class="cell cell-{css}" aria-label="{word}">{text}</span></td>')
            continue
        files = f' data-files="{count}"' if count > 1 else ""
        parts.append(
            f'<td><button class="cell cell-{css}" aria-label="{word}" data-file-job="{int(job_id)}"{files}>'
            f"{text}</button></td>"
        )
    return "".join(parts)
