"""The same day through the real stock_health DAG (dag.test) from each kind of source, into PostgreSQL.

The store files are uploaded where the source is (a local inbox folder, a GCS
bucket prefix on a real emulator, a Drive folder on a local server speaking the
Drive v3 calls, one of its files a Google Sheet and the listing longer than a
page); the config only says which source. A rerun finds every file unchanged by
the source's own checksum and reuses its part.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from dag_runs import query, run_day

from autopo_local.sample_day import generate_sample_day
from autopo_pipelines.layout import DataLayout
from drive_server import FakeDrive, drive_connection, drive_server
from gcs_emulator import gcs_emulator

pytestmark = pytest.mark.integration

DATE = dt.date(2024, 12, 4)
BUCKET = "autopo-stores"
PREFIX = "uploads/stock"
# The checkout's configs (the tests point AUTOPO_CONFIG_DIR at their own copies).
PROJECT_CONFIGS = Path(__file__).resolve().parents[2] / "dags" / "configs"


def write_config(configs: Path, source: dict[str, str]) -> Path:
    raw = yaml.safe_load((PROJECT_CONFIGS / "stock_health.yaml").read_text(encoding="utf-8"))
    raw["source"] = source
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "stock_health.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return configs


@pytest.mark.parametrize("kind", ["local", "gcs", "gdrive"])
def test_a_day_from_each_source_loads_and_a_rerun_reuses_unchanged_files(
    kind: str, data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    sample = generate_sample_day(DataLayout(tmp_path / "uploads"), DATE, stores=4, skus=20)
    data_layout.reference().mkdir(parents=True)
    shutil.copyfile(sample.supplier_master, data_layout.reference() / "suppliers.csv")
    configs = tmp_path / "configs"
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))

    def run_and_check(expected_status: str) -> None:
        assert run_day("stock_health", DATE, configs).state == DagRunState.SUCCESS
        stores = query(
            clean_tables,
            "SELECT store_id, count(*) FROM stock_health_snapshots WHERE snapshot_date = %s GROUP BY 1 ORDER BY 1",
            (DATE,),
        )
        assert [s for s, _ in stores] == sample.stores
        statuses = query(clean_tables, "SELECT status, count(*) FROM pipeline_file_jobs GROUP BY 1")
        assert statuses == [(expected_status, 4)]

    if kind == "local":
        write_config(configs, {"kind": "local"})
        inbox = data_layout.inbox("stock_health")
        inbox.mkdir(parents=True)
        for path in sample.files:
            shutil.copyfile(path, inbox / path.name)
        run_and_check("completed")
        run_and_check("skipped")
        return

    if kind == "gdrive":
        # Two files a page: the listing takes three requests. The last store keeps its report as a Sheet.
        fake = FakeDrive(max_page_size=2)
        folder = fake.add_folder("stock uploads")
        *files, sheet = sample.files
        for path in files:
            fake.add_file(folder, path.name, path.read_bytes())
        fake.add_sheet(folder, sheet.name.removesuffix(".xlsx"), sheet.read_bytes())
        with drive_server(fake) as root:
            monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", drive_connection(root))
            write_config(configs, {"kind": "gdrive", "folder_id": folder})
            run_and_check("completed")
            run_and_check("skipped")
        # The listing went past the first page (a request carried the previous page's token).
        assert any("pageToken" in request for request in fake.list_requests())
        return

    with gcs_emulator(tmp_path / "gcs", monkeypatch) as (client, _server):
        bucket = client.create_bucket(BUCKET)
        for path in sample.files:
            bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))
        write_config(configs, {"kind": "gcs", "bucket": BUCKET, "prefix": PREFIX})
        run_and_check("completed")
        # Nothing is downloaded twice to tell that: the blobs' md5 match the parts' checksums.
        run_and_check("skipped")
        locations = query(clean_tables, "SELECT file_path FROM pipeline_file_jobs ORDER BY 1")
        assert locations == [(f"gs://{BUCKET}/{PREFIX}/{p.name}",) for p in sorted(sample.files, key=lambda p: p.name)]


def test_a_missing_bucket_fails_the_sensor_at_once_with_a_clear_error(
    data_layout: DataLayout, clean_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    configs = tmp_path / "configs"
    monkeypatch.setenv("AUTOPO_CONFIG_DIR", str(configs))
    with gcs_emulator(tmp_path / "gcs", monkeypatch):
        write_config(configs, {"kind": "gcs", "bucket": "no-such-bucket", "prefix": PREFIX})
        assert run_day("stock_health", DATE, configs).state == DagRunState.FAILED
    ((status, error),) = query(clean_tables, "SELECT status, error FROM pipeline_runs")
    assert status == "failed"
    assert error == "bucket 'no-such-bucket' does not exist; check source.bucket in the config"
