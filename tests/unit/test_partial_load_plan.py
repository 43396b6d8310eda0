"""Which stores a rerun's load swaps in alone (outputs.partial_load_plan): those whose parts differ from
the date's last load, by part and by the inputs it was made with, when few enough changed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from autopo_pipelines.aggregate import Part
from autopo_pipelines.config import default_config_dir, load_config_file
from autopo_pipelines.day import Day
from autopo_pipelines.day.outputs import partial_load_plan
from autopo_pipelines.day.state import LoadedParts
from autopo_pipelines.layout import DataLayout

DATE = dt.date(2024, 12, 4)


def part(store: str, version: str = "a", inputs: str = "i1") -> Part:
    return Part(Path(f"/parts/{store}.{version}"), {"partition": store, "inputs": inputs})


def day_loaded_with(tmp_path: Path, parts: list[Part], rows: int | None = 100) -> Day:
    config = load_config_file(default_config_dir() / "stock_health.yaml")
    day = Day(config, DataLayout(tmp_path), DATE, "run-2")
    files = [{**p.meta, "part": str(p.directory)} for p in parts]
    day.state.save_loaded_parts(LoadedParts(run_id="run-1", aggregate_id="agg-1", files=files, baseline=[], rows=rows))
    return day


def test_the_changed_new_and_gone_stores_are_swapped_in_against_the_last_load(tmp_path: Path) -> None:
    loaded = [part(f"S{i}") for i in range(6)]
    day = day_loaded_with(tmp_path, loaded)
    now = [*loaded[:4], part("S4", "b"), part("S9")]  # S4 re-sent, S5 gone, S9 new
    plan = partial_load_plan(day, now)
    assert plan is not None
    assert (plan.partitions, plan.base_aggregate_id, plan.rows_before) == (["S4", "S5", "S9"], "agg-1", 100)
    unchanged = partial_load_plan(day, loaded)
    assert unchanged is not None and unchanged.partitions == []  # a rerun of the same files swaps in nothing


def test_the_whole_date_is_loaded_when_most_changed_or_the_last_load_is_unknown(tmp_path: Path) -> None:
    loaded = [part(f"S{i}") for i in range(4)]
    day = day_loaded_with(tmp_path / "a", loaded)
    # Other reference data: every part made again under the same directory, so every store changed.
    assert partial_load_plan(day, [part(f"S{i}", inputs="i2") for i in range(4)]) is None
    assert partial_load_plan(day, [*loaded[:1], *(part(f"S{i}", "b") for i in range(1, 4))]) is None
    # A load recorded before the rows were kept, and a part of no one store, say nothing about the table.
    assert partial_load_plan(day_loaded_with(tmp_path / "b", loaded, rows=None), loaded) is None
    mixed = Part(Path("/parts/x"), {"partition": None, "inputs": "i1"})
    assert partial_load_plan(day_loaded_with(tmp_path / "c", loaded), [*loaded, mixed]) is None
