"""Workbooks for the reader's tests: the shared corpus, zip bombs and XML entity bombs.

The zip bombs are real: a 2 GB sheet or shared-strings part packed into ~6 MB, written
without ever holding more than 1 MB of it (a deflate block compressed once and
repeated; see write_zip).
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import openpyxl

SHEET_PART = "xl/worksheets/sheet1.xml"
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = b"</sheetData></worksheet>"
SST_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
SST_TAIL = b"</sst>"
HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>SKU</t></is></c></row>'
# Rows without references: calamine numbers them itself, so nothing about them looks far away.
BOMB_ROW = b'<row><c t="inlineStr"><is><t>x</t></is></c><c><v>1</v></c></row>'
BOMB_STRING = b"<si><t>x</t></si>"
# A DTD whose &lol9; is 10^9 x "lol" (3 GB) if expanded.
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]>\n"
)


def corpus_dir() -> Path | None:
    """The shared corpus: $AUTOPO_CORPUS_DIR, else shared/ beside the checkout (as CI lays it)."""
    configured = os.environ.get("AUTOPO_CORPUS_DIR")
    if configured:
        return Path(configured)
    for candidate in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if (candidate / "corpus" / "xlsx").is_dir():
            return candidate / "corpus" / "xlsx"
    return None


@dataclass(frozen=True)
class Repeated:
    """A part made of ``head``, ``unit`` repeated ``times`` and ``tail``; optionally declaring another size."""

    head: bytes
    unit: bytes
    times: int
    tail: bytes
    declared_size: int | None = None

    @property
    def size(self) -> int:
        return len(self.head) + len(self.unit) * self.times + len(self.tail)


def _deflate(data: bytes, *, last: bool) -> bytes:
    # A full flush ends on a byte boundary with no back-references, so the same
    # compressed block can be repeated and the result is one valid deflate stream.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


@functools.cache
def _crc32(head: bytes, unit: bytes, times: int, tail: bytes) -> int:
    # ~0.5 s for 2 GB: computed once per bomb shape, whatever size it declares.
    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(unit, crc)
    return zlib.crc32(tail, crc)


def write_zip(path: Path, members: dict[str, bytes | Repeated]) -> Path:
    """A zip of deflated members, written by hand so a Repeated part is never held whole."""
    central = []
    with path.open("wb") as out:
        for name, content in members.items():
            offset = out.tell()
            if isinstance(content, Repeated):
                head, unit = _deflate(content.head, last=False), _deflate(content.unit, last=False)
                crc = _crc32(content.head, content.unit, content.times, content.tail)
                chunks = [head, *([unit] * content.times), _deflate(content.tail, last=True)]
                size = content.size if content.declared_size is None else content.declared_size
            else:
                chunks, crc, size = [_deflate(content, last=True)], zlib.crc32(content), len(content)
            encoded = name.encode()
            fields = (20, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc, sum(map(len, chunks)), size, len(encoded), 0)
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded)
            for chunk in chunks:
                out.write(chunk)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + encoded)
        start = out.tell()
        for entry in central:
            out.write(entry)
        directory = out.tell() - start
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), directory, start, 0))
    return path


def workbook_members(*extra_sheets: str) -> dict[str, bytes]:
    """The parts of a small, valid workbook: sheet 'Stock' (SKU header, one row), plus empty sheets."""
    workbook = openpyxl.Workbook()
    workbook.active.title = "Stock"
    workbook.active.append(["SKU", "Stock On Hand", "Sales Qty"])
    workbook.active.append(["A-1", 1, 2])
    for title in extra_sheets:
        workbook.create_sheet(title)["A1"] = "x"
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def sheet_bomb(size: int, declared_size: int | None = None) -> Repeated:
    """A sheet of about ``size`` bytes: an SKU header row, then 1 MB blocks of small rows."""
    unit = BOMB_ROW * ((1 << 20) // len(BOMB_ROW))
    return Repeated(SHEET_HEAD + HEADER_ROW, unit, size // len(unit), SHEET_TAIL, declared_size)


def shared_strings_bomb(size: int, declared_size: int | None = None) -> Repeated:
    """A shared-strings part of about ``size`` bytes, in 1 MB blocks of one-letter strings."""
    unit = BOMB_STRING * ((1 << 20) // len(BOMB_STRING))
    return Repeated(SST_HEAD, unit, size // len(unit), SST_TAIL, declared_size)


def bomb_file(path: Path, part: str, content: Repeated) -> Path:
    """The small workbook of workbook_members with ``part`` replaced (or added) by ``content``."""
    return write_zip(path, {**workbook_members(), part: content})
