"""Errors a store helpdesk can act on: each names the file, and the sheet,
row and column where they are known, and says what was expected."""

from __future__ import annotations


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
            parts.append(f"sheet '{self.sheet}'")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        return ": ".join([", ".join(parts), self.message])


def _rebuild_input_file_error(
    cls: type[InputFileError], file: str, message: str, sheet: str | None, row: int | None, column: str | None
) -> InputFileError:
    error = InputFileError.__new__(cls)
    InputFileError.__init__(error, file, message, sheet=sheet, row=row, column=column)
    return error


class ReferenceDataError(Exception):
    """Reference data (e.g. the supplier master) that is malformed: the whole run stops."""
