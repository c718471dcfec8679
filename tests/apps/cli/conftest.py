"""Fixtures for the ``beamlet`` command's tests: the command as a subprocess, a cookie, a service."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from line_reader import LineReader

HERE = Path(__file__).resolve().parent
COOKIE = "cli-tests-cookie-0123456789abcdef"

#: The installed ``beamlet`` script (``[project.scripts]``), run as a user runs it:
#: the current directory is not on its path unless the command puts it there.
SCRIPT = Path(sys.executable).with_name("beamlet")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "beamlet.apps.cli"]


def beamlet(*args: str, cwd: Path = HERE, env: dict[str, str] | None = None, timeout: float = 30):
    """Run ``beamlet ARGS``; return the CompletedProcess."""
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line(result, status: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("beamlet: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def cookie_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookie"
    path.write_text(COOKIE)
    path.chmod(0o600)
    return path


class Service:
    """A ``beamlet run`` subprocess, its stderr read line by line in a thread."""

    def __init__(self, args: list[str], cwd: Path = HERE) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, "run", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stderr is not None
        #: Its stderr, line by line.
        self.output = LineReader(self.process.stderr, "the service")
        #: Every stderr line taken so far (by ``wait_for``, ``rest`` or ``output.next``).
        self.seen = self.output.seen

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (lines before it are kept in ``seen``)."""
        line = self.output.wait_for(lambda line: re.search(pattern, line), timeout)[-1]
        found = re.search(pattern, line)
        assert found is not None
        return found

    def rest(self, timeout: float = 20) -> list[str]:
        """The remaining stderr lines, once the process has exited."""
        return self.output.rest(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def service(cookie_file: Path) -> Iterator[tuple[Service, str]]:
    """``beamlet run cli_app:children`` on a free port; yields it and its address."""
    svc = Service(
        ["cli_app:children", "--name", "svc@127.0.0.1", "--cookie-file", str(cookie_file)]
    )
    try:
        address = svc.wait_for(r"listening on (\S+)").group(1)
        yield svc, address
    finally:
        svc.stop()
