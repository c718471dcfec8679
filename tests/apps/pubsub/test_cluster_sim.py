"""The cluster adapter in the simulation: fan-out on arrival, partitions, crashes, rejoins,
and shards that survive any message."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import From, Pid, Ref, send
from beamlet.actors.lowlevel import Call
from beamlet.apps.pubsub import PubSub, broadcast, dispatcher, stats
from beamlet.apps.pubsub._batch import pack_batch
from beamlet.apps.pubsub.testing import _Inbox, _listener
from beamlet.cluster import encode, nodes, pg
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster
from hostile import throw
from hypothesis import given, settings, strategies as st

PS = "beamlet_conformance"  # the name _listener subscribes in


async def _holder(ready: trio.Event) -> None:
    await PubSub.start_link(PS)
    ready.set()
    await trio.sleep_forever()


async def start_pubsub(sim: SimulatedCluster, *shorts: str) -> None:
    for short in shorts:
        ready = trio.Event()
        sim.spawn(short, _holder, ready)
        await ready.wait()


async def listen(sim: SimulatedCluster, short: str, topic: str = "t") -> _Inbox:
    inbox = _Inbox(short)
    started = trio.Event()
    sim.spawn(short, _listener, [(topic, None, None)], inbox, started, None)
    await started.wait()
    return inbox


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def shard_members(sim: SimulatedCluster, short: str) -> set[str]:
    pids = await sim.run(short, _call, pg.members, ("beamlet.pubsub", PS, 0))
    return {p.node for p in pids}


async def until_shards(sim: SimulatedCluster, short: str, expected: set[str]) -> None:
    with trio.fail_after(60):
        while await shard_members(sim, short) != expected:  # noqa: ASYNC110 - polls another node
            await trio.sleep(0.1)


async def test_one_wire_message_per_remote_node_fanned_out_there(autojump_clock: Any) -> None:
    calls: list[tuple[str, int]] = []

    @dispatcher("tests.pubsub.counting")
    def counting(entries: list[Any], from_pid: Any, message: Any) -> None:
        calls.append((entries[0][0].node, len(entries)))
        for pid, _ in entries:
            send(pid, message)

    async with simulated_cluster(["a", "b", "c"]) as sim:
        await start_pubsub(sim, "a", "b", "c")
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        inboxes = [await listen(sim, short) for short in "bc" for _ in range(10)]
        await sim.run("a", _call, broadcast, PS, "t", "hi", "tests.pubsub.counting")
        for inbox in inboxes:
            await inbox.until("fan-out", lambda items: items == ["hi"], 5)
        assert sorted(calls) == [("b@b", 10), ("c@c", 10)]  # once per node, all its entries
        sent = await sim.run("a", _call, stats, PS)
        assert sent["remote_sent"] == 2
        for short in "bc":
            assert (await sim.run(short, _call, stats, PS))["remote_received"] == 1


async def test_a_broadcast_during_a_partition_is_lost_not_replayed(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=4.0) as sim:
        await start_pubsub(sim, "a", "b", "c")
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        here, b, c = await listen(sim, "a"), await listen(sim, "b"), await listen(sim, "c")

        sim.partition({"a"}, {"b", "c"})
        await sim.wait_until(lambda: sim.nodes("a") == [])
        await until_shards(sim, "a", {"a@a"})
        start = trio.current_time()
        await sim.run("a", _call, broadcast, PS, "t", "during")  # returns: at most once
        assert trio.current_time() == start  # and without waiting
        await here.until("local during a partition", lambda items: items == ["during"], 5)
        await sim.run("b", _call, broadcast, PS, "t", "b side")
        await c.until("the other side still talks", lambda items: items == ["b side"], 5)

        sim.heal()
        await sim.wait_until(lambda: sim.nodes("a") == ["b@b", "c@c"], timeout=120)
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        await until_shards(sim, "b", {"a@a", "b@b", "c@c"})
        await sim.run("a", _call, broadcast, PS, "t", "after")
        await b.until("after the heal", lambda items: "after" in items, 5)
        await c.until("after the heal", lambda items: "after" in items, 5)
        assert b.items == ["b side", "after"]  # "during" never arrives
        assert c.items == ["b side", "after"]
        assert here.items == ["during", "after"]


async def test_a_crashed_node_costs_nothing_and_a_restarted_one_rejoins(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=4.0) as sim:
        await start_pubsub(sim, "a", "b", "c")
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        b = await listen(sim, "b")
        sim.crash("c")
        # Before anyone notices, then after: a broadcast never fails.
        await sim.run("a", _call, broadcast, PS, "t", 1)
        await sim.wait_until(lambda: "c@c" not in sim.nodes("a"))
        await until_shards(sim, "a", {"a@a", "b@b"})
        await sim.run("a", _call, broadcast, PS, "t", 2)
        await b.until("b still hears a", lambda items: items == [1, 2], 5)

        await sim.restart("c")
        await start_pubsub(sim, "c")
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        c = await listen(sim, "c")
        await sim.run("a", _call, broadcast, PS, "t", 3)
        await c.until("the restarted node hears a", lambda items: items == [3], 5)
        await b.until("b too", lambda items: items == [1, 2, 3], 5)


async def test_direct_broadcast_to_a_node_that_went_away_returns(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"], ticktime=4.0) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        sim.crash("b")
        await sim.wait_until(lambda: sim.nodes("a") == [])
        from beamlet.apps.pubsub import direct_broadcast

        assert await sim.run("a", _call, direct_broadcast, "b@b", PS, "t", 1) is None
        with pytest.raises(TypeError):
            await sim.run("a", _call, direct_broadcast, "b@b", PS, "t", object())
        assert await sim.run("a", _call, nodes) == []


# -- shards survive any message ---------------------------------------------------------

A, B = "a@a", "b@b"
SHARD = f"{PS}.Adapter.0"
_names = st.text(alphabet="xyzé0 ", max_size=6)
_pids = st.builds(Pid, st.sampled_from([A, B, "x@y"]), st.integers(0, 2**40), st.integers(1, 2**32))
_refs = st.builds(Ref, st.sampled_from([A, B]), st.integers(0, 2**40), st.integers(1, 2**32))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _names, _pids
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_names, inner, max_size=3),
    ),
    max_leaves=8,
)
_broadcasts = st.one_of(
    st.tuples(st.one_of(st.just("t"), _values), _values).map(list),  # [topic, message]
    st.tuples(
        st.one_of(st.just("t"), _values),  # topic
        _values,  # message
        st.one_of(st.sampled_from(["beamlet.pubsub", "tests.pubsub.raising"]), _values),
        st.one_of(st.none(), _pids, _values),  # from_pid
    ).map(list),
)
_entries = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.one_of(st.just("t"), _values), _values).map(lambda t: encode([*t])[1:]),
    st.tuples(
        st.one_of(st.just("t"), _values),
        st.one_of(st.sampled_from(["beamlet.pubsub", "tests.pubsub.raising"]), _values),
        st.one_of(st.none(), _pids, _values),
        _values,
    ).map(lambda t: encode([[*t[:3]], t[3]])[1:]),
)
_terms = st.one_of(
    _values,
    _broadcasts,
    _broadcasts.map(lambda t: t[:3]),
    st.binary(max_size=40),  # a batch, malformed
    st.lists(_entries, max_size=4).map(pack_batch),  # a batch, its entries good or bad
    st.builds(Call, st.builds(From, _pids, _refs), _values),
)
_actions = st.lists(
    st.tuples(st.sampled_from(["call", "cast", "send"]), st.sampled_from(["a", "b"]), _terms),
    min_size=1,
    max_size=10,
)


@dispatcher("tests.pubsub.raising")
def _raising(entries: list[Any], from_pid: Any, message: Any) -> None:
    raise RuntimeError("a dispatcher that fails")


async def _scenario(actions: list[tuple[str, str, Any]]) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {A, B})
        inbox = await listen(sim, "b")
        before = sim.node("b").whereis(SHARD)
        for how, source, term in actions:
            await sim.run(source, throw, (SHARD, B), how, term)
        await trio.sleep(1)
        assert sim.node("b").whereis(SHARD) == before  # never crashed nor restarted
        await sim.run("a", _call, broadcast, PS, "t", "still serving")
        await inbox.until("after junk", lambda items: "still serving" in items, 5)


@settings(max_examples=25, deadline=None)
@given(actions=_actions)
def test_shards_survive_any_term(actions: list[tuple[str, str, Any]]) -> None:
    trio.run(_scenario, actions, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_malformed_broadcast_is_refused_logged_and_counted(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {A, B})
        inbox = await listen(sim, "b")
        for junk in [
            [7, "m"],
            ["t", "m", "no.such.dispatcher", None],
            ["t", "m", "beamlet.pubsub", "not a pid"],
            ["t", "m", "tests.pubsub.raising", None],
            ["t", "m", "beamlet.pubsub"],
            "hello",
        ]:
            await sim.run("a", throw, (SHARD, B), "send", junk)
        assert await sim.run("a", throw, (SHARD, B), "call", "status?") is None
        await sim.run("a", _call, broadcast, PS, "t", "ok")
        await inbox.until("after junk", lambda items: items == ["ok"], 5)
        assert (await sim.run("b", _call, stats, PS))["bad_input"] == 7
        refused = [r.getMessage() for r in caplog.records if r.name == "beamlet.apps.pubsub"]
        assert len(refused) == 1  # rate-limited: one line, the rest counted
        assert refused[0] == f"{SHARD} refused a malformed broadcast: [7, 'm']"
