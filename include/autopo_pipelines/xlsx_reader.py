"""Reading one worksheet of an XLSX file into a table, robustly and fast.

CONTRACT (implemented by the reader helper; the rest of the package relies on it):

    class WorkbookError(Exception):
        file: str          # file name (not full path)
        sheet: str | None  # sheet name when known
        message: str       # what is wrong / what was expected, for a store helpdesk
        str(err) -> f"{file}: sheet '{sheet}': {message}" (sheet part omitted when None)

    @dataclass(frozen=True)
    class SheetTable:
        sheet: str                 # the sheet that was read
        header_row: int            # 1-based sheet row number of the header row
        header: list[str]          # header cells as text ('' for empty), one per column
        data: pandas.DataFrame     # one column per header cell, positional names 0..n-1,
                                   # one row per sheet row below the header (empty rows kept)
        row_numbers: numpy.ndarray # int64, 1-based sheet row number of each data row

    def read_sheet_table(path, *, sheet=None, header_search_rows=20,
                         is_header=lambda cells: bool) -> SheetTable

    - sheet=None: the first *visible* worksheet; a named sheet that does not exist
      is a WorkbookError naming the sheets that do exist.
    - the header row is the first of the first `header_search_rows` sheet rows for which
      is_header(cells_as_text) is True; none -> WorkbookError("no header row found in
      the first 20 rows ...").
    - cell values in `data`: numeric cells as float (or int), text cells as str (not
      stripped), empty as None/NaN, date cells as datetime; booleans as bool. Per-cell
      types must survive in mixed columns (a text "00123" stays a str, a numeric 12345
      stays a number).
    - not a zip / not XLSX / encrypted / truncated / Strict OOXML it cannot read /
      zero sheets / no visible sheet -> WorkbookError with a clear message.
"""
