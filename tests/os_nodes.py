"""Beamlet nodes in OS processes of their own, for the tests that go over real TCP.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from os_nodes import ...``::

    async with os_nodes(tmp_path) as nodes:
        node = await nodes.start(
            "n1@127.0.0.1", NODE_MAIN, "n1@127.0.0.1", COOKIE,
            ready=lambda e: e["event"] == "ready",
        )
        await node.command(cmd="nodes")
        reply = await node.expect(lambda e: e["event"] == "nodes")
        await node.command(cmd="quit")
        assert await node.exited() == 0

Each node runs a script under this interpreter (``PYTHONUNBUFFERED`` set), with
its stdin and stdout piped and its stderr written to a file in the test's
directory. A task reads its stdout line by line (as JSON, or as text) into
``OSNode.lines``. Leaving ``os_nodes`` SIGKILLs every node still running and
reaps it, whether the test passed, failed or was cancelled: no test leaves a
node or a zombie behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

#: How long ``os_nodes`` waits for a SIGKILLed node to be reaped before it says so.
REAP_TIMEOUT = 10.0


def parse_json(line: bytes) -> Any:
    """A line of JSON (what ``node_main.py`` and its kind print)."""
    return json.loads(line)


def parse_text(line: bytes) -> str:
    """A line of text, without its newline."""
    return line.decode()


class OSNode:
    """One node's process: ``write``/``command`` to its stdin, ``expect`` its lines."""

    def __init__(
        self, name: str, process: trio.Process, stderr: Path, parse: Callable[[bytes], Any]
    ) -> None:
        self.name = name
        self.process = process
        #: The file its stderr goes to.
        self.stderr = stderr
        #: Every line it printed, parsed, in order; ``expect`` marks lines taken, never removes.
        self.lines: list[Any] = []
        #: The line ``OSNodes.start`` waited for (its ``ready``), if any.
        self.ready: Any = None
        #: Where it listens, for the tests that read it from a line.
        self.address = ""
        self._parse = parse
        self._taken: set[int] = set()
        self._ended = False
        self._bad_line: str | None = None
        self._changed = trio.Event()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        try:
            async for chunk in self.process.stdout:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        self.lines.append(self._parse(line))
                    except ValueError as error:
                        self._bad_line = f"a line that does not parse ({error}): {line!r}"
                        return  # expect says so
                    self._wake()
        finally:
            self._ended = True
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def stderr_tail(self, size: int = 3000) -> str:
        """The last ``size`` characters the node wrote to stderr."""
        return self.stderr.read_text(errors="replace")[-size:]

    async def write(self, text: str) -> None:
        """Send ``text`` as one line to the node's stdin."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all((text + "\n").encode())

    async def command(self, **command: Any) -> None:
        """Send ``command`` as one line of JSON to the node's stdin."""
        await self.write(json.dumps(command))

    async def expect(self, match: Callable[[Any], bool], timeout: float = 15) -> Any:
        """Wait for the first line not yet taken that ``match`` accepts; take it.

        Fails (``AssertionError``, with what the node printed and the end of its
        stderr) after ``timeout`` seconds, as soon as its stdout has ended, or
        once it has printed a line that ``parse`` refuses."""
        with trio.move_on_after(timeout):
            while True:
                for i, line in enumerate(self.lines):
                    if i not in self._taken and match(line):
                        self._taken.add(i)
                        return line
                if self._ended:
                    break
                await self._changed.wait()
        if self._bad_line is not None:
            why = f"it printed {self._bad_line}"
        elif self._ended:
            why = "its output ended"
        else:
            why = f"nothing within {timeout} s"
        raise AssertionError(
            f"{self.name}: no such line ({why}); it printed {self.lines}\n"
            f"stderr: {self.stderr_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the node (``os_nodes`` reaps it)."""
        self.process.send_signal(signal.SIGKILL)

    async def exited(self, timeout: float = 10) -> int:
        """Wait for the node to exit and for all it printed to be read; its exit code."""
        with trio.fail_after(timeout):
            code = await self.process.wait()
            while not self._ended:
                await self._changed.wait()
        return code


class OSNodes:
    """Starts nodes for ``os_nodes``, which stops them all."""

    def __init__(self, directory: Path, nursery: trio.Nursery) -> None:
        self._directory = directory
        self._nursery = nursery
        self.started: list[OSNode] = []

    async def start(
        self,
        name: str,
        script: Path,
        *args: str,
        parse: Callable[[bytes], Any] = parse_json,
        ready: Callable[[Any], bool] | None = None,
        ready_timeout: float = 20,
        env: dict[str, str] | None = None,
    ) -> OSNode:
        """Run ``python script *args`` as the node ``name`` (``name`` also names its
        stderr file), its stdout lines parsed by ``parse``; with ``ready``, wait
        for the line it accepts and keep it as ``ready``. ``env`` adds to this
        process's environment."""
        stem = name.partition("@")[0]
        stderr = self._directory / f"{stem}.stderr"
        n = 1
        while stderr.exists():
            n += 1
            stderr = self._directory / f"{stem}-{n}.stderr"
        with stderr.open("wb") as err:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(script), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
        node = OSNode(name, process, stderr, parse)
        self.started.append(node)
        self._nursery.start_soon(node._read)
        if ready is not None:
            node.ready = await node.expect(ready, timeout=ready_timeout)
        return node

    async def start_node(
        self,
        script: Path,
        name: str,
        cookie: str,
        *seeds: str,
        env: dict[str, str] | None = None,
        ready_timeout: float = 20,
    ) -> OSNode:
        """Run a node script that takes ``NAME COOKIE [SEED...]`` and prints JSON
        lines, the first ``{"event": "ready", "name": NAME, "address": ...}`` once
        it listens (as ``node_main.py`` and its kind do); wait for that line, check
        the name, and keep the address in ``address``."""
        node = await self.start(
            name,
            script,
            name,
            cookie,
            *seeds,
            ready=lambda e: e["event"] == "ready",
            ready_timeout=ready_timeout,
            env=env,
        )
        assert node.ready["name"] == name, node.ready
        node.address = node.ready["address"]
        return node

    async def _stop_all(self) -> None:
        for node in self.started:
            if node.process.returncode is None:
                node.process.kill()
        unreaped = []
        for node in self.started:
            with trio.move_on_after(REAP_TIMEOUT):
                await node.process.wait()
            if node.process.returncode is None:
                unreaped.append(node.name)
        assert not unreaped, f"SIGKILLed nodes not reaped within {REAP_TIMEOUT} s: {unreaped}"


@asynccontextmanager
async def os_nodes(directory: Path) -> AsyncIterator[OSNodes]:
    """Start nodes with the ``OSNodes`` this yields; on leaving, every one still
    running is SIGKILLed and reaped, and the tasks reading them are stopped.
    ``directory`` (the test's ``tmp_path``) holds their stderr files."""
    started: list[OSNode] = []
    try:
        async with trio.open_nursery() as nursery:
            nodes = OSNodes(directory, nursery)
            started = nodes.started
            try:
                yield nodes
            finally:
                try:
                    with trio.CancelScope(shield=True):
                        await nodes._stop_all()
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            for node in started:
                for stream in (node.process.stdin, node.process.stdout):
                    if stream is not None:
                        await stream.aclose()
