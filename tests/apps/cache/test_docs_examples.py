"""The cache guide's examples run, and the guide shows them as they are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "docs" / "examples"
GUIDE = REPO / "docs" / "cache.md"
MARKER = re.compile(r"# docs/examples/([\w.]+\.py)\n")
EXAMPLE_FILES = sorted(EXAMPLES.glob("cache_*.py"))


def python_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(), flags=re.DOTALL)


#: The examples that need a Redis (given its URL as their argument).
WITH_REDIS = {"cache_redis.py"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    args = [request.getfixturevalue("redis_server").url] if path.name in WITH_REDIS else []
    result = subprocess.run(
        [sys.executable, str(path), *args], cwd=tmp_path, capture_output=True, text=True, timeout=50
    )
    assert result.returncode == 0, result.stderr


def test_guide_shows_every_example_as_it_is() -> None:
    shown = set()
    for block in python_blocks(GUIDE):
        marker = MARKER.match(block)
        if marker:
            name = marker.group(1)
            assert block[marker.end() :] == (EXAMPLES / name).read_text(), name
            shown.add(name)
    assert shown == {p.name for p in EXAMPLE_FILES}
    assert len(EXAMPLE_FILES) >= 3
