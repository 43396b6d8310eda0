"""Every source file is its own: files whose names sanitise alike, and names too long for a file system,
each load their own rows and get their own tracking row (issue: "Lose nothing", items 1 and 3)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from dag_runs import query, run_day
from openpyxl import Workbook

from autopo_pipelines.layout import DataLayout

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
HEADER = ["PO No.", "Toko", "Kode Barang", "Qty PO", "Qty Terima", "Status"]


def write_po_export(path: Path, prefix: str, lines: int, quantity: int) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for n in range(1, lines + 1):
        sheet.append([f"{prefix}-{n}", "STORE-001", f"SKU-{n}", quantity, 0, "Open"])
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    os.utime(path, (1733270400 + lines, 1733270400 + lines))


def test_files_whose_names_sanitise_alike_each_load_their_own_lines(data_layout: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    inbox = data_layout.inbox("po_snapshots")
    # Both sanitise to TOKO_A_B_PO_2024-12-04.xlsx; before file identity keys, the second file's part was
    # collected twice: 10 lines of A&B with doubled quantities, no A+B line, and the run "completed".
    write_po_export(inbox / "TOKO A&B PO 2024-12-04.xlsx", "AB", lines=10, quantity=3)
    write_po_export(inbox / "TOKO A+B PO 2024-12-04.xlsx", "APB", lines=6, quantity=5)

    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS

    loaded = query(clean_tables, "SELECT left(po_number, 3), count(*), sum(qty_ordered) FROM po_snapshots GROUP BY 1")
    assert sorted((prefix.rstrip("-"), n, float(total)) for prefix, n, total in loaded) == [
        ("AB", 10, 30.0),
        ("APB", 6, 30.0),
    ]
    jobs = query(clean_tables, "SELECT file_name, status, rows_out, checksum FROM pipeline_file_jobs ORDER BY 1")
    assert [(name, status, rows) for name, status, rows, _ in jobs] == [
        ("TOKO A&B PO 2024-12-04.xlsx", "completed", 10),
        ("TOKO A+B PO 2024-12-04.xlsx", "completed", 6),
    ]
    assert jobs[0][3] != jobs[1][3]
    assert query(clean_tables, "SELECT status, total_rows FROM pipeline_runs") == [("completed", 16)]
    # Each file has its own result, part and download, under its source identity.
    intermediate = data_layout.intermediate("po_snapshots", DATE)
    assert len(list((intermediate / "results").glob("*.json"))) == 2
    assert len(list((intermediate / "parts").iterdir())) == 2


def test_a_name_as_long_as_the_file_system_allows_is_processed(data_layout: DataLayout, clean_tables: str) -> None:
    from airflow.utils.state import DagRunState

    # 235 characters: with the suffixes of our own files (result, part, download) it was "File name too
    # long", taken for a passing fault and retried three times.
    name = "TOKO " + "X" * (235 - len("TOKO  PO 2024-12-04.xlsx")) + " PO 2024-12-04.xlsx"
    assert len(name) == 235
    write_po_export(data_layout.inbox("po_snapshots") / name, "LONG", lines=4, quantity=2)

    assert run_day("po_snapshots", DATE).state == DagRunState.SUCCESS

    assert query(clean_tables, "SELECT count(*) FROM po_snapshots") == [(4,)]
    assert query(clean_tables, "SELECT file_name, status, retry_count FROM pipeline_file_jobs") == [
        (name, "completed", 0)
    ]


def test_drive_files_of_one_name_and_a_sheet_of_that_name_are_three_files(
    data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drive allows one name for several files, and a Sheet "X" is exported as "X.xlsx": each its own."""
    import yaml
    from airflow.utils.state import DagRunState

    from drive_server import FakeDrive, drive_connection, drive_server

    name = "PO export 2024-12-04.xlsx"  # no store: the files are separate parts of the day
    exports = []
    for prefix, lines in (("ONE", 3), ("TWO", 2), ("SHEET", 4)):
        write_po_export(tmp_path / prefix / name, prefix, lines=lines, quantity=1)
        exports.append((tmp_path / prefix / name).read_bytes())
    fake = FakeDrive()
    folder = fake.add_folder("po uploads")
    fake.add_file(folder, name, exports[0])
    fake.add_file(folder, name, exports[1])
    fake.add_sheet(folder, name.removesuffix(".xlsx"), exports[2])
    configs = tmp_path / "configs"
    configs.mkdir()
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "dags/configs/po_snapshots.yaml").read_text())
    raw["source"] = {"kind": "gdrive", "folder_id": folder}
    (configs / "po_snapshots.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))

    with drive_server(fake) as root:
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", drive_connection(root))
        assert run_day("po_snapshots", DATE, configs).state == DagRunState.SUCCESS

    loaded = query(
        clean_tables, "SELECT split_part(po_number, '-', 1), count(*) FROM po_snapshots GROUP BY 1 ORDER BY 1"
    )
    assert loaded == [("ONE", 3), ("SHEET", 4), ("TWO", 2)]
    jobs = query(clean_tables, "SELECT file_name, status, rows_out FROM pipeline_file_jobs ORDER BY rows_out")
    assert jobs == [(name, "completed", 2), (name, "completed", 3), (name, "completed", 4)]
