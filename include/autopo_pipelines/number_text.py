"""Numbers written as text in the forms real stock exports use, each with one reading; never a guess.

The fast path in tabular.py reads plain text numbers ("1,234.5") with the configured separators. This
module reads the other forms a cell may hold. The contract of parse_number_text, given the configured
``decimal`` ("." or ",") and ``thousands`` ("," "." " " "'" or "" for none; never equal to ``decimal``):

1. Whitespace at both ends is ignored (str.strip(), so also no-break spaces).
2. Digits are ASCII 0-9 only ("１２", full-width, is not a number).
3. A decimal part is ``decimal`` followed by digits ("1.5", ".5"); "5." is 5.0, as in the fast path. The
   other separator character is never a decimal point.
4. The integer part may be grouped, with one kind of separator per number: ``thousands`` (when not
   empty), and always U+00A0 no-break space, U+202F narrow no-break space, U+2009 thin space, "'" and
   U+2019 right single quotation mark, which can never be a decimal point. A plain space groups only when
   ``thousands`` is " ". Groups are western, d{1,3}(S ddd)+ ("1,234,567"), or Indian, d{1,2}(S dd)+ S ddd
   ("12,34,567", "1,10,218.81"), the first group never starting with 0. Nothing else ("1,5" with
   decimal ".", "12,3456", "1,234 567", "0,123", "01,234").
5. One sign at most: a leading "+", "-" or U+2212 minus; or a trailing "-" ("1284-"); or accounting
   parentheses around the number ("(1,284.000)"). Whitespace may stand between it and the number. The
   en dash and other dashes are not signs.
6. One currency mark at most, before or after the number, inside or outside the sign or parentheses,
   with or without whitespace between: a single Unicode currency symbol (category Sc: $ € £ ¥ ₹ ...), or
   one of ``currency_marks`` matched case-insensitively (per character, so "ſ" is not "s") as a whole
   token ("Rp 12.500", "12,500 IDR", "Rs5", "(Rp 1.000)", "Rp 1.000-"). A mark in ``currency_marks``
   must hold a letter or currency symbol and no whitespace, digit, sign or parenthesis (ValueError).
7. Anything else is not a number: empty text, "%", exponents, letters and words that are not currency
   marks ("12 pcs"), a lone sign or mark, "--5", "(-5)", NaN/inf words.
8. The separators come from the configuration, never from the digits: "1.234" is 1.234 with decimal "."
   and 1234.0 with decimal "," and thousands ".".

Two more rules follow from "one reading":

- When a text reads two ways with different values because one currency mark extends another, it is
  not a number. With the default marks this is "Rs." against "Rs": "Rs.500" with decimal "." could be
  Rs. 500 or Rs 0.500, so it is None; "Rs. 500", "Rs 500" and, with decimal ",", "Rs.500" are 500.0.
- A number too large for a float (it would be inf) is not a number.

A negative marker always negates, so "-0", "0-" and "(0)" are -0.0 (equal to 0.0), as float("-0") is.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_CURRENCY_MARKS", "parse_number_text", "parse_number_texts"]

DEFAULT_CURRENCY_MARKS: tuple[str, ...] = (
    "Rp",
    "IDR",
    "Rs",
    "Rs.",
    "INR",
    "RM",
    "MYR",
    "S$",
    "SGD",
    "US$",
    "USD",
    "EUR",
    "GBP",
)

_DECIMALS = (".", ",")
_THOUSANDS = (",", ".", " ", "'", "")
# Group separators that are never a decimal point anywhere, so any configuration accepts them.
_ALWAYS_GROUPING = ("\u00a0", "\u202f", "\u2009", "'", "\u2019")
_LEADING_SIGNS = "+-\u2212"
_MINUS_SIGNS = "-\u2212"
# Characters a mark may not hold: with them a mark could take a sign or part of the number.
_NOT_IN_MARKS = "+-\u2212()0123456789"


@functools.lru_cache(maxsize=1)
def _currency_symbols() -> str:
    # Python's re has no \p{Sc}; the class is built from the interpreter's Unicode data, once (~0.15 s)
    # and only when a grammar is first needed, not at import.
    return "".join(char for char in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(char) == "Sc")


def _check_mark(mark: str) -> None:
    # What makes "one mark, one reading" checkable (see _Grammar.parse): a mark holds a letter or symbol
    # that no number holds, so it stands at one end; and no digit, sign, parenthesis or whitespace, so
    # only a decimal point can pass between a mark and the number ("Rs.5": "Rs." 5 or "Rs" .5).
    if not isinstance(mark, str) or not mark:
        raise ValueError(f"currency mark {mark!r} must be a non-empty string")
    if any(char.isspace() or char in _NOT_IN_MARKS for char in mark):
        raise ValueError(f"currency mark {mark!r} must not contain whitespace, digits, signs or parentheses")
    if not any(char.isalpha() or unicodedata.category(char) == "Sc" for char in mark):
        raise ValueError(f"currency mark {mark!r} must contain a letter or a currency symbol")


def _caseless(mark: str) -> str:
    # Per-character upper/lower classes rather than (?i:...): re's case folding also matches "ſ" for "s"
    # and the Kelvin sign for "k", which no export means as a currency code.
    parts = []
    for char in mark:
        variants = sorted({variant for variant in (char, char.lower(), char.upper()) if len(variant) == 1})
        if len(variants) == 1:
            parts.append(re.escape(char))
        else:
            parts.append("[" + "".join(re.escape(variant) for variant in variants) + "]")
    return "".join(parts)


def _currency_pattern(marks: Sequence[str], *, longest_first: bool) -> str:
    """One currency mark; longest_first sets which of two overlapping marks ("Rs." "Rs") re tries first."""
    symbol = "[" + re.escape(_currency_symbols()) + "]"
    words = [_caseless(mark) for mark in sorted(marks, key=len, reverse=longest_first)]
    # A single symbol is the shortest mark there is.
    alternatives = [*words, symbol] if longest_first else [symbol, *words]
    return "(?:" + "|".join(alternatives) + ")"


def _pattern(decimal: str, thousands: str, marks: Sequence[str], *, longest_first: bool) -> re.Pattern[str]:
    grouping = list(_ALWAYS_GROUPING)
    if thousands and thousands not in grouping:
        grouping.append(thousands)
    separator = "[" + "".join(re.escape(char) for char in grouping) + "]"
    # The backreferences keep one kind of separator within a number ("1,234\u00a0567" is not one).
    # A grouped number's first group never starts with 0: no locale writes "0,123" or "01,234",
    # which are a decimal comma or a code, not 123 and 1234.
    western = rf"[1-9][0-9]{{0,2}}(?P<w>{separator})[0-9]{{3}}(?:(?P=w)[0-9]{{3}})*"
    indian = rf"[1-9][0-9]?(?P<i>{separator})[0-9]{{2}}(?:(?P=i)[0-9]{{2}})*(?P=i)[0-9]{{3}}"
    point = re.escape(decimal)
    number = (
        rf"(?:(?P<int>{western}|{indian}|[0-9]+)(?:{point}(?P<frac>[0-9]*))?"  # "1,234.5", "5."
        rf"|{point}(?P<bare>[0-9]+))"  # ".5"
    )
    mark = _currency_pattern(marks, longest_first=longest_first)
    signs = re.escape(_LEADING_SIGNS)
    # The number once, with a slot for a mark on each side of the sign: "Rp -5", "-Rp 5", "5 Rp-",
    # "5- Rp". Conditionals make every match a valid reading: a slot is open only while no earlier one
    # holds a mark (one mark at most), "(" requires ")", and a leading sign rules out a trailing "-".
    return re.compile(
        rf"(?:(?P<c1>{mark})\s*)?"
        rf"(?:(?P<paren>[(])\s*|(?P<sign>[{signs}])\s*)?"
        rf"(?(c1)|(?:(?P<c2>{mark})\s*)?)"
        rf"{number}"
        rf"(?(c1)|(?(c2)|(?:\s*(?P<c3>{mark}))?))"
        rf"(?(paren)\s*[)]|(?(sign)|(?:\s*(?P<trailing>-))?))"
        rf"(?(c1)|(?(c2)|(?(c3)|(?:\s*(?P<c4>{mark}))?)))"
    )


def _value(match: re.Match[str]) -> float | None:
    integer = match.group("int")
    if integer is None:
        digits = "." + match.group("bare")
    else:
        digits = re.sub("[^0-9]", "", integer) + "." + (match.group("frac") or "")
    value = float(digits)  # exact decimal-to-double rounding, as for the fast path's numbers
    if not math.isfinite(value):
        return None  # hundreds of digits: no float states it
    sign = match.group("sign")
    negative = match.group("paren") is not None or match.group("trailing") is not None
    return -value if negative or (sign is not None and sign in _MINUS_SIGNS) else value


@dataclass(frozen=True)
class _Grammar:
    decimal: str
    # The grammar with the mark alternatives longest first, and, when a mark ends with the decimal
    # point, also shortest first: there a text can read two ways (see parse).
    longest: re.Pattern[str]
    shortest: re.Pattern[str] | None

    def parse(self, text: str) -> float | None:
        stripped = text.strip()
        match = self.longest.fullmatch(stripped)
        if match is None:
            return None
        value = _value(match)
        if self.shortest is None:
            return value
        prefix = match.group("c1") or match.group("c2")
        if prefix is None or len(prefix) == 1 or not prefix.endswith(self.decimal):
            return value
        # A mark stands at one end of the text and only a decimal point can pass between it and the
        # number (_check_mark), so two readings differ in how long the leading mark is ("Rs.5": "Rs." 5
        # or "Rs" .5): the longest-first pattern finds the longest, the shortest-first the shortest.
        # (A trailing mark can only take the point of "5.", which keeps the value.) The same value
        # both ways is one reading ("Rs.0").
        other = self.shortest.fullmatch(stripped)
        return value if other is not None and _value(other) == value else None


@functools.lru_cache(maxsize=64)
def _grammar(decimal: str, thousands: str, marks: tuple[str, ...]) -> _Grammar:
    if decimal not in _DECIMALS:
        raise ValueError(f"decimal must be one of {_DECIMALS}, not {decimal!r}")
    if thousands not in _THOUSANDS:
        raise ValueError(f"thousands must be one of {_THOUSANDS}, not {thousands!r}")
    if thousands == decimal:
        raise ValueError("decimal and thousands separators must differ")
    for mark in marks:
        _check_mark(mark)
    longest = _pattern(decimal, thousands, marks, longest_first=True)
    overlapping = any(len(mark) > 1 and mark.endswith(decimal) for mark in marks)
    shortest = _pattern(decimal, thousands, marks, longest_first=False) if overlapping else None
    return _Grammar(decimal, longest, shortest)


def parse_number_text(
    text: str,
    *,
    decimal: str,
    thousands: str,
    currency_marks: Sequence[str] = DEFAULT_CURRENCY_MARKS,
) -> float | None:
    """The number a text cell states, or None when it is not a number in an accepted form.

    The accepted forms are the module's contract (its docstring). Raises ValueError for a separator
    configuration the config would not allow, or a currency mark that is empty, holds whitespace or a
    digit, or has no letter or currency symbol.
    """
    return _grammar(decimal, thousands, tuple(currency_marks)).parse(text)


def parse_number_texts(
    texts: Iterable[str],
    *,
    decimal: str,
    thousands: str,
    currency_marks: Sequence[str] = DEFAULT_CURRENCY_MARKS,
) -> list[float | None]:
    """parse_number_text of each text, in order, with the grammar looked up once."""
    grammar = _grammar(decimal, thousands, tuple(currency_marks))
    return [grammar.parse(text) for text in texts]
