"""Over real TCP: a peer that guesses a call's ref cannot answer it for another node.

Node ``a`` (this process) calls, with ``rpc``, a function on node ``b`` (an OS
process running ``node_main.py``) that answers after 3 s. Meanwhile node ``c``
(another OS process) sends the caller ``Reply(ref, ("ok", "forged"))`` with the
call's exact ref: without the check, ``rpc`` would return ``"forged"``. ``a``
refuses it at the connection to ``c`` (one warning) and the caller gets
``b``'s answer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio
from beamlet.actors import Pid, spawn
from beamlet.cluster import connect, open_node, rpc
from os_nodes import os_nodes

NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "forged-replies-cookie-0123456789abcdef"
A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"


@pytest.mark.timeout(90)
async def test_a_reply_forged_by_a_third_node_is_refused_over_tcp(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with os_nodes(tmp_path) as nodes:
        b = await nodes.start(B, NODE_MAIN, B, COOKIE)
        c = await nodes.start(C, NODE_MAIN, C, COOKIE)
        b_ready = await b.expect(lambda e: e["event"] == "ready", timeout=30)
        c_ready = await c.expect(lambda e: e["event"] == "ready", timeout=30)

        async with open_node(A, cookie=COOKIE) as node:
            got: list[Any] = []
            done = trio.Event()

            async def caller() -> None:
                got.append(await rpc(B, "node_main.echo_after", 3.0, "real", timeout=30))
                done.set()

            async def main() -> Pid:
                assert await connect(b_ready["address"])
                assert await connect(c_ready["address"])
                return spawn(caller)

            pid = await node.run(main)
            with trio.fail_after(10):  # the call is made: its ref is the caller's one waiter
                while not node.lookup(pid).waiters:  # type: ignore[union-attr]  # noqa: ASYNC110
                    await trio.sleep(0.01)
            [ref] = node.lookup(pid).waiters  # type: ignore[union-attr]
            assert node.lookup(pid).monitors[ref][1] == B  # type: ignore[union-attr,index]
            with caplog.at_level(logging.WARNING, logger="beamlet.cluster"):
                await c.command(
                    cmd="reply",
                    pid=[pid.node, pid.id, pid.creation],
                    ref=[ref.node, ref.id, ref.creation],
                    value=["ok", "forged"],
                )
                await c.expect(lambda e: e["event"] == "replied", timeout=10)
                with trio.fail_after(20):
                    await done.wait()
            assert got == ["real"]
            refused = [
                r.getMessage()
                for r in caplog.records
                if r.getMessage().startswith(f"connection to {C} refused a forged reply")
            ]
            assert len(refused) == 1, [r.getMessage() for r in caplog.records]
        for n in (b, c):
            await n.command(cmd="quit")
            assert await n.exited() == 0
