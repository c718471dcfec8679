"""A peer that holds the cookie poses as presence replicas: bounded, and the others are served.

Heartbeats under any number of made-up node names cost a bounded table
(``MAX_REPLICAS``: the replica down the longest makes room; with all up, the
newcomer is refused); a transfer request or a transfer from a replica the
shard does not know is ignored (no state for strangers, nothing sent to a
node named only by a request); a plain message or a broadcast posing as the
shard's parent's exit signal does not stop it. Meanwhile the real replicas
keep replicating.
"""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from beamlet.actors import ExitSignal, Pid, whereis
from beamlet.apps.presence import _tracker
from beamlet.apps.presence._errors import MalformedMessageError
from beamlet.apps.presence._messages import Heartbeat, TransferAck, TransferReq
from beamlet.apps.presence._tracker import (
    MAX_REPLICAS,
    ReplicaEvent,
    SendTo,
    TrackerCore,
    TrackerOptions,
)
from beamlet.apps.pubsub import broadcast
from beamlet.cluster.simulation import simulated_cluster
from hostile import forge_send
from hypothesis import given, settings, strategies as st
from presence_nodes import PR, PS, Nodes

SHARD = f"{PR}.shard0"
SHARD_TOPIC = f"beamlet_presence:{PR}:0"
OPTIONS = TrackerOptions(broadcast_period=1.0, max_silent_periods=2, down_period=5.0)


def core(name: str = "a@h") -> TrackerCore:
    return TrackerCore(name, 1, OPTIONS, now=0.0)


# -- the core ---------------------------------------------------------------------------


def test_heartbeats_under_made_up_names_cost_a_bounded_table() -> None:
    c = core()
    for i in range(MAX_REPLICAS):
        c.handle(Heartbeat((f"n{i}@h", 1), {(f"n{i}@h", 1): 0}, None), 1.0)
    assert len(c.replicas) == MAX_REPLICAS
    # All up: one more name is refused, and nothing changes.
    with pytest.raises(MalformedMessageError, match=r"already keeps 1024 replicas"):
        c.handle(Heartbeat(("late@h", 1), {}, None), 2.0)
    assert len(c.replicas) == MAX_REPLICAS and "late@h" not in c.replicas
    # A known replica is still heard.
    assert c.handle(Heartbeat(("n0@h", 1), {}, None), 2.0) == []
    assert c.replicas["n0@h"].last_heartbeat_at == 2.0
    # Down replicas make room, the one down the longest first.
    c.check_downs(6.5)  # silent since 1.0: all down but n0
    c.handle(Heartbeat(("n1@h", 1), {}, None), 6.6)  # n1 is up again, heard last
    c.check_downs(8.0)  # n0 goes down too, at 8.0 (its last heartbeat was at 2.0)
    actions = c.handle(Heartbeat(("new@h", 7), {}, None), 9.0)
    assert actions[0] == ReplicaEvent("permdown", ("n2@h", 1))  # down since 1.0, first
    assert ReplicaEvent("up", ("new@h", 7)) in actions
    assert len(c.replicas) == MAX_REPLICAS and "n2@h" not in c.replicas
    assert not c.state.knows(("n2@h", 1))
    assert len(c.state.clocks()) <= MAX_REPLICAS + 1  # what our heartbeats carry


def _flood(names: list[tuple[int, float]], cap: int) -> None:
    old = _tracker.MAX_REPLICAS
    _tracker.MAX_REPLICAS = cap
    try:
        c = core()
        now = 0.0
        for name, step in names:
            now += step
            try:
                c.handle(Heartbeat((f"n{name}@h", 1), {}, None), now)
            except MalformedMessageError:
                assert len(c.replicas) == cap
                assert all(r.status == "up" for r in c.replicas.values())
            c.check_downs(now)
            assert len(c.replicas) <= cap
            # The CRDT knows exactly the replicas the shard keeps a record of.
            assert {r for r in c.state.replicas() if r != c.replica} == {
                r.ref for r in c.replicas.values()
            }
    finally:
        _tracker.MAX_REPLICAS = old


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from([0.0, 0.5, 3.0, 6.0])), max_size=60
    ),
    cap=st.integers(1, 6),
)
def test_the_table_never_grows_past_the_bound(names: list[tuple[int, float]], cap: int) -> None:
    _flood(names, cap)


def test_strangers_get_no_transfer_and_their_transfers_are_ignored() -> None:
    a, b = core("a@h"), core("b@h")
    b.track(Pid("b@h", 1, 1), "lobby", "bob", {})
    b.on_heartbeat_tick(0.0)
    # Not heard from: no answer, nothing sent anywhere (the name could be any host).
    assert b.handle(TransferReq(1, ("x@10.0.0.1", 1), {}), 1.0) == []
    assert b.handle(TransferReq(1, a.replica, {}), 1.0) == []
    # Another incarnation of a known name: not the one known.
    b.handle(Heartbeat(a.replica, {a.replica: 0}, None), 1.0)
    assert b.handle(TransferReq(1, ("a@h", 99), {}), 1.0) == []
    (answer,) = b.handle(TransferReq(2, a.replica, {}), 1.0)
    assert type(answer) is SendTo and answer.node == "a@h"
    # A transfer from a replica a has not heard from is not merged.
    assert type(answer.message) is TransferAck
    assert a.handle(answer.message, 1.0) == []
    assert a.state.size() == 0


def test_a_section_claiming_a_huge_clock_costs_what_it_holds() -> None:
    a, b = core("a@h"), core("b@h")
    b.track(Pid("b@h", 1, 1), "lobby", "bob", {})
    (hb,) = [x.message for x in b.on_heartbeat_tick(0.0) if type(x.message) is Heartbeat]
    a.handle(hb, 0.1)
    assert a.state.size() == 1
    # A heartbeat whose section reaches 2**63 - 1 (and a cloud of far dots): no range is
    # expanded; what it removes is what its range covers.
    far = 2**63 - 1
    forged = Heartbeat(b.replica, {b.replica: far}, {b.replica: [1, far, [far - 5], []]})
    assert a.handle(forged, 0.2) == []
    assert a.state.size() == 1  # bob's dot is 1: outside (1, far]
    assert a.state.context[b.replica] == far


# -- the shard, in the simulation -------------------------------------------------------


async def _whereis(name: str) -> Pid | None:
    return whereis(name)


async def _replica_count() -> int:
    from beamlet.apps.presence._presence import _TABLES

    core = _TABLES.get(key=PR).cores[0]
    assert core is not None
    return len(core.replicas)


async def _scenario(caplog: pytest.LogCaptureFixture) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        nodes = Nodes(sim)
        refs = await nodes.start_a_and_b()
        shard = await sim.run("a", _whereis, SHARD)
        parent = await sim.run("a", _whereis, PR)
        assert shard is not None and parent is not None

        async def attack() -> None:
            forge_send(shard, ExitSignal(parent, "shutdown"))
            forge_send((SHARD, "a@a"), ExitSignal(parent, "shutdown"))
            broadcast(PS, SHARD_TOPIC, ExitSignal(parent, "shutdown"))
            for i in range(MAX_REPLICAS + 500):
                name = f"evil{i}@10.0.{i // 256}.{i % 256}"
                broadcast(PS, SHARD_TOPIC, Heartbeat((name, 1), {}, None))
            broadcast(PS, SHARD_TOPIC, TransferReq(1, ("x@10.9.9.9", 1), {}))

        with caplog.at_level(logging.INFO):
            await sim.run("b", attack)
            await trio.sleep(3)  # a sample period: a asks no made-up node for a transfer
        assert await sim.run("a", _whereis, SHARD) == shard
        assert await sim.run("a", _replica_count) == MAX_REPLICAS
        dialed = [r for r in caplog.records if "10.9.9.9" in r.getMessage()]
        assert dialed == []
        await nodes.check_still_replicating(refs, timeout=10)


def test_a_shard_under_made_up_replicas_and_forged_signals_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trio.run(_scenario, caplog, clock=trio.testing.MockClock(autojump_threshold=0))
