"""``run_application`` serving a tree in a distributed node, in a real OS process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from beamlet.actors import call
from beamlet.cluster import connect, open_node
from beamlet.supervisors import run_application

APP = Path(__file__).with_name("dist_app.py")
COOKIE = "distributed-application-cookie-0123456789"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_distributed_tree_serves_other_nodes_and_stops_on_a_signal(signum: int) -> None:
    name = f"app{signum}@127.0.0.1"
    process = await trio.lowlevel.open_process(
        [sys.executable, str(APP), name, COOKIE],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    buffer = b""

    async def line() -> str:
        nonlocal buffer
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some()  # type: ignore[union-attr]
            if not chunk:
                raise AssertionError(f"the app ended early; it said {lines}")
            buffer += chunk
        text, buffer = buffer.split(b"\n", 1)
        lines.append(text.decode())
        return lines[-1]

    try:
        with trio.fail_after(30):
            first = await line()
            assert first.startswith("ready ")
            address = first.split()[1]

            async def ask() -> str:
                assert await connect(address)
                answer: str = await call(("greeter", name), "there")
                return answer

            async with open_node("client@127.0.0.1", cookie=COOKIE) as node:
                assert await node.run(ask) == "hello there from first"
            process.send_signal(signum)
            while not lines[-1].startswith("exit"):
                await line()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
    assert lines[1:] == ["terminate second shutdown", "terminate first shutdown", "exit 0"]


def test_run_application_refuses_a_node_that_is_not_a_node_opener() -> None:
    with pytest.raises(TypeError, match="node must open a node"):
        run_application([], node="a@127.0.0.1", log_level=None)  # type: ignore[arg-type]
