"""Unit tests for autopo_pipelines.date_text: every accepted text form read exactly, everything else None."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from autopo_pipelines.date_text import DateOrder, accepted_forms, parse_date_text, parse_date_texts

DAY = dt.date(2024, 12, 4)
ORDERS: tuple[DateOrder | None, ...] = (None, "day_first", "month_first")

# Texts read the same whatever the configured order: no reading depends on day/month order.
ORDER_FREE: list[tuple[str, dt.date]] = [
    # ISO, year first
    ("2024-12-04", DAY),
    ("2024/12/04", DAY),
    ("2024.12.04", DAY),
    ("2024-12-4", DAY),
    ("2024-1-2", dt.date(2024, 1, 2)),
    ("2024-02-29", dt.date(2024, 2, 29)),
    ("  2024-12-04\t", DAY),
    ("\u00a02024-12-04\n", DAY),
    # ISO with a time, which is dropped, and no time zone conversion
    ("2024-12-04T10:30", DAY),
    ("2024-12-04 10:30", DAY),
    ("2024-12-04  9:05", DAY),
    ("2024-12-04T10:30:15", DAY),
    ("2024-12-04 10:30:15.123456", DAY),
    ("2024-12-04T10:30:15.1234567", DAY),
    ("2024-12-04T23:59:59Z", DAY),
    ("2024-12-04T00:00:00+07:00", DAY),
    ("2024-12-04T23:30:00-05:00", DAY),
    ("2024-12-04t10:30z", DAY),
    ("2024/12/04 10:30", DAY),
    # compact YYYYMMDD
    ("20241204", DAY),
    ("19000101", dt.date(1900, 1, 1)),
    ("29991231", dt.date(2999, 12, 31)),
    (" 20241204 ", DAY),
    # Excel serials (1900 system, day 0 = 1899-12-30)
    ("45630", DAY),
    ("45630.5", DAY),
    ("45630.999999", DAY),
    ("10000", dt.date(1927, 5, 18)),  # the first 5-digit serial
    ("99999", dt.date(2173, 10, 13)),  # the last
    ("36526", dt.date(2000, 1, 1)),
    # month names: day first
    ("4 Dec 2024", DAY),
    ("04 Dec 2024", DAY),
    ("4 Dec. 2024", DAY),
    ("04-Dec-2024", DAY),
    ("04-DEC-2024", DAY),
    ("04/Dec/2024", DAY),
    ("04.Dec.2024", DAY),
    ("4-December-2024", DAY),
    ("4 december 2024", DAY),
    ("4  Dec\t2024", DAY),
    ("4 Sept 2024", dt.date(2024, 9, 4)),
    ("4 Sept. 2024", dt.date(2024, 9, 4)),
    ("4 May 2024", dt.date(2024, 5, 4)),
    # month names: month first
    ("Dec 4, 2024", DAY),
    ("Dec 4 2024", DAY),
    ("Dec 4,2024", DAY),
    ("Dec. 4, 2024", DAY),
    ("December 4 2024", DAY),
    ("December 04, 2024", DAY),
    ("Dec-04-2024", DAY),
    ("Dec/4/2024", DAY),
    # month names: year first
    ("2024 Dec 4", DAY),
    ("2024-Dec-04", DAY),
    ("2024/December/4", DAY),
    # a leading English weekday that is the date's own
    ("Wed, 4 Dec 2024", DAY),
    ("Wednesday, December 4, 2024", DAY),
    ("wed,4 Dec 2024", DAY),
    ("Sun, 1 Dec 2024", dt.date(2024, 12, 1)),
]

# Every Indonesian month name and abbreviation, and the English ones, each with its month number.
MONTH_NAMES: list[tuple[str, int]] = [
    ("Januari", 1),
    ("Jan", 1),
    ("Februari", 2),
    ("Feb", 2),
    ("Maret", 3),
    ("Mar", 3),
    ("April", 4),
    ("Apr", 4),
    ("Mei", 5),
    ("Juni", 6),
    ("Jun", 6),
    ("Juli", 7),
    ("Jul", 7),
    ("Agustus", 8),
    ("Agu", 8),
    ("Agt", 8),
    ("September", 9),
    ("Sep", 9),
    ("Oktober", 10),
    ("Okt", 10),
    ("November", 11),
    ("Nov", 11),
    ("Desember", 12),
    ("Des", 12),
    ("January", 1),
    ("February", 2),
    ("March", 3),
    ("May", 5),
    ("June", 6),
    ("July", 7),
    ("August", 8),
    ("Aug", 8),
    ("Sept", 9),
    ("October", 10),
    ("Oct", 10),
    ("December", 12),
    ("Dec", 12),
]

# Numeric day/month texts: (text, day_first reading, month_first reading); all None without an order.
NUMERIC: list[tuple[str, dt.date | None, dt.date | None]] = [
    ("04/12/2024", DAY, dt.date(2024, 4, 12)),
    ("4/12/2024", DAY, dt.date(2024, 4, 12)),
    ("4-12-2024", DAY, dt.date(2024, 4, 12)),
    ("04.12.2024", DAY, dt.date(2024, 4, 12)),
    (" 04/12/2024 ", DAY, dt.date(2024, 4, 12)),
    ("12/04/2024", dt.date(2024, 4, 12), DAY),
    # one reading only valid: still read only as configured
    ("13/12/2024", dt.date(2024, 12, 13), None),
    ("12/13/2024", None, dt.date(2024, 12, 13)),
    ("31/04/2024", None, None),
    ("04/31/2024", None, None),
    ("29/02/2024", dt.date(2024, 2, 29), None),
    ("29/02/2023", None, None),
    ("00/12/2024", None, None),
]

# Never a date, whatever the order.
REJECTED: list[str] = [
    "",
    "   ",
    "\t\n",
    "hello",
    "n/a",
    "-",
    "Dec",
    "Dec 2024",
    # two-digit years
    "04/12/24",
    "4-Dec-24",
    "Dec 4, 24",
    # no day
    "2024-12",
    "12/2024",
    # invalid calendar dates
    "2024-02-30",
    "2023-02-29",
    "2024-13-01",
    "2024-00-10",
    "2024-12-00",
    "0000-12-04",
    "20240230",
    "20241304",
    "31 Apr 2024",
    "0 Dec 2024",
    "Feb 30, 2024",
    # mixed or odd separators
    "04/12-2024",
    "2024-12/04",
    "2024-12.04",
    "04-Dec/2024",
    "4 Dec-2024",
    "04.Dec..2024",
    "04-Dec.-2024",
    "2024 - 12 - 04",
    "2024_12_04",
    # bad times after ISO, and times after other forms
    "2024-12-04T24:00",
    "2024-12-04T10:60",
    "2024-12-04T10:30:60",
    "2024-12-04T10",
    "2024-12-04T10:30+0700",
    "2024-12-04T10:30+24:00",
    "2024-12-04T10:30 Z",
    "2024-12-04T10:30:15.1234567890",
    "2024-12-04T",
    "20241204T103000",
    "4 Dec 2024 10:30",
    "04/12/2024 10:30",
    # compact out of its years
    "18991231",
    "30000101",
    # serials of other than 5 digits (a year, a code), signed, or not plain digits
    "045630",
    "1",
    "60",
    "2024",
    "2024.12",
    "2958465",
    "0",
    "0.5",
    "00",
    "-1",
    "-45630",
    "+45630",
    "2958466",
    "9999999",
    "20241204.5",
    "45630.",
    ".5",
    "45630,5",
    "4.563E+04",
    "45 630",
    "\uff14\uff15\uff16\uff13\uff10",  # full-width digits
    "\u0664\u0665\u0666\u0663\u0660",  # Arabic-Indic digits
    # unknown month names, full names with a dot, ordinals
    "4 Foo 2024",
    "4 Decem 2024",
    "4 December. 2024",
    "4 Dec.. 2024",
    "4th Dec 2024",
    "December 4th, 2024",
    "4, Dec 2024",
    "4 Dec, 2024",
    "Dec, 4 2024",
    # month names in odd orders
    "Dec 2024 4",
    "4 2024 Dec",
    "2024 4 Dec",
    # weekdays: not the date's own, without a comma, unknown, or before a non-name form
    "Thu, 4 Dec 2024",
    "Tuesday, December 4, 2024",
    "Wed 4 Dec 2024",
    "Wdy, 4 Dec 2024",
    "Wed, 2024-12-04",
    "Wed, 45630",
    "Wed, 04/12/2024",
    "Rabu, 04 Desember 2024",
    "Wed,",
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("text", "expected"), ORDER_FREE)
def test_order_free_forms_read_the_same_under_every_order(
    text: str, expected: dt.date, order: DateOrder | None
) -> None:
    assert parse_date_text(text, order) == expected


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("name", "month"), MONTH_NAMES)
def test_every_month_name_in_every_named_form(name: str, month: int, order: DateOrder | None) -> None:
    expected = dt.date(2024, month, 4)
    for text in (
        f"4 {name} 2024",
        f"04-{name}-2024",
        f"{name} 4, 2024",
        f"{name} 4 2024",
        f"2024-{name}-04",
        f" {name.upper()} 4, 2024 ",
        f"4 {name.lower()} 2024",
    ):
        assert parse_date_text(text, order) == expected, text


ABBREVIATIONS = {
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Mei",
    "Jun",
    "Jul",
    "Aug",
    "Agu",
    "Agt",
    "Sep",
    "Sept",
    "Oct",
    "Okt",
}
ABBREVIATIONS |= {"Nov", "Dec", "Des"}


@pytest.mark.parametrize(("abbreviation", "month"), [(n, m) for n, m in MONTH_NAMES if n in ABBREVIATIONS])
def test_an_abbreviation_may_end_with_a_dot(abbreviation: str, month: int) -> None:
    assert parse_date_text(f"4 {abbreviation}. 2024", None) == dt.date(2024, month, 4)
    assert parse_date_text(f"{abbreviation}. 4, 2024", None) == dt.date(2024, month, 4)


@pytest.mark.parametrize("name", [n for n, _ in MONTH_NAMES if n not in ABBREVIATIONS])
def test_a_full_name_may_not_end_with_a_dot(name: str) -> None:
    assert parse_date_text(f"4 {name}. 2024", None) is None


@pytest.mark.parametrize(("text", "day_first", "month_first"), NUMERIC)
def test_numeric_day_month_is_read_only_as_configured(
    text: str, day_first: dt.date | None, month_first: dt.date | None
) -> None:
    assert parse_date_text(text, None) is None
    assert parse_date_text(text, "day_first") == day_first
    assert parse_date_text(text, "month_first") == month_first


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("text", REJECTED)
def test_rejected_texts_are_none(text: str, order: DateOrder | None) -> None:
    assert parse_date_text(text, order) is None


def test_the_example_dates() -> None:
    assert parse_date_text("45630", None) == dt.date(2024, 12, 4)
    assert parse_date_text("20241204", None) == dt.date(2024, 12, 4)
    assert parse_date_text("4 Des 2024", None) == dt.date(2024, 12, 4)
    assert parse_date_text("04/12/2024", "day_first") == dt.date(2024, 12, 4)
    assert parse_date_text("04/12/2024", "month_first") == dt.date(2024, 4, 12)
    assert parse_date_text("04/12/2024", None) is None


@pytest.mark.parametrize("order", ORDERS)
def test_a_year_or_a_short_code_is_not_a_serial(order: DateOrder | None) -> None:
    # "2024" in a date column is a year (or a code), not serial 2024 (1905-07-16): refused.
    assert parse_date_text("2024", order) is None
    assert parse_date_text("2024.12", order) is None
    assert parse_date_text("45630", order) == dt.date(2024, 12, 4)


def test_every_weekday_is_checked_against_its_date() -> None:
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    for offset in range(7):
        date = dt.date(2024, 12, 2) + dt.timedelta(days=offset)  # 2 Dec 2024 is a Monday
        for number, name in enumerate(names):
            for weekday in (name, name[:3]):
                got = parse_date_text(f"{weekday}, {date.day} Dec 2024", None)
                assert got == (date if number == date.weekday() else None), (weekday, date)


def test_parse_date_texts_reads_each_text_in_order() -> None:
    texts = ["45630", "04/12/2024", "", "4 Des 2024", "2024-02-30", "12/04/2024"]
    assert parse_date_texts(texts, "day_first") == [DAY, DAY, None, DAY, None, dt.date(2024, 4, 12)]
    assert parse_date_texts(texts, "month_first") == [DAY, dt.date(2024, 4, 12), None, DAY, None, DAY]
    assert parse_date_texts(texts, None) == [DAY, None, None, DAY, None, None]
    assert parse_date_texts(iter(texts), None) == parse_date_texts(texts, None)
    assert parse_date_texts([], None) == []


@pytest.mark.parametrize("order", ORDERS)
def test_accepted_forms_is_one_short_line(order: DateOrder | None) -> None:
    forms = accepted_forms(order)
    assert forms == forms.strip()
    assert "\n" not in forms and "\r" not in forms
    assert 0 < len(forms) <= 100
    assert "YYYY-MM-DD" in forms and "YYYYMMDD" in forms and "4 Dec 2024" in forms


def test_accepted_forms_names_the_configured_numeric_form() -> None:
    assert accepted_forms("day_first") == "an Excel date, YYYY-MM-DD, YYYYMMDD, DD/MM/YYYY or 4 Dec 2024"
    assert accepted_forms("month_first") == "an Excel date, YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY or 4 Dec 2024"
    unconfigured = accepted_forms(None)
    assert "DD/MM/YYYY" not in unconfigured and "MM/DD/YYYY" not in unconfigured
    assert "order" in unconfigured


@pytest.mark.parametrize("order", ["dayfirst", "DAY_FIRST", "", "dmy"])
def test_an_unknown_order_is_an_error_not_a_silent_none(order: Any) -> None:
    with pytest.raises(ValueError, match="date order"):
        parse_date_text("04/12/2024", order)
    with pytest.raises(ValueError, match="date order"):
        parse_date_texts(["45630"], order)
    with pytest.raises(ValueError, match="date order"):
        accepted_forms(order)
