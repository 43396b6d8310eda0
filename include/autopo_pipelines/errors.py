"""Errors a store helpdesk can act on: each names the file, and the sheet,
row and column where they are known, and says what was expected."""

from __future__ import annotations

import unicodedata

# Values quoted in a message are cut to this many characters: a 300-character product name
# must not push the file's name and row out of a log line or a Slack preview.
QUOTED_VALUE_LIMIT = 60
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with every control and format character (a bidi override, a zero-width space),
    line and paragraph separator shown escaped
    (a line break as \\n, a tab as \\t, others as \\xNN or \\uNNNN): a message stays one line."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def quote(value: object, limit: int = QUOTED_VALUE_LIMIT) -> str:
    """A value for a message: in single quotes, one line, cut with an ellipsis past ``limit`` characters."""
    text = one_line(str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return f"'{text}'"


class InputFileError(Exception):
    """A source file that cannot be used as a whole; the other files of the day go on."""

    def __init__(
        self,
        file: str,
        message: str,
        *,
        sheet: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.sheet = sheet
        self.row = row
        self.column = column
        self.message = message
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its fields: Airflow may pickle the exception between processes.
        return (_rebuild_input_file_error, (type(self), self.file, self.message, self.sheet, self.row, self.column))

    def describe(self) -> str:
        parts = [self.file]
        if self.sheet is not None:
            parts.append(f"sheet {quote(self.sheet)}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {quote(self.column.strip())}")
        return one_line(": ".join([", ".join(parts), self.message]))


def _rebuild_input_file_error(
    cls: type[InputFileError], file: str, message: str, sheet: str | None, row: int | None, column: str | None
) -> InputFileError:
    error = InputFileError.__new__(cls)
    InputFileError.__init__(error, file, message, sheet=sheet, row=row, column=column)
    return error


class ReferenceDataError(Exception):
    """Reference data (e.g. the supplier master) that is malformed: the whole run stops."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))
