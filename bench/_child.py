"""Shared by the benchmarks: a bench file run again as a child process.

A bench that measures between two OS processes runs its own file again with
``--serve ...`` as the other side. The child prints ``READY [what]`` once it
serves, and stops when its stdin closes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def child(
    script: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``script`` (the bench's ``__file__``) with ``args`` in a child process, its
    environment this one's plus ``env``; yield it and the rest of its ``READY`` line.

    Raises:
        RuntimeError: the child's first line is not ``READY``.
    """
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY"):
            raise RuntimeError(f"child {args} did not start: {line!r}")
        yield proc, line.partition(" ")[2]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the children stop when their stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
