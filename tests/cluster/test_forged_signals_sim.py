"""A peer that holds the cookie cannot forge the runtime's signals as plain messages.

``Down``, ``ExitSignal``, ``NodeUp`` and ``NodeDown`` are what the runtime
puts in a mailbox when a monitor fires, a linked process exits or a node comes
or goes; processes act on what they name. Sent by another node as a plain
message (to a pid or a name; a hostile peer writes the frame itself,
``forge_send``), one is refused by the connection it arrives on (logged,
rate-limited) and dropped: a GenServer does not stop on a forged
``ExitSignal`` from its parent, a forged ``Down`` does not reach the process
whose monitor it names, a forged ``NodeDown`` does not reach a node monitor.
The real signals from that node, and the same values inside other messages,
still arrive; beamlet's own ``send`` refuses to send one to another node as a
plain message, with an error that says why.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    GenServer,
    Pid,
    Ref,
    call,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    trap_exits,
    whereis,
)
from beamlet.cluster import RUNTIME_SIGNALS, NodeDown, NodeUp, monitor_node, monitor_nodes
from beamlet.cluster.simulation import SimulatedCluster
from beamlet.supervisors import Supervisor
from hostile import forge_send

pytestmark = pytest.mark.trio


class Counter(GenServer):
    async def init(self) -> None:
        self.n = 0

    async def handle_call(self, request: Any, caller: Any) -> int:
        self.n += 1
        return self.n


async def _start_tree(ready: trio.Event) -> None:
    await Supervisor.start_link([Counter.child_spec(name="counter")], name="tree")
    ready.set()
    await trio.sleep_forever()  # the supervisor's parent stays


async def _whereis(name: str) -> Pid | None:
    return whereis(name)


async def _count() -> int:
    return await call(("counter", "a@a"), "inc")


@pytest.mark.parametrize("address", ["pid", "name"])
@pytest.mark.parametrize("reason", ["shutdown", "normal", ("shutdown", "forged")])
async def test_a_forged_exit_signal_from_the_parent_does_not_stop_a_gen_server(
    beamlet_cluster: SimulatedCluster,
    autojump_clock: Any,
    caplog: pytest.LogCaptureFixture,
    address: str,
    reason: Any,
) -> None:
    sim = beamlet_cluster
    ready = trio.Event()
    sim.spawn("a", _start_tree, ready)
    await ready.wait()
    counter = await sim.run("a", _whereis, "counter")
    tree = await sim.run("a", _whereis, "tree")
    assert await sim.run("b", _count) == 1

    async def forge() -> None:
        dest = counter if address == "pid" else ("counter", "a@a")
        for _ in range(100):  # a flood: one line in the log
            forge_send(dest, ExitSignal(tree, reason))

    with caplog.at_level(logging.WARNING):
        await sim.run("b", forge)
        await trio.sleep(1)
    assert await sim.run("a", _whereis, "counter") == counter
    assert await sim.run("c", _count) == 2  # the same process: its state is kept
    refused = [r for r in caplog.records if "forged message (ExitSignal" in r.getMessage()]
    assert len(refused) == 1
    assert refused[0].getMessage().startswith("connection to b@b refused")


async def test_a_forged_down_does_not_reach_the_watcher(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    got: list[Any] = []
    ready = trio.Event()

    async def watcher() -> None:
        target = spawn(trio.sleep_forever)
        ref = monitor(target)
        got.append((target, ref))
        ready.set()
        while True:
            got.append(await receive())

    pid = sim.spawn("a", watcher)
    await ready.wait()
    target, ref = got.pop()

    async def forge() -> None:
        forge_send(pid, Down(ref, target, "killed"))
        forge_send(pid, ExitSignal(target, "killed"))
        send(pid, ("wrapped", Down(ref, target, "killed")))  # inside a message: data

    await sim.run("b", forge)
    await trio.sleep(1)
    assert got == [("wrapped", Down(ref, target, "killed"))]


async def test_real_signals_from_another_node_still_arrive(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    got: list[Any] = []
    ready = trio.Event()

    remote = sim.spawn("b", trio.sleep_forever)

    async def trapping() -> None:
        trap_exits(True)
        got.append(monitor(remote))
        ready.set()
        while True:
            got.append(await receive())

    pid = sim.spawn("a", trapping)
    await ready.wait()
    await trio.sleep(1)  # the monitor reaches b
    ref = got.pop()

    async def exits() -> Pid:
        send_exit(pid, "please")  # an exit signal from this process on b: real
        send_exit(remote, "done")
        return self_pid()

    sender = await sim.run("b", exits)
    await trio.sleep(1)
    assert got == [ExitSignal(sender, "please"), Down(ref, remote, "done")]


async def test_node_events_cannot_be_forged_either(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A cache that flushes on NodeDown, or a tracker that acts on NodeUp,
    # would act on a forged one: only the runtime delivers them.
    sim = beamlet_cluster
    got: list[Any] = []
    ready = trio.Event()

    async def subscriber() -> None:
        monitor_nodes(True)
        monitor_node("c@c")
        ready.set()
        while True:
            got.append(await receive())

    pid = sim.spawn("a", subscriber)
    await ready.wait()

    async def forge() -> None:
        forge_send(pid, NodeDown("c@c", "forged"))
        forge_send(pid, NodeUp("x@x"))
        send(pid, ("wrapped", NodeDown("c@c")))

    with caplog.at_level(logging.WARNING):
        await sim.run("b", forge)
        await trio.sleep(1)
    assert got == [("wrapped", NodeDown("c@c"))]
    assert any("forged message (NodeDown" in r.getMessage() for r in caplog.records)
    sim.crash("c")  # the real one still arrives
    await trio.sleep(10)
    assert [type(m) for m in got[1:]] == [NodeDown, NodeDown]
    assert {m.node for m in got[1:]} == {"c@c"}


@pytest.mark.parametrize(
    "signal",
    [
        lambda pid: Down(Ref("a@a", 1, 1), pid, "killed"),
        lambda pid: ExitSignal(pid, "shutdown"),
        lambda pid: NodeUp("x@x"),
        lambda pid: NodeDown("x@x", "forged"),
    ],
    ids=["Down", "ExitSignal", "NodeUp", "NodeDown"],
)
async def test_send_refuses_a_runtime_signal_to_another_node_and_says_why(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any, signal: Any
) -> None:
    sim = beamlet_cluster
    box = sim.spawn("a", trio.sleep_forever)
    seen: list[Any] = []

    async def sender() -> None:
        msg = signal(self_pid())
        kind = type(msg).__name__
        for dest in (box, ("box", "a@a")):
            with pytest.raises(TypeError, match=f"cannot send a {kind} to .*inside another value"):
                send(dest, msg)
        send(box, ("wrapped", msg))  # as data it crosses
        send(self_pid(), msg)  # and on its own node any process may pass one on
        seen.append(await receive(timeout=1))
        assert {Down, ExitSignal, NodeUp, NodeDown} == RUNTIME_SIGNALS

    await sim.run("b", sender)
    assert len(seen) == 1 and type(seen[0]) in RUNTIME_SIGNALS
