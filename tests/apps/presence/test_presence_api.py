"""The presence on one node: its calls, its errors, its diffs, its hooks, its restarts.

Every test runs a real node with a real PubSub and a real presence (shards
under a supervisor), under the autojump clock.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
from beamlet.actors import (
    Down,
    Pid,
    StartError,
    call,
    cast,
    monitor,
    open_node,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    whereis,
)
from beamlet.apps.presence import (
    AlreadyTrackedError,
    NoPresenceError,
    Presence,
    PresenceDiff,
    UnknownPresenceError,
    get_by_key,
    list_presences,
    track,
    untrack,
    update,
)
from beamlet.apps.presence._messages import Heartbeat, TransferReq
from beamlet.apps.presence._tracker import TrackerOptions
from beamlet.apps.pubsub import PubSub, UnknownPubSubError, broadcast, subscribe
from beamlet.supervisors import Supervisor

PS = "ps"
PR = "pr"


async def on_node(fn: Callable[[], Awaitable[Any]], **presence: Any) -> Any:
    """Run ``fn`` as a process of a node running PubSub ``ps`` and presence ``pr``."""

    async def main() -> Any:
        await Supervisor.start_link(
            [PubSub.child_spec(PS), Presence.child_spec(PR, pubsub=PS, **presence)],
            strategy="rest_for_one",
        )
        return await fn()

    async with open_node() as node:
        return await node.run(main)


async def holder() -> None:
    await trio.sleep_forever()


async def tracked(topic: str, key: Any, meta: dict[str, Any]) -> Pid:
    """A process that tracks itself, then waits; its pid once it is tracked."""
    me = self_pid()

    async def body() -> None:
        await track(PR, self_pid(), topic, key, meta)
        send(me, ("tracked", self_pid()))
        await trio.sleep_forever()

    pid = spawn(body)
    await receive(lambda m: m == ("tracked", pid))
    return pid


async def next_diff(topic: str) -> PresenceDiff:
    msg: PresenceDiff = await receive(
        lambda m: type(m) is PresenceDiff and m.topic == topic, timeout=1
    )
    return msg


def refs(metas: list[dict[str, Any]]) -> set[str]:
    return {m["ref"] for m in metas}


async def test_track_list_get_update_untrack(autojump_clock: Any) -> None:
    async def main() -> None:
        subscribe(PS, "room:1")
        a = spawn(holder)
        b = spawn(holder)
        ref_a = await track(PR, a, "room:1", "alice", {"device": "phone"})
        ref_b = await track(PR, b, "room:1", "alice", {"device": "laptop"})
        ref_c = await track(PR, b, "room:2", "bob", {})
        assert list_presences(PR, "room:1") == {
            "alice": [{"device": "phone", "ref": ref_a}, {"device": "laptop", "ref": ref_b}]
        }
        assert list_presences(PR, "room:2") == {"bob": [{"ref": ref_c}]}
        assert list_presences(PR, "nowhere") == {}
        assert refs(get_by_key(PR, "room:1", "alice")) == {ref_a, ref_b}
        assert get_by_key(PR, "room:1", "carol") == []
        assert len({ref_a, ref_b, ref_c}) == 3

        assert await next_diff("room:1") == PresenceDiff(
            "room:1", {"alice": [{"device": "phone", "ref": ref_a}]}, {}
        )
        assert await next_diff("room:1") == PresenceDiff(
            "room:1", {"alice": [{"device": "laptop", "ref": ref_b}]}, {}
        )

        new = await update(PR, a, "room:1", "alice", {"device": "tablet"})
        diff = await next_diff("room:1")
        assert diff.leaves == {"alice": [{"device": "phone", "ref": ref_a}]}
        assert diff.joins == {"alice": [{"device": "tablet", "ref": new, "prev_ref": ref_a}]}
        newer = await update(PR, a, "room:1", "alice", lambda meta: {**meta, "away": True})
        diff = await next_diff("room:1")
        assert diff.joins["alice"][0]["away"] is True
        assert diff.joins["alice"][0]["prev_ref"] == new
        assert refs(get_by_key(PR, "room:1", "alice")) == {newer, ref_b}

        await untrack(PR, a, "room:1", "alice")
        assert (await next_diff("room:1")).leaves == {
            "alice": [{"device": "tablet", "away": True, "ref": newer, "prev_ref": new}]
        }
        await untrack(PR, a, "room:1", "alice")  # again: nothing
        await untrack(PR, b)  # everywhere
        assert list_presences(PR, "room:1") == {} == list_presences(PR, "room:2")
        assert (await next_diff("room:1")).leaves == {"alice": [{"device": "laptop", "ref": ref_b}]}

    await on_node(main)


async def test_a_process_that_exits_is_untracked(autojump_clock: Any) -> None:
    async def main() -> None:
        subscribe(PS, "lobby")
        pid = await tracked("lobby", "alice", {})
        await track(PR, pid, "lobby", "alias", {})
        await next_diff("lobby")
        await next_diff("lobby")
        ref = monitor(pid)
        send_exit(pid, "kill")
        await receive(lambda m: type(m) is Down and m.ref == ref)
        diff = await next_diff("lobby")
        assert set(diff.leaves) == {"alice", "alias"}
        assert diff.joins == {}
        assert list_presences(PR, "lobby") == {}

        # Tracking a process that is already dead: it joins, then leaves at once.
        dead = spawn(holder)
        ref = monitor(dead)
        send_exit(dead, "kill")
        await receive(lambda m: type(m) is Down and m.ref == ref)
        await track(PR, dead, "lobby", "ghost", {})
        assert set((await next_diff("lobby")).joins) == {"ghost"}
        assert set((await next_diff("lobby")).leaves) == {"ghost"}
        assert list_presences(PR, "lobby") == {}

    await on_node(main)


async def test_errors_say_what_which_and_why(autojump_clock: Any) -> None:
    async def main() -> None:
        pid = spawn(holder)
        await track(PR, pid, "lobby", "alice", {})
        with pytest.raises(AlreadyTrackedError, match="already tracked under topic 'lobby'") as e:
            await track(PR, pid, "lobby", "alice", {"again": 1})
        assert e.value.reason == ("already_tracked", pid, "lobby", "alice")
        with pytest.raises(NoPresenceError, match="no presence under topic 'lobby' with key 'bob'"):
            await update(PR, pid, "lobby", "bob", {})
        with pytest.raises(UnknownPresenceError, match="no presence named 'nope'"):
            await track("nope", pid, "lobby", "alice", {})
        with pytest.raises(UnknownPresenceError):
            list_presences("nope", "lobby")
        with pytest.raises(TypeError, match="presence must be the name"):
            list_presences(None, "lobby")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="topic must be a str"):
            await track(PR, pid, b"lobby", "alice", {})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="topic must be a str"):
            list_presences(PR, 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="cross the wire"):
            await track(PR, pid, "lobby", "carol", {"socket": object()})
        with pytest.raises(TypeError, match="cross the wire"):
            await update(PR, pid, "lobby", "alice", {"socket": object()})
        with pytest.raises(TypeError, match="meta must be a dict"):
            await track(PR, pid, "lobby", "carol", ["not", "a", "dict"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="pid must be a Pid"):
            await track(PR, "me", "lobby", "carol", {})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="give a topic with the key"):
            await untrack(PR, pid, key="alice")
        with pytest.raises(ZeroDivisionError):  # the update function's own error
            await update(PR, pid, "lobby", "alice", lambda meta: 1 // 0)
        # Nothing was lost on the way; the shard still serves.
        assert list(list_presences(PR, "lobby")) == ["alice"]
        await track(PR, pid, "lobby", "carol", {})
        assert set(list_presences(PR, "lobby")) == {"alice", "carol"}

    await on_node(main)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"pubsub": None}, TypeError, "pubsub must be the name of a PubSub"),
        ({"pool_size": 0}, ValueError, "pool_size must be an int >= 1, not 0"),
        ({"broadcast_period": -1}, ValueError, "broadcast_period must be a number of seconds"),
        ({"down_period": 1.0}, ValueError, "down_period must be at least twice"),
        ({"fetch": "upper"}, TypeError, "fetch must be a function"),
        ({"permdown_on_shutdown": 1}, TypeError, "permdown_on_shutdown must be a bool"),
    ],
)
async def test_bad_options_are_refused_before_anything_starts(
    options: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        Presence.child_spec(PR, **{"pubsub": PS, **options})
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        Presence.child_spec("", pubsub=PS)

    async def main() -> None:  # start_link checks them alike, and starts nothing
        with pytest.raises(error, match=message):
            await Presence.start_link("other", **{"pubsub": PS, **options})
        assert whereis("other") is None

    await on_node(main)


async def test_start_link_without_its_pubsub_raises_unknown_pubsub_in_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        # Not trapping exits: a failed start linked to the caller would kill it.
        with pytest.raises(UnknownPubSubError, match="no PubSub named 'nope'"):
            await Presence.start_link(PR, pubsub="nope")
        assert whereis(PR) is None and whereis(f"{PR}.shard0") is None

    with caplog.at_level(logging.INFO):
        async with open_node() as node:
            await node.run(main)
    # Nothing started, so nothing crashed: no crash report, no supervisor error.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_child_spec_without_its_pubsub_fails_to_start_with_unknown_pubsub(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        with pytest.raises(StartError) as info:
            await Supervisor.start_link([Presence.child_spec(PR, pubsub="nope")])
        # The presence child's own reason, not a shard's failure nested in it.
        assert info.value.reason[0] == "shutdown"
        failed, child, reason = info.value.reason[1]
        assert (failed, child) == ("failed_to_start_child", ("presence", PR))
        assert type(reason) is UnknownPubSubError
        assert "its child ('presence', 'pr') failed to start" in str(info.value)
        assert "no PubSub named 'nope'" in str(info.value)
        assert whereis(PR) is None

    with caplog.at_level(logging.INFO):
        async with open_node() as node:
            await node.run(_trapping(main))
    # One line, from the supervisor that could not start it; no shard crashed.
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in errors] == ["beamlet.supervisor"]
    assert "child ('presence', 'pr') failed to start" in errors[0].getMessage()
    assert "UnknownPubSubError" in errors[0].getMessage()


def test_start_link_and_child_spec_take_the_same_options() -> None:
    """Both hand their arguments to one check, by name: they must have the same ones."""
    start = set(inspect.signature(Presence.start_link).parameters)
    spec = set(inspect.signature(Presence.child_spec).parameters) - {"id", "restart"}
    assert start == spec
    assert {field.name for field in attrs.fields(TrackerOptions)} < start


async def test_the_fetch_hook_runs_once_per_list_and_per_diff(autojump_clock: Any) -> None:
    calls: list[tuple[str, dict[Any, Any]]] = []
    names = {1: "Alice", 2: "Bob"}

    def fetch(topic: str, presences: dict[Any, list[dict[str, Any]]]) -> dict[Any, Any]:
        calls.append((topic, presences))
        return {
            key: {"metas": metas, "user": names.get(key, "?")} for key, metas in presences.items()
        }

    async def main() -> None:
        subscribe(PS, "lobby")
        a, b = spawn(holder), spawn(holder)
        ref1 = await track(PR, a, "lobby", 1, {})
        ref2 = await track(PR, b, "lobby", 2, {})
        calls.clear()
        assert list_presences(PR, "lobby") == {
            1: {"metas": [{"ref": ref1}], "user": "Alice"},
            2: {"metas": [{"ref": ref2}], "user": "Bob"},
        }
        assert len(calls) == 1  # once for the whole list, not once per key
        assert get_by_key(PR, "lobby", 2) == {"metas": [{"ref": ref2}], "user": "Bob"}
        assert get_by_key(PR, "lobby", 3) == []
        diff = await next_diff("lobby")
        assert diff.joins == {1: {"metas": [{"ref": ref1}], "user": "Alice"}}

    await on_node(main, fetch=fetch)


async def test_a_fetch_hook_that_raises_does_not_stop_the_diffs(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def fetch(topic: str, presences: Any) -> Any:
        raise RuntimeError("the user table is gone")

    async def main() -> None:
        subscribe(PS, "lobby")
        ref = await track(PR, spawn(holder), "lobby", "alice", {})
        assert (await next_diff("lobby")).joins == {"alice": [{"ref": ref}]}
        with pytest.raises(RuntimeError, match="the user table is gone"):
            list_presences(PR, "lobby")

    await on_node(main, fetch=fetch)
    assert "the fetch hook raised on a diff of topic 'lobby'" in caplog.text


async def test_topics_are_spread_over_the_shards(autojump_clock: Any) -> None:
    async def main() -> None:
        assert [whereis(f"{PR}.shard{i}") is not None for i in range(4)] == [True] * 4
        pid = spawn(holder)
        topics = [f"room:{i}" for i in range(40)]
        for topic in topics:
            await track(PR, pid, topic, "alice", {"t": topic})
        for topic in topics:
            assert [m["t"] for m in list_presences(PR, topic)["alice"]] == [topic]
        await untrack(PR, pid)
        assert all(list_presences(PR, topic) == {} for topic in topics)

    await on_node(main, pool_size=4)


async def test_a_restarted_shard_keeps_the_presences_of_live_processes(
    autojump_clock: Any,
) -> None:
    async def main() -> None:
        subscribe(PS, "lobby")
        alive = await tracked("lobby", "alice", {"n": 1})
        old_ref = list_presences(PR, "lobby")["alice"][0]["ref"]
        await next_diff("lobby")
        shard = whereis(f"{PR}.shard0")
        assert shard is not None
        ref = monitor(shard)
        send_exit(shard, "kill")
        await receive(lambda m: type(m) is Down and m.ref == ref)
        # The supervisor restarts it; the new incarnation shows the old
        # presences leave, then tracks again those of live processes.
        diff = await next_diff("lobby")
        assert diff == PresenceDiff("lobby", {}, {"alice": [{"n": 1, "ref": old_ref}]})
        diff = await next_diff("lobby")
        [meta] = diff.joins["alice"]
        assert meta["n"] == 1 and meta["ref"] != old_ref
        assert list_presences(PR, "lobby") == {"alice": [meta]}
        assert whereis(f"{PR}.shard0") not in (None, shard)
        # The process is monitored by the new shard: its exit is seen.
        send_exit(alive, "kill")
        assert (await next_diff("lobby")).leaves == {"alice": [meta]}

    await on_node(main)


async def test_a_malformed_message_is_logged_and_dropped(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        pid = spawn(holder)
        ref = await track(PR, pid, "lobby", "alice", {})
        shard = whereis(f"{PR}.shard0")
        assert shard is not None
        send(shard, Heartbeat(("x@y", "not a vsn"), {}, None))  # type: ignore[arg-type]
        send(shard, TransferReq(1, ("x@y", 1), {"not": "a clock"}))  # type: ignore[dict-item]
        send(shard, "junk")
        cast(shard, ("track", pid))
        with pytest.raises(ValueError, match="malformed request"):
            _status, value = await call(shard, ("track", pid))
            raise value
        # The shard's topic is open to anyone on the PubSub.
        broadcast(PS, f"beamlet_presence:{PR}:0", Heartbeat(("x@y", 1), {}, [1, 2]))  # type: ignore[arg-type]
        await trio.sleep(1)
        assert whereis(f"{PR}.shard0") == shard
        assert list_presences(PR, "lobby") == {"alice": [{"ref": ref}]}

    with caplog.at_level(logging.WARNING, logger="beamlet.apps.presence"):
        await on_node(main)
    lines = [r.getMessage() for r in caplog.records if r.name == "beamlet.apps.presence"]
    # One line, then at most one per 10 s with a count: the log is not flooded.
    assert len(lines) == 1
    assert lines[0].startswith(f"{PR}.shard0 refused a malformed message")


async def test_a_call_to_a_stopped_presence_fails_clearly(autojump_clock: Any) -> None:
    async def main() -> None:
        sup = await Presence.start_link("other", pubsub=PS)
        pid = spawn(holder)
        await track("other", pid, "lobby", "alice", {})
        ref = monitor(sup)
        send_exit(sup, "kill")
        await receive(lambda m: type(m) is Down and m.ref == ref)
        with pytest.raises(UnknownPresenceError):
            await track("other", pid, "lobby", "bob", {})
        with pytest.raises(UnknownPresenceError):
            list_presences("other", "lobby")

    await on_node(_trapping(main))


def _trapping(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def wrapped() -> Any:
        from beamlet.actors import trap_exits

        trap_exits(True)
        return await fn()

    return wrapped
