"""The cache guide's examples run, and the guide shows them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples, run_python

GUIDE = DOCS / "cache.md"
EXAMPLE_FILES = sorted(EXAMPLES.glob("cache_*.py"))

#: The examples that need a Redis (given its URL as their argument).
WITH_REDIS = {"cache_redis.py"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    args = [request.getfixturevalue("redis_server").url] if path.name in WITH_REDIS else []
    run_python([str(path), *args], cwd=tmp_path, timeout=50)


def test_guide_shows_every_example_as_it_is() -> None:
    check_guide_shows_examples(GUIDE, EXAMPLE_FILES)
    assert len(EXAMPLE_FILES) >= 3
