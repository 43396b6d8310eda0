"""Dates written as text in a cell, read only when the text has one clear reading.

Exports hold dates as real date cells (read elsewhere), as Excel serial numbers,
or as text. This module reads the text, and never guesses: a text whose reading
depends on the day/month order is read only when the export's order is configured.

Contract: ``parse_date_text(text, order)`` returns the date the text states, or None
when the text is not a date in one of these forms. Whitespace at both ends is ignored.
Digits are ASCII digits; every form needs a valid calendar date, and every year
except the compact one is read as written (0001..9999): whether a date is plausible
is the caller's check.

1. Year first, ISO style: ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYY.MM.DD`` (one separator
   throughout; month and day may have one digit: ``2024-12-4``), optionally followed by
   ``T`` or spaces and a time ``H:MM``, ``HH:MM:SS`` or ``HH:MM:SS.fffffff`` (1 to 9
   fraction digits), then optionally ``Z`` or an offset ``+HH:MM``/``-HH:MM``. The time
   must be valid (hour 0..23: ``24:00`` names the next day, so it is refused) and is
   dropped: the result is the date as written, never converted between time zones.
2. Compact ``YYYYMMDD``: exactly 8 digits, year 1900..2999.
3. An Excel serial number written as text: exactly 5 digits, optionally with a fraction
   (the time of day, dropped: ``45630.5``), so 10000..99999 (1927-05-18 to 2173-10-13).
   1900 date system, day 0 = 1899-12-30, so 45630 is 2024-12-04. Shorter digit runs are
   refused: a text ``2024`` in a date column is a year, not serial 2024 (1905-07-16), and
   no export means a date before 1927 or after 2173. (Numeric cells hold any serial from 1;
   that is tabular.parse_dates.) Eight digits are always the compact form. Signs,
   exponents and a decimal comma are refused.
4. A month name with a 1- or 2-digit day and a 4-digit year, read whatever the order:
   day first (``4 Dec 2024``, ``4 Dec. 2024``, ``04-Dec-2024``, ``04/Dec/2024``,
   ``04.Dec.2024``), month first (``Dec 4, 2024``, ``December 4 2024``, ``Dec-04-2024``)
   or year first (``2024 Dec 4``, ``2024-Dec-04``). Spaces (any run of whitespace), or one
   of ``-``, ``/``, ``.`` used in both places; a comma only after the day when the month
   comes first. Names, case-insensitive: English full names and 3-letter abbreviations
   plus ``Sept``; Indonesian Januari Jan, Februari Feb, Maret Mar, April Apr, Mei, Juni
   Jun, Juli Jul, Agustus Agu Agt, September Sep, Oktober Okt, November Nov, Desember
   Des. An abbreviation may end with ``.`` in the space-separated forms. A leading
   English weekday and a comma (``Wed, 4 Dec 2024``, ``Wednesday, December 4, 2024``)
   are accepted before these forms only, and only when the weekday is the date's own:
   any other weekday makes the text None. Ordinals (``4th``) are refused.
5. Numeric day and month with a 4-digit year at the end, one separator ``/``, ``-`` or
   ``.`` used in both places (``04/12/2024``, ``4-12-2024``, ``04.12.2024``): read ONLY
   as configured. ``order="day_first"`` reads DD/MM/YYYY, ``"month_first"`` MM/DD/YYYY,
   and with ``order=None`` such a text is always None, even when only one reading would
   be a valid date (``13/12/2024``): the rule is "numeric day/month only as configured",
   so that whether a text is read never depends on the values in it.

Everything else is None: empty text, two-digit years (``04/12/24``), no day
(``2024-12``), mixed separators (``04/12-2024``), invalid dates (``2024-02-30``),
serials of other than 5 digits, words, a time after any form but the first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Literal

DateOrder = Literal["day_first", "month_first"]
_ORDERS: tuple[DateOrder, ...] = ("day_first", "month_first")

# Excel's day 0 in the 1900 date system (its phantom 29 Feb 1900 folded in), and its last day.
# Numeric serial cells (tabular.parse_dates) and serials written as text read through serial_date.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2_958_465  # 9999-12-31
# A serial written as text has 5 digits (1927..2173): fewer is a year or a code, not a date.
_SERIAL_DIGITS = 5
# The compact form is bare digits, so it is held to years an export can mean.
_COMPACT_YEARS = range(1900, 3000)

# re.ASCII everywhere: \d and [a-z] with IGNORECASE would otherwise take other scripts' digits and letters.

# Bare digits: the compact form (8 digits) or a serial (5, with an optional time-of-day fraction).
_DIGITS = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?", re.ASCII)

_ISO = re.compile(
    r"""
    (?P<year>[0-9]{4}) (?P<sep>[-/.]) (?P<month>[0-9]{1,2}) (?P=sep) (?P<day>[0-9]{1,2})
    (?:
        (?:[Tt]|\ +)
        (?P<hour>[0-9]{1,2}) : (?P<minute>[0-9]{2})
        (?: : (?P<second>[0-9]{2}) (?:\.[0-9]{1,9})? )?
        (?: [Zz] | [+-] (?P<offset_hour>[0-9]{2}) : (?P<offset_minute>[0-9]{2}) )?
    )?
    """,
    re.ASCII | re.VERBOSE,
)

# Day and month as numbers, year last: which number is the day is the configured order's to say.
_NUMERIC = re.compile(r"(?P<first>[0-9]{1,2})(?P<sep>[-/.])(?P<second>[0-9]{1,2})(?P=sep)(?P<year>[0-9]{4})", re.ASCII)

# Month-name forms, matched on the text with its whitespace runs made single spaces. A 4-digit year,
# a word and a 1-2 digit number cannot be mistaken for one another, so each order reads one way.
_DAY = r"(?P<day>[0-9]{1,2})"
_YEAR = r"(?P<year>[0-9]{4})"
_NAME = r"(?P<month>[a-z]+)"
_NAME_DOT = r"(?P<month>[a-z]+)(?P<dot>\.)?"
_NAMED_FORMS = tuple(
    re.compile(pattern, re.ASCII | re.IGNORECASE)
    for pattern in (
        rf"{_DAY} {_NAME_DOT} {_YEAR}",  # 4 Dec 2024
        rf"{_NAME_DOT} {_DAY}(?:, ?| ){_YEAR}",  # Dec 4, 2024 / December 4 2024
        rf"{_YEAR} {_NAME_DOT} {_DAY}",  # 2024 Dec 4
        # With a punctuation separator the "." of an abbreviation would be read as one, so none here.
        rf"{_DAY}(?P<sep>[-/.]){_NAME}(?P=sep){_YEAR}",  # 04-Dec-2024
        rf"{_NAME}(?P<sep>[-/.]){_DAY}(?P=sep){_YEAR}",  # Dec-04-2024
        rf"{_YEAR}(?P<sep>[-/.]){_NAME}(?P=sep){_DAY}",  # 2024-Dec-04
    )
)

# "Wed, " before a month-name form, as long date formats write it.
_WEEKDAY_PREFIX = re.compile(r"(?P<weekday>[a-z]+), ?", re.ASCII | re.IGNORECASE)

_MONTH_NAMES: dict[str, int] = {
    # English
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    # Indonesian (April, September, November are spelled as in English)
    "januari": 1,
    "februari": 2,
    "maret": 3,
    "mei": 5,
    "juni": 6,
    "juli": 7,
    "agustus": 8,
    "oktober": 10,
    "desember": 12,
}
# Abbreviations may carry a ".", full names may not. May and Mei are their own abbreviations.
_MONTH_ABBREVIATIONS: dict[str, int] = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "mei": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "agu": 8,
    "agt": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "okt": 10,
    "nov": 11,
    "dec": 12,
    "des": 12,
}

# date.weekday() numbers, Monday = 0.
_WEEKDAYS: dict[str, int] = {
    name: number
    for number, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    for name in (full, full[:3])
}


def _date(year: int, month: int, day: int) -> dt.date | None:
    """The calendar date, or None for one that does not exist (2024-02-30, year 0)."""
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _check_order(order: DateOrder | None) -> None:
    # A misspelt order in a config must fail loudly, not read every numeric date as None.
    if order is not None and order not in _ORDERS:
        raise ValueError(f"date order must be one of {', '.join(_ORDERS)} or None, not {order!r}")


def serial_date(serial: float) -> dt.date | None:
    """The date of an Excel serial number (1900 date system; a fraction is the time of day, dropped),
    or None outside Excel's days 1 (1899-12-31) to 2958465 (9999-12-31)."""
    if not 1 <= serial <= _EXCEL_MAX_SERIAL:
        return None
    return _EXCEL_EPOCH + dt.timedelta(days=int(serial))


def _from_digits(match: re.Match[str]) -> dt.date | None:
    whole, fraction = match["whole"], match["fraction"]
    if len(whole) == 8:
        # Compact YYYYMMDD; a fraction makes it neither compact nor a serial (too many digits).
        if fraction is not None:
            return None
        year = int(whole[:4])
        return _date(year, int(whole[4:6]), int(whole[6:])) if year in _COMPACT_YEARS else None
    if len(whole) != _SERIAL_DIGITS or whole.startswith("0"):
        return None
    return serial_date(int(whole))  # the fraction is the time of day


def _from_iso(match: re.Match[str]) -> dt.date | None:
    if match["hour"] is not None:
        # The time is dropped, but a text with an impossible time is not a timestamp at all.
        if int(match["hour"]) > 23 or int(match["minute"]) > 59:
            return None
        if match["second"] is not None and int(match["second"]) > 59:
            return None
        if match["offset_hour"] is not None and (int(match["offset_hour"]) > 23 or int(match["offset_minute"]) > 59):
            return None
    return _date(int(match["year"]), int(match["month"]), int(match["day"]))


def _from_numeric(match: re.Match[str], order: DateOrder | None) -> dt.date | None:
    first, second, year = int(match["first"]), int(match["second"]), int(match["year"])
    if order == "day_first":
        return _date(year, second, first)
    if order == "month_first":
        return _date(year, first, second)
    # No configured order: not read, even when only one reading is a valid date.
    return None


def _month(name: str, dot: str | None) -> int | None:
    key = name.lower()
    if dot is None:
        month = _MONTH_NAMES.get(key)
        if month is not None:
            return month
    return _MONTH_ABBREVIATIONS.get(key)


def _from_named(text: str) -> dt.date | None:
    for form in _NAMED_FORMS:
        match = form.fullmatch(text)
        if match is None:
            continue
        groups = match.groupdict()
        month = _month(match["month"], groups.get("dot"))
        if month is None:
            return None
        return _date(int(match["year"]), month, int(match["day"]))
    return None


def _from_words(text: str) -> dt.date | None:
    # Single spaces, so "4  Dec\t2024" reads like "4 Dec 2024" with one regex per form.
    text = " ".join(text.split())
    prefix = _WEEKDAY_PREFIX.match(text)
    if prefix is None:
        return _from_named(text)
    # No accepted form starts with "word,": either a weekday, which must be the date's own, or nothing.
    weekday = _WEEKDAYS.get(prefix["weekday"].lower())
    if weekday is None:
        return None
    date = _from_named(text[prefix.end() :])
    return date if date is not None and date.weekday() == weekday else None


def _parse(text: str, order: DateOrder | None) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    # Each regex anchors on its first characters, so a text that is not its form fails fast.
    match = _DIGITS.fullmatch(text)
    if match is not None:
        return _from_digits(match)
    match = _ISO.fullmatch(text)
    if match is not None:
        return _from_iso(match)
    match = _NUMERIC.fullmatch(text)
    if match is not None:
        return _from_numeric(match, order)
    return _from_words(text)


def parse_date_text(text: str, order: DateOrder | None) -> dt.date | None:
    """The date a text cell states, or None when it is not a date in an accepted form.

    ``order`` is the export's day/month order; it is used only for numeric day/month
    texts (04/12/2024), which are None without it. Raises ValueError for an unknown order.
    """
    _check_order(order)
    return _parse(text, order)


def parse_date_texts(texts: Iterable[str], order: DateOrder | None) -> list[dt.date | None]:
    """parse_date_text for each text, in order; the order is checked once, not per cell."""
    _check_order(order)
    return [_parse(text, order) for text in texts]


def accepted_forms(order: DateOrder | None) -> str:
    """A short human list of the accepted forms for error messages, one line."""
    _check_order(order)
    if order == "day_first":
        return "an Excel date, YYYY-MM-DD, YYYYMMDD, DD/MM/YYYY or 4 Dec 2024"
    if order == "month_first":
        return "an Excel date, YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY or 4 Dec 2024"
    # Say why 04/12/2024 is refused, so the fix (configure the order) is in the message.
    return "an Excel date, YYYY-MM-DD, YYYYMMDD or 4 Dec 2024 (numeric day/month needs the date order set)"
