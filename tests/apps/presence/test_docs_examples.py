"""The presence guide's examples run, and the guide shows them as they are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "docs" / "examples"
GUIDE = REPO / "docs" / "presence.md"
MARKER = re.compile(r"# docs/examples/([\w.]+\.py)\n")
EXAMPLE_FILES = sorted(EXAMPLES.glob("presence_*.py"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    if path.name == "presence_who_is_online.py":
        lines = result.stdout.splitlines()
        assert "both nodes list ['Alice', 'Bob']" in lines
        assert "node a lists ['Alice']" in lines
        assert any(line.endswith("joined []  left ['Bob']") for line in lines)


def test_guide_shows_every_example_as_it_is() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    shown = set()
    for block in blocks:
        marker = MARKER.match(block)
        if marker:
            assert block[marker.end() :] == (EXAMPLES / marker.group(1)).read_text()
            shown.add(marker.group(1))
    assert shown == {p.name for p in EXAMPLE_FILES} and shown
