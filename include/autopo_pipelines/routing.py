"""Which of a source's files belong to a pipeline's business date, and for which store."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from autopo_pipelines.sources import SourceFile


@dataclass(frozen=True)
class RoutedFile:
    file: SourceFile
    store_id: str | None
    file_date: dt.date
    # Set when the file cannot be transformed because of its neighbours
    # (two files for one store and date under the "fail" policy).
    conflict: str | None = None


@dataclass(frozen=True)
class UnroutedFile:
    file: SourceFile
    reason: str


@dataclass
class Routing:
    routed: list[RoutedFile] = field(default_factory=list)
    unrouted: list[UnroutedFile] = field(default_factory=list)
    superseded: list[UnroutedFile] = field(default_factory=list)
    other_dates: int = 0


def separate_identical(
    routed: list[RoutedFile], checksums: Mapping[str, str]
) -> tuple[list[RoutedFile], list[UnroutedFile]]:
    """Files of the day with the same content (``checksums`` by location) are one upload.

    The oldest is processed. A copy for the same store, or where the names carry no
    store, is superseded: processing it again would count its rows twice (two PO
    exports summed). A copy named as another store's report fails: it is not that
    store's stock, and guessing which name is right would lose or invent a store's day.
    """
    groups: dict[str, list[RoutedFile]] = defaultdict(list)
    for file in routed:
        checksum = checksums.get(file.file.location)
        if checksum is not None and file.conflict is None:
            groups[checksum].append(file)
    replaced: dict[str, RoutedFile | None] = {}
    copies: list[UnroutedFile] = []
    for group in groups.values():
        if len(group) < 2:
            continue
        first = min(group, key=lambda r: (r.file.modified, r.file.name))
        for other in group:
            if other is first:
                continue
            if other.store_id == first.store_id:
                reason = f"same content as {first.file.name}: the same file uploaded twice; only that one is used"
                copies.append(UnroutedFile(other.file, reason))
                replaced[other.file.location] = None
            else:
                owner = f"store {first.store_id}'s file" if first.store_id else "a file without a store in its name"
                claimed = f"store {other.store_id}'s own report" if other.store_id else "a separate export"
                conflict = f"same content as {first.file.name}, {owner}: this is not {claimed}; send it and rerun"
                replaced[other.file.location] = replace(other, conflict=conflict)
    kept = [replaced.get(r.file.location, r) for r in routed]
    return [r for r in kept if r is not None], copies


def parse_file_date(text: str) -> dt.date:
    match = re.fullmatch(r"([0-9]{4})([0-9]{2})([0-9]{2})|([0-9]{4})-([0-9]{2})-([0-9]{2})", text)
    if match is None:
        raise ValueError(f"{text!r} is not YYYYMMDD or YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups() if g is not None)
    return dt.date(year, month, day)


def normalise_store(text: str) -> str:
    return text.strip().upper()


def route_files(
    files: list[SourceFile],
    pattern: re.Pattern[str],
    date: dt.date,
    *,
    duplicates: Literal["newest", "fail"] = "newest",
) -> Routing:
    """Route by file name: files of the date go on, others are counted, never failed."""
    routing = Routing()
    # Files are the same report when every named group but the date agrees (the store,
    # and e.g. the supplier of a per-supplier export); files with none of them are
    # separate parts of the day (several consolidated exports), never duplicates.
    by_identity: dict[tuple[tuple[str, str], ...], list[RoutedFile]] = defaultdict(list)
    for file in files:
        match = pattern.fullmatch(file.name)
        if match is None:
            routing.unrouted.append(UnroutedFile(file, "file name does not match the pipeline's pattern"))
            continue
        try:
            file_date = parse_file_date(match.group("date"))
        except ValueError as exc:
            routing.unrouted.append(UnroutedFile(file, f"date in the file name: {exc}"))
            continue
        if file_date != date:
            routing.other_dates += 1
            continue
        store = match.groupdict().get("store")
        store_id = normalise_store(store) if store else None
        identity = tuple(
            (group, normalise_store(value))
            for group, value in sorted(match.groupdict().items())
            if group != "date" and value and value.strip()
        )
        by_identity[identity].append(RoutedFile(file=file, store_id=store_id, file_date=file_date))
    for identity, candidates in sorted(by_identity.items()):
        if not identity or len(candidates) == 1:
            routing.routed.extend(sorted(candidates, key=lambda r: r.file.name))
            continue
        names = ", ".join(sorted(c.file.name for c in candidates))
        label = ", ".join(f"{group} {value}" for group, value in identity)
        if duplicates == "fail":
            message = f"{len(candidates)} files for {label} on {date.isoformat()} ({names}); keep one and rerun"
            routing.routed.extend(
                RoutedFile(c.file, c.store_id, c.file_date, conflict=message)
                for c in sorted(candidates, key=lambda r: r.file.name)
            )
            continue
        newest = max(candidates, key=lambda r: (r.file.modified, r.file.name))
        routing.routed.append(newest)
        for candidate in candidates:
            if candidate is not newest:
                routing.superseded.append(
                    UnroutedFile(candidate.file, f"superseded by the newer {newest.file.name} for {label}")
                )
    return routing
