"""How a sheet's headings and columns are named: the normalised heading every alias is
compared in, and column letters (A, B, ..., AA) as people and the config write them."""

from __future__ import annotations

import math
import re

# Unicode-aware: "Catégorie" keeps its é; only runs of non-alphanumerics become "_".
_NON_ALNUM = re.compile(r"[\W_]+")


def normalise_header(value: object) -> str:
    """lower-case, trim, runs of non-alphanumerics become '_', no leading/trailing '_'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _NON_ALNUM.sub("_", str(value).strip().lower()).strip("_")


def column_index(letters: str) -> int:
    """A column's 0-based index from its letters: A is 0, AA is 26."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def column_letters(index: int) -> str:
    """A column's letters from its 0-based index: 0 is A, 26 is AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
