"""Checks of the guides in docs/ and of their example files, shared by the docs tests.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from docs_checks import ...``. A guide shows an example file as a ``python``
block whose first line is ``# docs/examples/NAME.py``, followed by the file as
it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
#: The first line of a block that shows an example file.
MARKER = re.compile(r"# docs/examples/([\w.]+\.py)\n")


def code_blocks(markdown: Path, language: str = "python") -> list[str]:
    """The code blocks of ``markdown`` marked ``language`` (```` ```python ````), in order."""
    return re.findall(rf"```{language}\n(.*?)```", markdown.read_text(), flags=re.DOTALL)


def check_guide_shows_examples(
    guide: Path, examples: Iterable[Path], *, only_examples: bool = False
) -> None:
    """``guide`` shows each of ``examples`` (at least one) as it is, to the letter,
    and no other example file; with ``only_examples``, every one of its Python
    blocks is an example file."""
    shown = set()
    for block in code_blocks(guide):
        marker = MARKER.match(block)
        if marker is None:
            assert not only_examples, f"{guide.name}: a Python block not from a file: {block[:60]}"
            continue
        name = marker.group(1)
        assert block[marker.end() :] == (EXAMPLES / name).read_text(), f"{guide.name}: {name}"
        shown.add(name)
    expected = {path.name for path in examples}
    assert expected, f"{guide.name}: no example files to show"
    assert shown == expected, {
        "not shown": sorted(expected - shown),
        "unexpected": sorted(shown - expected),
    }


def run_python(
    args: list[str], cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd``, its environment this one's plus ``env``; it must
    exit 0 (else its stderr is shown)."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result
