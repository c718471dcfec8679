"""The shared docs checks (``tests/docs_checks.py``) catch what they are for."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_checks import EXAMPLES, check_guide_shows_examples

EXAMPLE = EXAMPLES / "readme_example.py"


def _guide(tmp_path: Path, *blocks: str) -> Path:
    guide = tmp_path / "guide.md"
    guide.write_text("".join(f"Text.\n\n```python\n{block}```\n\n" for block in blocks))
    return guide


def test_a_guide_showing_its_example_as_it_is_passes(tmp_path: Path) -> None:
    shown = f"# docs/examples/{EXAMPLE.name}\n{EXAMPLE.read_text()}"
    check_guide_shows_examples(_guide(tmp_path, shown, "print(1)\n"), [EXAMPLE])
    with pytest.raises(AssertionError, match="a Python block not from a file"):
        check_guide_shows_examples(
            _guide(tmp_path, shown, "print(1)\n"), [EXAMPLE], only_examples=True
        )


def test_an_example_shown_changed_or_not_shown_fails(tmp_path: Path) -> None:
    changed = f"# docs/examples/{EXAMPLE.name}\n{EXAMPLE.read_text()}# changed\n"
    with pytest.raises(AssertionError, match=EXAMPLE.name):
        check_guide_shows_examples(_guide(tmp_path, changed), [EXAMPLE])
    with pytest.raises(AssertionError, match="not shown"):
        check_guide_shows_examples(_guide(tmp_path, "print(1)\n"), [EXAMPLE])
    with pytest.raises(AssertionError, match="no example files"):
        check_guide_shows_examples(_guide(tmp_path, "print(1)\n"), [])
