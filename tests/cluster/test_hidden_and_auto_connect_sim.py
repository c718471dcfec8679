"""Hidden nodes (D12, scenario 43) and the auto-connect policy (D11, scenario 46).

In the simulation, under ``MockClock(autojump_threshold=0)``: virtual time is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
from beamlet.actors import (
    Down,
    ExitSignal,
    link,
    monitor,
    open_node as open_local_node,
    receive,
    self_pid,
    send,
    trap_exits,
)
from beamlet.cluster import (
    NodeDown,
    NodeUp,
    connect,
    disconnect,
    monitor_node,
    monitor_nodes,
    nodes,
    pg,
    start_distribution,
)
from beamlet.cluster.simulation import simulated_cluster

A, B, C, H = "a@a", "b@b", "c@c", "h@h"


async def echo() -> None:
    while True:
        who, x = await receive()
        send(who, ("echo", x))


async def all_nodes() -> dict[str, list[str]]:
    return {kind: nodes(kind) for kind in ("visible", "hidden", "all")}


# -- hidden nodes --------------------------------------------------------------------------


async def test_scenario_43_a_hidden_node_is_in_no_ones_nodes_and_joins_no_mesh(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        await sim.add("h", seeds=["a"], hidden=True)
        await sim.wait_until(lambda: H in sim.distribution("a").nodes("hidden"))
        await trio.sleep(10)  # gossip would have spread it by now
        assert await sim.run("a", all_nodes) == {
            "visible": [B, C],
            "hidden": [H],
            "all": [B, C, H],
        }
        assert await sim.run("h", all_nodes) == {"visible": [], "hidden": [A], "all": [A]}
        for short in "bc":  # not connected transitively, neither way
            assert H not in sim.distribution(short).nodes("all")

        # It messages anyone it is told to, by an explicit use.
        pid = sim.spawn("b", echo)

        async def ping() -> Any:
            assert await connect(sim.address("b"))
            send(pid, (self_pid(), "hi"))
            return await receive(timeout=5), nodes("hidden")

        assert await sim.run("h", ping) == (("echo", "hi"), [A, B])
        assert H in sim.distribution("b").nodes("hidden")
        assert H not in sim.distribution("c").nodes("all")


async def test_d12_a_connection_is_hidden_when_either_side_is_hidden(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a"]) as sim:
        await sim.add("h", seeds=["a"], hidden=True)
        await sim.add("g", seeds=["h"], hidden=True)
        await sim.wait_until(lambda: "g@g" in sim.distribution("h").nodes("hidden"))
        assert sim.distribution("h").nodes("visible") == []
        assert sim.distribution("g").nodes("all") == [H]  # h does not pass a on


async def test_monitor_nodes_tells_of_hidden_nodes_only_when_asked(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a"]) as sim:
        seen: dict[str, list[Any]] = {"visible": [], "hidden": [], "all": []}

        async def watch(kind: str) -> None:
            monitor_nodes(True, node_type=kind)
            while True:
                seen[kind].append(await receive())

        for kind in seen:
            sim.spawn("a", watch, kind)
        await trio.lowlevel.checkpoint()
        await sim.add("b", seeds=["a"])
        await sim.add("h", seeds=["a"], hidden=True)
        await sim.wait_until(lambda: len(sim.distribution("a").nodes("all")) == 2)
        await sim.stop("h")
        await sim.wait_until(lambda: sim.distribution("a").nodes("all") == [B])
        await trio.sleep(0.1)
        assert seen["visible"] == [NodeUp(B)]
        assert [type(m) for m in seen["hidden"]] == [NodeUp, NodeDown]
        assert seen["hidden"][0] == NodeUp(H) and seen["hidden"][1].node == H
        assert seen["all"] == [NodeUp(B), *seen["hidden"]]


async def test_pg_leaves_hidden_nodes_out(autojump_clock: Any) -> None:
    async with simulated_cluster(["a"]) as sim:
        await sim.add("h", seeds=["a"], hidden=True)
        await sim.wait_until(lambda: H in sim.distribution("a").nodes("hidden"))

        async def member() -> None:
            await pg.join("workers", self_pid())
            await trio.sleep_forever()

        sim.spawn("h", member)
        sim.spawn("a", member)
        await trio.sleep(5)

        async def count() -> int:
            return len(pg.members("workers"))

        assert await sim.run("a", count) == 1
        assert await sim.run("h", count) == 1


async def test_links_and_monitors_work_over_a_hidden_connection(autojump_clock: Any) -> None:
    async with simulated_cluster(["a"]) as sim:
        await sim.add("h", seeds=["a"], hidden=True)
        await sim.wait_until(lambda: H in sim.distribution("a").nodes("hidden"))
        target = sim.spawn("a", echo)

        async def watch() -> Any:
            trap_exits(True)
            link(target)
            ref = monitor(target)
            await trio.sleep(1)
            disconnect(A)
            down = await receive(lambda m: isinstance(m, Down), timeout=5)
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            return down.ref == ref, down.reason, signal.reason

        assert await sim.run("h", watch) == (True, "noconnection", "noconnection")


# -- auto_connect ----------------------------------------------------------------------------


async def test_scenario_46_auto_connect_never_connects_only_when_asked(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"], auto_connect="never") as sim:
        pid = sim.spawn("b", echo)  # seeds are explicit: a and b are connected

        async def after_disconnect() -> Any:
            assert disconnect(B)
            await trio.sleep(10)  # no seed retry, no gossip reconnects it
            assert nodes() == []
            send(pid, (self_pid(), "lost"))  # dropped: no connection is made
            trap_exits(True)
            link(pid)
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            ref = monitor(pid)
            down = await receive(lambda m: isinstance(m, Down), timeout=5)
            monitor_node(B)
            node_down = await receive(lambda m: isinstance(m, NodeDown), timeout=5)
            assert nodes() == []
            assert await connect(B)  # an explicit connect does
            send(pid, (self_pid(), "found"))
            echo_ = await receive(lambda m: isinstance(m, tuple), timeout=5)
            return signal.reason, down.ref == ref, down.reason, node_down.node, echo_

        assert await sim.run("a", after_disconnect) == (
            "noconnection",
            True,
            "noconnection",
            B,
            ("echo", "found"),
        )


async def test_scenario_46_auto_connect_once_does_not_reconnect_by_itself(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"], auto_connect="once") as sim:
        pid = sim.spawn("b", echo)

        async def scenario() -> Any:
            send(pid, (self_pid(), "first"))
            first = await receive(timeout=5)
            assert disconnect(B)
            await trio.sleep(10)  # seeds, gossip from c: none reconnects to b
            after = nodes()
            send(pid, (self_pid(), "lost"))
            try:
                lost = await receive(timeout=5)
            except Exception as exc:
                lost = type(exc).__name__
            assert await connect(B)  # explicit: allowed again from now on
            send(pid, (self_pid(), "again"))
            return first, after, lost, await receive(timeout=5)

        assert await sim.run("a", scenario) == (
            ("echo", "first"),
            [C],
            "ReceiveTimeoutError",
            ("echo", "again"),
        )


async def test_auto_connect_once_accepts_the_other_side_reconnecting(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["b"]) as sim:  # b has no seeds; a is "once"
        await sim.add("a", seeds=["b"], auto_connect="once")
        await sim.wait_until(lambda: sim.nodes("a") == [B])

        async def cut() -> None:
            disconnect(B)

        await sim.run("a", cut)
        await sim.wait_until(lambda: sim.nodes("a") == [], timeout=1)
        await sim.run("b", connect, A)  # b asks: a accepts
        assert sim.nodes("a") == [B]


async def test_bad_policy_options_are_refused(autojump_clock: Any) -> None:
    async with open_local_node() as local:
        with pytest.raises(ValueError, match="auto_connect is one of always, once, never"):
            await start_distribution("x@127.0.0.1", node=local, auto_connect="sometimes")
        with pytest.raises(TypeError, match="hidden must be True or False"):
            await start_distribution("x@127.0.0.1", node=local, hidden="yes")
    async with simulated_cluster(["a"]) as sim:

        async def bad() -> None:
            nodes("invisible")

        with pytest.raises(ValueError, match="node_type is one of"):
            await sim.run("a", bad)

        async def bad_monitor() -> None:
            monitor_nodes(True, node_type="some")

        with pytest.raises(ValueError, match="node_type is one of"):
            await sim.run("a", bad_monitor)


# -- the flag in the handshake, and over real TCP ----------------------------------------


def test_the_hidden_bit_is_each_sides_own_and_authenticated() -> None:
    from beamlet.cluster._auth import Role
    from beamlet.cluster._connection import DEFAULT_FLAGS, Connection, State
    from beamlet.cluster._events import Capability

    cookie = "a-cookie-for-these-tests-0123456789"
    a = Connection(
        Role.INITIATOR,
        node_name="h@127.0.0.1",
        creation=1,
        cookie=cookie,
        flags=DEFAULT_FLAGS | Capability.HIDDEN,
    )
    b = Connection(Role.ACCEPTOR, node_name="b@127.0.0.1", creation=2, cookie=cookie)
    pending = [(b, a.initiate())]
    while pending:
        conn, data = pending.pop()
        conn.receive_data(data)
        conn.next_events()
        answer = conn.data_to_send()
        if answer:
            pending.append((a if conn is b else b, answer))
    assert a.state is b.state is State.CONNECTED
    assert b.peer_flags is not None and b.peer_flags & Capability.HIDDEN
    assert a.peer_flags is not None and not a.peer_flags & Capability.HIDDEN
    assert a.flags == b.flags == DEFAULT_FLAGS  # the shared capabilities


async def test_a_hidden_node_over_real_tcp() -> None:
    from beamlet.cluster import listen_address, open_node

    cookie = "a-cookie-for-these-tests-0123456789"
    async with open_node("v1@127.0.0.1", cookie=cookie) as visible:

        async def where() -> str | None:
            return listen_address()

        address = await visible.run(where)
        assert address is not None
        async with open_node("h1@127.0.0.1", cookie=cookie, hidden=True) as hidden:
            pid = visible.spawn(echo)

            async def ping() -> Any:
                assert await connect(address)
                send(pid, (self_pid(), "over tcp"))
                return await receive(timeout=10), nodes(), nodes("hidden")

            assert await hidden.run(ping) == (("echo", "over tcp"), [], ["v1@127.0.0.1"])
            assert await visible.run(all_nodes) == {
                "visible": [],
                "hidden": ["h1@127.0.0.1"],
                "all": ["h1@127.0.0.1"],
            }


async def test_auto_connect_never_still_queues_on_a_connection_under_way(
    autojump_clock: Any,
) -> None:
    """The policy starts no connection; a signal sent while one is being set up
    (here, a dial to a seed) waits for it, as with any other policy."""
    async with simulated_cluster(["b"]) as sim:
        pid = sim.spawn("b", echo)
        sim.delay(1.0)  # every byte takes a second: the handshake takes a few
        await sim.add("a", seeds=["b"], auto_connect="never")
        await sim.wait_until(lambda: B in sim.distribution("a").membership.handshakes, timeout=10)
        assert sim.nodes("a") == []

        async def ping() -> Any:
            send(pid, (self_pid(), "early"))
            return await receive(timeout=30)

        assert await sim.run("a", ping) == ("echo", "early")
