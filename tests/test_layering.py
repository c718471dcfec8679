"""The packages talk to each other through public names only.

``beamlet.supervisors``, ``beamlet.cluster`` and ``beamlet.apps`` (and their
tests) may import public modules of another package (``beamlet.actors``,
``beamlet.actors.lowlevel``) but never a private one (``beamlet.actors._node``);
a package's own private modules are its own business, and its tests may use
them. Dependencies point one way: apps -> cluster -> supervisors -> actors.
The documentation's examples and the benchmarks use public names only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["actors", "supervisors", "cluster", "apps"]
#: What each package may depend on (itself included).
ALLOWED = {
    "actors": {"actors"},
    "supervisors": {"supervisors", "actors"},
    "cluster": {"cluster", "supervisors", "actors"},
    "apps": {"apps", "cluster", "supervisors", "actors"},
}


def imports(source: str) -> list[tuple[int, list[str]]]:
    """Each absolute import statement: its line and the modules it may load.

    ``from x import y`` may load ``x`` and ``x.y``; ``import x, z`` loads both.
    """
    found: list[tuple[int, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.append((node.lineno, [node.module, *names]))
    return found


def problem(module: str, owner: str | None) -> str | None:
    """Why a file of package ``owner`` may not import ``module`` (None: it may).

    ``owner`` None: a file of no package (docs, benchmarks): public names only.
    """
    parts = module.split(".")
    if parts[0] != "beamlet" or len(parts) < 2 or parts[1] not in PACKAGES:
        return None
    package = parts[1]
    if owner is not None and package not in ALLOWED[owner]:
        return f"{owner} may not depend on {package}"
    if package != owner and any(part.startswith("_") for part in parts[2:]):
        return f"a private module of beamlet.{package}"
    return None


def violations(source: str, owner: str | None, where: str = "<source>") -> list[str]:
    """The imports in ``source`` that break the rules, one line per statement."""
    found = []
    for line, modules in imports(source):
        for module in modules:
            why = problem(module, owner)
            if why is not None:
                found.append(f"{where}:{line}: {module} ({why})")
                break
    return found


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py")) if folder.exists() else []


def check(path: Path, owner: str | None) -> list[str]:
    return violations(path.read_text(), owner, str(path.relative_to(REPO)))


def test_no_package_imports_another_packages_private_modules() -> None:
    problems = []
    for package in PACKAGES:
        for path in files_of(REPO / package):
            problems += check(path, package)
        for path in files_of(REPO / "tests" / package):
            problems += check(path, package)
    for folder in ["docs", "bench"]:
        for path in files_of(REPO / folder):
            problems += check(path, None)
    assert problems == []


@pytest.mark.parametrize(
    ("source", "owner", "expected"),
    [
        ("from beamlet.actors._node import Node", "cluster", 1),
        ("import beamlet.actors._process", "supervisors", 1),
        ("from beamlet.actors import _util", "apps", 1),
        ("from beamlet.cluster._codec import Codec", "apps", 1),
        ("from beamlet.cluster import pg", "apps", 0),
        ("from beamlet.actors.lowlevel import NodeVar", "cluster", 0),
        ("from beamlet.cluster._codec import Codec", "cluster", 0),  # its own
        ("from beamlet.cluster import rpc", "actors", 1),  # the wrong way
        ("from beamlet.supervisors import Supervisor", None, 0),
        ("from beamlet.supervisors._spec import SpawnLink", None, 1),
        ("from . import _private", "cluster", 0),  # relative: its own package
    ],
)
def test_the_check_catches_private_and_upward_imports(
    source: str, owner: str | None, expected: int
) -> None:
    assert len(violations(source, owner)) == expected
