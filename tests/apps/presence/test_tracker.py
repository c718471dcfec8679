"""One shard's core, on its own: options, ticks, local requests, message checks."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from beamlet.actors import Pid
from beamlet.apps.presence._delta import Delta
from beamlet.apps.presence._errors import (
    AlreadyTrackedError,
    MalformedMessageError,
    NoPresenceError,
)
from beamlet.apps.presence._messages import (
    GracefulPermdown,
    Heartbeat,
    TransferAck,
    TransferReq,
)
from beamlet.apps.presence._tracker import (
    Broadcast,
    Diff,
    ReplicaEvent,
    SendTo,
    TrackerCore,
    TrackerOptions,
    shard_index,
)
from beamlet.cluster import decode, encode

_ids = itertools.count(1)


def new_pid() -> Pid:
    return Pid("a@h", next(_ids), 1)


def core(name: str = "a@h", vsn: int = 1, **options: Any) -> TrackerCore:
    return TrackerCore(name, vsn, TrackerOptions(**options), now=0.0)


def heartbeats(actions: list[Any]) -> list[Heartbeat]:
    return [a.message for a in actions if type(a) is Broadcast and type(a.message) is Heartbeat]


def test_the_defaults_are_phoenix_trackers() -> None:
    options = TrackerOptions()
    assert options.broadcast_period == 1.5
    assert options.max_silent_periods == 10
    assert options.down_period == 30.0
    assert options.permdown_period == 1200.0
    assert options.clock_sample_periods == 2
    assert options.max_delta_sizes == (100, 1000, 10000)
    assert TrackerOptions(broadcast_period=0.1, max_silent_periods=2).down_period == pytest.approx(
        0.4
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"down_period": 2.9}, ValueError, "down_period must be at least twice broadcast_period"),
        (
            {"down_period": 16.5},
            ValueError,
            "down_period must be longer than the silence between the heartbeats of an idle "
            "replica ((max_silent_periods + 1) x broadcast_period = 16.5 s)",
        ),
        (
            {"down_period": 30.0, "permdown_period": 30.0},
            ValueError,
            "permdown_period must be larger",
        ),
        (
            {"broadcast_period": 0},
            ValueError,
            "broadcast_period must be a number of seconds > 0, not 0",
        ),
        ({"broadcast_period": float("inf")}, ValueError, "broadcast_period"),
        (
            {"broadcast_period": "1"},
            TypeError,
            "broadcast_period must be a number of seconds > 0, not '1'",
        ),
        ({"max_silent_periods": 0}, ValueError, "max_silent_periods must be an int >= 1"),
        ({"max_silent_periods": 1.5}, TypeError, "max_silent_periods"),
        ({"clock_sample_periods": True}, TypeError, "clock_sample_periods"),
        ({"max_delta_sizes": []}, ValueError, "max_delta_sizes"),
        (
            {"max_delta_sizes": [10, 0]},
            ValueError,
            "max_delta_sizes[1] must be an int >= 1, not 0",
        ),
        ({"max_delta_sizes": [10, 2.5]}, TypeError, "max_delta_sizes[1] must be an int >= 1"),
        ({"max_delta_sizes": 10}, TypeError, "max_delta_sizes"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        TrackerOptions(**options)


def test_bad_core_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        TrackerCore("a", 1, now=0.0, jitter=1.5)
    with pytest.raises(TypeError, match="name"):
        TrackerCore("", 1, now=0.0)
    with pytest.raises(TypeError, match="vsn"):
        TrackerCore("a", "1", now=0.0)  # type: ignore[arg-type]


def test_the_first_heartbeat_is_jittered_up_to_a_quarter_period() -> None:
    assert TrackerCore("a", 1, now=10.0).next_deadline() == 10.0
    assert TrackerCore("a", 1, now=10.0, jitter=1.0).next_deadline() == 10.0 + 0.375
    assert TrackerCore("a", 1, now=10.0, jitter=0.5).next_deadline() == 10.0 + 0.1875


def test_empty_heartbeats_announce_the_replica_and_then_come_after_silent_periods() -> None:
    c = core(max_silent_periods=3)
    sent = []
    for i in range(10):
        actions = c.on_heartbeat_tick(float(i))
        assert c.next_deadline() == i + 1.5
        sent.append(bool(heartbeats(actions)))
    # At once (the first tick), then after every 3 silent periods.
    assert sent == [True, False, False, False, True, False, False, False, True, False]


def test_a_change_goes_out_with_the_next_heartbeat() -> None:
    c = core()
    c.on_heartbeat_tick(0.0)
    pid = new_pid()
    ref, actions = c.track(pid, "lobby", "alice", {"n": 1})
    (diff,) = actions
    assert type(diff) is Diff and diff.leaves == []
    assert [(e.key, e.meta) for e in diff.joins] == [("alice", {"n": 1, "ref": ref})]
    (hb,) = heartbeats(c.on_heartbeat_tick(1.5))
    assert hb.replica == c.replica and hb.clocks == {c.replica: 1}
    assert hb.delta is not None
    delta = Delta.from_wire(hb.delta)
    assert [e.key for e in delta.entries()] == ["alice"]
    assert len(c.generations) == 3
    # Nothing new: no heartbeat (the silent count restarted).
    assert heartbeats(c.on_heartbeat_tick(3.0)) == []


def test_track_untrack_and_update() -> None:
    c = core()
    pid = new_pid()
    ref, _ = c.track(pid, "lobby", "k", {"status": "away"})
    with pytest.raises(AlreadyTrackedError, match="already tracked"):
        c.track(pid, "lobby", "k", {})
    ref2, actions = c.update(pid, "lobby", "k", {"status": "online"})
    (diff,) = actions
    assert type(diff) is Diff
    assert [e.meta for e in diff.joins] == [{"status": "online", "ref": ref2, "prev_ref": ref}]
    assert [e.meta["ref"] for e in diff.leaves] == [ref]
    ref3, _ = c.update(pid, "lobby", "k", lambda meta: {**meta, "typing": True})
    assert c.state.list_presences("lobby") == {
        "k": [{"status": "online", "typing": True, "ref": ref3, "prev_ref": ref2}]
    }
    with pytest.raises(NoPresenceError, match="no presence"):
        c.update(pid, "lobby", "other", {})
    with pytest.raises(NoPresenceError):
        c.update(pid, "lobby", "other", lambda m: m)
    assert c.untrack(pid, "lobby", "other") == []
    (diff,) = c.untrack(pid, "lobby", "k")
    assert type(diff) is Diff and [e.meta["ref"] for e in diff.leaves] == [ref3]
    c.track(pid, "a", "k", {})
    c.track(pid, "b", "k", {})
    (diff,) = c.untrack_pid(pid)
    assert type(diff) is Diff and sorted(e.topic for e in diff.leaves) == ["a", "b"]
    assert c.untrack_pid(pid) == []


def test_the_update_function_gets_a_copy() -> None:
    c = core()
    pid = new_pid()
    c.track(pid, "lobby", "k", {"n": 1})

    def mutate(meta: dict[str, Any]) -> dict[str, Any]:
        meta["n"] = 99
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        c.update(pid, "lobby", "k", mutate)
    assert c.state.list_presences("lobby")["k"][0]["n"] == 1


def test_bad_track_arguments_change_nothing() -> None:
    c = core()
    pid = new_pid()
    with pytest.raises(TypeError, match="cross the wire"):
        c.track(pid, "lobby", "k", {"f": object()})
    with pytest.raises(TypeError, match="hashable"):
        c.track(pid, "lobby", ["k"], {})
    with pytest.raises(TypeError, match="pid must be a Pid"):
        c.track("pid", "lobby", "k", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="topic must be a str"):
        c.track(pid, b"lobby", "k", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meta must be a dict"):
        c.track(pid, "lobby", "k", [("a", 1)])  # type: ignore[arg-type]
    assert c.state.size() == 0 and c.state.clocks() == {c.replica: 0}
    c.track(pid, "lobby", "k", {})
    with pytest.raises(TypeError, match="cross the wire"):
        c.update(pid, "lobby", "k", {"f": object()})
    assert c.state.clocks() == {c.replica: 1}


def test_malformed_messages_are_refused_and_change_nothing() -> None:
    c = core()
    other = ("b@h", 1)
    bad = [
        object(),
        Heartbeat(("b@h", "1"), {}, None),  # type: ignore[arg-type]
        Heartbeat(other, [], None),  # type: ignore[arg-type]
        Heartbeat(other, {other: -1}, None),
        Heartbeat(other, {other: 1}, {("c@h", 1): [0, 0, [], []]}),
        Heartbeat(other, {other: 1}, {other: [0, 1, [], [[1, "pid", "t", "k", {}]]]}),
        TransferReq("1", other, {}),  # type: ignore[arg-type]
        TransferReq(1, other, {"x": 1}),  # type: ignore[dict-item]
        TransferAck(1, other, {other: "nope"}),  # type: ignore[dict-item]
        GracefulPermdown("b@h"),  # type: ignore[arg-type]
    ]
    for message in bad:
        with pytest.raises(MalformedMessageError):
            c.handle(message, 1.0)
    assert c.replicas == {} and c.state.context == {c.replica: 0}


def test_messages_from_our_own_name_are_ignored() -> None:
    c = core(vsn=5)
    assert c.handle(Heartbeat(("a@h", 4), {("a@h", 4): 3}, None), 1.0) == []
    assert c.handle(Heartbeat(c.replica, {c.replica: 0}, None), 1.0) == []
    assert c.handle(TransferReq(1, c.replica, {c.replica: 0}), 1.0) == []
    assert c.replicas == {}


def test_a_heartbeat_brings_a_replica_up_and_a_transfer_request_is_answered() -> None:
    a, b = core("a@h"), core("b@h")
    b.track(Pid("b@h", 1, 1), "lobby", "bob", {})
    (hb,) = heartbeats(b.on_heartbeat_tick(0.0))
    actions = a.handle(decode(encode(hb)), 0.5)
    assert actions[0] == ReplicaEvent("up", b.replica)
    diff, greeting = actions[1:]
    assert type(diff) is Diff and [e.key for e in diff.joins] == ["bob"]
    assert a.replicas["b@h"].last_heartbeat_at == 0.5
    # A newcomer: a heartbeats at once (it had not in the last period), so that
    # b hears of a without waiting for a's next idle heartbeat.
    (hb_a,) = heartbeats([greeting])
    assert hb_a == Heartbeat(a.replica, {a.replica: 0, b.replica: 1}, None)
    assert heartbeats(a.on_heartbeat_tick(0.6)) == []
    b.handle(decode(encode(hb_a)), 0.7)  # b answers only a replica it has heard from
    (answer,) = b.handle(TransferReq(7, a.replica, {a.replica: 0, b.replica: 0}), 1.0)
    assert type(answer) is SendTo and answer.node == "a@h"
    assert type(answer.message) is TransferAck and answer.message.ref == 7
    assert a.handle(decode(encode(answer.message)), 1.0) == []  # nothing new for a


def test_graceful_permdown_is_broadcast() -> None:
    c = core()
    assert c.graceful_permdown() == [Broadcast(GracefulPermdown(c.replica))]


def test_every_message_round_trips_through_the_codec() -> None:
    pid = new_pid()
    delta = {("a@h", 1): [0, 2, [], [[1, pid, "t", ("k", 1), {"ref": "x", "n": [1, 2]}]]]}
    for message in (
        Heartbeat(("a@h", 1), {("a@h", 1): 2, ("b@h", 9): 0}, delta),
        Heartbeat(("a@h", 1), {("a@h", 1): 2}, None),
        TransferReq(3, ("a@h", 1), {("a@h", 1): 2}),
        TransferAck(3, ("a@h", 1), delta),
        GracefulPermdown(("a@h", 1)),
    ):
        assert decode(encode(message)) == message


def test_diff_by_topic() -> None:
    c = core()
    p = new_pid()
    c.track(p, "x", "k", {})
    (diff,) = c.untrack(p, "x", "k")
    _, actions = c.track(p, "y", "k", {})
    (join,) = actions
    assert type(diff) is Diff and type(join) is Diff
    both = Diff(join.joins, diff.leaves)
    assert {
        t: ([e.key for e in j], [e.key for e in lv]) for t, (j, lv) in both.by_topic().items()
    } == {
        "y": (["k"], []),
        "x": ([], ["k"]),
    }


def test_shard_index_is_stable_across_processes() -> None:
    # CRC-32, not Python's per-process hash(): these values never change.
    assert [shard_index(t, 8) for t in ["room:lobby", "users", "", "é"]] == [5, 1, 0, 6]
    assert shard_index("anything", 1) == 0


def test_tracks_says_whether_a_pid_still_has_presences_here() -> None:
    c = core()
    pid = new_pid()
    assert not c.tracks(pid)
    c.track(pid, "a", "k", {})
    c.track(pid, "b", "k", {})
    c.untrack(pid, "a", "k")
    assert c.tracks(pid)
    c.untrack(pid, "b", "k")
    assert not c.tracks(pid)


def test_requests_from_ourselves_and_goodbyes_of_unknown_replicas_are_ignored() -> None:
    c = core()
    assert c.on_transfer_req(TransferReq(1, c.replica, {c.replica: 0})) == []
    assert c.on_graceful_permdown(GracefulPermdown(("b@h", 1))) == []
    c.handle(Heartbeat(("b@h", 2), {("b@h", 2): 0}, None), 1.0)
    # A goodbye from another incarnation than the one known changes nothing.
    assert c.on_graceful_permdown(GracefulPermdown(("b@h", 1))) == []
    assert set(c.replicas) == {"b@h"}
    assert c.state.knows(("b@h", 2)) and c.state.is_up(("b@h", 2))
    assert not c.state.is_up(("b@h", 1))


def test_downs_can_be_checked_between_ticks() -> None:
    timings = {"broadcast_period": 1.0, "max_silent_periods": 2, "down_period": 5.0}
    a = core("a@h", permdown_period=20.0, **timings)
    b = core("b@h", permdown_period=20.0, **timings)
    assert a.next_down_check() is None
    ref, _ = b.track(new_pid(), "lobby", "bob", {})
    (hb,) = heartbeats(b.on_heartbeat_tick(0.0))
    a.handle(hb, 0.25)
    assert a.state.list_presences("lobby") == {"bob": [{"ref": ref}]}
    assert a.next_down_check() == 5.25
    assert a.check_downs(5.25) == []  # silent for exactly down_period: still up
    actions = a.check_downs(5.25000001)
    assert [type(x) for x in actions] == [ReplicaEvent, Diff]
    assert a.state.list_presences("lobby") == {}
    assert a.next_down_check() == 20.25  # now down: next, the permdown
    assert [x.kind for x in a.check_downs(20.5) if type(x) is ReplicaEvent] == ["permdown"]
    assert a.next_down_check() is None
