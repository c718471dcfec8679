"""The PubSub guide's examples run, and the guide shows them as they are.

(The chat example, ``pubsub_chat.py``, runs as OS processes in test_real_cluster.py.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "docs" / "examples"
GUIDE = REPO / "docs" / "pubsub.md"
MARKER = re.compile(r"# docs/examples/([\w.]+\.py)\n")
EXAMPLE_FILES = sorted(EXAMPLES.glob("pubsub_*.py"))


def test_the_basics_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "pubsub_basics.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "b got: ['goal!', 'for b', 'SHOUT']" in result.stdout
    assert "dropped for the slow subscriber: 900" in result.stdout


def test_guide_shows_every_example_as_it_is() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    shown = set()
    for block in blocks:
        marker = MARKER.match(block)
        if marker:
            assert block[marker.end() :] == (EXAMPLES / marker.group(1)).read_text()
            shown.add(marker.group(1))
    assert shown == {p.name for p in EXAMPLE_FILES}
