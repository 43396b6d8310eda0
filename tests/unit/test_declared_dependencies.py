"""pyproject.toml declares what the runtime code imports; requirements.txt pins it and nothing of development.

The runtime is what a production Airflow image gets from ``pip install .``: the package under
include/, the plugin under plugins/ and the DAG files under dags/. Their imports are read with
``ast`` (never executed, so Airflow is not imported) and each third-party module is mapped to the
installed distribution that ships it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
# Airflow puts plugins/ and dags/ on sys.path; include/ is the installed package.
RUNTIME_DIRS = ("include", "plugins", "dags")
# The local stack (tools/autopo_local, distribution autopo-local) is installed only in development.
DEV_PACKAGES = frozenset({"autopo_local"})
# Tools that must never reach a production image.
DEV_ONLY_DISTRIBUTIONS = frozenset(
    canonicalize_name(name)
    for name in ("pytest", "pytest-timeout", "ruff", "aiosmtpd", "gcp-storage-emulator", "pgserver")
)


@dataclass(frozen=True)
class Import:
    module: str  # as written: `import a.b` -> "a.b"; `from a.b import c` -> "a.b"
    candidates: tuple[str, ...]  # the dotted names it may load, longest first ("a.b.c", "a.b")
    where: str

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def runtime_files(root: Path) -> list[Path]:
    return sorted(p for d in RUNTIME_DIRS for p in (root / d).rglob("*.py") if "__pycache__" not in p.parts)


def first_party_names(root: Path) -> set[str]:
    """Top-level modules and packages of include/, plugins/ and dags/ (what they import of each other)."""
    names = set()
    for d in RUNTIME_DIRS:
        for p in (root / d).iterdir():
            if p.suffix == ".py" or (p / "__init__.py").is_file():
                names.add(p.stem)
    return names


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every absolute import in the file, at any depth (functions, TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (alias.name,), f"{path.relative_to(root)}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from google.cloud import storage` loads google.cloud.storage: try the longer name first.
            for alias in node.names:
                candidates = (f"{node.module}.{alias.name}", node.module)
                yield Import(node.module, candidates, f"{path.relative_to(root)}:{node.lineno}")


def third_party_imports(root: Path) -> list[Import]:
    skip = set(sys.stdlib_module_names) | first_party_names(root) | DEV_PACKAGES
    return [imp for path in runtime_files(root) for imp in imports_of(path, root) if imp.top not in skip]


def declared_requirements(root: Path) -> dict[NormalizedName, Requirement]:
    with (root / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    requirements = [Requirement(text) for text in project.get("dependencies", [])]
    return {canonicalize_name(r.name): r for r in requirements}


def pinned_versions(path: Path) -> dict[NormalizedName, str]:
    """name -> version of each `name==version` line of a requirements file (comments and options skipped)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


@cache
def distributions_of(top: str) -> tuple[str, ...]:
    return tuple(sorted(set(importlib.metadata.packages_distributions().get(top, ()))))


@cache
def shipped_files(distribution: str) -> frozenset[str]:
    return frozenset(str(f) for f in importlib.metadata.distribution(distribution).files or ())


def ships(distribution: str, dotted: str) -> bool:
    path = dotted.replace(".", "/")
    files = shipped_files(distribution)
    return (
        f"{path}.py" in files
        or f"{path}/__init__.py" in files
        or any(f.startswith(f"{path}.") and f.endswith((".so", ".pyd")) and "/" not in f[len(path) :] for f in files)
    )


def owner_of(imp: Import) -> NormalizedName | None:
    """The installed distribution that ships the imported module.

    Several distributions may share a top-level package (``google``, ``airflow``): the owner is
    the one that ships the longest prefix of the dotted name (google-cloud-storage for
    ``google.cloud.storage``, the Task SDK for ``airflow.sdk``).
    """
    candidates = distributions_of(imp.top)
    if len(candidates) == 1:
        return canonicalize_name(candidates[0])
    for name in imp.candidates:
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):
            owners = [d for d in candidates if ships(d, ".".join(parts[:depth]))]
            if len(owners) == 1:
                return canonicalize_name(owners[0])
            if owners:
                break  # a namespace several distributions fill: a shorter prefix will not decide it
    return None


def lockstep_parts(declared: dict[NormalizedName, Requirement]) -> dict[NormalizedName, NormalizedName]:
    """Distributions a declared one pins exactly (apache-airflow pins apache-airflow-core==X).

    They move with the declared distribution, so importing them is covered by declaring it.
    """
    parts = {}
    for name in declared:
        for text in importlib.metadata.requires(name) or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            specs = list(requirement.specifier)
            if len(specs) == 1 and specs[0].operator in ("==", "==="):
                parts[canonicalize_name(requirement.name)] = name
    return parts


def undeclared_imports(root: Path) -> list[str]:
    declared = declared_requirements(root)
    covered = set(declared) | set(lockstep_parts(declared))
    problems: dict[str, list[str]] = {}
    for imp in third_party_imports(root):
        owner = owner_of(imp)
        if owner is None:
            problems.setdefault(f"{imp.module} (no installed distribution ships it)", []).append(imp.where)
        elif owner not in covered:
            problems.setdefault(f"{imp.module} -> {owner}", []).append(imp.where)
    return [f"{what}: {', '.join(sorted(set(where)))}" for what, where in sorted(problems.items())]


def test_every_third_party_import_is_declared() -> None:
    problems = "\n".join(undeclared_imports(REPO_ROOT))
    assert not problems, f"imported by runtime code but not in pyproject.toml [project].dependencies:\n{problems}"


def test_runtime_code_does_not_import_dev_tooling() -> None:
    offenders = [
        f"{imp.module}: {imp.where}"
        for path in runtime_files(REPO_ROOT)
        for imp in imports_of(path, REPO_ROOT)
        if imp.top in DEV_PACKAGES
    ]
    assert not offenders, "runtime code imports the development-only local stack:\n" + "\n".join(offenders)


def test_requirements_pin_the_declared_ranges() -> None:
    declared = declared_requirements(REPO_ROOT)
    pins = pinned_versions(REPO_ROOT / "requirements.txt")
    direct = pinned_versions(REPO_ROOT / "requirements.in")
    problems = []
    for name, requirement in sorted(declared.items()):
        if name not in pins:
            problems.append(f"{requirement}: not pinned in requirements.txt")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: requirements.txt pins {pins[name]}")
        if name not in direct:
            problems.append(f"{requirement}: not listed in requirements.in")
        elif direct[name] != pins.get(name):
            problems.append(f"{name}: requirements.in says {direct[name]}, requirements.txt {pins.get(name)}")
    problems += [
        f"{name}: in requirements.in but not declared in pyproject.toml" for name in sorted(direct.keys() - declared)
    ]
    assert not problems, "\n".join(problems)


def test_no_development_tool_in_the_runtime_pins() -> None:
    leaked = sorted(DEV_ONLY_DISTRIBUTIONS & pinned_versions(REPO_ROOT / "requirements.txt").keys())
    assert not leaked, f"development tools pinned for production in requirements.txt: {', '.join(leaked)}"
