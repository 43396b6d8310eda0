"""A whole day with the data root in a bucket (``AUTOPO_DATA_DIR=gs://…`` on the real GCS emulator).

Production workers share no disk: the day's state, parts, reference data and output CSVs live in
the bucket, reached through Airflow's ObjectStoragePath and the Google connection. The same store
files run once with a local root and once with the bucket root; the warehouse table and the
tracking rows come out the same, nothing is written to a local data folder or left in the temporary
folder, and a rerun finds every part in the bucket and reuses it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from dag_runs import query, run_day

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout
from gcs_emulator import gcs_emulator

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
STORES_BUCKET = "autopo-stores"
STORES_PREFIX = "uploads/stock"
DATA_BUCKET = "autopo-data"
DATA_PREFIX = "pipelines/prod"
PROJECT_CONFIGS = Path(__file__).resolve().parents[2] / "dags" / "configs"

SNAPSHOT = "SELECT * FROM stock_health_snapshots WHERE snapshot_date = %s ORDER BY store_id, sku"
# Every column but ids, times, run ids and where the part lives (a local folder or the bucket).
FILE_JOBS = """
    SELECT file_path, file_name, store_id, checksum, size_bytes, status, retry_count,
           rows_in, rows_out, rows_rejected, error, map_index
    FROM pipeline_file_jobs ORDER BY file_path
"""
RUNS = """
    SELECT pipeline_name, date, status, total_files, processed_files, failed_files, skipped_files,
           total_rows, rejected_rows, missing_stores, error
    FROM pipeline_runs ORDER BY pipeline_name, date
"""


def _without_loaded_at(rows: list[tuple[object, ...]], url: str) -> list[tuple[object, ...]]:
    columns = [
        c
        for (c,) in query(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'stock_health_snapshots' ORDER BY ordinal_position",
        )
    ]
    keep = [i for i, name in enumerate(columns) if name != "loaded_at"]
    return [tuple(row[i] for i in keep) for row in rows]


def _outcome(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    return _without_loaded_at(query(url, SNAPSHOT, (DATE,)), url), query(url, FILE_JOBS), query(url, RUNS)


def _clear_warehouse(url: str) -> None:
    """The local-root run's rows gone: the bucket-root run starts from the same empty warehouse."""
    with psycopg.connect(url) as conn:
        conn.execute(b"TRUNCATE stock_health_snapshots, snapshot_loads, pipeline_file_jobs, pipeline_runs, day_locks")


def test_a_day_with_its_data_root_in_a_bucket_matches_the_local_root_and_reruns_from_the_bucket(
    data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    sample = generate_sample_day(DataLayout(tmp_path / "uploads"), DATE, stores=4, skus=20)
    configs = gcs_source_configs(tmp_path / "configs", "stock_health", STORES_PREFIX, monkeypatch)

    with gcs_emulator(tmp_path / "gcs", monkeypatch) as (client, _server):
        stores = client.create_bucket(STORES_BUCKET)
        for path in sample.files:
            stores.blob(f"{STORES_PREFIX}/{path.name}").upload_from_filename(str(path))

        # The local root: the reference data in its folder.
        data_layout.reference().mkdir(parents=True)
        shutil.copyfile(sample.supplier_master, data_layout.reference() / "suppliers.csv")
        assert run_day("stock_health", DATE, configs).state == DagRunState.SUCCESS
        local = _outcome(clean_tables)
        assert sorted({row[1] for row in local[0]}) == sample.stores
        assert [row[5] for row in local[1]] == ["completed"] * 4
        _clear_warehouse(clean_tables)

        # The bucket root: the reference data uploaded there, and no local folder to write to.
        local_files = _files_under(data_layout.root)
        data = client.create_bucket(DATA_BUCKET)
        data.blob(f"{DATA_PREFIX}/reference/suppliers.csv").upload_from_filename(str(sample.supplier_master))
        monkeypatch.setenv("AUTOPO_DATA_DIR", f"gs://{DATA_BUCKET}/{DATA_PREFIX}")
        workdir = tmp_path / "workdir"
        workdir.mkdir()
        monkeypatch.chdir(workdir)  # where a relative local root ("data") would be made
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))

        assert run_day("stock_health", DATE, configs).state == DagRunState.SUCCESS
        in_bucket = _outcome(clean_tables)
        assert in_bucket == local

        assert _files_under(data_layout.root) == local_files  # the local root's folder: nothing new, nothing changed
        assert list(workdir.iterdir()) == []
        assert list(scratch.iterdir()) == []  # downloads, staged parts and CSVs went with their tasks
        names = {blob.name.removeprefix(f"{DATA_PREFIX}/") for blob in data.list_blobs(prefix=DATA_PREFIX)}
        stamp = DATE.strftime("%Y%m%d")
        assert {f"seeds/stock_health/{stamp}.csv", f"seeds/stock_health/{stamp}_rejects.csv"} <= names
        state = f"intermediate/stock_health/{stamp}/"
        for record in ("listing.json", "aggregate.json", "load.json", "loaded_parts.json"):
            assert state + record in names
        parts = sorted(n for n in names if n.startswith(state + "parts/") and n.endswith("/part.json"))
        assert len(parts) == 4
        paths = query(clean_tables, "SELECT intermediate_path FROM pipeline_file_jobs ORDER BY 1")
        assert all(
            str(p).startswith(f"gs://google_cloud_default@{DATA_BUCKET}/{DATA_PREFIX}/{state}parts/") for (p,) in paths
        )

        # A rerun: every file unchanged, its part read back from the bucket; the same snapshot.
        assert run_day("stock_health", DATE, configs).state == DagRunState.SUCCESS
        snapshot, jobs, runs = _outcome(clean_tables)
        assert snapshot == local[0]
        assert [row[5] for row in jobs] == ["skipped"] * 4
        assert [row[:5] + row[6:] for row in jobs] == [row[:5] + row[6:] for row in local[1]]
        # The same run row, its four files counted as skipped (reused) instead of processed.
        ((*head, processed, failed, skipped), *_) = [row[:7] for row in local[2]]
        assert (processed, failed, skipped) == (4, 0, 0)
        assert runs == [(*head, 0, 0, 4, *row[7:]) for row in local[2]]
        assert _files_under(data_layout.root) == local_files
        assert list(workdir.iterdir()) == []
        assert list(scratch.iterdir()) == []


def test_a_po_day_with_no_reference_data_runs_on_a_bucket_root_without_a_prefix(
    data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """po_snapshots reads no reference data (its inputs/ folder is empty, which a bucket does not
    keep), and the root is a whole bucket (its URL ends in a slash)."""
    from airflow.utils.state import DagRunState
    from openpyxl import Workbook

    configs = gcs_source_configs(tmp_path / "configs", "po_snapshots", "uploads/po", monkeypatch)
    export = tmp_path / "po_export_2024-12-04.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "PO Number",
            "Store",
            "SKU",
            "Supplier ID",
            "Supplier Name",
            "PO Date",
            "Expected Date",
            "Qty Ordered",
            "Qty Received",
            "Status",
        ]
    )
    sheet.append(["PO-1", "STORE-001", "A-1", "SUP-1", "PT Satu", "2024-11-01", "2024-12-10", 10, 4, "Open"])
    sheet.append(["PO-2", "STORE-002", "B-2", "SUP-2", "CV Dua", "2024-11-02", "2024-12-01", 5, 0, "Open"])
    workbook.save(export)

    with gcs_emulator(tmp_path / "gcs", monkeypatch) as (client, _server):
        client.create_bucket(STORES_BUCKET).blob(f"uploads/po/{export.name}").upload_from_filename(str(export))
        data = client.create_bucket(DATA_BUCKET)
        monkeypatch.setenv("AUTOPO_DATA_DIR", f"gs://{DATA_BUCKET}")
        assert run_day("po_snapshots", DATE, configs).state == DagRunState.SUCCESS
        lines = query(clean_tables, "SELECT po_number, qty_open FROM po_snapshots ORDER BY 1")
        assert [(po, float(qty)) for po, qty in lines] == [("PO-1", 6.0), ("PO-2", 5.0)]
        assert query(clean_tables, "SELECT status FROM pipeline_file_jobs") == [("completed",)]
        assert any(blob.name.startswith("seeds/po_snapshots/") for blob in data.list_blobs())
    assert not data_layout.root.exists()


def _files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def gcs_source_configs(configs: Path, pipeline: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The checkout's config of ``pipeline`` reading the emulator's store bucket at ``prefix``, where the
    DAGs look for configs."""
    configs.mkdir()
    config = (PROJECT_CONFIGS / f"{pipeline}.yaml").read_text(encoding="utf-8")
    source = f"source:\n  kind: gcs\n  bucket: {STORES_BUCKET}\n  prefix: {prefix}\n"
    (configs / f"{pipeline}.yaml").write_text(_with_source(config, source), encoding="utf-8")
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    # Without it gcsfs probes for a hierarchical-namespace bucket over gRPC, which the emulator does not speak.
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    return configs


def _with_source(config: str, source: str) -> str:
    """The checkout's config with its ``source:`` block replaced."""
    lines = config.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("source:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "\n", "#")), len(lines))
    return "".join(lines[:start]) + source + "".join(lines[end:])
