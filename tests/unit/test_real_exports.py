"""The corpus of store exports (tests/corpus/exports): each file read as a day's run reads it,
against the outcome written down for it in expected.yaml.

A refused file's error is compared as the whole line a helpdesk sees, and so is every rejected
row's reason: a message nobody can act on is a change to this file that a reviewer reads.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from autopo_pipelines.config import PipelineConfig, load_config_file, load_transform, transform_settings
from autopo_pipelines.errors import InputFileError
from autopo_pipelines.pipelines import stock_health as sh
from autopo_pipelines.routing import normalise_store
from autopo_pipelines.transform import FileOutcome, transform_file

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "exports"
FILES = CORPUS / "files"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
DAY = dt.date(2024, 12, 4)


@cache
def config_of(pipeline: str) -> PipelineConfig:
    return load_config_file(CORPUS / "configs" / f"{pipeline}.yaml")


def no_day_inputs(pipeline: str) -> Any:
    """The day's reference data, empty: the corpus is about reading files, not suppliers or POs."""
    if pipeline != "stock_health":
        return None
    text = ("sku", "supplier_id", "supplier_name")
    suppliers = pd.DataFrame({c: pd.Series(dtype=object if c in text else "float64") for c in sh.SUPPLIER_COLUMNS})
    on_order = pd.DataFrame(
        {
            "store_id": pd.Series(dtype=object),
            "sku": pd.Series(dtype=object),
            "on_order_qty": pd.Series(dtype="float64"),
        }
    )
    return sh.StockDayInputs(suppliers=suppliers, on_order=on_order)


def read(name: str) -> FileOutcome:
    pipeline = EXPECTED[name]["pipeline"]
    config = config_of(pipeline)
    match = config.compiled_pattern.match(name)
    assert match is not None, f"{name} does not match {pipeline}'s file pattern"
    store = match.groupdict().get("store")
    return transform_file(
        FILES / name,
        config=config,
        definition=load_transform(config.transform),
        settings=transform_settings(config),
        day_inputs=no_day_inputs(pipeline),
        date=DAY,
        store_id=normalise_store(store) if store else None,
    )


def plain(value: Any) -> Any:
    """An output value as expected.yaml writes it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_every_corpus_file_has_a_written_outcome_and_every_outcome_a_file() -> None:
    assert sorted(path.name for path in FILES.glob("*.xlsx")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_its_written_outcome(name: str) -> None:
    expected = EXPECTED[name]
    if expected["outcome"] == "refused":
        with pytest.raises(InputFileError) as info:
            read(name)
        assert str(info.value) == expected["error"]
        assert "\n" not in str(info.value) and "\t" not in str(info.value)
        return
    assert expected["outcome"] == "loaded"
    outcome = read(name)
    assert {"in": outcome.rows_in, "out": len(outcome.rows), "rejected": outcome.rows_rejected} == expected["rows"]
    assert outcome.skipped.as_dict() == expected["skipped"]
    # Nothing lost: every data row below the header is an output row, a reject or a counted skip.
    assert outcome.rows_in == len(outcome.rows) + outcome.rows_rejected + outcome.skipped.count
    lines = [f"row {reject.row_number}: {reject.reason}" for reject in outcome.rejects.itertuples()]
    assert lines == expected["rejects"]
    assert all("\n" not in line and "\t" not in line for line in lines)
    pipeline = expected["pipeline"]
    rows = outcome.rows.to_dict("records")
    keyed = {row["sku"] if pipeline == "stock_health" else f"{row['po_number']} {row['sku']}": row for row in rows}
    assert len(keyed) == len(rows)
    for key, values in expected["values"].items():
        assert key in keyed, f"{name}: no output row {key!r}"
        assert {column: plain(keyed[key][column]) for column in values} == values, key


def test_the_corpus_files_are_what_build_py_writes(tmp_path: Path) -> None:
    # README.md describes the files by build.py's code: a file edited by hand, or a generator
    # changed without rebuilding, would make the description (and the outcomes) drift.
    subprocess.run([sys.executable, str(CORPUS / "build.py"), "--out", str(tmp_path)], check=True)
    built = {path.name: path.read_bytes() for path in tmp_path.glob("*.xlsx")}
    committed = {path.name: path.read_bytes() for path in FILES.glob("*.xlsx")}
    assert sorted(built) == sorted(committed)
    assert [name for name in built if built[name] != committed[name]] == []
