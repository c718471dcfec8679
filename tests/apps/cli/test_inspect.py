"""``beamlet ping`` and ``beamlet top`` against a service running in another OS process."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import Service, beamlet


def test_ping_answers_pong(service: tuple[Service, str], cookie_file: Path) -> None:
    _svc, address = service
    for target in (address, f"svc@{address}"):
        result = beamlet("ping", target, "--cookie-file", str(cookie_file))
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(
            rf"pong svc@127\.0\.0\.1 \({re.escape(address)}\) in [\d.]+ ms\n", result.stdout
        )
        assert result.stderr == ""


def test_ping_takes_the_cookie_from_the_environment(service: tuple[Service, str]) -> None:
    from .conftest import COOKIE

    _svc, address = service
    result = beamlet("ping", address, env={"BEAMLET_COOKIE": COOKIE})
    assert result.returncode == 0, result.stderr


def test_top_once_shows_the_known_processes(
    service: tuple[Service, str], cookie_file: Path
) -> None:
    _svc, address = service
    result = beamlet(
        "top",
        address,
        "--cookie-file",
        str(cookie_file),
        "--once",
        "--sort",
        "mailbox",
        "--limit",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout  # plain: no escape codes
    summary, header, *rows = result.stdout.splitlines()
    assert re.match(
        r"node svc@127\.0\.0\.1 \(os pid \d+\): \d+ processes, \d+ registered, ", summary
    )
    assert "0 connected nodes (+1 hidden)" in summary  # the console is a hidden node
    assert re.search(r"distribution in [\d.]+ (B|KiB) / out [\d.]+ (B|KiB)", summary)
    assert header.split() == [
        "PID", "NAME", "FUNCTION", "STATUS", "MBOX", "LINKS", "MONS", "MEMORY", "REDS"
    ]  # fmt: skip
    assert len(rows) == 3
    first = rows[0].split()
    assert first[1:5] == ["backlog", "backlog", "waiting", "7"]  # the largest mailbox first

    result = beamlet(
        "top",
        address,
        "--cookie-file",
        str(cookie_file),
        "--once",
        "--sort",
        "reductions",
        "--limit",
        "1",
    )
    assert result.returncode == 0, result.stderr
    [row] = result.stdout.splitlines()[2:]
    assert row.split()[1:3] == ["chatty", "chatty"]
    assert row.split()[-1] == "301"  # 300 receives, then the one that waits

    result = beamlet("top", address, "--cookie-file", str(cookie_file), "--once", "--limit", "50")
    names = {line.split()[1] for line in result.stdout.splitlines()[2:]}
    assert {"greeter", "backlog", "chatty", "beamlet_introspect", "beamlet_rpc"} <= names
    [greeter] = [line for line in result.stdout.splitlines() if " greeter " in line]
    assert "Greeter (GenServer)" in greeter


def test_top_without_a_terminal_prints_plain_snapshots(
    service: tuple[Service, str], cookie_file: Path
) -> None:
    import subprocess
    import sys

    from .conftest import COMMAND

    _svc, address = service
    process = subprocess.Popen(
        [*COMMAND, "top", address, "--cookie-file", str(cookie_file), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(30)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = "".join(lines)
    assert "\x1b" not in text
    assert text.count("node svc@127.0.0.1") >= 2  # refreshed: a snapshot after another
    assert "REDS/S" in text  # the live view adds the rate of reductions
    # From the second snapshot on, each row ends with its reductions per second.
    assert re.search(r"<\d+>.* \d+ +\d+$", text, re.M)
    assert sys.platform  # (the live view needs a terminal; none here)


def test_a_terminal_without_rich_gets_a_clear_note_and_plain_snapshots(
    service: tuple[Service, str], cookie_file: Path, tmp_path: Path
) -> None:
    import os
    import pty
    import subprocess

    from .conftest import COMMAND

    _svc, address = service
    fake = tmp_path / "no_rich" / "rich"  # an installed rich that cannot be imported
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('rich is not installed')\n")
    controller, terminal = pty.openpty()  # stdout is a terminal: the live view is wanted
    process = subprocess.Popen(
        [*COMMAND, "top", address, "--cookie-file", str(cookie_file), "--interval", "0.2"],
        stdout=terminal,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(fake.parent)},
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        note = process.stderr.readline()
        shown = b""
        while b"REDS/S" not in shown:
            shown += os.read(controller, 4096)
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(controller)
    assert note == (
        "beamlet: note: rich is not installed (pip install 'beamlet[cli]'): "
        "printing plain snapshots\n"
    )
    assert b"\x1b" not in shown


def test_top_into_a_reader_that_went_away_ends_quietly(
    service: tuple[Service, str], cookie_file: Path
) -> None:
    """``beamlet top --once | head -0``: status 141, no error line, no traceback."""
    import subprocess

    from .conftest import COMMAND

    _svc, address = service
    process = subprocess.Popen(
        [*COMMAND, "top", address, "--once", "--cookie-file", str(cookie_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything is written
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 141, stderr
    assert stderr == ""


def test_live_top_into_a_reader_that_went_away_ends_quietly(
    service: tuple[Service, str], cookie_file: Path
) -> None:
    """``beamlet top NODE | head`` (live, not a terminal): status 141, no error line.

    The reader closes after the first line, while the live view keeps printing.
    """
    import subprocess

    from .conftest import COMMAND

    _svc, address = service
    process = subprocess.Popen(
        [*COMMAND, "top", address, "--interval", "0.05", "--cookie-file", str(cookie_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    assert first.startswith("node svc@127.0.0.1"), first
    process.stdout.close()  # `| head -1`: the reader goes away after one line
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 141, stderr
    assert stderr == ""
