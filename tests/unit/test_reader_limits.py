"""Zip bombs and XML entity bombs against autopo_pipelines.xlsx_reader.

The bombs are real: a 2 GB sheet or shared-strings part packed into ~6 MB, written
without ever holding more than 1 MB of it (see write_zip in tests/xlsx_samples.py). Each
is read in a child process whose address space is capped, so a guard that stops working
fails the test instead of the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from autopo_pipelines.config import PipelineConfig
from autopo_pipelines.xlsx_reader import DEFAULT_MAX_UNCOMPRESSED_BYTES, WorkbookError, read_sheet_table
from xlsx_samples import (
    LAUGHS,
    SHEET_PART,
    Repeated,
    bomb_file,
    shared_strings_bomb,
    sheet_bomb,
    workbook_members,
    write_zip,
)

GB2 = 2 * 1024**3 - (1 << 21)  # just under 2 GiB: no zip64 needed


# The child caps its address space (the imports alone take ~400 MB of it): calamine
# parsing any of these bombs would need many GB, fail to allocate and abort the child.
CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024, resource.RLIM_INFINITY))
from autopo_pipelines.xlsx_reader import WorkbookError, read_sheet_table
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    table = read_sheet_table(sys.argv[1], **json.loads(sys.argv[2]))
    error = None
    rows = len(table.data)
except WorkbookError as exc:
    error, rows = {"text": str(exc), "sheet": exc.sheet}, None
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "rows": rows, "seconds": seconds, "peak_kb": peak, "peak_growth_kb": peak - before}))
"""


def read_in_child(path: Path, **kwargs: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(kwargs)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"the reader crashed (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    print(
        f"{path.name}: {result['seconds']:.3f} s, peak RSS {result['peak_kb'] / 1024:.0f} MB "
        f"(+{result['peak_growth_kb'] / 1024:.1f} MB over the imports)"
    )
    return result


@pytest.mark.parametrize(
    ("part", "make", "sheet"),
    [(SHEET_PART, sheet_bomb, "Stock"), ("xl/sharedStrings.xml", shared_strings_bomb, None)],
    ids=["sheet", "shared_strings"],
)
def test_a_2gb_bomb_is_refused_at_once_in_little_memory(
    tmp_path: Path, part: str, make: Any, sheet: str | None
) -> None:
    path = bomb_file(tmp_path / "STORE-1_stock_20241204.xlsx", part, make(GB2))
    assert path.stat().st_size < 10_000_000
    result = read_in_child(path)
    error = result["error"]
    assert error is not None, "the bomb was read"
    # shared strings are read when the workbook is opened, before any sheet is chosen
    assert error["sheet"] == sheet
    prefix = "STORE-1_stock_20241204.xlsx" + (f", sheet '{sheet}': " if sheet else ": ")
    assert error["text"].startswith(prefix + "the workbook expands to more than 1,000,000,000 bytes when unzipped")
    assert "is refused" in error["text"] and f"'{part}', declares 2,14" in error["text"]
    assert "ask the store to export the report from Excel again and re-send it" in error["text"]
    assert result["seconds"] < 2
    assert result["peak_growth_kb"] < 64 * 1024


@pytest.mark.parametrize(
    ("part", "make"),
    [(SHEET_PART, sheet_bomb), ("xl/sharedStrings.xml", shared_strings_bomb)],
    ids=["sheet", "shared_strings"],
)
@pytest.mark.parametrize("declared", [1_000, 900_000_000], ids=["tiny", "under_the_limit"])
def test_a_bomb_declaring_a_smaller_size_is_a_damaged_file(tmp_path: Path, part: str, make: Any, declared: int) -> None:
    # Declared sizes can lie: 2 GB declared as 1 KB, or as 900 MB (under the limit, but
    # packed 150:1). The real size is counted, and only up to one byte past the declared.
    path = bomb_file(tmp_path / "liar.xlsx", part, make(GB2, declared_size=declared))
    result = read_in_child(path)
    assert result["error"] is not None
    damaged = f"the file is damaged (its part '{part}' unzips to more than the {declared:,} bytes"
    assert damaged in result["error"]["text"]
    assert result["seconds"] < 2
    assert result["peak_growth_kb"] < 64 * 1024


def test_a_part_holding_less_than_it_declares_is_a_damaged_file(tmp_path: Path) -> None:
    path = bomb_file(tmp_path / "short.xlsx", "xl/sharedStrings.xml", shared_strings_bomb(20_000_000, 30_000_000))
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(path)
    assert info.value.sheet is None
    assert "its part 'xl/sharedStrings.xml' unzips to 19,9" in info.value.message
    assert "not the 30,000,000 bytes the archive declares for it" in info.value.message


def test_the_limit_is_a_parameter_and_counts_every_part_read(tmp_path: Path) -> None:
    members = workbook_members()
    path = write_zip(tmp_path / "small.xlsx", members)
    assert read_sheet_table(path).header == ["SKU", "Stock On Hand", "Sales Qty"]
    # The sheet and each workbook-level part are each under this limit; together they are not.
    package = [n for n in members if "/" not in n.removeprefix("xl/").removeprefix("_rels/")]
    read = len(members[SHEET_PART]) + sum(len(members[n]) for n in package)
    assert max(len(members[n]) for n in [SHEET_PART, *package]) < read - 1
    with pytest.raises(WorkbookError, match=f"expands to more than {read - 1:,} bytes") as info:
        read_sheet_table(path, max_uncompressed_bytes=read - 1)
    assert info.value.sheet == "Stock"
    assert read_sheet_table(path, max_uncompressed_bytes=read).data.shape == (1, 3)


def test_a_bomb_in_a_sheet_that_is_not_read_stops_nothing(tmp_path: Path) -> None:
    members: dict[str, bytes | Repeated] = {**workbook_members("Archive")}
    members["xl/worksheets/sheet2.xml"] = sheet_bomb(GB2)
    path = write_zip(tmp_path / "two_sheets.xlsx", members)
    started = time.perf_counter()
    assert read_sheet_table(path).data.shape == (1, 3)
    with pytest.raises(WorkbookError, match="expands to more than") as info:
        read_sheet_table(path, sheet="Archive")
    assert info.value.sheet == "Archive"
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("spelling", ["XL/SharedStrings.XML", "xl\\sharedStrings.xml"])
def test_odd_part_name_spellings_are_held_to_the_limit(tmp_path: Path, spelling: str) -> None:
    # calamine finds parts ignoring case and backslashes, so the guard must too.
    path = bomb_file(tmp_path / "odd.xlsx", spelling, shared_strings_bomb(GB2))
    with pytest.raises(WorkbookError, match="expands to more than 1,000,000,000 bytes"):
        read_sheet_table(path)


def test_a_sheet_too_big_to_scan_says_how_big(tmp_path: Path) -> None:
    # Under the 1 GB limit, but more XML than ~10 million cells (the most a sheet may span) need.
    path = bomb_file(tmp_path / "big.xlsx", SHEET_PART, sheet_bomb(700_000_000))
    started = time.perf_counter()
    with pytest.raises(WorkbookError) as info:
        read_sheet_table(path)
    assert time.perf_counter() - started < 2
    assert info.value.sheet == "Stock"
    assert info.value.message.startswith("the sheet unzips to 699,4")
    assert "bytes of XML, more than the 536,870,912 a report can take" in info.value.message


# ---- XML entity expansion ("billion laughs") --------------------------------------------


@pytest.mark.parametrize("where", ["shared_strings", "sheet"])
def test_entity_expansion_is_never_performed(tmp_path: Path, where: str) -> None:
    # &lol9; would be 10^9 x "lol" = 3 GB if expanded. calamine's XML parser (quick-xml)
    # does not expand DTD entities: the reference is an error, reported as such.
    members = workbook_members()
    sheet = members[SHEET_PART]
    if where == "shared_strings":
        members["xl/sharedStrings.xml"] = LAUGHS + (
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
            b"<si><t>&lol9;</t></si></sst>"
        )
        sheet = sheet.replace(b'<c r="A2" t="inlineStr"><is><t>A-1</t></is></c>', b'<c r="A2" t="s"><v>0</v></c>')
        members[SHEET_PART] = sheet
    else:
        members[SHEET_PART] = LAUGHS + sheet.replace(b"<t>A-1</t>", b"<t>&lol9;</t>")
    path = write_zip(tmp_path / "laughs.xlsx", members)
    result = read_in_child(path)
    assert result["error"] is not None
    assert result["error"]["sheet"] == (None if where == "shared_strings" else "Stock")
    assert "uses XML entities that Excel never writes" in result["error"]["text"]
    assert "unrecognized entity `&lol9;`" in result["error"]["text"]
    assert result["seconds"] < 1
    assert result["peak_growth_kb"] < 64 * 1024


# ---- the pipeline setting ---------------------------------------------------------------


def test_the_config_setting_defaults_to_the_readers_default() -> None:
    fields = PipelineConfig.model_fields
    assert fields["max_uncompressed_bytes"].default == DEFAULT_MAX_UNCOMPRESSED_BYTES == 1_000_000_000


def test_the_config_setting_refuses_a_useless_limit() -> None:
    base = {
        "name": "p",
        "transform": "autopo_pipelines.pipelines.stock_health",
        "file_pattern": r"(?P<date>\d{8})\.xlsx",
        "columns": {"sku": {"required": True, "aliases": ["sku"]}},
    }
    assert PipelineConfig.model_validate({**base, "max_uncompressed_bytes": 5_000_000_000}).max_uncompressed_bytes
    with pytest.raises(ValidationError, match="max_uncompressed_bytes"):
        PipelineConfig.model_validate({**base, "max_uncompressed_bytes": 1000})
