"""Build the store-export corpus: XLSX files imitating other producers' inventory and purchase-order reports.

Run as ``.venv/bin/python tests/corpus/exports/build.py``; the files go to ``tests/corpus/exports/files/``.
README.md beside this script lists every file and the rows/cells carrying each layout feature.

The output is byte-for-byte deterministic: openpyxl stamps docProps/core.xml's ``modified`` with the
current time and every zip entry with the local time when it saves, so each saved workbook is rewritten
(fixed dates in core.xml, every entry dated 1980-01-01 00:00:00, entries in a stable order). The
hand-written file (STORE-C14) is built with zipfile from raw XML strings, with the same fixed entry dates.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

HERE = Path(__file__).resolve().parent
OUT = HERE / "files"

FIXED = datetime(2024, 12, 4, 7, 0)
FIXED_W3CDTF = "2024-12-04T07:00:00Z"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
COMPANY = "PT Sumber Makmur Retail"

CellValue = str | int | float | date | datetime | None
Row = Sequence[CellValue]

# (product name, category): Indonesian grocery items, cycled through by the stock reports.
PRODUCTS: list[tuple[str, str]] = [
    ("Beras Premium 5kg", "Sembako"),
    ("Minyak Goreng 2L", "Sembako"),
    ("Gula Pasir 1kg", "Sembako"),
    ("Tepung Terigu 1kg", "Sembako"),
    ("Garam Dapur 250g", "Bumbu"),
    ("Kecap Manis 520ml", "Bumbu"),
    ("Saus Sambal 340ml", "Bumbu"),
    ("Kaldu Ayam Bubuk 100g", "Bumbu"),
    ("Teh Celup isi 25", "Minuman"),
    ("Kopi Bubuk 200g", "Minuman"),
    ("Susu UHT Coklat 1L", "Minuman"),
    ("Air Mineral 600ml", "Minuman"),
    ("Susu Kental Manis 370g", "Minuman"),
    ("Mie Instan Goreng", "Makanan"),
    ("Mie Instan Kuah Soto", "Makanan"),
    ("Sarden Kaleng 155g", "Makanan"),
    ("Biskuit Kelapa 300g", "Makanan Ringan"),
    ("Keripik Singkong 150g", "Makanan Ringan"),
    ("Wafer Coklat 130g", "Makanan Ringan"),
    ("Kacang Atom 250g", "Makanan Ringan"),
    ("Sabun Mandi 85g", "Perawatan Diri"),
    ("Sampo Sachet isi 12", "Perawatan Diri"),
    ("Pasta Gigi 190g", "Perawatan Diri"),
    ("Sikat Gigi Medium", "Perawatan Diri"),
    ("Tisu Wajah 250 lembar", "Perawatan Diri"),
    ("Deterjen Bubuk 800g", "Kebersihan"),
    ("Sabun Cuci Piring 780ml", "Kebersihan"),
    ("Pembersih Lantai 800ml", "Kebersihan"),
    ("Pewangi Pakaian 900ml", "Kebersihan"),
    ("Kantong Sampah Besar", "Kebersihan"),
]


def sku(number: int) -> str:
    return f"SKU-{number:05d}"


def product(index: int) -> tuple[str, str]:
    """The index-th product; past the list's end the names gain a pack size, so they stay distinct."""
    name, category = PRODUCTS[index % len(PRODUCTS)]
    rounds = index // len(PRODUCTS)
    return (name if rounds == 0 else f"{name} isi {rounds + 1}", category)


def rupiah(rng: random.Random) -> int:
    """A plausible unit cost in rupiah: 1,500 to 150,000 in steps of 50."""
    return rng.randrange(1_500, 150_000, 50)


def ean13(body12: str) -> str:
    """The 12 digits plus their EAN-13 check digit."""
    total = sum(int(digit) * (3 if position % 2 else 1) for position, digit in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def put_row(ws: Worksheet, row: int, values: Row, *, bold: bool = False) -> None:
    """Write values into row from column A; None leaves the cell absent (nothing is written)."""
    for column, value in enumerate(values, start=1):
        if value is None:
            continue
        cell = ws.cell(row=row, column=column, value=value)
        if bold:
            cell.font = Font(bold=True)


def put_text(ws: Worksheet, row: int, column: int, value: str) -> None:
    """A text cell formatted as Text ("@"), as exports that keep numbers as text write them."""
    cell = ws.cell(row=row, column=column, value=value)
    cell.number_format = "@"


# ---- deterministic saving -------------------------------------------------------------------------------


def zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 0  # the default depends on the platform
    info.external_attr = 0
    return info


def entry_order(name: str) -> tuple[int, str]:
    return (0 if name == "[Content_Types].xml" else 1, name)


def write_package(path: Path, parts: dict[str, bytes]) -> None:
    """Write parts as a zip with fixed entry dates, [Content_Types].xml first, then by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(parts, key=entry_order):
            archive.writestr(zip_entry(name), parts[name], compresslevel=6)
    path.write_bytes(buffer.getvalue())


def fix_core_dates(xml: bytes) -> bytes:
    for tag in (b"dcterms:created", b"dcterms:modified"):
        pattern = re.compile(rb"(<" + tag + rb"[^>]*>)[^<]*(</" + tag + rb">)")
        xml = pattern.sub(rb"\g<1>" + FIXED_W3CDTF.encode() + rb"\g<2>", xml)
    return xml


def save(wb: Workbook, name: str) -> None:
    wb.properties.created = FIXED
    wb.properties.modified = FIXED
    buffer = io.BytesIO()
    wb.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as saved:
        parts = {entry: saved.read(entry) for entry in saved.namelist()}
    parts["docProps/core.xml"] = fix_core_dates(parts["docProps/core.xml"])
    write_package(OUT / name, parts)


def new_book(title: str) -> tuple[Workbook, Worksheet]:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    return wb, ws


# ---- the stock reports ----------------------------------------------------------------------------------


def store_c01() -> None:
    """Title block, header row 5, data rows 6..25, Total row 26, blank row 27, notes row 28."""
    rng = random.Random(2024120401)
    wb, ws = new_book("Stock")
    ws["A1"] = COMPANY
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells("A1:F1")
    ws["A2"] = "Stock report"
    ws["A3"] = "Printed 2024-12-04 07:00"
    put_row(ws, 5, ["SKU", "Item Name", "Category", "SOH", "Qty Sold", "Cost"], bold=True)
    total_soh = total_sold = 0
    for i in range(20):
        name, category = product(i)
        soh, sold = rng.randint(0, 400), rng.randint(0, 250)
        total_soh += soh
        total_sold += sold
        put_row(ws, 6 + i, [sku(1001 + i), name, category, soh, sold, rupiah(rng)])
    put_row(ws, 26, ["Total", None, None, total_soh, total_sold], bold=True)
    ws["A28"] = "Notes: quantities in pieces; cost excludes VAT"
    save(wb, "STORE-C01_stock_20241204.xlsx")


def store_c02() -> None:
    """Header row 1; 3 pages of 20 data rows, each later page after a blank row and a repeated header."""
    rng = random.Random(2024120402)
    wb, ws = new_book("Sheet1")
    header = ["SKU", "Description", "Stock", "Sales 30D"]
    put_row(ws, 1, header, bold=True)
    row = 2
    for page in range(3):
        if page:
            row += 1  # a blank row: 22, 44
            put_row(ws, row, header, bold=True)  # the header again: 23, 45
            row += 1
        for i in range(20):
            index = page * 20 + i
            put_row(ws, row, [sku(2001 + index), product(index)[0], rng.randint(0, 300), rng.randint(0, 150)])
            row += 1
    save(wb, "STORE-C02_stock_20241204.xlsx")


def store_c03() -> None:
    """Indonesian number forms as text cells (decimal comma, thousands dot) in Stok, Penjualan and HPP."""
    wb, ws = new_book("Stok")
    put_row(ws, 1, ["Kode Barang", "Nama Barang", "Stok", "Penjualan 30 Hari", "HPP"], bold=True)
    rows: list[tuple[str, str, str, str]] = [
        ("Beras Premium 5kg", "1.234", "320", "68.500"),
        ("Gula Pasir 1kg", "0", "45", "Rp 12.500"),
        ("Minyak Goreng 2L", "7", "2", "12.500,50"),
        ("Mie Instan Goreng", "(1.284)", "12", "3.250"),
        ("Air Mineral 600ml", "2.500", "1.050", "950"),
        ("Teh Celup isi 25", "58", "0", "1.250,75"),
        ("Garam Dapur 250g", "125", "37", "Rp 4.200"),
        ("Kecap Manis 520ml", "12", "7", "22.000"),
        ("Sabun Mandi 85g", "240", "180", "2.500"),
        ("Kaldu Ayam Bubuk 100g", "36", "15", "7.850,25"),
        ("Sikat Gigi Medium", "3", "1", "145.000"),
        ("Sarden Kaleng 155g", "410", "96", "18.750"),
    ]
    for i, (name, stock, sold, cost) in enumerate(rows):
        row = 2 + i
        ws.cell(row=row, column=1, value=sku(3001 + i))
        ws.cell(row=row, column=2, value=name)
        for column, text in ((3, stock), (4, sold), (5, cost)):
            put_text(ws, row, column, text)
    save(wb, "STORE-C03_stock_20241204.xlsx")


def store_c04() -> None:
    """A US-style export (decimal point, thousands comma) with other grouping forms as text cells."""
    rng = random.Random(2024120404)
    wb, ws = new_book("Inventory")
    put_row(ws, 1, ["SKU", "Product Name", "Stock On Hand", "Sales Qty", "Unit Cost"], bold=True)
    # (stock, sales, cost): a str is written as a text cell, a number as a numeric cell, None draws a number.
    rows: list[tuple[str | None, str | None, str | float | None]] = [
        (None, None, "1,10,218.81"),
        (None, None, "12,34,567"),
        (None, None, "12\u00a0345"),  # no-break space
        (None, None, "12\u2009345"),  # thin space
        (None, None, "12\u202f345"),  # narrow no-break space
        (None, None, "1'234"),
        (None, None, "1284-"),
        (None, None, "(1,284.000)"),
        (None, None, "12,500 IDR"),
        (None, None, "$1,234.50"),
        (None, None, "1.234"),
        ("12\u00a0345", None, 4500),
        ("1'234", None, 2750.5),
        ("12,34,567", None, 18000),
        (None, "12 pcs", 9900),
    ]
    for i, (stock, sold, cost) in enumerate(rows):
        row = 2 + i
        ws.cell(row=row, column=1, value=sku(4001 + i))
        ws.cell(row=row, column=2, value=product(i)[0])
        for column, value, draw in (
            (3, stock, rng.randint(0, 400)),
            (4, sold, rng.randint(0, 200)),
            (5, cost, rupiah(rng)),
        ):
            if isinstance(value, str):
                put_text(ws, row, column, value)
            else:
                ws.cell(row=row, column=column, value=draw if value is None else value)
    save(wb, "STORE-C04_stock_20241204.xlsx")


def store_c05() -> None:
    """Group headings in row 1 (A1:C1 and D1:E1 merged, F1 alone), column headings in row 2, data 3..17."""
    rng = random.Random(2024120405)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["Item", None, None, "Stock", None, "Value"], bold=True)
    ws.merge_cells("A1:C1")
    ws.merge_cells("D1:E1")
    for ref in ("A1", "D1", "F1"):
        ws[ref].alignment = Alignment(horizontal="center")
    put_row(ws, 2, ["SKU", "Description", "Dept", "SOH", "Qty Sold", "Cost"], bold=True)
    for i in range(15):
        name, category = product(i + 5)
        put_row(ws, 3 + i, [sku(5001 + i), name, category, rng.randint(0, 400), rng.randint(0, 250), rupiah(rng)])
    save(wb, "STORE-C05_stock_20241204.xlsx")


def store_c06() -> None:
    """Column C (Cost) hidden, row 5 hidden (a data row)."""
    rng = random.Random(2024120406)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["SKU", "Description", "Cost", "SOH", "Qty Sold"], bold=True)
    for i in range(10):
        put_row(ws, 2 + i, [sku(6001 + i), product(i + 10)[0], rupiah(rng), rng.randint(0, 400), rng.randint(0, 250)])
    ws.column_dimensions["C"].hidden = True
    ws.row_dimensions[5].hidden = True
    save(wb, "STORE-C06_stock_20241204.xlsx")


def item_numbered(file_name: str, first_sku: int, seed: int, offset: int) -> None:
    """Line numbers 1..10 under "Item #" in A, the SKUs under "Item" in B, then Description | SOH | Qty Sold."""
    rng = random.Random(seed)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["Item #", "Item", "Description", "SOH", "Qty Sold"], bold=True)
    for i in range(10):
        description = product(i + offset)[0]
        put_row(ws, 2 + i, [i + 1, sku(first_sku + i), description, rng.randint(0, 400), rng.randint(0, 250)])
    save(wb, file_name)


def store_c09() -> None:
    """13-digit barcodes as text in column A ("Barcode") before "SKU" in column B."""
    rng = random.Random(2024120409)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["Barcode", "SKU", "Description", "SOH", "Qty Sold"], bold=True)
    for i in range(10):
        row = 2 + i
        put_text(ws, row, 1, ean13(f"899{rng.randrange(10**9):09d}"))
        put_row(ws, row, [None, sku(9001 + i), product(i + 3)[0], rng.randint(0, 400), rng.randint(0, 250)])
    save(wb, "STORE-C09_stock_20241204.xlsx")


def store_c10() -> None:
    """A sales report, not a stock report: visible "Sales" and "Summary", hidden "Lookup"."""
    rng = random.Random(2024120410)
    customers = [("C-001", "Toko Berkah"), ("C-002", "Warung Bu Sri"), ("C-003", "Kios Maju Jaya"), ("C-004", "Umum")]
    wb, ws = new_book("Sales")
    ws["A1"] = "Sales report 2024-11-19 to 2024-12-03"
    ws["A1"].font = Font(bold=True)
    put_row(ws, 3, ["Date", "Invoice", "Customer", "Amount"], bold=True)
    total = 0
    for i in range(15):
        day = date(2024, 11, 19) + timedelta(days=i)
        amount = rng.randrange(25_000, 2_500_000, 500)
        total += amount
        put_row(ws, 4 + i, [day, f"INV-2411-{i + 1:04d}", customers[i % len(customers)][1], amount])
        ws.cell(row=4 + i, column=1).number_format = "yyyy-mm-dd"
    summary = wb.create_sheet("Summary")
    put_row(summary, 1, ["Summary"], bold=True)
    put_row(summary, 3, ["Invoices", 15])
    put_row(summary, 4, ["Total amount", total])
    lookup = wb.create_sheet("Lookup")
    put_row(lookup, 1, ["Customer Code", "Customer Name"], bold=True)
    for i, (code, customer) in enumerate(customers):
        put_row(lookup, 2 + i, [code, customer])
    lookup.sheet_state = "hidden"
    save(wb, "STORE-C10_stock_20241204.xlsx")


def store_c11() -> None:
    """A stock report without a sales column: title row 1, header row 3, data rows 4..13."""
    rng = random.Random(2024120411)
    wb, ws = new_book("Stock")
    ws["A1"] = "Stock position 2024-12-04"
    ws["A1"].font = Font(bold=True)
    put_row(ws, 3, ["SKU", "Description", "SOH", "Cost"], bold=True)
    for i in range(10):
        put_row(ws, 4 + i, [sku(11001 + i), product(i + 15)[0], rng.randint(0, 400), rupiah(rng)])
    save(wb, "STORE-C11_stock_20241204.xlsx")


LONG_NAME_HEAD = "Paket Hemat Sembako\tisi: "


def long_name() -> str:
    """A 300-character item name with one tab in it."""
    filler = ", ".join(name for name, _ in PRODUCTS)
    text = LONG_NAME_HEAD + filler
    assert len(text) >= 300
    return text[:300]


def store_c12() -> None:
    """Headings with a line break / tab; data rows 2..31; C12 text "12\\npcs" in row 12, a 300-char name in row 20."""
    rng = random.Random(2024120412)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["SKU", "Item\nName", "Stock\non hand", "Sales\t30d"], bold=True)
    for column in range(1, 5):
        ws.cell(row=1, column=column).alignment = Alignment(wrap_text=True)
    for i in range(30):
        row = 2 + i
        name = long_name() if row == 20 else product(i)[0]
        sales: int | str = "12\npcs" if row == 12 else rng.randint(0, 250)
        put_row(ws, row, [sku(12001 + i), name, rng.randint(0, 400), sales])
    save(wb, "STORE-C12_stock_20241204.xlsx")


def store_c13() -> None:
    """A "Cover" sheet first (title and a logo-like text, no table), the table on the second sheet "Stok"."""
    rng = random.Random(2024120413)
    wb, cover = new_book("Cover")
    cover["A1"] = "\u25c6 SUMBER MAKMUR \u25c6"
    cover["A1"].font = Font(bold=True, size=24)
    cover["A3"] = "Laporan Stok Toko"
    cover["A4"] = "Periode: 2024-12-04"
    ws = wb.create_sheet("Stok")
    put_row(ws, 1, ["SKU", "Description", "SOH", "Qty Sold"], bold=True)
    for i in range(10):
        put_row(ws, 2 + i, [sku(13001 + i), product(i + 20)[0], rng.randint(0, 400), rng.randint(0, 250)])
    save(wb, "STORE-C13_stock_20241204.xlsx")


# ---- STORE-C14: hand-written, LibreOffice-like XML ----------------------------------------------------

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

C14_CONTENT_TYPES = (
    XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
C14_ROOT_RELS = (
    XML_DECL + f'<Relationships xmlns="{NS_PKG_REL}">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    "</Relationships>"
)
C14_WORKBOOK = (
    XML_DECL + f'<workbook xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">'
    '<fileVersion appName="Calc"/>'
    '<workbookPr backupFile="false" showObjects="all" date1904="false"/>'
    '<bookViews><workbookView activeTab="0"/></bookViews>'
    '<sheets><sheet name="Sheet1" sheetId="1" state="visible" r:id="rId2"/></sheets>'
    '<calcPr iterateCount="100" refMode="A1" iterate="false" iterateDelta="0.001"/>'
    "</workbook>"
)
C14_WORKBOOK_RELS = (
    XML_DECL + f'<Relationships xmlns="{NS_PKG_REL}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId3" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/>'
    "</Relationships>"
)
C14_STYLES = (
    XML_DECL + f'<styleSheet xmlns="{NS_MAIN}">'
    '<fonts count="1"><font><sz val="10"/><name val="Arial"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Default" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# Shared strings: index 0 keeps its trailing spaces under xml:space="preserve"; index 1 is plain.
C14_SHARED_STRINGS = (
    XML_DECL + f'<sst xmlns="{NS_MAIN}" count="2" uniqueCount="2">'
    '<si><t xml:space="preserve">SKU-00002   </t></si>'
    "<si><t>Minyak Goreng 2L</t></si>"
    "</sst>"
)
C14_ROWS = [
    # Row 1, the header: inline strings, no xml:space.
    '<row r="1">'
    '<c r="A1" s="0" t="inlineStr"><is><t>SKU</t></is></c>'
    '<c r="B1" s="0" t="inlineStr"><is><t>Description</t></is></c>'
    '<c r="C1" s="0" t="inlineStr"><is><t>SOH</t></is></c>'
    '<c r="D1" s="0" t="inlineStr"><is><t>Qty Sold</t></is></c>'
    "</row>",
    # Row 2: A2 padded both sides under xml:space="preserve"; numbers with an explicit t="n".
    '<row r="2">'
    '<c r="A2" s="0" t="inlineStr"><is><t xml:space="preserve">  SKU-00001  </t></is></c>'
    '<c r="B2" s="0" t="inlineStr"><is><t>Beras Premium 5kg</t></is></c>'
    '<c r="C2" s="0" t="n"><v>24</v></c>'
    '<c r="D2" s="0" t="n"><v>10</v></c>'
    "</row>",
    # Row 3: A3 and B3 are shared strings (0: "SKU-00002   ", 1: "Minyak Goreng 2L").
    '<row r="3">'
    '<c r="A3" s="0" t="s"><v>0</v></c>'
    '<c r="B3" s="0" t="s"><v>1</v></c>'
    '<c r="C3" s="0" t="n"><v>36</v></c>'
    '<c r="D3" s="0" t="n"><v>12</v></c>'
    "</row>",
    # Row 4: the row has r, its cells do not.
    '<row r="4">'
    '<c s="0" t="inlineStr"><is><t>SKU-00003</t></is></c>'
    '<c s="0" t="inlineStr"><is><t xml:space="preserve"> Gula Pasir 1kg</t></is></c>'
    '<c s="0" t="n"><v>0</v></c>'
    '<c s="0" t="n"><v>5</v></c>'
    "</row>",
    # Row 5: B5 padded at the end under xml:space="preserve"; numbers without t.
    '<row r="5">'
    '<c r="A5" s="0" t="inlineStr"><is><t>SKU-00004</t></is></c>'
    '<c r="B5" s="0" t="inlineStr"><is><t xml:space="preserve">Tepung Terigu 1kg  </t></is></c>'
    '<c r="C5" s="0"><v>150</v></c>'
    '<c r="D5" s="0"><v>48</v></c>'
    "</row>",
    # Row 6: A6 is a formula string cell (t="str") whose cached value is the SKU.
    '<row r="6">'
    '<c r="A6" s="0" t="str"><f>"SKU-"&amp;TEXT(5,"00000")</f><v>SKU-00005</v></c>'
    '<c r="B6" s="0" t="inlineStr"><is><t>Kecap Manis 520ml</t></is></c>'
    '<c r="C6" s="0" t="n"><v>7.5</v></c>'
    '<c r="D6" s="0" t="n"><v>3</v></c>'
    "</row>",
    # Row 7: cells without r again.
    '<row r="7">'
    '<c s="0" t="inlineStr"><is><t>SKU-00006</t></is></c>'
    '<c s="0" t="inlineStr"><is><t>Sabun Mandi 85g</t></is></c>'
    '<c s="0" t="n"><v>88</v></c>'
    '<c s="0" t="n"><v>41</v></c>'
    "</row>",
]
C14_SHEET = (
    XML_DECL + f'<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">'
    '<sheetPr filterMode="false"><pageSetUpPr fitToPage="false"/></sheetPr>'
    '<dimension ref="A1:D7"/>'
    '<sheetViews><sheetView showFormulas="false" showGridLines="true" tabSelected="true" workbookViewId="0">'
    '<selection activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
    '<sheetFormatPr defaultRowHeight="12.8" zeroHeight="false" outlineLevelRow="0" outlineLevelCol="0"/>'
    "<sheetData>" + "".join(C14_ROWS) + "</sheetData>"
    '<pageMargins left="0.7875" right="0.7875" top="1.05277777777778" bottom="1.05277777777778" '
    'header="0.7875" footer="0.7875"/>'
    "</worksheet>"
)


def store_c14() -> None:
    parts = {
        "[Content_Types].xml": C14_CONTENT_TYPES,
        "_rels/.rels": C14_ROOT_RELS,
        "xl/workbook.xml": C14_WORKBOOK,
        "xl/_rels/workbook.xml.rels": C14_WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": C14_SHEET,
        "xl/sharedStrings.xml": C14_SHARED_STRINGS,
        "xl/styles.xml": C14_STYLES,
    }
    write_package(OUT / "STORE-C14_stock_20241204.xlsx", {name: xml.encode() for name, xml in parts.items()})


def store_c15() -> None:
    """The heading "SKU" twice: column A and column D (different codes), then Qty Sold in E."""
    rng = random.Random(2024120415)
    wb, ws = new_book("Stock")
    put_row(ws, 1, ["SKU", "Description", "SOH", "SKU", "Qty Sold"], bold=True)
    for i in range(10):
        put_row(
            ws,
            2 + i,
            [sku(15001 + i), product(i + 7)[0], rng.randint(0, 400), sku(91501 + i), rng.randint(0, 250)],
        )
    save(wb, "STORE-C15_stock_20241204.xlsx")


# ---- the purchase-order exports ------------------------------------------------------------------------

PO_HEADER = ["PO No", "SKU", "Order Qty", "Received Qty", "Supplier Code", "Supplier", "PO Date", "ETA", "Status"]


def po_c1() -> None:
    """Every PO Date and ETA a text cell, in many forms (day first where it is ambiguous)."""
    wb, ws = new_book("PO")
    put_row(ws, 1, PO_HEADER, bold=True)
    # (po number, sku, ordered, received, po date text, eta text, status)
    rows: list[tuple[str, int, int, int, str, str, str]] = [
        ("PO-241120-001", 1001, 120, 120, "2024-11-20", "2024-12-02", "Received"),
        ("PO-241120-001", 1002, 48, 30, "20241120", "2024-12-03", "Partial"),
        ("PO-241120-001", 1003, 60, 0, "45616", "13/12/2024", "Open"),
        ("PO-241120-002", 1004, 24, 0, "20 Nov 2024", "04/12/2024", "Open"),
        ("PO-241120-002", 1005, 36, 0, "Nov 20, 2024", "2024-02-30", "Open"),
        ("PO-241120-003", 1006, 200, 200, "20/11/2024", "2024-12-05", "Closed"),
        ("PO-241120-003", 1007, 90, 45, "2024-11-20T08:30:00", "2024-12-06", "Partial"),
        ("PO-241121-001", 1008, 144, 0, "2024-11-21", "2024-12-09", "Open"),
        ("PO-241122-001", 1009, 72, 0, "2024-11-22", "2024-12-10", "Cancelled"),
        ("PO-241125-001", 1010, 30, 0, "2024-11-25", "2024-12-11", "Open"),
    ]
    for i, (po_no, number, ordered, received, po_date, eta, status) in enumerate(rows):
        row = 2 + i
        put_row(ws, row, [po_no, sku(number), ordered, received, "SUP-C1", "CV Sinar Jaya Abadi"])
        put_text(ws, row, 7, po_date)
        put_text(ws, row, 8, eta)
        ws.cell(row=row, column=9, value=status)
    save(wb, "STORE-C01_po_SUP-C1_2024-12-04.xlsx")


def po_c2() -> None:
    """A US-made export: month-first date texts in rows 2..6, real date cells (mm/dd/yyyy) in rows 7..9."""
    wb, ws = new_book("Purchase Orders")
    put_row(ws, 1, PO_HEADER, bold=True)
    rows: list[tuple[str, int, int, int, str | date, str | date, str]] = [
        ("PO-10452", 2001, 100, 0, "11/20/2024", "12/04/2024", "Open"),
        ("PO-10452", 2002, 50, 50, "11/20/2024", "12/04/2024", "Received"),
        ("PO-10453", 2003, 75, 25, "11/21/2024", "12/13/2024", "Partial"),
        ("PO-10454", 2004, 40, 0, "11/05/2024", "12/06/2024", "Open"),
        ("PO-10455", 2005, 60, 0, "11/13/2024", "12/20/2024", "Open"),
        ("PO-10456", 2006, 120, 0, date(2024, 11, 22), date(2024, 12, 4), "Open"),
        ("PO-10457", 2007, 24, 24, date(2024, 11, 25), date(2024, 12, 9), "Closed"),
        ("PO-10458", 2008, 36, 0, date(2024, 11, 26), date(2024, 12, 10), "Open"),
    ]
    for i, (po_no, number, ordered, received, po_date, eta, status) in enumerate(rows):
        row = 2 + i
        put_row(ws, row, [po_no, sku(number), ordered, received, "SUP-C2", "Acme Supply Co."])
        for column, value in ((7, po_date), (8, eta)):
            if isinstance(value, str):
                put_text(ws, row, column, value)
            else:
                ws.cell(row=row, column=column, value=value).number_format = "mm/dd/yyyy"
        ws.cell(row=row, column=9, value=status)
    save(wb, "STORE-C02_po_SUP-C2_2024-12-04.xlsx")


def main(argv: list[str] | None = None) -> None:
    """Write every file into files/ (or ``--out``: the test that checks the committed files
    are what this script writes builds them elsewhere)."""
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    OUT = parser.parse_args(argv).out
    OUT.mkdir(parents=True, exist_ok=True)
    store_c01()
    store_c02()
    store_c03()
    store_c04()
    store_c05()
    store_c06()
    item_numbered("STORE-C07_stock_20241204.xlsx", 7001, 2024120407, 12)
    item_numbered("STORE-C08_stock_20241204.xlsx", 8001, 2024120408, 22)
    store_c09()
    store_c10()
    store_c11()
    store_c12()
    store_c13()
    store_c14()
    store_c15()
    po_c1()
    po_c2()


if __name__ == "__main__":
    main()
