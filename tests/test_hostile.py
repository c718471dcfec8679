"""The shared thrower of the bad-input tests (``tests/hostile.py``) throws, and
ignores only the thrower's own failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import ExitSignal, open_node, receive, send, spawn
from hostile import WAYS, throw


async def test_each_way_reaches_the_process_and_an_unanswered_call_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[Any] = []

    async def sink() -> None:
        while True:
            got.append(await receive())

    async def main() -> float:
        pid = spawn(sink)
        start = trio.current_time()
        for how in WAYS:
            await throw(pid, how, how)
        await trio.sleep(1)
        return trio.current_time() - start

    async with open_node() as node:
        assert await node.run(main) == 3  # the call waited its 2 s, then was ignored
    assert len(got) == 3 and got[-1] == "send"
    assert "call" in repr(got[0]) and "cast" in repr(got[1])


async def test_a_call_to_a_process_that_exits_is_ignored_an_unknown_way_is_not() -> None:
    async def crash() -> None:
        await receive()
        raise RuntimeError("the callee fails")

    async def main() -> None:
        await throw(spawn(crash), "call", "hello")
        with pytest.raises(ValueError, match="'post' is not one of"):
            await throw(spawn(crash), "post", 1)

    async with open_node() as node:
        await node.run(main)


async def test_a_send_to_another_node_is_forged_so_the_receiving_node_is_what_is_checked(
    beamlet_cluster: Any, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # beamlet's send refuses a runtime signal to another node (TypeError, which
    # throw would ignore); throw forges the frame instead, and the receiving
    # node's connection refuses it and logs it.
    got: list[Any] = []

    async def sink() -> None:
        while True:
            got.append(await receive())

    pid = beamlet_cluster.spawn("a", sink)

    async def thrower() -> None:
        await throw(pid, "send", ExitSignal(pid, "forged"))
        await throw(pid, "send", "plain")
        with pytest.raises(TypeError):
            send(pid, ExitSignal(pid, "forged"))

    with caplog.at_level(logging.WARNING):
        await beamlet_cluster.run("b", thrower)
        await trio.sleep(1)
    assert got == ["plain"]
    assert any("forged message (ExitSignal" in r.getMessage() for r in caplog.records)
