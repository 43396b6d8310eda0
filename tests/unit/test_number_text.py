"""Unit tests for autopo_pipelines.number_text: the accepted forms of a number written as text, each with
its value under both decimal configurations, and the forms that are not a number (the module's contract)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest

from autopo_pipelines.number_text import DEFAULT_CURRENCY_MARKS, parse_number_text, parse_number_texts

DOT = (".", ",")  # (decimal, thousands): 1,234.5
COMMA = (",", ".")  # 1.234,5
SEPARATORS = {
    "no-break space": "\u00a0",
    "narrow no-break space": "\u202f",
    "thin space": "\u2009",
    "apostrophe": "'",
    "right single quotation mark": "\u2019",
}

Case = tuple[str, tuple[str, str], float | None]


def check(
    text: str,
    config: tuple[str, str],
    expected: float | None,
    marks: Sequence[str] = DEFAULT_CURRENCY_MARKS,
) -> None:
    decimal, thousands = config
    got = parse_number_text(text, decimal=decimal, thousands=thousands, currency_marks=marks)
    if expected is None:
        assert got is None, f"{text!r} read as {got!r}"
        return
    assert type(got) is float, f"{text!r} read as {got!r}"
    assert got == expected
    # == does not tell -0.0 from 0.0; the sign of zero is part of the contract.
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


def both(dot_text: str, comma_text: str, expected: float | None) -> list[Case]:
    """The same number spelled for decimal "." (thousands ",") and for decimal "," (thousands ".")."""
    return [(dot_text, DOT, expected), (comma_text, COMMA, expected)]


def params(cases: Sequence[Case]) -> list[object]:
    return [pytest.param(text, config, expected, id=f"{text!r} {config[0]}") for text, config, expected in cases]


ACCEPTED: list[Case] = [
    # The plain forms the fast path also reads.
    *both("1234", "1234", 1234.0),
    *both("1,234.5", "1.234,5", 1234.5),
    *both("1,234,567.25", "1.234.567,25", 1234567.25),
    *both("0.1", "0,1", 0.1),
    *both("1.5", "1,5", 1.5),
    *both(".5", ",5", 0.5),
    *both("5.", "5,", 5.0),
    *both("1,234.", "1.234,", 1234.0),
    *both("007", "007", 7.0),
    *both("12345678901234567890", "12345678901234567890", 12345678901234567890.0),
    # Whitespace at both ends, including a no-break space and line ends.
    *both("  12.5  ", "  12,5  ", 12.5),
    *both("\u00a012.5\u00a0", "\u00a012,5\u00a0", 12.5),
    *both("\t12\n", "\t12\r\n", 12.0),
    # Signs.
    *both("+5.5", "+5,5", 5.5),
    *both("-5.5", "-5,5", -5.5),
    *both("\u22125.5", "\u22125,5", -5.5),
    *both("1284-", "1284-", -1284.0),
    *both("1,284.5-", "1.284,5-", -1284.5),
    *both("(1,284.000)", "(1.284,000)", -1284.0),
    *both("(.5)", "(,5)", -0.5),
    *both("-.5", "-,5", -0.5),
    *both("- 5", "- 5", -5.0),
    *both("+ 5", "+ 5", 5.0),
    *both("\u2212 5", "\u2212 5", -5.0),
    *both("5 -", "5 -", -5.0),
    *both("( 1,284 )", "( 1.284 )", -1284.0),
    *both("(\u00a05\u00a0)", "(\u00a05\u00a0)", -5.0),
    # Zero keeps the sign a negative marker gives it, as float("-0") does.
    *both("0", "0", 0.0),
    *both("+0", "+0", 0.0),
    *both("-0", "-0", -0.0),
    *both("0-", "0-", -0.0),
    *both("(0)", "(0)", -0.0),
    *both("-0.0", "-0,0", -0.0),
    # Currency symbols (Unicode category Sc), before or after, with or without whitespace.
    *both("$1,234.50", "$1.234,50", 1234.5),
    *both("$ 1,234.50", "$ 1.234,50", 1234.5),
    *both("1,234.50$", "1.234,50$", 1234.5),
    *both("\u20ac5", "5 \u20ac", 5.0),
    *both("\u00a35", "\u00a3 5", 5.0),
    *both("\u00a55", "5\u00a5", 5.0),
    *both("\u20b95", "\u20b9\u00a05", 5.0),
    *both("\u20b15", "5\u20b1", 5.0),
    # Currency marks from the list, whole tokens, glued or not.
    *both("Rp 12,500", "Rp 12.500", 12500.0),
    *both("Rp12,500", "Rp12.500", 12500.0),
    *both("12,500 IDR", "12.500 IDR", 12500.0),
    *both("12,500IDR", "12.500IDR", 12500.0),
    *both("Rs5", "Rs5", 5.0),
    *both("5Rs", "5Rs", 5.0),
    *both("Rs. 5", "Rs. 5", 5.0),
    *both("INR 5", "INR 5", 5.0),
    *both("RM 5.5", "RM 5,5", 5.5),
    *both("MYR 5", "MYR 5", 5.0),
    *both("S$5", "S$5", 5.0),
    *both("SGD 5", "SGD 5", 5.0),
    *both("US$5", "US$5", 5.0),
    *both("USD 5", "USD 5", 5.0),
    *both("EUR 5", "EUR 5", 5.0),
    *both("5 GBP", "5 GBP", 5.0),
    # Marks match case-insensitively.
    *both("rp 5", "rp 5", 5.0),
    *both("RP5", "RP5", 5.0),
    *both("rP 5", "rP 5", 5.0),
    *both("5 idr", "5 idr", 5.0),
    *both("usd 5", "usd 5", 5.0),
    *both("us$5", "us$5", 5.0),
    *both("s$ 5", "s$ 5", 5.0),
    *both("rs. 5", "RS. 5", 5.0),
    *both("Gbp 5", "gBP 5", 5.0),
    # The mark inside or outside the sign or the parentheses.
    *both("-Rp 5", "-Rp 5", -5.0),
    *both("Rp -5", "Rp -5", -5.0),
    *both("Rp-5", "Rp-5", -5.0),
    *both("- Rp 5", "- Rp 5", -5.0),
    *both("\u2212$5", "\u2212$5", -5.0),
    *both("$-5", "$-5", -5.0),
    *both("+$5", "$+5", 5.0),
    *both("(Rp 1,000)", "(Rp 1.000)", -1000.0),
    *both("Rp (1,000)", "Rp (1.000)", -1000.0),
    *both("(1,000 Rp)", "(1.000 Rp)", -1000.0),
    *both("(1,000) Rp", "(1.000) Rp", -1000.0),
    *both("($5)", "(5 \u20ac)", -5.0),
    *both("$(5)", "(5) \u20ac", -5.0),
    *both("Rp 1,000-", "Rp 1.000-", -1000.0),
    *both("1,000 Rp-", "1.000 Rp-", -1000.0),
    *both("1,000- Rp", "1.000- Rp", -1000.0),
    *both("-5 USD", "-5 USD", -5.0),
    *both("( Rp 1,284.5 )", "( Rp 1.284,5 )", -1284.5),
]

REJECTED: list[Case] = [
    *both("", "", None),
    # A grouped number's first group never starts with 0: "0,123" is a decimal comma or a code.
    *both("0,123", "0.123", None),
    *both("01,234", "01.234", None),
    *both("0,10,218.81", "0.10.218,81", None),
    *both("   ", "\u00a0", None),
    *both("%", "%", None),
    *both("5%", "5 %", None),
    *both("1.2E+3", "1,2E+3", None),
    *both("1e3", "1e3", None),
    *both("1.2.3", "1,2,3", None),
    *both("1.5.", "1,5,", None),
    *both("1,234,", "1.234.", None),
    *both(",5", ".5", None),  # a separator at the start: not the decimal point
    *both("12a", "12a", None),
    *both("abc", "abc", None),
    *both("N/A", "N/A", None),
    *both("nan", "NaN", None),
    *both("inf", "-Infinity", None),
    *both("\uff11\uff12", "\uff11\uff12", None),  # full-width digits
    *both("\u0661\u0662", "\u0661\u0662", None),  # Arabic-Indic digits
    *both("1_000", "1_000", None),
    *both("0x10", "0x10", None),
    *both("1,5", "1.5", None),  # a group of one digit
    *both("12,3456", "12.3456", None),
    *both("1234,567", "1234.567", None),
    *both("1,,234", "1..234", None),
    *both("1 234", "1 234", None),  # a plain space groups only when it is the configured separator
    *both("5 5", "5 5", None),
    # One kind of separator per number.
    *both("1,234\u00a0567", "1.234\u00a0567", None),
    *both("1'234\u2019567", "1'234\u2019567", None),
    *both("1,234 567", "1.234 567", None),
    # Signs: at most one negative marker, and no other dash.
    *both("-", "\u2212", None),
    *both("+", "()", None),
    *both("(", ")", None),
    *both("--5", "--5", None),
    *both("5--", "5--", None),
    *both("- -5", "+-5", None),
    *both("(-5)", "(-5)", None),
    *both("-5-", "-5-", None),
    *both("(5)-", "(5)-", None),
    *both("+5-", "-(5)", None),
    *both("(+5)", "+(5)", None),
    *both("(5", "5)", None),
    *both("(5-", "-5)", None),
    *both("\u20135", "\u20145", None),  # en dash, em dash
    *both("5\u2212", "5+", None),  # only "-" trails
    # Currency: one mark, a whole token, never a lone one.
    *both("Rp", "$", None),
    *both("Rp -", "($)", None),
    *both("12 pcs", "12 pcs", None),
    *both("12 kg", "12kg", None),
    *both("IDRX 5", "IDRX 5", None),
    *both("XIDR 5", "5 IDRX", None),
    *both("USD5USD", "USD5USD", None),
    *both("Rp Rp 5", "RpRp5", None),
    *both("$ Rp 5", "5 $ \u20ac", None),
    *both("-Rp 5 Rp", "(Rp 5) Rp", None),
    *both("5 Rp 5", "5Rp5", None),
    *both("A$5", "R$ 5", None),  # not in the list
    *both("Rp. 5", "R p 5", None),
    *both("R\u017f 5", "U\u017fD 5", None),  # long s: re's case folding would take it for "s"
]

INDIAN: list[Case] = [
    *both("1,10,218.81", "1.10.218,81", 110218.81),
    *both("12,34,567", "12.34.567", 1234567.0),
    *both("1,00,000", "1.00.000", 100000.0),
    *both("1,23,45,678.5", "1.23.45.678,5", 12345678.5),
    *both("\u20b91,10,218.81", "\u20b9 1.10.218,81", 110218.81),
    *both("(1,10,218.81)", "(1.10.218,81)", -110218.81),
    *both("Rs 1,10,218.81-", "Rs 1.10.218,81-", -110218.81),
    *both("1\u00a010\u00a0218.81", "1\u00a010\u00a0218,81", 110218.81),
    *both("1'10'218", "1\u201910\u2019218", 110218.0),
    # Not Indian grouping.
    *both("1,2,345", "1.2.345", None),
    *both("123,45,678", "123.45.678", None),
    *both("12,34", "12.34", None),
    *both("1,23,4567", "1.23.4567", None),
    *both("1,23,456,789", "1.23.456.789", None),
    *both("1,10\u00a0218", "1.10\u00a0218", None),
]

LOCALE: list[Case] = [
    ("1.234", DOT, 1.234),
    ("1.234", COMMA, 1234.0),
    ("1,234", DOT, 1234.0),
    ("1,234", COMMA, 1.234),
    ("1,234", (",", " "), 1.234),
    ("1.234", (",", " "), None),  # "." is neither separator there
    ("1.234", (".", "'"), 1.234),
    ("1,234", (".", "'"), None),
    ("1,234", (".", ""), None),
    ("1.234", (",", ""), None),
    ("1.234.567", DOT, None),
    ("1.234.567", COMMA, 1234567.0),
    ("12,500 IDR", DOT, 12500.0),
    ("12,500 IDR", COMMA, 12.5),
    ("Rp 12.500", DOT, 12.5),
    ("Rp 12.500", COMMA, 12500.0),
]

OTHER_THOUSANDS: list[Case] = [
    # Space as the configured separator (decimal ","), common in European exports.
    ("1 234,5", (",", " "), 1234.5),
    ("1 234 567", (",", " "), 1234567.0),
    ("Rp 1 000", (",", " "), 1000.0),
    ("1 000 \u20ac", (",", " "), 1000.0),
    ("- 1 000", (",", " "), -1000.0),
    ("( 1 000 )", (",", " "), -1000.0),
    ("1 23", (",", " "), None),
    ("1  234", (",", " "), None),
    ("1 234\u00a0567", (",", " "), None),
    ("1 234,5", (".", " "), None),  # "," is not the decimal there
    ("1 234.5", (".", " "), 1234.5),
    # Apostrophe configured (Swiss style).
    ("1'234.5", (".", "'"), 1234.5),
    ("1\u2019234.5", (".", "'"), 1234.5),
    ("CHF 1'234.50", (".", "'"), None),  # CHF is not a default mark
    # No configured grouping: only the separators that are never a decimal point.
    ("1234.5", (".", ""), 1234.5),
    ("1\u00a0234.5", (".", ""), 1234.5),
    ("1'234,5", (",", ""), 1234.5),
    ("1\u2009234\u2009567", (",", ""), 1234567.0),
]


def special_separator_cases() -> Iterator[object]:
    for name, sep in SEPARATORS.items():
        for config, point in ((DOT, "."), (COMMA, ",")):
            yield pytest.param(f"1{sep}234{sep}567{point}25", config, 1234567.25, id=f"{name} western {point}")
            yield pytest.param(f"12{sep}34{sep}567", config, 1234567.0, id=f"{name} indian {point}")
            yield pytest.param(f"-$1{sep}234", config, -1234.0, id=f"{name} signed {point}")
            yield pytest.param(f"1{sep}5", config, None, id=f"{name} one digit {point}")
            # A space-like separator at an end is whitespace, stripped; the others make it no number.
            yield pytest.param(f"{sep}123", config, 123.0 if sep.isspace() else None, id=f"{name} leading {point}")
            yield pytest.param(f"1{sep}234{sep}", config, 1234.0 if sep.isspace() else None, id=f"{name} end {point}")
            yield pytest.param(f"1{sep}{sep}234", config, None, id=f"{name} doubled {point}")
            yield pytest.param(f"123{point}4{sep}5", config, None, id=f"{name} in the fraction {point}")


@pytest.mark.parametrize(("text", "config", "expected"), params(ACCEPTED))
def test_accepted_forms(text: str, config: tuple[str, str], expected: float) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(("text", "config", "expected"), params(REJECTED))
def test_rejected_forms(text: str, config: tuple[str, str], expected: None) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(("text", "config", "expected"), params(INDIAN))
def test_indian_grouping(text: str, config: tuple[str, str], expected: float | None) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(("text", "config", "expected"), list(special_separator_cases()))
def test_special_separators(text: str, config: tuple[str, str], expected: float | None) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(("text", "config", "expected"), params(LOCALE))
def test_the_configuration_decides_the_separators(text: str, config: tuple[str, str], expected: float | None) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(("text", "config", "expected"), params(OTHER_THOUSANDS))
def test_other_thousands_configurations(text: str, config: tuple[str, str], expected: float | None) -> None:
    check(text, config, expected)


@pytest.mark.parametrize(
    ("text", "config", "expected"),
    [
        # "Rs." against "Rs" before a number with no point: "Rs." 500 or "Rs" .500; two values, no reading.
        pytest.param("Rs.500", DOT, None, id="Rs.500 ."),
        pytest.param("RS.5", DOT, None, id="RS.5 ."),
        pytest.param("-Rs.5", DOT, None, id="-Rs.5 ."),
        pytest.param("(Rs.5)", DOT, None, id="(Rs.5) ."),
        # One reading only.
        pytest.param("Rs.500", COMMA, 500.0, id="Rs.500 ,"),  # "Rs" .500 is no number with decimal ","
        pytest.param("Rs .5", DOT, 0.5, id="Rs .5 ."),
        pytest.param("Rs. 500", DOT, 500.0, id="Rs. 500 ."),
        pytest.param("Rs.1,234.50", DOT, 1234.5, id="Rs.1,234.50 ."),
        pytest.param("Rs.5.5", DOT, 5.5, id="Rs.5.5 ."),
        pytest.param("Rs.-5", DOT, -5.0, id="Rs.-5 ."),
        pytest.param("Rs.0", DOT, 0.0, id="Rs.0 ."),  # both readings are 0.0
        pytest.param("5Rs.", DOT, 5.0, id="5Rs. ."),
        pytest.param("5.Rs", DOT, 5.0, id="5.Rs ."),
    ],
)
def test_a_mark_that_extends_another_is_read_only_when_one_reading_is_left(
    text: str, config: tuple[str, str], expected: float | None
) -> None:
    check(text, config, expected)


CUSTOM = ("Ks", "MMK", "K\u010d", "Kr.", "Kr")


@pytest.mark.parametrize(
    ("text", "config", "expected"),
    [
        pytest.param("Ks 1,000", DOT, 1000.0, id="Ks"),
        pytest.param("1.000 mmk", COMMA, 1000.0, id="mmk lower case"),
        pytest.param("(K\u010c 5,5)", COMMA, -5.5, id="Kc upper case"),
        pytest.param("\u20ac5", DOT, 5.0, id="symbols stay marks"),
        pytest.param("Rp 5", DOT, None, id="default marks are replaced"),
        pytest.param("KsMMK 5", DOT, None, id="two marks"),
        pytest.param("Kr.5", DOT, None, id="Kr. or Kr"),
        pytest.param("Kr.5", COMMA, 5.0, id="Kr. with decimal ,"),
        pytest.param("Kr 5", DOT, 5.0, id="Kr"),
    ],
)
def test_custom_currency_marks(text: str, config: tuple[str, str], expected: float | None) -> None:
    check(text, config, expected, marks=CUSTOM)
    check(text, config, expected, marks=list(CUSTOM))  # any sequence, not only a (hashable) tuple


def test_no_currency_marks_leaves_the_symbols() -> None:
    check("Rp 5", DOT, None, marks=())
    check("$5", DOT, 5.0, marks=())
    check("5 \u20ac", COMMA, 5.0, marks=())


def test_a_mark_may_hold_a_currency_symbol_and_a_point() -> None:
    # "$." 5 or "$" .5 (the symbol is always a mark): two readings.
    check("$.5", DOT, None, marks=("$.",))
    check("$. 5", DOT, 5.0, marks=("$.",))
    check("$.5", DOT, 0.5, marks=())


@pytest.mark.parametrize("mark", ["", "R p", "5X", "X-", "(X)", "+", "..", "\u00a0Rp"])
def test_a_mark_that_could_be_part_of_the_number_is_refused(mark: str) -> None:
    with pytest.raises(ValueError, match="currency mark"):
        parse_number_text("5", decimal=".", thousands=",", currency_marks=("Rp", mark))


@pytest.mark.parametrize(("decimal", "thousands"), [(";", ","), (".", "_"), (".", "."), (",", ","), ("", ",")])
def test_a_configuration_the_config_would_refuse_is_refused(decimal: str, thousands: str) -> None:
    with pytest.raises(ValueError):
        parse_number_text("5", decimal=decimal, thousands=thousands)


def test_too_large_for_a_float_is_not_a_number() -> None:
    check("9" * 308, DOT, float("9" * 308))
    check("9" * 400, DOT, None)
    check("-" + "9" * 400, DOT, None)


def test_many_texts_read_as_one_by_one_in_order() -> None:
    texts = ["Rp 12.500", "12 pcs", "(1.284,000)", "", "1,10", "Rs.500", "\u2212 5"]
    expected = [12500.0, None, -1284.0, None, 1.1, 500.0, -5.0]
    assert parse_number_texts(texts, decimal=",", thousands=".") == expected
    assert parse_number_texts(iter(texts), decimal=",", thousands=".") == expected
    assert parse_number_texts(texts, decimal=",", thousands=".") == [
        parse_number_text(text, decimal=",", thousands=".") for text in texts
    ]
    assert parse_number_texts([], decimal=".", thousands=",") == []
    assert parse_number_texts(["Ks 5", "Rp 5"], decimal=".", thousands=",", currency_marks=["Ks"]) == [5.0, None]


@pytest.mark.parametrize(
    ("text", "config", "wrong"),
    [
        ("1,234.5", DOT, 1234.6),  # a wrong value
        ("1.234", DOT, 1234.0),  # the other locale's reading
        ("-0", DOT, 0.0),  # the wrong zero
        ("12 pcs", DOT, 12.0),  # a number where there is none
        ("0", DOT, None),  # none where there is a number
    ],
)
def test_the_check_fails_on_a_wrong_expectation(text: str, config: tuple[str, str], wrong: float | None) -> None:
    # The tables above pass because the values are right, not because check() cannot fail.
    with pytest.raises(AssertionError):
        check(text, config, wrong)
