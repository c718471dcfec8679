"""The presence CRDT, synchronously (the scenarios of Phoenix's state_test, and more)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from beamlet.actors import Pid
from beamlet.apps.presence._delta import Delta, Entry, Section, merge_deltas
from beamlet.apps.presence._errors import (
    AlreadyTrackedError,
    MalformedMessageError,
    NoPresenceError,
    NotContiguousError,
)
from beamlet.apps.presence._state import PresenceState, make_ref
from beamlet.cluster import decode, encode

_ids = itertools.count(1)


def new_pid(node: str = "n@h") -> Pid:
    return Pid(node, next(_ids), 1)


def new(name: str) -> PresenceState:
    return PresenceState((name, 1))


def connected(*names: str) -> list[PresenceState]:
    states = [new(n) for n in names]
    for s in states:
        for other in states:
            if other is not s:
                s.replica_up(other.replica)
    return states


def keys(entries: list[Entry]) -> list[Any]:
    return sorted(e.key for e in entries)


def extract_for(src: PresenceState, dst: PresenceState) -> Delta:
    """What ``src`` sends ``dst`` for a full transfer, through the codec."""
    return Delta.from_wire(decode(encode(src.extract(dst.replica, dst.context).to_wire())))


def sync(dst: PresenceState, src: PresenceState) -> tuple[list[Entry], list[Entry]]:
    return dst.merge(extract_for(src, dst))


def assert_consistent(state: PresenceState) -> None:
    """The indexes hold exactly the entries, and the hidden set matches the statuses."""
    by_dot = state.snapshot()[0]
    from_topics = {
        dot: e for ks in state._by_topic.values() for es in ks.values() for dot, e in es.items()
    }
    from_pids = {dot: e for es in state._by_pid.values() for dot, e in es.items()}
    assert from_topics == by_dot
    assert from_pids == by_dot
    assert state._down == {r for r, up in state.replicas().items() if not up}
    for (replica, clock), entry in by_dot.items():
        assert entry.dot == (replica, clock)


def test_setup() -> None:
    a = new("a")
    assert a.extract(a.replica, a.context) == Delta()
    assert a.context == {("a", 1): 0}
    assert a.clocks() == {("a", 1): 0}


def test_a_user_added_online_is_online() -> None:
    a = new("a")
    john = new_pid()
    entry = a.join(john, "lobby", "john", {"device": "web"})
    assert entry.meta == {"device": "web", "ref": make_ref(a.replica, 1)}
    assert [(e.key, e.meta) for e in a.get_by_topic("lobby")] == [("john", entry.meta)]
    assert a.list_presences("lobby") == {"john": [entry.meta]}
    assert a.leave(john, "lobby", "john") == entry
    assert a.get_by_topic("lobby") == []
    assert a.list_presences("lobby") == {}
    assert a.leave(john, "lobby", "john") is None
    assert_consistent(a)


def test_users_from_other_servers_merge() -> None:
    a, b = connected("a", "b")
    alice, bob, carol = new_pid("a@h"), new_pid("b@h"), new_pid("b@h")

    a.join(alice, "lobby", "alice", {})
    b.join(bob, "lobby", "bob", {})

    # Merging emits a bob join event.
    joins, leaves = sync(a, b)
    assert keys(joins) == ["bob"] and leaves == []
    assert keys(a.online_list()) == ["alice", "bob"]

    # Merging twice doesn't dupe events, and changes nothing.
    before = a.snapshot()
    assert sync(a, b) == ([], [])
    assert a.snapshot() == before

    joins, leaves = sync(b, a)
    assert keys(joins) == ["alice"] and leaves == []
    assert sync(b, a) == ([], [])

    # A remove is observed.
    a.leave(alice, "lobby", "alice")
    joins, leaves = sync(b, a)
    assert joins == [] and keys(leaves) == ["alice"]
    assert keys(b.online_list()) == ["bob"]
    assert b.get_by_pid(alice) == []
    assert sync(b, a) == ([], [])

    b.join(carol, "lobby", "carol", {})
    assert keys(b.online_list()) == ["bob", "carol"]
    joins, _ = sync(a, b)
    assert keys(joins) == ["carol"]
    assert sync(a, b) == ([], [])
    assert sorted(map(repr, a.online_list())) == sorted(map(repr, b.online_list()))

    # An update is a leave and a join, merged at once.
    old, new_entry = b.update(carol, "lobby", "carol", {"updated": True})
    assert new_entry.meta["prev_ref"] == old.meta["ref"]
    joins, leaves = sync(a, b)
    assert joins == [new_entry] and leaves == [old]
    assert a.list_presences("lobby")["carol"] == [new_entry.meta]
    assert sync(a, b) == ([], [])
    for s in (a, b):
        assert_consistent(s)


def test_basic_netsplit() -> None:
    a, b = connected("a", "b")
    alice, bob, carol, david = (new_pid() for _ in range(4))
    a.join(alice, "lobby", "alice", {})
    b.join(bob, "lobby", "bob", {})
    joins, _ = sync(a, b)
    assert keys(joins) == ["bob"]
    assert keys(a.online_list()) == ["alice", "bob"]

    a.join(carol, "lobby", "carol", {})
    a.leave(alice, "lobby", "alice")
    a.join(david, "lobby", "david", {})

    assert keys(a.replica_down(b.replica)) == ["bob"]
    assert keys(a.online_list()) == ["carol", "david"]
    assert a.clocks() == {a.replica: 4}  # the down replica is not advertised
    assert b.replica in a.context

    # Merging while b is down changes nothing visible.
    assert sync(a, b) == ([], [])
    assert keys(a.online_list()) == ["carol", "david"]
    assert keys(a.dirty_list("lobby")) == ["bob", "carol", "david"]

    # Back up: its presences join again, with no transfer.
    assert keys(a.replica_up(b.replica)) == ["bob"]
    assert keys(a.online_list()) == ["bob", "carol", "david"]
    assert a.replica_up(b.replica) == []
    assert_consistent(a)


def test_changes_of_a_down_replica_are_applied_hidden_and_shown_once_up() -> None:
    a, b = connected("a", "b")
    bob, bill = new_pid(), new_pid()
    b.join(bob, "lobby", "bob", {})
    sync(a, b)
    a.replica_down(b.replica)
    b.leave(bob, "lobby", "bob")
    b.join(bill, "lobby", "bill", {})
    assert sync(a, b) == ([], [])
    assert keys(a.dirty_list("lobby")) == ["bill"]
    assert keys(a.replica_up(b.replica)) == ["bill"]


def test_joins_are_observed_via_another_node() -> None:
    a, b, c = connected("a", "b", "c")
    alice, bob = new_pid(), new_pid()
    a.join(alice, "lobby", "alice", {})
    joins, _ = sync(c, a)
    assert keys(joins) == ["alice"]

    # a and c no longer talk; a's changes reach c through b.
    a.join(bob, "lobby", "bob", {})
    joins, _ = sync(b, a)
    assert keys(joins) == ["alice", "bob"]
    joins, leaves = sync(c, b)
    assert keys(joins) == ["bob"] and leaves == []


def test_joins_via_another_node_stay_hidden_while_the_origin_is_down() -> None:
    a, b, c = connected("a", "b", "c")
    alice, bob = new_pid(), new_pid()
    a.join(alice, "lobby", "alice", {})
    sync(c, a)
    assert a.replica_down(c.replica) == []
    assert keys(c.replica_down(a.replica)) == ["alice"]

    a.join(bob, "lobby", "bob", {})
    sync(b, a)
    # Asking with its advertised clock, c does not even get a's section...
    assert a.replica not in b.extract(c.replica, c.clocks()).sections
    # ...and given it anyway, nothing shows while a is down at c.
    assert sync(c, b) == ([], [])
    assert keys(c.dirty_list("lobby")) == ["alice", "bob"]
    # Up again: each presence joins exactly once.
    assert keys(c.replica_up(a.replica)) == ["alice", "bob"]


def test_removes_are_observed_via_another_node() -> None:
    a, b, c = connected("a", "b", "c")
    alice, bob = new_pid(), new_pid()
    a.join(alice, "lobby", "alice", {})
    sync(c, a)
    a.join(bob, "lobby", "bob", {})
    sync(b, a)
    joins, _ = sync(c, b)
    assert keys(joins) == ["bob"]

    a.leave(bob, "lobby", "bob")
    joins, leaves = sync(b, a)
    assert joins == [] and keys(leaves) == ["bob"]
    joins, leaves = sync(c, b)
    assert joins == [] and keys(leaves) == ["bob"]
    assert keys(c.online_list()) == ["alice"]


def test_get_by_pid() -> None:
    state = new("node1")
    pid = new_pid()
    assert state.get_by_pid(pid) == []
    entry = state.join(pid, "topic", "key1", {})
    assert state.get_by_pid(pid) == [entry]
    assert entry.dot == (("node1", 1), 1)
    assert state.lookup(pid, "topic", "key1") == entry
    assert state.lookup(pid, "notopic", "key1") is None
    assert state.lookup(pid, "topic", "nokey") is None


def test_get_by_key() -> None:
    state = new("node1")
    pid, pid2 = new_pid(), new_pid()
    assert state.get_by_key("topic", "key1") == []
    state.join(pid, "topic", "key1", {"device": "browser"})
    state.join(pid2, "topic", "key1", {"device": "ios"})
    state.join(pid2, "topic", "key2", {"device": "ios"})
    found = state.get_by_key("topic", "key1")
    assert [(p, m["device"]) for p, m in found] == [(pid, "browser"), (pid2, "ios")]
    assert state.get_by_key("another_topic", "key1") == []
    assert state.get_by_key("topic", "another_key") == []
    assert {k: [m["device"] for m in ms] for k, ms in state.list_presences("topic").items()} == {
        "key1": ["browser", "ios"],
        "key2": ["ios"],
    }


def test_get_by_topic_hides_down_replicas() -> None:
    s1, s2, s3 = connected("node1", "node2", "node3")
    assert s1.context == {("node1", 1): 0, ("node2", 1): 0, ("node3", 1): 0}
    pid = new_pid()
    s1.join(pid, "topic", "key1", {})
    s1.join(pid, "topic", "key2", {})
    s2.join(new_pid(), "topic", "user2", {})
    s3.join(new_pid(), "topic", "user3", {})
    assert keys(s1.get_by_topic("topic")) == ["key1", "key2"]
    sync(s1, s2)
    sync(s1, s3)
    assert keys(s1.get_by_topic("topic")) == ["key1", "key2", "user2", "user3"]
    s1.replica_down(s2.replica)
    assert keys(s1.get_by_topic("topic")) == ["key1", "key2", "user3"]
    assert set(s1.list_presences("topic")) == {"key1", "key2", "user3"}
    assert s1.get_by_key("topic", "user2") == []
    s1.replica_down(s3.replica)
    assert keys(s1.get_by_topic("topic")) == ["key1", "key2"]
    assert keys(s1.online_list()) == ["key1", "key2"]
    assert s1.get_by_topic("another:topic") == []
    assert s1.topics() == ["topic"]
    assert s1.is_up(s3.replica) is False and s1.knows(s3.replica)


def test_permdown_forgets_a_replica() -> None:
    s1, s2 = connected("node1", "node2")
    alice, bob = new_pid(), new_pid()
    s1.join(alice, "lobby", "alice", {})
    s2.join(bob, "lobby", "bob", {})
    sync(s2, s1)
    assert keys(s2.online_list()) == ["alice", "bob"]
    s2.replica_down(s1.replica)
    assert len(s2.get_by_pid(alice)) == 1  # hidden, still stored
    assert s2.replica_permdown(s1.replica) == []  # already down: no second leave
    assert s2.get_by_pid(alice) == []
    assert s1.replica not in s2.context and not s2.knows(s1.replica)
    assert s2.replicas() == {s2.replica: True}
    assert s2.replica_up(s1.replica) == []
    assert keys(s2.online_list()) == ["bob"]
    assert_consistent(s2)


def test_permdown_of_an_up_replica_returns_its_presences_as_leaves() -> None:
    s1, s2 = connected("node1", "node2")
    s1.join(new_pid(), "lobby", "alice", {})
    sync(s2, s1)
    assert keys(s2.replica_permdown(s1.replica)) == ["alice"]
    assert s2.online_list() == []


def test_a_forgotten_replica_is_not_brought_back_by_a_stale_copy() -> None:
    a, b, c = connected("a", "b", "c")
    a.join(new_pid(), "lobby", "alice", {})
    sync(b, a)
    c.replica_permdown(a.replica)
    assert sync(c, b) == ([], [])  # b still has a's presence; c ignores it
    assert c.online_list() == [] and a.replica not in c.context


def test_basic_deltas() -> None:
    a, b = connected("a", "b")
    alice, bob = new_pid(), new_pid()
    a.join(alice, "lobby", "alice", {})
    b.join(bob, "lobby", "bob", {})

    joins, _ = b.merge(a.take_delta())
    assert keys(joins) == ["alice"]
    assert b.clocks() == {a.replica: 1, b.replica: 1}

    a.leave(alice, "lobby", "alice")
    joins, leaves = b.merge(a.take_delta())
    assert joins == [] and keys(leaves) == ["alice"]
    assert b.clocks() == {a.replica: 2, b.replica: 1}

    a.join(alice, "lobby", "alice", {})
    joins, _ = b.merge(a.take_delta())
    assert keys(joins) == ["alice"]
    assert b.clocks() == {a.replica: 3, b.replica: 1}
    assert b.cloud(a.replica) == set()


def test_the_delta_holds_the_changes_since_it_was_taken() -> None:
    a = new("a")
    assert not a.has_delta()
    alice, bob = new_pid(), new_pid()
    a.join(alice, "lobby", "alice", {})
    first = a.take_delta()
    assert first.start_clock() == {a.replica: 0} and first.end_clock() == {a.replica: 1}
    assert not a.has_delta()
    a.join(bob, "lobby", "bob", {})
    a.leave(bob, "lobby", "bob")  # added and removed within the delta: only its dot remains
    a.leave(alice, "lobby", "alice")  # added before: listed in the cloud
    delta = a.take_delta()
    section = delta.sections[a.replica]
    assert (section.start, section.end, section.cloud, section.entries) == (1, 4, {1}, {})
    assert delta.size() == 1
    assert a.take_delta().is_empty()


def test_deltas_out_of_order_never_show_a_removed_presence() -> None:
    a, b = connected("a", "b")
    alice = new_pid()
    a.join(alice, "lobby", "alice", {})
    join_delta = a.take_delta()
    a.leave(alice, "lobby", "alice")
    leave_delta = a.take_delta()
    assert b.merge(leave_delta) == ([], [])
    assert b.merge(join_delta) == ([], [])
    assert b.online_list() == []
    assert b.context[a.replica] == 2 and b.cloud(a.replica) == set()


def test_a_lost_delta_leaves_a_cloud_until_a_transfer_fills_the_gap() -> None:
    a, b = connected("a", "b")
    p1, p2 = new_pid(), new_pid()
    a.join(p1, "lobby", "one", {})
    a.take_delta()  # lost
    a.join(p2, "lobby", "two", {})
    joins, _ = b.merge(a.take_delta())
    assert keys(joins) == ["two"]
    assert b.context[a.replica] == 0 and b.cloud(a.replica) == {2}
    joins, _ = sync(b, a)
    assert keys(joins) == ["one"]
    assert b.context[a.replica] == 2 and b.cloud(a.replica) == set()


def test_two_dots_of_one_key_coexist_until_the_removal_arrives() -> None:
    a, b = connected("a", "b")
    pid = new_pid()
    first = a.join(pid, "lobby", "k", {"v": 1})
    b.merge(a.take_delta())
    a.leave(pid, "lobby", "k")
    a.take_delta()  # lost
    second = a.join(pid, "lobby", "k", {"v": 2})
    joins, _ = b.merge(a.take_delta())
    assert joins == [second]
    assert b.list_presences("lobby") == {"k": [first.meta, second.meta]}
    joins, leaves = sync(b, a)
    assert joins == [] and leaves == [first]
    assert b.list_presences("lobby") == {"k": [second.meta]}
    assert_consistent(b)


def test_deltas_are_not_merged_for_non_contiguous_ranges() -> None:
    s1 = new("s1")
    s1.join(new_pid(), "lobby", "user1", {})
    d1 = s1.take_delta()
    s1.join(new_pid(), "lobby", "user2", {})
    s1.take_delta()
    s1.join(new_pid(), "lobby", "user3", {})
    d3 = s1.take_delta()
    with pytest.raises(NotContiguousError):
        merge_deltas(d1, d3)
    with pytest.raises(NotContiguousError):
        merge_deltas(d3, d1)


def test_the_extracted_state_holds_only_replicas_known_to_the_remote() -> None:
    s1, s2, s3 = new("s1"), new("s2"), new("s3")
    s1.replica_up(s2.replica)
    s2.replica_up(s1.replica)
    s2.replica_up(s3.replica)
    s1.join(new_pid(), "lobby", "user1", {})
    s2.join(new_pid(), "lobby", "user2", {})
    s3.join(new_pid(), "lobby", "user3", {})
    d1, d2, d3 = s1.take_delta(), s2.take_delta(), s3.take_delta()
    s1.merge(d2)
    s2.merge(d1)
    s2.merge(d3)
    extracted = s2.extract(s1.replica, s1.context)
    # s1's own presences are left out too: it knows them best.
    assert extracted.end_clock() == {s2.replica: 1}
    extracted = s2.extract(("other", 1), s1.context)
    assert extracted.end_clock() == {s1.replica: 1, s2.replica: 1}


def test_merging_deltas() -> None:
    s1, s2 = new("s1"), new("s2")
    user1, user2 = new_pid(), new_pid()
    s1.join(user1, "lobby", "user1", {})
    s1.join(user1, "private", "user1", {})
    s2.join(user2, "lobby", "user2", {})
    s2.join(user2, "private", "user2", {})
    merged = merge_deltas(s1.peek_delta(), s2.peek_delta())
    assert {(e.replica[0], e.clock, e.topic) for e in merged.entries()} == {
        ("s1", 1, "lobby"),
        ("s1", 2, "private"),
        ("s2", 1, "lobby"),
        ("s2", 2, "private"),
    }
    assert merged.start_clock() == {s1.replica: 0, s2.replica: 0}
    assert merged.end_clock() == {s1.replica: 2, s2.replica: 2}


def test_merging_deltas_with_removes() -> None:
    s1, s2 = connected("s1", "s2")
    user1 = new_pid()
    s1.join(user1, "lobby", "user1", {})
    s1.join(user1, "private", "user1", {})
    first = s1.take_delta()
    s2.merge(first)
    s1.leave(user1, "private", "user1")
    second = s1.take_delta()
    merged = merge_deltas(first, second)
    assert [(e.topic, e.clock) for e in merged.entries()] == [("lobby", 1)]
    section = merged.sections[s1.replica]
    assert (section.start, section.end) == (0, 3)
    # Merging a duplicate keeps the delta as it is.
    assert merge_deltas(merged, second) == merged
    assert merge_deltas(merged, merged) == merged
    joins, leaves = s2.merge(merged)
    assert joins == [] and [e.topic for e in leaves] == ["private"]


def test_tracking_twice_and_updating_nothing_are_errors() -> None:
    a = new("a")
    pid = new_pid()
    a.join(pid, "lobby", "k", {})
    with pytest.raises(AlreadyTrackedError) as info:
        a.join(pid, "lobby", "k", {})
    assert info.value.reason == ("already_tracked", pid, "lobby", "k")
    with pytest.raises(NoPresenceError) as missing:
        a.update(pid, "lobby", "other", {})
    assert missing.value.reason == "nopresence"
    assert a.size() == 1 and a.context[a.replica] == 1


def test_leave_pid_removes_only_this_replicas_presences_of_the_pid() -> None:
    a, b = connected("a", "b")
    pid = new_pid()
    b.join(pid, "lobby", "remote", {})
    sync(a, b)
    a.join(pid, "lobby", "k1", {})
    a.join(pid, "other", "k2", {})
    assert sorted(e.key for e in a.leave_pid(pid)) == ["k1", "k2"]
    assert keys(a.get_by_pid(pid)) == ["remote"]
    assert a.leave_pid(pid) == []


def test_a_merge_ignores_our_own_section_and_unknown_replicas() -> None:
    a, b = new("a"), new("b")
    a.join(new_pid(), "lobby", "alice", {})
    b.join(new_pid(), "lobby", "bob", {})
    # a does not know b yet: nothing is taken from b's delta.
    assert a.merge(b.peek_delta()) == ([], [])
    assert b.replica not in a.context
    # A section about a's own dots is never taken from others.
    forged = Delta({a.replica: Section(0, 5)})
    assert a.merge(forged) == ([], [])
    assert keys(a.online_list()) == ["alice"]
    assert a.context[a.replica] == 1


def test_deltas_round_trip_through_the_codec() -> None:
    a = new("a")
    pid = new_pid()
    a.join(pid, "lobby", ("tuple", "key"), {"n": 1, "tags": ["x"]})
    a.take_delta()
    a.join(new_pid(), "lobby", "b", {})
    a.leave(pid, "lobby", ("tuple", "key"))
    delta = a.take_delta()
    assert Delta.from_wire(decode(encode(delta.to_wire()))) == delta
    full = a.extract(("x", 1), a.context)
    assert Delta.from_wire(decode(encode(full.to_wire()))) == full


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ([], "must be a dict"),
        ({"a": [0, 0, [], []]}, "(node_name, vsn) tuple"),
        ({("a", True): [0, 0, [], []]}, "(node_name, vsn) tuple"),
        ({("a", 1): [0, 0, []]}, "[start, end, cloud, entries]"),
        ({("a", 1): [2, 1, [], []]}, "bad range"),
        ({("a", 1): [-1, 1, [], []]}, "bad range"),
        ({("a", 1): [0, 1, [0], []]}, "bad cloud"),
        ({("a", 1): [0, 1, [], {}]}, "bad entries"),
        ({("a", 1): [0, 1, [], [[1, Pid("n", 1, 1), "t", "k"]]]}, "bad entry"),
        ({("a", 1): [0, 1, [], [[2, Pid("n", 1, 1), "t", "k", {}]]]}, "outside its context"),
        ({("a", 1): [0, 2, [], [[1, Pid("n", 1, 1), "t", "k", {}]] * 2]}, "two entries"),
        ({("a", 1): [0, 1, [], [[1, "pid", "t", "k", {}]]]}, "pid"),
        ({("a", 1): [0, 1, [], [[1, Pid("n", 1, 1), 3, "k", {}]]]}, "topic"),
        ({("a", 1): [0, 1, [], [[1, Pid("n", 1, 1), "t", ["k"], {}]]]}, "unhashable"),
        ({("a", 1): [0, 1, [], [[1, Pid("n", 1, 1), "t", "k", []]]]}, "meta"),
    ],
)
def test_a_malformed_delta_is_refused(wire: object, message: str) -> None:
    with pytest.raises(MalformedMessageError, match=re.escape(message)):
        Delta.from_wire(wire)


def test_refs_are_unique_per_dot_and_the_same_everywhere() -> None:
    refs = {make_ref((name, vsn), clock) for name in "ab" for vsn in (1, 2) for clock in range(50)}
    assert len(refs) == 200
    assert make_ref(("a", 1), 1) == make_ref(("a", 1), 1)
    assert make_ref(("a", 1), 255).endswith(".ff")


def test_copy_is_independent() -> None:
    a, b = connected("a", "b")
    b.join(new_pid(), "lobby", "bob", {})
    sync(a, b)
    copy = a.copy()
    assert copy.snapshot() == a.snapshot()
    copy.join(new_pid(), "lobby", "x", {})
    copy.replica_down(b.replica)
    assert keys(a.online_list()) == ["bob"]
    assert_consistent(a)
    assert_consistent(copy)
