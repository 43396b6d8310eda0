"""A realistic sample day: store stock reports and PO exports as they really arrive, and a supplier master.

Used by ``make demo`` and by tests that need a plausible day. Deterministic for
a given seed, so two demo runs load the same table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout

CATEGORIES = ["Beverages", "Snacks", "Dairy", "Household", "Personal Care", "Frozen", "Bakery", "Rice & Grains"]
PRODUCTS = [
    "Teh Botol",
    "Indomie Goreng",
    "Susu UHT",
    "Sabun Cair",
    "Kopi Sachet",
    "Roti Tawar",
    "Beras 5kg",
    "Air Mineral",
    "Keripik",
    "Minyak Goreng",
]
SUPPLIERS = [
    ("SUP-01", "PT Sumber Makmur"),
    ("SUP-02", "CV Jaya Abadi"),
    ("SUP-03", "PT Segar Sentosa"),
    ("SUP-04", "PT Nusantara Distribusi"),
]

# The header sets stores really use (spec aliases), so every day exercises them.
HEADER_STYLES = [
    ["SKU", "Product Name", "Category", "Stock On Hand", "Sales Qty", "Unit Cost", "Store ID"],
    ["Kode Barang", "Nama Barang", "Kategori", "Stok", "Penjualan 30 Hari", "HPP", "Kode Toko"],
    ["Item Code", "Item Name", "Dept", "SOH", "Sales 30D", "Cost", "Store"],
    ["PLU", "Description", "Department", "Qty On Hand", "Qty Sold", "Unit Cost", "Toko"],
]


@dataclass(frozen=True)
class SampleDay:
    date: dt.date
    stores: list[str]
    files: list[Path]
    supplier_master: Path
    po_files: list[Path]


def _sku(index: int) -> str:
    return f"{100000 + index * 7}"


def write_supplier_master(path: Path, skus: list[str], rng: random.Random) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["sku,supplier_id,supplier_name,lead_time_days,moq,pack_size"]
    for sku in skus:
        if rng.random() < 0.08:
            continue  # not every SKU has a supplier on file: those take the defaults
        supplier_id, supplier_name = rng.choice(SUPPLIERS)
        lead_time, moq, pack_size = (
            rng.choice([3, 5, 7, 14, 21]),
            rng.choice([0, 0, 12, 24, 48]),
            rng.choice([1, 6, 12, 24]),
        )
        lines.append(f"{sku},{supplier_id},{supplier_name},{lead_time},{moq},{pack_size}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_store_file(path: Path, store: str, date: dt.date, skus: list[str], rng: random.Random, style: int) -> Path:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Stock")
    headers = HEADER_STYLES[style % len(HEADER_STYLES)]
    if style % 2:
        # Exports from the POS put a title and an export date above the header.
        sheet.append([f"Laporan Stok {store}"])
        sheet.append([f"Tanggal: {date.isoformat()}"])
        sheet.append([])
    sheet.append(headers)
    for index, sku in enumerate(skus):
        velocity = rng.choice([0, 0.5, 2, 5, 12, 30])
        sales = round(velocity * 30 * rng.uniform(0.6, 1.4))
        stock = max(0, round(velocity * rng.uniform(0, 120))) if rng.random() > 0.03 else -rng.randint(1, 5)
        cost = round(rng.uniform(2_000, 90_000), -2)
        name = f"{PRODUCTS[index % len(PRODUCTS)]} {index}"
        category = CATEGORIES[index % len(CATEGORIES)]
        stock_cell: object = f"{stock:,}" if style == 2 and stock > 999 else stock
        sheet.append([sku, name, category, stock_cell, sales, cost, store])
    if style % 3 == 0:
        sheet.append([None, "TOTAL", None, None, None, None, None])
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def generate_sample_day(
    layout: DataLayout, date: dt.date, *, stores: int = 32, skus: int = 300, seed: int = 20241204
) -> SampleDay:
    rng = random.Random(seed)
    catalogue = [_sku(i) for i in range(skus)]
    master = write_supplier_master(layout.reference() / "suppliers.csv", catalogue, rng)
    inbox = layout.inbox("stock_health")
    names = [f"STORE-{n:03d}" for n in range(1, stores + 1)]
    files = []
    for number, store in enumerate(names):
        assortment = sorted(rng.sample(catalogue, k=int(skus * rng.uniform(0.7, 1.0))), key=catalogue.index)
        name = f"{store}_stock_{date:%Y%m%d}.xlsx" if number % 4 else f"{store} stock health {date.isoformat()}.xlsx"
        files.append(write_store_file(inbox / name, store, date, assortment, rng, style=number))
    po_files = write_po_exports(layout.inbox("po_snapshots"), date, names, catalogue, random.Random(seed + 1))
    return SampleDay(date=date, stores=names, files=files, supplier_master=master, po_files=po_files)


PO_STATUSES = ["Open", "Open", "Partial", "Dibuka", "Closed", "Selesai", "Batal", "Cancelled"]


def _date_cell(day: dt.date, style: int) -> object:
    """Dates as PO exports really carry them: date cells, text in both orders, serial numbers."""
    if style == 0:
        return day
    if style == 1:
        return day.isoformat()
    if style == 2:
        return day.strftime("%d/%m/%Y")
    return (day - dt.date(1899, 12, 30)).days


def write_po_exports(inbox: Path, date: dt.date, stores: list[str], skus: list[str], rng: random.Random) -> list[Path]:
    """The purchasing team's exports for a day: one consolidated export, one supplier's own export
    repeating some of its lines (split deliveries), and one store's export without a store column."""
    inbox.mkdir(parents=True, exist_ok=True)
    header = ["PO No", "Toko", "Kode Barang", "Supplier Code", "Supplier", "PO Date", "ETA", "Qty PO", "Qty Terima"]
    consolidated: list[list[object]] = []
    for number in range(1, 121):
        po = f"PO-{date:%y%m}-{number:04d}"
        store = rng.choice(stores)
        supplier_id, supplier_name = rng.choice(SUPPLIERS)
        ordered_on = date - dt.timedelta(days=rng.randint(3, 40))
        eta = ordered_on + dt.timedelta(days=rng.choice([5, 7, 14, 21]))
        for sku in rng.sample(skus, k=rng.randint(1, 4)):
            ordered = rng.choice([12, 24, 48, 96, 144])
            status = rng.choice(PO_STATUSES)
            received: object = None
            if status in ("Partial",):
                received = ordered // 2
            elif status in ("Closed", "Selesai"):
                received = ordered
            style = number % 4
            consolidated.append(
                [po, store, sku, supplier_id, supplier_name, _date_cell(ordered_on, style), _date_cell(eta, style),
                 ordered, received, status]
            )  # fmt: skip
    paths = [_write_po_sheet(inbox / f"po_snapshot_{date:%Y%m%d}.xlsx", [*header, "Status"], consolidated, date)]
    # SUP-02 sends its own export: some lines again (a second delivery split), summed with the consolidated ones.
    supplier_lines = [row for row in consolidated if row[3] == "SUP-02"][::3]
    repeated = [[*row[:7], rng.choice([6, 12]), None, "Open"] for row in supplier_lines]
    paths.append(
        _write_po_sheet(inbox / f"PO export SUP-02 {date.isoformat()}.xlsx", [*header, "PO Status"], repeated, date)
    )
    store = stores[min(2, len(stores) - 1)]
    store_lines = [
        [f"PO-{date:%y%m}-9{n:03d}", sku, "SUP-01", "PT Sumber Makmur", _date_cell(date - dt.timedelta(days=20), 2),
         _date_cell(date - dt.timedelta(days=n % 9), 1), 24, n % 3 * 6 or None, "Open"]
        for n, sku in enumerate(rng.sample(skus, k=min(30, len(skus))))
    ]  # fmt: skip
    store_header = [
        "No PO",
        "PLU",
        "Vendor Code",
        "Vendor",
        "Order Date",
        "Delivery Date",
        "Order Qty",
        "Received Qty",
        "Status",
    ]
    paths.append(_write_po_sheet(inbox / f"{store} PO {date.isoformat()}.xlsx", store_header, store_lines, date))
    return paths


def _write_po_sheet(path: Path, header: list[str], rows: list[list[object]], date: dt.date) -> Path:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("PO")
    sheet.append([f"Outstanding PO per {date.isoformat()}"])
    sheet.append([])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a realistic sample day under the data root.")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2024, 12, 4))
    parser.add_argument("--stores", type=int, default=32)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--data", type=Path, default=None, help="data root (default: $AUTOPO_DATA_DIR or ./data)")
    args = parser.parse_args(argv)
    layout = DataLayout(args.data.resolve()) if args.data else DataLayout.from_env()
    day = generate_sample_day(layout, args.date, stores=args.stores, skus=args.skus)
    print(f"sample day {day.date}: {len(day.files)} store files in {layout.inbox('stock_health')}")
    print(f"PO exports: {len(day.po_files)} in {layout.inbox('po_snapshots')}")
    print(f"supplier master: {day.supplier_master}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
