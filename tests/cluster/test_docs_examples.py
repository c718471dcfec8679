"""The distribution guide's examples run, and the guide shows them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples, run_python

GUIDE = DOCS / "distribution.md"
EXAMPLE_FILES = sorted(EXAMPLES.glob("cluster_*.py"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    run_python([str(path)], cwd=tmp_path)


def test_guide_shows_every_example_as_it_is() -> None:
    check_guide_shows_examples(GUIDE, EXAMPLE_FILES)
