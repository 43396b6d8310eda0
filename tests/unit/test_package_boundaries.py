"""Where the runtime package imports Airflow: only from orchestration/ and the sources built on the Google
provider's hooks (README, "Project layout"). That it never imports the local stack (tools/autopo_local) is
checked with the declared dependencies (test_declared_dependencies.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "autopo_pipelines"
# The provider hooks are the sources' way to a connection (credentials, endpoints); imported in the
# functions that connect, so the pure code of these modules is importable without Airflow.
MAY_IMPORT_AIRFLOW = ("orchestration/", "sources/gcs.py", "sources/gdrive.py")


def imported_top_levels(path: Path) -> dict[str, int]:
    """Top-level module names the file imports (at any depth), with the first line each is imported on."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def modules() -> list[tuple[str, dict[str, int]]]:
    return [(path.relative_to(PACKAGE).as_posix(), imported_top_levels(path)) for path in PACKAGE.rglob("*.py")]


def test_airflow_is_imported_only_by_orchestration_and_the_provider_sources() -> None:
    outside = [
        f"{name}:{imports['airflow']}"
        for name, imports in modules()
        if "airflow" in imports and not name.startswith(MAY_IMPORT_AIRFLOW)
    ]
    assert outside == []
    # The claim has content: those modules do import Airflow.
    assert {name for name, imports in modules() if "airflow" in imports} >= {"sources/gcs.py", "sources/gdrive.py"}
