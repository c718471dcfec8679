"""Shard cores talking through a simulated network (Phoenix's shard_replication scenarios).

Virtual time, instant delivery unless a test says otherwise; every message
crosses the codec, and every diff is checked against what the node lists
(``presence_sim``).
"""

from __future__ import annotations

import itertools

from beamlet.apps.presence._tracker import TrackerOptions
from presence_sim import SimNet

# Phoenix's test timings, scaled to seconds: down after 4 silent seconds.
OPTIONS = TrackerOptions(broadcast_period=1.0, max_silent_periods=2, permdown_period=15.0)


def up_cluster(*names: str) -> SimNet:
    net = SimNet(OPTIONS)
    for i, name in enumerate(names):
        net.start(name, jitter=i / len(names))
    net.run(4.0)
    for name in names:
        assert {r for r, up in net.cores[name].state.replicas().items() if up} == {
            net.cores[n].replica for n in names
        }
    return net


def test_heartbeats_are_sent_while_idle() -> None:
    net = up_cluster("a", "b")
    start = len(net.log)
    net.run(30.0)
    beats = [e.at for e in net.log[start:] if e.src == "a"]
    # An empty heartbeat every max_silent_periods + 1 periods.
    assert len(beats) == 10
    assert all(later - earlier == 3.0 for earlier, later in itertools.pairwise(beats))


def test_a_join_is_seen_everywhere_within_two_broadcast_periods() -> None:
    net = up_cluster("a", "b", "c")
    t0 = net.now
    ref = net.track("a", net.pid("a"), "lobby", "alice", {})
    while not all(("alice", ref) in net.listed(n, "lobby") for n in "bc"):
        net.run(0.125)
    assert net.now - t0 <= 2 * OPTIONS.broadcast_period
    assert net.transfer_requests() == []  # the delta was enough


def test_gossip_from_an_unseen_node_triggers_up_and_a_transfer_request() -> None:
    net = SimNet(OPTIONS)
    net.start("primary")
    net.start("node1", jitter=0.5)
    net.block("node1", "primary")
    ref = net.track("node1", net.pid("node1"), "lobby", "node1", {})
    net.run(3.0)
    assert net.listed("primary", "lobby") == set()
    since = len(net.log)
    net.heal()
    net.run(6.0)
    assert net.events_of("primary") == [("up", "node1")]
    assert net.transfer_requests(since) == [("primary", "node1")]
    assert [type(e.message).__name__ for e in net.log[since:] if e.src == "node1"].count(
        "TransferAck"
    ) == 1
    assert net.listed("primary", "lobby") == {("node1", ref)}


def test_requests_for_transfer_collapse_clocks() -> None:
    net = up_cluster("primary", "node1", "node2")
    net.block("node1", "primary")
    net.block("node2", "primary")
    refs = {
        net.track("node1", net.pid("node1"), "lobby", "node1", {}),
        net.track("node1", net.pid("node1"), "lobby", "node1.2", {}),
        net.track("node2", net.pid("node2"), "lobby", "node2", {}),
    }
    net.run(2.0)
    assert {ref for _, ref in net.listed("node1", "lobby")} == refs
    assert {ref for _, ref in net.listed("node2", "lobby")} == refs
    since = len(net.log)
    net.heal()
    net.run(8.0)
    # One request, to one of the two replicas that know it all; not to both.
    requests = net.transfer_requests(since)
    assert len(requests) == 1 and requests[0][0] == "primary"
    assert {ref for _, ref in net.listed("primary", "lobby")} == refs


def test_old_presences_of_a_node_go_when_it_comes_back_as_a_new_incarnation() -> None:
    net = up_cluster("a", "b", "c")
    for name in "abc":
        net.track(name, net.pid(name), "lobby", name, {})
    net.run(2.0)
    old_b = net.cores["b"].replica
    net.kill("b")
    t_kill = net.now
    net.start("b")
    new_ref = net.track("b", net.pid("b"), "lobby", "b-again", {})
    net.run(1.0)  # the new incarnation's first heartbeat
    for name in "ac":
        assert {key for key, _ in net.listed(name, "lobby")} == {"a", "c", "b-again"}
        assert net.events_of(name)[-3:] == [("down", "b"), ("permdown", "b"), ("up", "b")]
        assert old_b not in net.cores[name].state.context
    assert net.now - t_kill < OPTIONS.down_period
    net.run(4.0)
    assert {key for key, _ in net.listed("b", "lobby")} == {"a", "c", "b-again"}
    assert ("b-again", new_ref) in net.listed("a", "lobby")


def test_tempdowns_with_nodeups_of_new_vsn_and_permdowns() -> None:
    net = up_cluster("a", "node1")
    ref = net.track("node1", net.pid("node1"), "lobby", "n1", {})
    net.run(2.0)
    assert net.listed("a", "lobby") == {("n1", ref)}

    # Suspended (a "tempdown" netsplit): down after down_period, presence hidden.
    net.suspended.add("node1")
    net.run(OPTIONS.down_period + 2.0)
    assert net.events_of("a")[-1] == ("down", "node1")
    assert net.listed("a", "lobby") == set()

    # Resumed, same incarnation: up again, the same presence, and no transfer.
    since = len(net.log)
    net.suspended.discard("node1")
    net.run(4.0)
    assert net.events_of("a")[-1] == ("up", "node1")
    assert net.listed("a", "lobby") == {("n1", ref)}
    assert net.transfer_requests(since) == []

    # Killed: down; restarted as a new incarnation: the old one is forgotten at once.
    net.kill("node1")
    net.run(OPTIONS.down_period + 2.0)
    assert net.events_of("a")[-1] == ("down", "node1")
    net.start("node1")
    ref2 = net.track("node1", net.pid("node1"), "lobby", "n1-new", {})
    net.run(3.0)
    assert net.events_of("a")[-2:] == [("permdown", "node1"), ("up", "node1")]
    assert net.listed("a", "lobby") == {("n1-new", ref2)}

    # Killed for good: down, then forgotten after permdown_period.
    net.kill("node1")
    net.run(OPTIONS.permdown_period + 2.0)
    assert net.events_of("a")[-2:] == [("down", "node1"), ("permdown", "node1")]
    assert net.cores["a"].replicas == {}
    assert net.cores["a"].state.context == {net.cores["a"].replica: 0}


def test_a_crashed_nodes_presences_are_gone_within_down_period() -> None:
    net = up_cluster("a", "b")
    net.track("b", net.pid("b"), "lobby", "bob", {})
    net.run(2.5)
    t_kill = net.now
    net.kill("b")
    while net.listed("a", "lobby"):
        net.run(0.25)
    assert net.now - t_kill <= OPTIONS.down_period + OPTIONS.broadcast_period


def test_a_rolling_node_update_causes_exactly_one_transfer_request() -> None:
    net = up_cluster("primary", "node1")
    net.track("primary", net.pid("primary"), "lobby", "primary", {})
    net.track("node1", net.pid("node1"), "lobby", "node1", {})
    net.run(2.0)
    net.kill("node1")
    net.run(OPTIONS.down_period + 1.0)
    assert net.events_of("primary")[-1] == ("down", "node1")

    # node2 never knew node1; primary still remembers it (within permdown_period).
    since = len(net.log)
    net.start("node2")
    net.run(OPTIONS.permdown_period)
    assert net.transfer_requests(since) == [("node2", "primary")]
    assert {key for key, _ in net.listed("node2", "lobby")} == {"primary"}
    assert net.events_of("primary")[-1] == ("permdown", "node1")


def test_graceful_permdown_removes_the_replica_at_once() -> None:
    net = up_cluster("a", "b")
    net.track("b", net.pid("b"), "lobby", "bob", {})
    net.run(2.0)
    net.perform("b", net.cores["b"].graceful_permdown())
    net.deliver_all()
    net.kill("b")
    assert net.listed("a", "lobby") == set()
    assert net.events_of("a")[-2:] == [("down", "b"), ("permdown", "b")]
    assert net.cores["a"].replicas == {}


def test_a_partition_that_heals_gives_back_the_same_list_without_duplicate_joins() -> None:
    net = up_cluster("a", "b", "c")
    pids = {name: net.pid(name) for name in "abc"}
    for name in "abc":
        net.track(name, pids[name], "lobby", name, {})
    net.run(2.0)
    net.partition({"a"}, {"b", "c"})
    net.track("a", net.pid("a"), "lobby", "a2", {})
    net.untrack("b", pids["b"], "lobby", "b")
    net.update("c", pids["c"], "lobby", "c", {"status": "away"})
    net.run(OPTIONS.down_period + 3.0)
    assert {k for k, _ in net.listed("a", "lobby")} == {"a", "a2"}
    assert {k for k, _ in net.listed("b", "lobby")} == {"c"}
    net.heal()
    net.run(8.0)
    lists = [net.listed(name, "lobby") for name in "abc"]
    assert lists[0] == lists[1] == lists[2]
    assert {k for k, _ in lists[0]} == {"a", "a2", "c"}
    assert net.cores["a"].state.list_presences("lobby")["c"][0]["status"] == "away"


def test_an_idle_cluster_sends_heartbeats_only() -> None:
    options = TrackerOptions()
    net = SimNet(options)
    for i, name in enumerate("abc"):
        net.start(name, jitter=i / 3)
    for name in "abc":
        for i in range(300):
            net.track(name, net.pid(name), f"room:{i % 10}", f"user{i}", {"name": f"User {i}"})
    net.run(60.0)
    assert all(len(net.cores[n].state.online_list()) == 900 for n in "abc")
    since, start = len(net.log), net.now
    net.run(600.0)
    window = net.log[since:]
    assert {type(e.message).__name__ for e in window} == {"Heartbeat"}
    assert all(e.message.delta is None for e in window)
    per_pair = max(
        sum(e.size for e in window if e.src == src and e.dst == dst) / (net.now - start)
        for src in "abc"
        for dst in "abc"
        if src != dst
    )
    assert per_pair <= 1024  # bytes per second, one way


def test_a_replica_known_only_to_others_does_not_draw_transfer_requests() -> None:
    # a and c never hear each other; b knows both. b's clock names c, which a
    # does not know: that must not make b look ahead of a, sample after sample.
    net = up_cluster("a", "b")
    net.partition({"a"}, {"c"})
    net.start("c")
    net.track("c", net.pid("c"), "lobby", "carol", {})
    since = len(net.log)
    net.run(30.0)
    assert "carol" in {k for k, _ in net.listed("b", "lobby")}
    assert [r for r in net.transfer_requests(since) if r[0] == "a"] == []
    assert net.listed("a", "lobby") == set()
