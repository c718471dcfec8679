"""A peer that holds the cookie cannot answer a call it is not part of.

Refs are sequential (``(node, counter, creation)``): a node that has seen one
can guess the next. Here node ``c`` is given the exact ref of a call that a
process on ``a`` makes (to a server on ``b``, or on ``a`` itself) and sends
``Reply(ref, "forged")`` to the caller, by pid and by name, and a down signal
for the call's monitor. The caller still gets the real answer, or its timeout,
never ``c``'s: a ``Reply`` from another node is taken only for a call to (or a
task on) a process of that node. The forgeries are logged once per connection
and period; a late reply from the right node is dropped quietly, as before.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    From,
    GenServer,
    NoReply,
    Pid,
    Ref,
    call,
    cast,
    receive,
    register,
    reply,
    self_pid,
    send,
)
from beamlet.actors.lowlevel import Reply, adopt_task, current_node, send_reply
from beamlet.cluster import export, rpc
from beamlet.cluster.simulation import SimulatedCluster

pytestmark = pytest.mark.trio


class Holder(GenServer):
    """Keeps each call's ``From`` (no reply) until told to answer it."""

    async def init(self) -> None:
        self.callers: list[From] = []

    async def handle_call(self, request: Any, caller: From) -> Any:
        if request == "callers":
            return list(self.callers)
        self.callers.append(caller)
        return NoReply

    async def handle_cast(self, request: Any) -> None:
        caller = self.callers.pop(0)
        reply(caller, request)


async def _start_holder() -> Pid:
    return await Holder.start(name="holder")


async def _holder_callers(node: str) -> list[From]:
    return await call(("holder", node), "callers")


@export(name="tests.forged_replies.add")
def _add(a: int, b: int) -> int:
    return a + b


async def _task_on_b(delay: float, result: Any) -> None:
    """A task process started its own way: told its owner and ref, it replies after ``delay``."""
    owner, ref = await receive()
    await trio.sleep(delay)
    send_reply(owner, ref, result)


def _forged_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "forged" in r.getMessage()]


def _caller_of(sim: SimulatedCluster, server: Any, timeout: float) -> tuple[Pid, list[Any]]:
    """Start a process on ``a``, registered as ``caller``, that calls ``server`` once."""
    got: list[Any] = []

    async def caller() -> None:
        register("caller", self_pid())
        try:
            got.append(await call(server, "question", timeout))
        except (CallTimeoutError, CallExitError) as exc:
            got.append(exc)
        got.append(("mailbox", current_node().lookup(self_pid()).message_queue_len))
        await trio.sleep_forever()

    return sim.spawn("a", caller), got


async def _forge_from_c(caller: Pid, ref: Ref, server: Pid, what: str = "both") -> None:
    """What ``c`` sends: replies by pid, by name, via ``send_reply``; and/or a down signal."""
    node = current_node()
    if what != "down":
        for _ in range(50):  # a flood: one line in the log
            node.send(self_pid(), caller, Reply(ref, "forged"))
        node.router.send_named(self_pid(), "caller", "a@a", Reply(ref, "forged by name"))
        send_reply(caller, ref, "forged with send_reply")
    if what != "replies":
        node.router.down(caller, ref, server, "forged_down")


@pytest.mark.parametrize("what", ["replies", "down", "both"])
@pytest.mark.parametrize("server_node", ["b", "a"])
async def test_a_forged_reply_from_another_node_does_not_answer_a_call(
    beamlet_cluster: SimulatedCluster,
    autojump_clock: Any,
    caplog: pytest.LogCaptureFixture,
    server_node: str,
    what: str,
) -> None:
    """The server is on ``b`` (another node than the caller's) or on ``a`` (the caller's).

    ``c`` forges replies, a down signal for the call's monitor, or both.
    """
    sim = beamlet_cluster
    server_name = sim.name(server_node)
    holder = await sim.run(server_node, _start_holder)
    caller, got = _caller_of(sim, ("holder", server_name), 30.0)
    await trio.sleep(1)
    [held] = await sim.run("c", _holder_callers, server_name)
    assert held.pid == caller
    with caplog.at_level(logging.WARNING):
        await sim.run("c", _forge_from_c, caller, held.ref, holder, what)
        await trio.sleep(1)
        assert got == []  # still waiting: nothing from c answered

        async def answer() -> None:
            cast(("holder", server_name), "the real answer")

        await sim.run(server_node, answer)
        await trio.sleep(1)
    assert got == ["the real answer", ("mailbox", 0)]
    lines = _forged_lines(caplog)
    if server_node == "a" and what == "down":
        # The call's monitor of a local server is no monitor of a process on
        # another node: a down signal naming it changes nothing, as before.
        assert lines == []
        return
    assert len(lines) == 1, lines  # 50 + 3 forgeries and a down signal: one line
    kind = "down" if what == "down" else "reply"
    assert lines[0].startswith(f"connection to c@c refused a forged {kind} (only the node")
    assert ("Down(" if what == "down" else "Reply(") in lines[0]


async def test_a_forged_reply_does_not_end_a_call_before_its_timeout(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = beamlet_cluster
    holder = await sim.run("b", _start_holder)
    caller, got = _caller_of(sim, ("holder", "b@b"), 5.0)
    await trio.sleep(1)
    [held] = await sim.run("c", _holder_callers, "b@b")
    start = trio.current_time()
    with caplog.at_level(logging.WARNING):
        await sim.run("c", _forge_from_c, caller, held.ref, holder)
        await sim.wait_until(lambda: bool(got), timeout=10)
    assert trio.current_time() - start == pytest.approx(4.0, abs=0.01)  # 5 s from the call
    assert isinstance(got[0], CallTimeoutError), got
    assert got[1] == ("mailbox", 0)
    assert len(_forged_lines(caplog)) == 1


async def test_a_late_reply_from_the_right_node_is_dropped_quietly(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = beamlet_cluster
    await sim.run("b", _start_holder)
    caller, got = _caller_of(sim, ("holder", "b@b"), 2.0)
    await trio.sleep(3)
    assert isinstance(got[0], CallTimeoutError), got

    async def late() -> None:
        cast("holder", "too late")

    with caplog.at_level(logging.WARNING):
        await sim.run("b", late)
        await trio.sleep(1)
    assert got[1:] == [("mailbox", 0)]
    assert sim.node("a").lookup(caller).message_queue_len == 0  # dropped, not queued
    assert _forged_lines(caplog) == []


async def test_real_replies_from_other_nodes_are_taken(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A call by name and by pid, rpc, and a task on another node answer as before."""
    sim = beamlet_cluster
    holder = await sim.run("b", _start_holder)
    task_pid = sim.spawn("b", _task_on_b, 1.0, 42)

    async def from_a() -> list[Any]:
        results: list[Any] = [await call(("holder", "b@b"), "callers")]
        results.append(await call(holder, "callers"))
        results.append(await rpc("b@b", "tests.forged_replies.add", 20, 22))
        task = adopt_task(task_pid)  # a reply alias and a monitor of the task on b
        send(task_pid, (self_pid(), task.ref))
        results.append(await task.join(5))
        return results

    with caplog.at_level(logging.WARNING):
        results = await sim.run("a", from_a)
    assert results[:2] == [[], []]
    assert results[2] == 42
    assert results[3] == 42
    assert _forged_lines(caplog) == []


async def test_a_forged_task_reply_does_not_reach_the_owner(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A task on ``b``, whose reply alias ``c`` knows: ``join`` gets ``b``'s result."""
    sim = beamlet_cluster
    task_pid = sim.spawn("b", _task_on_b, 5.0, "the task's result")
    seen: list[Any] = []

    async def owner() -> None:
        task = adopt_task(task_pid)
        send(task_pid, (self_pid(), task.ref))
        seen.append((self_pid(), task.ref, task.pid))
        seen.append(await task.join(10))

    sim.spawn("a", owner)
    await sim.wait_until(lambda: bool(seen), timeout=5)
    pid, ref, task_pid = seen.pop()

    async def forge() -> None:
        send_reply(pid, ref, "forged")
        current_node().router.down(pid, ref, task_pid, "forged_down")

    with caplog.at_level(logging.WARNING):
        await sim.run("c", forge)
        await sim.wait_until(lambda: bool(seen), timeout=10)
    assert seen == ["the task's result"]
    assert len(_forged_lines(caplog)) == 1


async def test_a_reply_to_a_process_that_awaits_nothing_is_dropped_quietly(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = beamlet_cluster
    got: list[Any] = []

    async def idle() -> None:
        while True:
            got.append(await receive())

    pid = sim.spawn("a", idle)
    ref = sim.node("a").make_ref()

    async def stray() -> None:
        send_reply(pid, ref, "nobody asked")

    with caplog.at_level(logging.WARNING):
        await sim.run("c", stray)
        await trio.sleep(1)
    assert got == []
    assert _forged_lines(caplog) == []
