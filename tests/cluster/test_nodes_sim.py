"""Nodes in the simulation: node events, ticks, connections, the full mesh, discovery.

Every test runs a cluster of nodes in one ``trio.run`` over the in-memory
network, under ``MockClock(autojump_threshold=0)``: virtual time is exact.
Test names cite the rules of otp-semantics.md (D for distribution).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    link,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    trap_exits,
)
from beamlet.cluster import (
    CookieError,
    DNSPoll,
    MemoryNetwork,
    NodeDown,
    NodeUp,
    connect,
    disconnect,
    monitor_node,
    monitor_nodes,
    nodes,
    open_node,
)
from beamlet.cluster.simulation import simulated_cluster

A, B, C = "a@a", "b@b", "c@c"
COOKIE = "a-cookie-for-these-tests-0123456789"


async def forever() -> None:
    await trio.sleep_forever()


async def echo() -> None:
    """Answer ``(pid, x)`` with ``("echo", x)``; exit with ``x`` on ``("exit", x)``."""
    while True:
        msg = await receive()
        if msg[0] == "exit":
            raise Exit(msg[1])
        send(msg[0], ("echo", msg[1]))


# -- node events -------------------------------------------------------------------------


async def test_d14_nodeup_comes_before_any_message_and_nodedown_after_all(
    autojump_clock: Any,
) -> None:
    # a dials b; b (the acceptor) is up first and talks at once, so its first
    # messages arrive together with the end of a's handshake.
    seeds = {"a": ["b"], "b": []}
    async with simulated_cluster(["a", "b"], connect=False, seeds=seeds) as sim:
        got: list[Any] = []

        async def subscriber() -> None:
            monitor_nodes(True)
            while True:
                got.append(await receive())

        async def chatty() -> None:
            monitor_nodes(True)
            await receive(lambda m: m == NodeUp(A))  # b is up first: a is still in its handshake
            for i in range(20):
                send(("sub", A), ("msg", i))
            await trio.sleep(1)
            for i in range(20, 40):
                send(("sub", A), ("msg", i))

        sim.spawn("a", subscriber, name="sub")
        sim.spawn("b", chatty)
        await sim.wait_until(lambda: len(got) == 41)
        await sim.stop("b")
        await sim.wait_until(lambda: len(got) == 42)
        await sim.start("b")
        sim.spawn("b", chatty)
        await sim.wait_until(lambda: len(got) == 83)
        first = [NodeUp(B)] + [("msg", i) for i in range(40)]
        assert got[:41] == first
        assert got[41] == NodeDown(B, "connection_closed")
        assert got[42:] == first


async def test_d14_nodedown_comes_before_the_nodeup_of_a_reconnection(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        got: list[Any] = []

        async def subscriber() -> None:
            monitor_nodes(True)
            while True:
                msg = await receive()
                assert (B in nodes()) == isinstance(msg, NodeUp)  # D14: nodes() agrees
                got.append(msg)

        sim.spawn("a", subscriber)
        await trio.sleep(0.1)
        for _ in range(3):
            await sim.restart("b")
            await sim.wait_connected()
        await sim.wait_until(lambda: len(got) == 6)
        assert [type(m) for m in got] == [NodeDown, NodeUp] * 3
        assert all(m.node == B for m in got)


async def test_d14_monitor_node_delivers_one_nodedown(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:

        async def scenario() -> list[Any]:
            monitor_node(B)
            monitor_node(B)  # two calls, two messages
            monitor_node("ghost@nowhere")  # unreachable: at once
            first = await receive(timeout=0.5)
            sim.crash("b")
            return [first, await receive(timeout=10), await receive(timeout=10)]

        first, d1, d2 = await sim.run("a", scenario)
        assert first == NodeDown("ghost@nowhere", "connection_setup_failed")
        assert d1.node == B and d2.node == B

        async def quiet() -> Any:
            try:
                return await receive(timeout=10)
            except trio.TooSlowError:
                return None

        assert await sim.run("a", quiet) is None  # once per call, not again


# -- ticks -------------------------------------------------------------------------------


@pytest.mark.parametrize("ticktime", [4.0, 10.0])
async def test_d9_tick_a_silent_peer_is_declared_down_within_t_plus_minus_t_over_4(
    autojump_clock: Any, ticktime: float
) -> None:
    async with simulated_cluster(["a", "b"], ticktime=ticktime) as sim:
        downs: dict[str, float] = {}

        async def subscriber(me: str) -> None:
            monitor_nodes(True)
            msg = await receive(lambda m: isinstance(m, NodeDown))
            assert msg.reason == "net_tick_timeout"
            downs[me] = trio.current_time()

        sim.spawn("a", subscriber, "a")
        sim.spawn("b", subscriber, "b")
        await trio.sleep(ticktime * 3.3)  # idle but ticking: still up
        assert sim.nodes("a") == [B] and not downs
        partitioned_at = trio.current_time()
        heard = {
            "a": sim.distribution("a").peers[B].ticks.last_received,
            "b": sim.distribution("b").peers[A].ticks.last_received,
        }
        sim.partition({"a"}, {"b"})
        await sim.wait_until(lambda: len(downs) == 2, timeout=ticktime * 2)
        for me, at in downs.items():
            assert ticktime * 3 / 4 <= at - partitioned_at <= ticktime * 5 / 4
            # exactly ticktime after the last bytes heard from the peer
            assert at == pytest.approx(heard[me] + ticktime, abs=1e-9)
            assert partitioned_at - ticktime / 4 <= heard[me] <= partitioned_at
        assert sim.nodes("a") == [] and sim.nodes("b") == []


async def test_d9_tick_a_connected_node_stays_up_for_many_ticktimes(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=2.0) as sim:
        events: list[Any] = []

        async def subscriber() -> None:
            monitor_nodes(True)
            while True:
                events.append(await receive())

        sim.spawn("a", subscriber)
        pid = sim.spawn("b", echo)

        async def sometimes_busy() -> None:
            for i in range(40):
                send(pid, (self_pid(), i))
                await receive(timeout=1)
                await trio.sleep(1.3)

        await sim.run("a", sometimes_busy)  # ~60 s: traffic on a-b, only ticks on a-c and b-c
        await trio.sleep(30)
        assert events == []
        assert sim.nodes("a") == [B, C] and sim.nodes("c") == [A, B]


async def test_d9_heal_reconnects_through_the_seeds(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=4.0, seed_interval=1.0) as sim:
        sim.partition({"a"}, {"b", "c"})
        await sim.wait_until(lambda: sim.nodes("a") == [], timeout=10)
        assert sim.nodes("b") == [C]
        await trio.sleep(5)  # the seeds are retried, and refused
        assert sim.nodes("a") == []
        healed_at = trio.current_time()
        sim.heal()
        await sim.wait_connected(timeout=5)
        assert trio.current_time() - healed_at <= 1.0 + 0.1  # within one seed interval
        pid = sim.spawn("c", echo)

        async def ping() -> Any:
            send(pid, (self_pid(), "after heal"))
            return await receive(timeout=1)

        assert await sim.run("a", ping) == ("echo", "after heal")


# -- connections -------------------------------------------------------------------------


async def test_d13_connect_by_name_or_address_and_a_wrong_cookie_gives_pang(
    autojump_clock: Any,
) -> None:
    network = MemoryNetwork()

    def options(host: str, cookie: str) -> dict[str, Any]:
        return {"cookie": cookie, "transport": network.transport(host), "port": 4370}

    cookie = "the-right-cookie-0123456789"
    async with (
        open_node("a@a", **options("a", cookie)) as a,
        open_node("b@b", **options("b", cookie)) as b,
        open_node("x@x", **options("x", "the-wrong-cookie-0123456789")) as x,
    ):
        assert await a.run(connect, "b:4370")  # by address
        assert await a.run(connect, "b:4370")  # already: still true
        assert await b.run(nodes_of) == [A]
        assert await b.run(connect, A)  # by name, connected
        assert not await x.run(connect, "a:4370")  # pang: wrong cookie
        assert not await a.run(connect, "x:4370")
        assert not await a.run(connect, "ghost@nowhere")  # no address known
        assert await a.run(nodes_of) == [B] and await x.run(nodes_of) == []


async def nodes_of() -> list[str]:
    return nodes()


async def test_d13_disconnect_breaks_links_and_the_seeds_reconnect(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        remote = sim.spawn("b", forever)

        async def scenario() -> list[Any]:
            trap_exits(True)
            monitor_nodes(True)
            link(remote)
            await trio.sleep(0.5)
            assert disconnect(B)
            assert not disconnect("ghost@nowhere")
            got = [await receive(timeout=1), await receive(timeout=1)]
            got.append(await receive(timeout=5))  # up again, through the seeds
            return got

        got = await sim.run("a", scenario)
        assert got[:2] == [ExitSignal(remote, "noconnection"), NodeDown(B, "disconnect")]
        assert got[2] == NodeUp(B)


async def test_d11_first_use_connects_and_what_is_sent_meanwhile_arrives_in_order(
    autojump_clock: Any,
) -> None:
    no_seeds: dict[str, list[str]] = {"a": [], "b": []}
    async with simulated_cluster(["a", "b"], connect=False, seeds=no_seeds) as sim:
        got: list[Any] = []

        async def sink() -> None:
            trap_exits(True)
            while True:
                got.append(await receive())

        sink_pid = sim.spawn("b", sink, name="sink")

        async def scenario() -> list[Any]:
            trap_exits(True)
            assert nodes() == []
            assert await connect("b:4370")  # a learns b's address
            assert disconnect(B)
            while nodes():  # noqa: ASYNC110
                await trio.sleep(0.01)
            await trio.sleep(1)
            # not connected now: the first send connects, everything waits in order
            for i in range(50):
                send(("sink", B), i)
            link(sink_pid)
            ref = monitor(sink_pid)
            send(sink_pid, "last")
            await trio.sleep(1)
            send_exit(sink_pid, "kill")
            down = await receive(lambda m: isinstance(m, Down), timeout=5)
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            return [nodes(), down.ref == ref, down.reason, signal]

        after, same_ref, reason, signal = await sim.run("a", scenario)
        assert after == [B]
        assert got == [*range(50), "last"]
        assert same_ref and reason == "killed"
        assert signal == ExitSignal(sink_pid, "killed")


# -- full mesh ---------------------------------------------------------------------------


async def test_d12_full_mesh_a_node_that_joins_one_member_connects_to_the_rest(
    autojump_clock: Any,
) -> None:
    seeds = {"a": [], "b": ["a"], "c": ["b"]}
    async with simulated_cluster(["a", "b", "c"], connect=False, seeds=seeds) as sim:
        await sim.wait_connected(timeout=5)  # c only knew b, b only knew a
        await sim.add("d", seeds=["c"])
        await sim.wait_connected(timeout=5)
        for short in "abcd":
            assert len(sim.nodes(short)) == 3

        assert await sim.run("a", nodes_of) == ["b@b", "c@c", "d@d"]


async def test_d12_connect_all_false_keeps_only_the_connections_made(
    autojump_clock: Any,
) -> None:
    seeds = {"a": [], "b": ["a"], "c": ["a"]}
    async with simulated_cluster(
        ["a", "b", "c"], connect=False, seeds=seeds, connect_all=False
    ) as sim:
        await sim.wait_until(lambda: sim.nodes("a") == [B, C])
        await trio.sleep(10)  # b and c heard of each other, and stay apart
        assert sim.nodes("b") == [A] and sim.nodes("c") == [A]
        pid = sim.spawn("c", echo)

        async def ping() -> Any:  # an explicit use connects
            send(pid, (self_pid(), "direct"))
            return await receive(timeout=5)

        assert await sim.run("b", ping) == ("echo", "direct")
        assert sim.nodes("b") == [A, C]


# -- discovery ---------------------------------------------------------------------------


async def test_dns_poll_connects_to_the_addresses_the_resolver_returns(
    autojump_clock: Any,
) -> None:
    answer: list[str] = []

    async def resolver(query: str) -> list[str]:
        assert query == "cluster.internal"
        return list(answer)

    dns = DNSPoll("cluster.internal", 4370, interval=5.0, resolver=resolver)
    no_seeds: dict[str, list[str]] = {"a": [], "b": []}
    async with simulated_cluster(["a", "b"], connect=False, seeds=no_seeds, discovery=[dns]) as sim:
        await trio.sleep(12)
        assert sim.nodes("a") == [] and sim.nodes("b") == []
        answer.append("a")  # the DNS name now resolves to a
        changed = trio.current_time()
        await sim.wait_until(lambda: sim.nodes("a") == [B], timeout=10)
        assert trio.current_time() - changed <= 5.0  # within one interval
        answer.extend(["b", "c"])
        await sim.add("c", seeds=[])
        await sim.wait_connected(timeout=5.0)
        assert sim.nodes("c") == [A, B]


async def test_d11_d16_nodes_dialling_each_other_at_once_keep_one_connection_and_lose_nothing(
    autojump_clock: Any,
) -> None:
    # After a partition both nodes know each other's address; both send at the
    # same instant, so both dial at once. They must settle on one connection
    # without losing or reordering anything sent after the heal.
    async with simulated_cluster(["a", "b"], seed_interval=1000.0) as sim:
        got: dict[str, list[Any]] = {"a": [], "b": []}
        events: dict[str, list[Any]] = {"a": [], "b": []}

        async def sink(me: str) -> None:
            monitor_nodes(True)
            while True:
                msg = await receive()
                (events if isinstance(msg, NodeUp | NodeDown) else got)[me].append(msg)

        sim.spawn("a", sink, "a", name="sink")
        sim.spawn("b", sink, "b", name="sink")
        sim.partition({"a"}, {"b"})
        await sim.wait_until(lambda: len(events["a"]) == 1 and len(events["b"]) == 1)
        sim.heal()

        async def talk(to: str) -> None:
            for i in range(100):
                send(("sink", to), i)
                if i % 10 == 0:
                    await trio.lowlevel.checkpoint()

        for _round in range(3):
            sim.spawn("a", talk, B)
            sim.spawn("b", talk, A)
            await sim.wait_until(lambda: len(got["a"]) == 100 and len(got["b"]) == 100)
            assert got["a"] == list(range(100)) and got["b"] == list(range(100))
            assert [type(m) for m in events["a"]] == [NodeDown, NodeUp]
            assert [type(m) for m in events["b"]] == [NodeDown, NodeUp]
            assert len(sim.nodes("a")) == 1
            await trio.sleep(10)  # nothing more happens: no second connection, no flap
            assert len(got["a"]) == 100 and len(events["a"]) == 2 and len(events["b"]) == 2
            got["a"].clear()
            got["b"].clear()
            events["a"].clear()
            events["b"].clear()
            sim.partition({"a"}, {"b"})
            await sim.wait_until(lambda: len(events["a"]) == 1 and len(events["b"]) == 1)
            sim.heal()


async def test_start_distribution_refuses_a_weak_cookie_and_bad_seeds_at_once() -> None:
    network = MemoryNetwork()
    with pytest.raises(CookieError, match="too regular"):
        async with open_node("a@a", cookie="a" * 32, transport=network.transport("a")):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="host:port"):
        async with open_node(
            "a@a", cookie=COOKIE, transport=network.transport("a"), seeds=["nowhere"]
        ):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="name@host"):
        async with open_node("a@b@c", cookie=COOKIE, transport=network.transport("a")):
            pass  # pragma: no cover
