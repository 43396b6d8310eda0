"""No code of the project edits sys.path: the package, the plugin's package and the local stack are installed
(editable in development), so an import works the same in a test, a tool, a benchmark and Airflow.

Airflow itself puts dags/ and plugins/ on sys.path; pytest puts each test folder there (its rootdir-based
``prepend`` import mode), which is how tests import their helper modules (``airflow_env``, ``dag_runs``...).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "benchmarks", "tools", "include", "plugins", "dags")
# sys.path.insert(...), sys.path.append(...), sys.path[0:0] = ..., also with spaces or a line break after the dot.
PATH_EDIT = re.compile(r"\bsys\s*\.\s*path\s*(?:\.\s*(?:insert|append|extend)\b|\[)")
THIS_FILE = Path(__file__).resolve()


def python_files() -> list[Path]:
    return sorted(
        path
        for folder in SCANNED
        for path in (REPO_ROOT / folder).rglob("*.py")
        if not {"__pycache__", ".cache"} & set(path.parts) and path.resolve() != THIS_FILE
    )


def path_edits(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [
        f"{path.relative_to(REPO_ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for match in PATH_EDIT.finditer(text)
    ]


def test_no_file_edits_sys_path() -> None:
    offenders = [edit for path in python_files() for edit in path_edits(path)]
    assert not offenders, "sys.path edited (install the package instead):\n" + "\n".join(offenders)


def test_the_scan_sees_the_files_and_catches_each_form() -> None:
    scanned = {path.relative_to(REPO_ROOT).parts[0] for path in python_files()}
    assert scanned == set(SCANNED)
    for edit in (
        "sys.path.insert(0, 'x')",
        "sys.path.append('x')",
        "sys.path.extend(['x'])",
        "sys.path[:0] = ['x']",
        "sys .path. insert(0, 'x')",
    ):
        assert PATH_EDIT.search(edit), edit
    assert not PATH_EDIT.search("print(sys.path)")
    assert not PATH_EDIT.search("sys.pathname.insert(0, 'x')")
