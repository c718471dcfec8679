"""The presence guide's examples run, and the guide shows them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples, run_python

GUIDE = DOCS / "presence.md"
EXAMPLE_FILES = sorted(EXAMPLES.glob("presence_*.py"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    result = run_python([str(path)], cwd=tmp_path)
    if path.name == "presence_who_is_online.py":
        lines = result.stdout.splitlines()
        assert "both nodes list ['Alice', 'Bob']" in lines
        assert "node a lists ['Alice']" in lines
        assert any(line.endswith("joined []  left ['Bob']") for line in lines)


def test_guide_shows_every_example_as_it_is() -> None:
    check_guide_shows_examples(GUIDE, EXAMPLE_FILES)
