"""``run_application`` serving a tree in a distributed node, in a real OS process."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio
from beamlet.actors import call
from beamlet.cluster import connect, open_node
from beamlet.supervisors import run_application
from os_nodes import os_nodes, parse_text

APP = Path(__file__).with_name("dist_app.py")
COOKIE = "distributed-application-cookie-0123456789"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_distributed_tree_serves_other_nodes_and_stops_on_a_signal(
    signum: int, tmp_path: Path
) -> None:
    name = f"app{signum}@127.0.0.1"
    async with os_nodes(tmp_path) as nodes:
        with trio.fail_after(30):
            app = await nodes.start(name, APP, name, COOKIE, parse=parse_text)
            first = await app.expect(lambda line: True)
            assert first.startswith("ready ")
            address = first.split()[1]

            async def ask() -> str:
                assert await connect(address)
                answer: str = await call(("greeter", name), "there")
                return answer

            async with open_node("client@127.0.0.1", cookie=COOKIE) as node:
                assert await node.run(ask) == "hello there from first"
            app.process.send_signal(signum)
            await app.expect(lambda line: line.startswith("exit"))
            assert await app.exited() == 0
    assert app.lines[1:] == ["terminate second shutdown", "terminate first shutdown", "exit 0"]


def test_run_application_refuses_a_node_that_is_not_a_node_opener() -> None:
    with pytest.raises(TypeError, match="node must open a node"):
        run_application([], node="a@127.0.0.1", log_level=None)  # type: ignore[arg-type]
