"""The runnable examples of docs/supervision.md (docs/examples/) and of the docstrings."""

from __future__ import annotations

import os
import queue
import runpy
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from beamlet.supervisors import _dynamic, _supervisor, _task_supervisor

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out.splitlines()


def test_supervision_tree_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_example("supervision_tree.py", capsys) == [
        "starting the tree",
        "  pump started",
        "  valve started",
        "count: 15",
        "counter crashed: ValueError(\"invalid literal for int() with base 10: 'lots'\")",
        "counter restarted: True - count: 10",
        "crashing the valve: one_for_all restarts both parts",
        "  valve stopped (('bad_cast', 'oops'))",
        "valve crashed: ('bad_cast', 'oops')",
        "  pump stopped (shutdown)",
        "  pump started",
        "  valve started",
        "stopping the tree: children stop in reverse start order",
        "  valve stopped (shutdown)",
        "  pump stopped (shutdown)",
        "done",
    ]


def test_dynamic_workers_example(capsys: pytest.CaptureFixture[str]) -> None:
    lines = run_example("dynamic_workers.py", capsys)
    assert lines[:5] == [
        "dave refused: max_children",
        "alice says: ('alice', 'hi')",
        "sessions: 3",
        "fetched: <html>example.org</html>",
        "failed: ConnectionError('broken.example')",
    ]
    assert sorted(lines[5:8]) == [f"  session {u} closed" for u in ("alice", "bob", "carol")]
    assert lines[8:] == ["sessions stopped in 0.5 s"]


def test_application_example() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "application.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        assert lines.get(timeout=30) == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert [lines.get(timeout=5), lines.get(timeout=5)] == [
            "orders: saved, bye (shutdown)",
            "users: saved, bye (shutdown)",
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("module", [_supervisor, _dynamic, _task_supervisor])
def test_docstring_examples(module: object) -> None:
    text = (module.__doc__ or "").split("Example::\n", 1)[1]
    lines = []
    for line in text.splitlines()[1:]:  # [0] is the blank line after "Example::"
        if line and not line.startswith("    "):
            break
        lines.append(line)
    source = textwrap.dedent("\n".join(lines))
    assert "run(main)" in source
    exec(compile(source, f"<example of {module!r}>", "exec"), {"__name__": "example"})
