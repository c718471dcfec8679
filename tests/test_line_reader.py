"""The shared reader of a subprocess's lines (``tests/line_reader.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from line_reader import LineReader

SCRIPT = "import sys\nfor word in sys.argv[1:]:\n    print(word, flush=True)\n"


def _reader(*words: str) -> tuple[subprocess.Popen[str], LineReader]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *words], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, LineReader(process.stdout, "the echo")


def test_lines_are_taken_in_order_and_kept() -> None:
    process, reader = _reader("a", "b", "c", "d")
    assert reader.next() == "a"
    assert reader.wait_for(lambda line: line == "c") == ["b", "c"]
    assert reader.rest() == ["d"]
    assert reader.seen == ["a", "b", "c", "d"]
    assert reader.next() is None
    assert process.wait(timeout=10) == 0


def test_a_line_that_never_comes_fails_with_what_was_said() -> None:
    process, reader = _reader("a")
    with pytest.raises(AssertionError, match=r"the echo ended before the line; it said \['a'\]"):
        reader.wait_for(lambda line: line == "z")
    process.wait(timeout=10)
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sleeper.stdout is not None
        quiet = LineReader(sleeper.stdout, "the sleeper")
        with pytest.raises(AssertionError, match=r"the sleeper: no line within 0\.2 s"):
            quiet.wait_for(lambda line: True, timeout=0.2)
    finally:
        sleeper.kill()
        sleeper.wait()
