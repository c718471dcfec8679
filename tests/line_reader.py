"""A subprocess's output, read line by line in a thread, for the tests that run one.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from line_reader import ...``. The tests that run ``beamlet run`` or an
application script as a plain ``subprocess.Popen`` (not a node of
``os_nodes``) read its stdout or stderr with a ``LineReader``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import IO


class LineReader:
    """The lines of ``stream`` (a text stream), read by a daemon thread as they come.

    ``what`` names the process in the failures. ``seen`` keeps every line taken
    (by ``next``, ``wait_for`` or ``rest``), in order.
    """

    def __init__(self, stream: IO[str], what: str) -> None:
        self.what = what
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 20) -> str | None:
        """The next line (kept in ``seen``), or None once the stream has ended.

        Fails (``AssertionError``, with the lines seen) if none comes within
        ``timeout`` seconds."""
        return self._next(time.monotonic() + timeout, timeout)

    def _next(self, deadline: float, timeout: float) -> str | None:
        if self._ended:
            return None
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"{self.what}: no line within {timeout} s; it said {self.seen}"
            ) from None
        if line is None:
            self._ended = True
        else:
            self.seen.append(line)
        return line

    def wait_for(self, accept: Callable[[str], object], timeout: float = 20) -> list[str]:
        """Take lines until one that ``accept`` accepts; the lines taken, that one last.

        Fails (``AssertionError``, with the lines seen) if the stream ends first
        or no such line comes within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        taken: list[str] = []
        while True:
            line = self._next(deadline, timeout)
            if line is None:
                raise AssertionError(f"{self.what} ended before the line; it said {self.seen}")
            taken.append(line)
            if accept(line):
                return taken

    def rest(self, timeout: float = 20) -> list[str]:
        """Every line left, once the stream has ended (each within ``timeout`` seconds)."""
        taken = []
        while (line := self.next(timeout)) is not None:
            taken.append(line)
        return taken
