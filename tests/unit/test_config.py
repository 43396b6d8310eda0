"""Unit tests for autopo_pipelines.config: the real config loads, and every error names file and key."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import pytest

from autopo_pipelines.config import (
    TASKS_PER_POOL_SLOT,
    AirflowSettings,
    ConfigError,
    PipelineConfig,
    files_per_task_for,
    load_config_file,
    load_configs,
)
from autopo_pipelines.dates import business_date_at

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_CONFIG = REPO_ROOT / "dags" / "configs" / "stock_health.yaml"


@pytest.fixture(scope="module")
def real_text() -> str:
    return REAL_CONFIG.read_text(encoding="utf-8")


def write_variant(directory: Path, text: str, old: str, new: str, *, name: str = "stock_health") -> Path:
    """The real config with one exact edit, saved as <name>.yaml."""
    assert old in text, f"fixture edit does not apply: {old!r}"
    path = directory / f"{name}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    return info.value


def test_real_stock_health_config_loads_with_spec_values() -> None:
    config = load_config_file(REAL_CONFIG)
    assert isinstance(config, PipelineConfig)
    assert config.name == "stock_health"
    assert config.timezone == "Asia/Jakarta"
    assert config.max_reject_ratio == 0.05
    assert config.header_search_rows == 20
    assert config.numbers.decimal == "." and config.numbers.thousands == ","
    required = {name for name, spec in config.columns.items() if spec.required}
    assert required == {"sku", "stock_on_hand", "sales_qty"}
    assert config.columns["sku"].aliases == ["sku", "item_code", "kode_barang", "plu", "article", "barcode"]
    assert config.columns["sales_qty"].aliases == [
        "sales_qty",
        "sales_30d",
        "sales_qty_30d",
        "qty_sold",
        "penjualan_30_hari",
    ]
    assert config.settings == {
        "sales_window_days": 30,
        "safety_days": 7,
        "review_days": 7,
        "overstock_days": 90,
        "default_lead_time_days": 14,
        "supplier_master": "reference/suppliers.csv",
        "on_order_table": "po_snapshots",
    }
    assert "date" in config.compiled_pattern.groupindex
    assert "store" in config.compiled_pattern.groupindex


def test_business_date_is_taken_in_the_configured_timezone() -> None:
    config = load_config_file(REAL_CONFIG)
    # 18:00 UTC on Dec 3 is 01:00 on Dec 4 in Jakarta (UTC+7).
    assert business_date_at(config, dt.datetime(2024, 12, 3, 18, 0, tzinfo=dt.UTC)) == dt.date(2024, 12, 4)
    assert business_date_at(config, dt.datetime(2024, 12, 3, 16, 59, tzinfo=dt.UTC)) == dt.date(2024, 12, 3)


def test_misspelt_key_is_an_error_naming_file_and_key(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "max_reject_ratio: 0.05", "max_reject_ratoi: 0.05")
    error = load_error(path)
    assert error.key == "max_reject_ratoi"
    assert error.path == str(path)
    assert str(path) in str(error)
    assert "max_reject_ratoi" in str(error)


def test_misspelt_nested_key_names_the_full_key(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "  files_per_batch: 5", "  files_per_btach: 5")
    error = load_error(path)
    assert error.key == "aggregation.files_per_btach"
    assert str(path) in str(error)


def test_unknown_timezone_names_key_timezone(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "timezone: Asia/Jakarta", "timezone: Asia/Jakartaa")
    error = load_error(path)
    assert error.key == "timezone"
    assert str(path) in str(error)
    assert "Asia/Jakartaa" in str(error)


def test_file_pattern_without_date_group_names_key_file_pattern(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "(?P<date>", "(?P<day>")
    error = load_error(path)
    assert error.key == "file_pattern"
    assert "date" in error.message
    assert str(path) in str(error)


def test_file_pattern_that_is_not_a_regex_names_key_file_pattern(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "file_pattern: '(?P<store>", "file_pattern: '((?P<store>")
    error = load_error(path)
    assert error.key == "file_pattern"


def test_negative_transform_setting_names_settings_key(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "  safety_days: 7", "  safety_days: -1")
    error = load_error(path)
    assert error.key == "settings.safety_days"
    assert str(path) in str(error)
    assert "settings.safety_days" in str(error)


def test_misspelt_transform_setting_is_refused(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "  overstock_days: 90", "  overstock_dayz: 90")
    error = load_error(path)
    assert error.key == "settings.overstock_dayz"


def test_yaml_syntax_error_names_a_line(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "  files_per_batch: 5", "  files_per_batch: [5")
    line_of_edit = real_text.splitlines().index("  files_per_batch: 5") + 1
    error = load_error(path)
    assert error.key.startswith("line ")
    reported = int(error.key.split()[1])
    # The parser notices the problem on the edited line or the one after it.
    assert reported in (line_of_edit, line_of_edit + 1)
    assert str(path) in str(error)
    assert "YAML" in str(error)


def test_same_separators_for_decimal_and_thousands_is_refused(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, 'thousands: ","', 'thousands: "."')
    error = load_error(path)
    assert error.key == "numbers"


def test_unimportable_transform_names_key_transform(tmp_path: Path, real_text: str) -> None:
    path = write_variant(
        tmp_path,
        real_text,
        "transform: autopo_pipelines.pipelines.stock_health",
        "transform: autopo_pipelines.pipelines.nope",
    )
    error = load_error(path)
    assert error.key == "transform"


def test_name_must_match_the_file_name(tmp_path: Path, real_text: str) -> None:
    path = tmp_path / "stock_health_v2.yaml"
    path.write_text(real_text, encoding="utf-8")
    error = load_error(path)
    assert error.key == "name"
    assert "stock_health_v2" in str(error)
    assert str(path) in str(error)


def test_empty_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stock_health.yaml"
    path.write_text("", encoding="utf-8")
    error = load_error(path)
    assert error.path == str(path)


def test_transform_required_column_declared_optional_is_a_config_error(tmp_path: Path, real_text: str) -> None:
    path = write_variant(
        tmp_path, real_text, "  stock_on_hand:\n    required: true", "  stock_on_hand:\n    required: false"
    )
    error = load_error(path)
    assert error.key.startswith("columns")
    assert "stock_on_hand" in str(error)


def test_load_configs_reports_a_broken_file_without_hiding_the_good_one(tmp_path: Path, real_text: str) -> None:
    shutil.copy(REAL_CONFIG, tmp_path / "stock_health.yaml")
    broken = write_variant(
        tmp_path,
        real_text.replace("name: stock_health", "name: aaa_broken"),
        "max_reject_ratio: 0.05",
        "max_reject_ratoi: 0.05",
        name="aaa_broken",  # sorts first: a broken file before the good one must not stop the loop
    )
    (tmp_path / "notes.txt").write_text("not a config", encoding="utf-8")
    loaded = load_configs(tmp_path)
    assert list(loaded.configs) == ["stock_health"]
    assert loaded.configs["stock_health"].name == "stock_health"
    assert len(loaded.errors) == 1
    assert loaded.errors[0].path == str(broken)
    assert loaded.errors[0].key == "max_reject_ratoi"


def test_load_configs_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    loaded = load_configs(tmp_path)
    assert loaded.configs == {}
    assert loaded.errors == []


def test_files_per_task_defaults_to_one_file_per_mapped_task(tmp_path: Path, real_text: str) -> None:
    assert load_config_file(REAL_CONFIG).airflow.files_per_task == "auto"
    configs = load_configs(REAL_CONFIG.parent).configs
    assert {name: c.airflow.files_per_task for name, c in configs.items()} == {
        "stock_health": "auto",
        "po_snapshots": 1,
    }
    unset = write_variant(tmp_path, real_text, "  files_per_task: auto\n", "")
    assert load_config_file(unset).airflow.files_per_task == 1
    several = write_variant(tmp_path, real_text, "  files_per_task: auto\n", "  files_per_task: 25\n")
    assert load_config_file(several).airflow.files_per_task == 25


@pytest.mark.parametrize(
    ("files", "pool_size", "expected"),
    [(0, 4, 1), (1, 4, 1), (8, 4, 1), (9, 4, 2), (32, 4, 4), (40, 4, 5), (41, 4, 6), (40, 1, 20), (1000, 4, 125)],
)
def test_auto_files_per_task_keeps_two_tasks_a_pool_slot(files: int, pool_size: int, expected: int) -> None:
    settings = AirflowSettings(files_per_task="auto", pool_size=pool_size)
    assert files_per_task_for(settings, files) == expected
    assert files_per_task_for(AirflowSettings(files_per_task=3, pool_size=pool_size), files) == 3
    if files:
        tasks = math.ceil(files / expected)
        assert tasks <= TASKS_PER_POOL_SLOT * pool_size
        # Never one task more than needed: a smaller batch would make more tasks than two a slot.
        assert expected == 1 or math.ceil(files / (expected - 1)) > TASKS_PER_POOL_SLOT * pool_size


@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_files_per_task_below_one_or_not_a_whole_number_names_the_key(
    tmp_path: Path, real_text: str, value: str
) -> None:
    path = write_variant(tmp_path, real_text, "  files_per_task: auto\n", f"  files_per_task: {value}\n")
    error = load_error(path)
    assert error.key == "airflow.files_per_task"
    assert str(path) in str(error)


# --- per-store reading settings (overrides) --------------------------------------------------

OVERRIDES_AFTER = "max_reject_ratio: 0.05\n"


def with_overrides(directory: Path, text: str, overrides: str) -> Path:
    return write_variant(directory, text, OVERRIDES_AFTER, OVERRIDES_AFTER + "overrides:\n" + overrides)


def test_the_first_matching_override_applies_over_the_pipeline_settings(tmp_path: Path, real_text: str) -> None:
    path = with_overrides(
        tmp_path,
        real_text,
        "  - stores: [store-003]\n"
        "    numbers: {decimal: ',', thousands: '.'}\n"
        "    columns: {sku: {column: b}, stock_on_hand: {aliases: [qty_akhir]}}\n"
        "  - files: '_stock_2024'\n"
        "    sheet: Stok\n"
        "    dates: {order: month_first}\n",
    )
    config = load_config_file(path)
    indonesian = config.reading_for("STORE-003_stock_20241204.xlsx", "STORE-003")
    assert indonesian.override == 0
    assert (indonesian.numbers.decimal, indonesian.numbers.thousands) == (",", ".")
    assert indonesian.pins == {"sku": 1}
    assert indonesian.columns["stock_on_hand"].aliases == ["qty_akhir"]
    assert indonesian.columns["stock_on_hand"].required  # only the aliases are replaced
    assert indonesian.sheet is None and indonesian.dates.order is None  # the first match only
    other = config.reading_for("STORE-004_stock_20241204.xlsx", "STORE-004")
    assert (other.override, other.sheet, other.dates.order, other.pins) == (1, "Stok", "month_first", {})
    assert other.numbers == config.numbers
    neither = config.reading_for("STORE-004 stock 2023-01-01.xlsx", "STORE-004")
    assert neither.override is None and neither.columns == config.columns


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ("  - sheet: Stok\n", "overrides.0", "say which files it is for: stores, files or both"),
        ("  - stores: [S1]\n    columns: {skus: {column: B}}\n", "overrides.0.columns.skus", "not a column"),
        ("  - stores: [S1]\n    columns: {sku: {column: '1'}}\n", "overrides.0.columns.sku.column", "column letter"),
        ("  - stores: [S1]\n    columns: {sku: {column: B, aliases: [x]}}\n", "overrides.0.columns.sku", "either"),
        ("  - files: '('\n", "overrides.0.files", "not a valid regular expression"),
        (
            "  - stores: [S1]\n    columns: {sku: {column: B}, sales_qty: {column: b}}\n",
            "overrides.0.columns",
            "column B is pinned to two fields",
        ),
        (
            "  - stores: [S1]\n    columns: {product_name: {aliases: [soh]}}\n",
            "overrides.0.columns",
            "alias 'soh' is given for both",
        ),
    ],
)
def test_a_wrong_override_is_an_error_naming_its_key(
    tmp_path: Path, real_text: str, overrides: str, key: str, message: str
) -> None:
    error = load_error(with_overrides(tmp_path, real_text, overrides))
    assert error.key == key
    assert message in error.message


def test_an_alias_of_two_fields_is_a_config_error(tmp_path: Path, real_text: str) -> None:
    path = write_variant(tmp_path, real_text, "aliases: [unit_cost, cost, hpp]", "aliases: [unit_cost, cost, hpp, SOH]")
    error = load_error(path)
    assert error.key == "columns"
    assert "alias 'SOH' is given for both stock_on_hand and unit_cost" in error.message


def test_an_override_of_some_number_keys_keeps_the_pipelines_other_keys(tmp_path: Path, real_text: str) -> None:
    text = real_text.replace('  thousands: ","\n', '  thousands: ","\n  currency_marks: [Ks]\n', 1)
    path = with_overrides(tmp_path, text, "  - stores: [S1]\n    numbers: {decimal: ',', thousands: '.'}\n")
    reading = load_config_file(path).reading_for("S1_stock_20241204.xlsx", "S1")
    assert (reading.numbers.decimal, reading.numbers.thousands, reading.numbers.currency_marks) == (",", ".", ["Ks"])


def test_a_pipelines_queue_defaults_to_its_name_and_must_be_a_plain_name(tmp_path: Path) -> None:
    from autopo_pipelines.config import AirflowSettings

    assert AirflowSettings().queue is None
    assert AirflowSettings(queue="stock_health-high").queue == "stock_health-high"
    with pytest.raises(ValueError, match="queue"):
        AirflowSettings(queue="two queues")
