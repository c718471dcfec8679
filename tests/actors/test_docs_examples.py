"""Every code example of the documentation runs, and the guide shows them as they are."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from docs_checks import (
    DOCS,
    EXAMPLES,
    MARKER,
    REPO,
    check_guide_shows_examples,
    code_blocks,
    run_python,
)

GUIDE = DOCS / "actors.md"

# The examples of this package's guide, and the README's (other packages test their own).
EXAMPLE_FILES = sorted([*EXAMPLES.glob("actors_*.py"), EXAMPLES / "readme_example.py"])
INLINE_BLOCKS = [block for block in code_blocks(GUIDE) if not MARKER.match(block)]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    run_python([str(path)], cwd=tmp_path)


@pytest.mark.parametrize("block", INLINE_BLOCKS)
def test_guide_inline_block_runs(block: str, tmp_path: Path) -> None:
    run_python(["-c", block], cwd=tmp_path)


def test_guide_shows_the_example_files_as_they_are() -> None:
    # Every actors example appears in the guide.
    check_guide_shows_examples(GUIDE, EXAMPLES.glob("actors_*.py"))


def test_guide_has_examples_to_run() -> None:
    assert len(EXAMPLE_FILES) >= 10
    assert INLINE_BLOCKS


def test_gen_server_docstring_example_runs(tmp_path: Path) -> None:
    from beamlet.actors import GenServer

    doc = inspect.getdoc(GenServer)
    assert doc is not None
    lines = []
    for line in doc.split("Example::\n", 1)[1].splitlines():
        if line and not line.startswith(" "):
            break  # the end of the indented block
        lines.append(line)
    code = textwrap.dedent("\n".join(lines))
    assert "class Counter(GenServer)" in code
    run_python(["-c", code], cwd=tmp_path)


def test_readme_example_is_the_file() -> None:
    [block, *_] = code_blocks(REPO / "README.md")
    assert block in (EXAMPLES / "readme_example.py").read_text()


LOWLEVEL_GUIDE = DOCS / "lowlevel.md"
LOWLEVEL_EXAMPLES = sorted(EXAMPLES.glob("lowlevel_*.py"))


@pytest.mark.parametrize("path", LOWLEVEL_EXAMPLES, ids=[p.name for p in LOWLEVEL_EXAMPLES])
def test_lowlevel_example_runs(path: Path, tmp_path: Path) -> None:
    run_python([str(path)], cwd=tmp_path)


def test_lowlevel_guide_shows_its_examples_as_they_are() -> None:
    check_guide_shows_examples(LOWLEVEL_GUIDE, LOWLEVEL_EXAMPLES)


REGISTRY_GUIDE = DOCS / "registry.md"
REGISTRY_EXAMPLES = sorted(EXAMPLES.glob("registry_*.py"))


@pytest.mark.parametrize("path", REGISTRY_EXAMPLES, ids=[p.name for p in REGISTRY_EXAMPLES])
def test_registry_example_runs(path: Path, tmp_path: Path) -> None:
    run_python([str(path)], cwd=tmp_path)


def test_registry_guide_shows_its_examples_as_they_are() -> None:
    assert len(REGISTRY_EXAMPLES) >= 3
    check_guide_shows_examples(REGISTRY_GUIDE, REGISTRY_EXAMPLES)


def test_registry_docstring_example_runs(tmp_path: Path) -> None:
    from beamlet.actors import Registry

    doc = inspect.getdoc(Registry)
    assert doc is not None
    lines = []
    for line in doc.split("Example::\n", 1)[1].splitlines():
        if line and not line.startswith(" "):
            break  # the end of the indented block
        lines.append(line)
    code = textwrap.dedent("\n".join(lines))
    assert "Registry.dispatch" in code
    run_python(["-c", code], cwd=tmp_path)
