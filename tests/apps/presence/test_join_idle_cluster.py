"""A node that joins an idle cluster sees its presences within about ``broadcast_period``.

An idle shard heartbeats only every ``(max_silent_periods + 1) x broadcast_period``
(16.5 s with the defaults); a newcomer learns of it from its heartbeats only.
So a shard that hears a replica it did not know heartbeats at once (at most
once per ``broadcast_period``, else at its next tick), and samples clocks at
its next tick: the newcomer asks for a transfer within one period of hearing it.
A node connecting (``NodeUp``) gets a heartbeat at once too, under a limit of
its own. The pure core's rules, then a simulated cluster with exact virtual times.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from beamlet.apps.presence._messages import Heartbeat
from beamlet.apps.presence._tracker import (
    Broadcast,
    ReplicaEvent,
    SendTo,
    TrackerCore,
    TrackerOptions,
)
from beamlet.cluster.simulation import simulated_cluster
from hypothesis import given, settings, strategies as st
from presence_nodes import Nodes

# Phoenix's default timings (heartbeats every 1.5 s; idle: every 16.5 s).
BP = 1.5

# -- the core -----------------------------------------------------------------------

OPTIONS = TrackerOptions(broadcast_period=1.0, max_silent_periods=3, down_period=5.0)


def _heartbeat_times(actions: list[Any], now: float, into: list[float]) -> None:
    for action in actions:
        if type(action) is Broadcast and type(action.message) is Heartbeat:
            into.append(now)


def test_an_idle_shard_answers_a_newcomer_at_once_then_samples_at_its_next_tick() -> None:
    a = TrackerCore("a@h", 1, OPTIONS, now=0.0)
    a.track(_pid(), "t", "k", {})
    a.on_heartbeat_tick(0.0)  # the join goes out
    for i in range(1, 3):
        assert a.on_heartbeat_tick(float(i)) == []  # idle
    # A newcomer: a heartbeats at once (none went out in the last period).
    actions = a.handle(Heartbeat(("b@h", 1), {("b@h", 1): 0}, None), 2.5)
    assert ReplicaEvent("up", ("b@h", 1)) in actions
    assert actions[-1] == Broadcast(Heartbeat(a.replica, {a.replica: 1, ("b@h", 1): 0}, None))
    # Another within the period: no second heartbeat now, one at the next tick.
    actions = a.handle(Heartbeat(("c@h", 1), {("c@h", 1): 0}, None), 2.9)
    assert not [x for x in actions if type(x) is Broadcast]
    times: list[float] = []
    _heartbeat_times(a.on_heartbeat_tick(3.0), 3.0, times)
    assert times == []  # 3.0 is within a period of 2.5
    _heartbeat_times(a.on_heartbeat_tick(4.0), 4.0, times)
    assert times == [4.0]
    # The newcomer's clock is ahead of ours: the next tick after it came up asks it.
    b = TrackerCore("b@h", 1, OPTIONS, now=0.0)
    b.handle(Heartbeat(a.replica, {a.replica: 1}, None), 0.5)
    (ask,) = [x for x in b.on_heartbeat_tick(1.0) if type(x) is SendTo]
    assert ask.node == "a@h"


def _idle_core() -> TrackerCore:
    a = TrackerCore("a@h", 1, OPTIONS, now=0.0)
    assert len(a.on_heartbeat_tick(0.0)) == 1  # the first heartbeat
    assert a.on_heartbeat_tick(1.0) == [] and a.on_heartbeat_tick(2.0) == []
    return a


def test_a_node_connecting_gets_a_heartbeat_at_once_with_its_own_limit() -> None:
    a = _idle_core()
    hello = Broadcast(Heartbeat(a.replica, {a.replica: 0}, None))
    assert a.on_node_up(2.5) == [hello]
    # Another connection within the period: at the next tick instead.
    assert a.on_node_up(2.7) == []
    assert a.on_heartbeat_tick(3.0) == [hello]
    assert a.on_heartbeat_tick(4.0) == []  # idle again

    # The replica of the node that connected, once heard, is answered at once
    # too: connections do not use up the limit of replicas coming up.
    a = _idle_core()
    assert a.on_node_up(2.5) == [hello]
    actions = a.handle(Heartbeat(("b@h", 1), {("b@h", 1): 0}, None), 2.8)
    assert actions[-1] == Broadcast(Heartbeat(a.replica, {a.replica: 0, ("b@h", 1): 0}, None))
    assert a.on_heartbeat_tick(3.0) == [] and a.on_heartbeat_tick(4.0) == []


_pids = itertools.count(1)


def _pid() -> Any:
    from beamlet.actors import Pid

    return Pid("a@h", next(_pids), 1)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.01, 0.3, 0.7, 1.0, 2.5, 6.0]),  # time since the last
            st.integers(0, 20),  # node name
            st.integers(1, 3),  # incarnation
        ),
        max_size=80,
    )
)
def test_replicas_coming_up_add_at_most_one_heartbeat_per_period(
    events: list[tuple[float, int, int]],
) -> None:
    """However many replicas come up (made-up names, new incarnations, back from
    down), an idle shard heartbeats at most once per period; still at least every
    ``max_silent_periods + 1`` periods; and within two periods of any coming up."""
    bp = OPTIONS.broadcast_period
    core = TrackerCore("me@h", 1, OPTIONS, now=0.0)
    beats: list[float] = []
    ups: list[float] = []
    now = 0.0

    def ticks_until(t: float) -> None:
        while core.next_deadline() <= t:
            at = core.next_deadline()
            _heartbeat_times(core.on_heartbeat_tick(at), at, beats)

    for step, name, vsn in events:
        now += step
        ticks_until(now)
        actions = core.handle(Heartbeat((f"n{name}@h", vsn), {}, None), now)
        _heartbeat_times(actions, now, beats)
        ups += [now for x in actions if type(x) is ReplicaEvent and x.kind == "up"]
    end = now + 2 * bp
    ticks_until(end)
    assert beats, "an idle shard heartbeats from its first tick"
    for earlier, later in itertools.pairwise(beats):
        assert later - earlier >= bp - 1e-9
        assert later - earlier <= (OPTIONS.max_silent_periods + 1) * bp + 1e-9
    for t in ups:
        assert any(t <= beat <= t + 2 * bp for beat in beats), (t, beats)


# -- the cluster ----------------------------------------------------------------------


async def test_a_node_joining_an_idle_cluster_lists_its_presences_within_bp(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a"]) as sim:
        nodes = Nodes(sim, {})
        await nodes.start("a")
        alice = await nodes.track("a", "alice")
        await trio.sleep(40.0)  # a is idle: its last heartbeat is well past

        await sim.add("b")
        await sim.wait_connected()
        t0 = trio.current_time()
        await nodes.start("b")
        bob = await nodes.track("b", "bob")
        while alice not in nodes.views["b"].shown:  # noqa: ASYNC110 - polling what b lists
            await trio.sleep(0.001)
        on_b = nodes.views["b"].joined_at[alice] - t0
        on_a = nodes.views["a"].joined_at[bob] - t0
        # b's first heartbeat, at most a quarter period after it starts, carries
        # bob: a lists him at once, and heartbeats at once in answer (it was idle).
        assert on_a <= 0.25 * BP + 0.01
        # So b hears of a then, and b's next tick (one period later) asks a for a
        # transfer: alice is listed on b exactly one period after bob on a. (It
        # took until a's next idle heartbeat, 10.6-10.8 s here, before.)
        assert on_b - on_a == pytest.approx(BP, abs=1e-6)
        assert on_b <= 1.25 * BP + 0.01
        await nodes.wait_listed("ab", {alice, bob}, timeout=BP)
        for short in "ab":
            assert nodes.views[short].errors == []
