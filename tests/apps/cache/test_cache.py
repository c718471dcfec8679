"""The cache on one node: reads and writes in the caller, TTLs and sweeps in virtual time,
bounds, the owner's lifetime, and bad input."""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    Node,
    StartError,
    call,
    monitor,
    receive,
    send,
    send_exit,
    stop,
    whereis,
)
from beamlet.apps.cache import (
    Cache,
    CacheClosedError,
    CacheStats,
    EntryTooLargeError,
    UnknownCacheError,
    lookup,
)
from beamlet.apps.cache._options import check_options
from beamlet.supervisors import Supervisor


async def test_reads_and_writes_run_in_the_caller(node: Node) -> None:
    async def body() -> None:
        pid = await Cache.start_link("users")
        assert whereis("users") == pid
        users = lookup("users")
        assert users.name == "users" and users.pid == pid and not users.closed
        assert users.get("ada") is None
        assert users.get("ada", "none") == "none"
        users.put("ada", {"name": "Ada"})
        users.put(("t", 1), None)
        assert users.get("ada") == {"name": "Ada"}
        assert users.get(("t", 1), "x") is None  # a stored None is a hit
        assert "ada" in users and users.exists("ada") and not users.exists("bob")
        assert users.delete("ada") is True
        assert users.delete("ada") is False
        assert users.clear() == 1
        assert len(users) == 0
        assert users.stats() == CacheStats(hits=2, misses=2, writes=2, deletes=1, size=0, nbytes=0)

    await node.run(body)


async def test_the_friends_cachex_users_expect(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        c.put_many({"a": 1, "b": 2})
        c.put_many([("c", 3)], ttl=10.0)
        assert c.get_many(["a", "c", "zz"]) == {"a": 1, "c": 3}
        assert c.take("a") == 1 and c.take("a", "gone") == "gone"
        assert c.incr("n") == 1 and c.incr("n", 5) == 6 and c.decr("n", 2) == 4
        assert c.incr("f", 0.5, default=1) == 1.5
        with pytest.raises(TypeError, match="cannot incr 'b'"):
            c.put("b", "two")
            c.incr("b")
        assert c.get("b") == "two"
        assert c.get_and_update("b", lambda v: (v, v + "!")) == "two"
        assert c.get("b") == "two!"
        assert c.ttl("b") == math.inf and c.ttl("zz") is None
        assert c.ttl("c") == 10.0
        assert c.expire("b", 4.0) and c.ttl("b") == 4.0
        assert c.persist("b") and c.ttl("b") == math.inf
        assert not c.touch("zz") and c.touch("c")
        assert c.keys()[-1] == "c"  # touched last: the most recently used
        assert c.size() == len(c) == 4
        assert c.purge() == 0
        with pytest.raises(TypeError, match="needs a callable"):
            c.get_and_update("b", "not callable")  # type: ignore[arg-type]

    await node.run(body)


async def test_reads_work_from_any_task_of_the_node(node: Node) -> None:
    """No process needed to read: the table is the node's, not the owner's mailbox."""

    async def start() -> None:
        await Cache.start_link("shared")
        lookup("shared").put("k", "v")
        await trio.sleep_forever()

    node.spawn(start)
    await trio.testing.wait_all_tasks_blocked()
    # This test's own task is no process, only in the node's context.
    assert lookup("shared").get("k") == "v"
    lookup("shared").put("k2", "v2")
    assert lookup("shared").get("k2") == "v2"


async def test_ttls_expire_at_the_exact_virtual_time(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        await Cache.start_link("c", ttl=10.0, sweep_interval=None)
        c = lookup("c")
        start = trio.current_time()
        c.put("default", 1)
        c.put("short", 2, ttl=2.5)
        c.put("forever", 3, ttl=math.inf)
        c.put("now", 4, ttl=0)
        assert c.get("now") is None
        await trio.sleep_until(start + 2.4999)
        assert c.get("short") == 2
        await trio.sleep_until(start + 2.5)
        assert c.get("short") is None
        assert c.ttl("default") == pytest.approx(7.5)
        await trio.sleep_until(start + 9.999)
        assert c.get("default") == 1
        await trio.sleep_until(start + 10.0)
        assert c.get("default") is None
        await trio.sleep(80_000.0)
        assert c.get("forever") == 3

    await node.run(body)


async def test_the_owner_sweeps_expired_entries_every_interval(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        await Cache.start_link("c", sweep_interval=3.0)
        c = lookup("c")
        c.put("a", 1, ttl=1.0)
        c.put("b", 2, ttl=4.0)
        c.put("c", 3)
        # Nobody reads: the expired entries stay until a sweep.
        await trio.sleep_until(start + 2.999)
        assert c.stats().size == 3
        await trio.sleep_until(start + 3.001)  # the first sweep, at start + 3
        assert c.stats().size == 2 and c.stats().expirations == 1
        await trio.sleep_until(start + 5.999)
        assert c.stats().size == 2  # b expired at 4: the next sweep is at 6
        await trio.sleep_until(start + 6.001)
        assert c.stats().size == 1 and c.stats().expirations == 2
        assert c.keys() == ["c"]

    await node.run(body)


async def test_ttl_jitter_shortens_each_ttl_by_at_most_its_fraction(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        await Cache.start_link("c", ttl=10.0, ttl_jitter=0.2, sweep_interval=None)
        c = lookup("c")
        for i in range(200):
            c.put(i, i)
            c.put(("own", i), i, ttl=100.0)
        defaults = [c.ttl(i) for i in range(200)]
        owns = [c.ttl(("own", i)) for i in range(200)]
        assert all(8.0 <= t <= 10.0 for t in defaults)  # type: ignore[operator]
        assert all(80.0 <= t <= 100.0 for t in owns)  # type: ignore[operator]
        assert len(set(defaults)) > 150  # spread, not one value
        c.put("inf", 1, ttl=math.inf)
        c.put("zero", 1, ttl=0)
        assert c.ttl("inf") == math.inf and c.get("zero") is None

    await node.run(body)


async def test_max_size_evicts_the_least_recently_used(node: Node) -> None:
    async def body() -> None:
        await Cache.start_link("c", max_size=3)
        c = lookup("c")
        c.put_many([("a", 1), ("b", 2), ("c", 3)])
        c.get("a")  # a is used: b is now the least recently used
        c.put("d", 4)
        assert c.keys() == ["c", "a", "d"]
        assert c.stats().evictions == 1

    await node.run(body)


async def test_max_bytes_bounds_the_sum_of_sizes(node: Node) -> None:
    async def body() -> None:
        await Cache.start_link("c", max_bytes=10, sizer=len)
        c = lookup("c")
        c.put("a", b"1234")
        c.put("b", b"1234")
        c.put("c", b"1234")  # 12 bytes: a goes
        assert c.keys() == ["b", "c"] and c.stats().nbytes == 8
        with pytest.raises(EntryTooLargeError, match="above max_bytes=10") as info:
            c.put("big", b"x" * 11)
        assert info.value.key == "big" and info.value.size == 11
        assert c.keys() == ["b", "c"]  # unchanged

    await node.run(body)


async def test_lookup_of_an_unknown_cache_names_it(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(UnknownCacheError, match="no cache named 'nope'") as info:
            lookup("nope")
        assert info.value.name == "nope"
        assert isinstance(info.value, LookupError)
        with pytest.raises(TypeError, match="named by a str"):
            lookup(42)  # type: ignore[arg-type]

    await node.run(body)


async def test_the_entries_go_with_the_owner(node: Node) -> None:
    async def body() -> None:
        pid = await Cache.start_link("c")
        c = lookup("c")
        c.put("a", 1)
        ref = monitor(pid)
        await stop("c")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        with pytest.raises(UnknownCacheError):
            lookup("c")
        assert c.closed and "closed" in repr(c)
        with pytest.raises(
            CacheClosedError, match="cache 'c' is closed: its owner process"
        ) as info:
            c.get("a")
        assert info.value.reason == "normal"
        with pytest.raises(CacheClosedError):
            c.put("a", 2)
        with pytest.raises(CacheClosedError):
            c.stats()

    await node.run(body)


async def test_a_supervisor_restarts_the_cache_empty(node: Node) -> None:
    async def body() -> None:
        await Supervisor.start_link([Cache.child_spec("c", ttl=5.0, max_size=10)])
        first = lookup("c")
        first.put("a", 1)
        ref = monitor(first.pid)
        send_exit(first.pid, "kill")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        await trio.testing.wait_all_tasks_blocked()  # the supervisor restarts it
        second = lookup("c")
        assert second is not first and second.get("a") is None
        assert first.closed

    await node.run(body)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"ttl": -1}, ValueError, r"ttl \(the default TTL\) must be a number of seconds > 0"),
        (
            {"ttl": 0},
            ValueError,
            r"ttl \(the default TTL\) must be a number of seconds > 0 or None "
            r"\(math.inf: never\), not 0",
        ),
        ({"ttl": "5"}, TypeError, r"ttl \(the default TTL\) must be a number"),
        ({"max_size": -1}, ValueError, "max_size must be an int >= 0"),
        ({"max_size": 1.5}, TypeError, "max_size must be an int"),
        ({"max_size": True}, TypeError, "max_size must be an int"),
        ({"max_bytes": -5}, ValueError, "max_bytes must be an int >= 0"),
        ({"sizer": 3}, TypeError, "sizer must be a callable"),
        ({"sweep_interval": 0}, ValueError, "sweep_interval must be a number of seconds > 0"),
        (
            {"ttl_jitter": 1.0},
            ValueError,
            r"ttl_jitter must be a number in \[0, 1\) \(a fraction of the TTL\), not 1.0",
        ),
        ({"ttl_jitter": -0.1}, ValueError, r"ttl_jitter must be a number in \[0, 1\)"),
    ],
)
async def test_bad_options_are_refused_in_the_caller(
    node: Node, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    async def body() -> None:
        with pytest.raises(error, match=message):
            await Cache.start_link("c", **options)
        with pytest.raises(error, match=message):
            Cache.child_spec("c", **options)
        assert whereis("c") is None

    await node.run(body)


def test_start_link_and_child_spec_take_the_same_options() -> None:
    """Both hand their arguments to one check, by name: they must have the same ones."""
    start = set(inspect.signature(Cache.start_link).parameters)
    spec = set(inspect.signature(Cache.child_spec).parameters) - {"id", "restart", "shutdown"}
    assert start == spec
    assert set(inspect.signature(check_options).parameters) == start


async def test_bad_names_ttls_and_duplicates(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="non-empty str"):
            await Cache.start_link("")
        with pytest.raises(TypeError, match="non-empty str"):
            await Cache.start_link(7)  # type: ignore[arg-type]
        pid = await Cache.start_link("c")
        with pytest.raises(StartError, match="already_started"):
            await Cache.start_link("c")
        c = lookup("c")
        with pytest.raises(ValueError, match="ttl must be a number of seconds >= 0"):
            c.put("a", 1, ttl=-1)
        with pytest.raises(TypeError, match="ttl must be a number"):
            c.put("a", 1, ttl="soon")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="unhashable"):
            c.put(["a"], 1)
        assert len(c) == 0 and whereis("c") == pid

    await node.run(body)


async def test_the_owner_drops_junk_and_keeps_serving(
    node: Node, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        pid = await Cache.start_link("c")
        c = lookup("c")
        c.put("a", 1)
        with caplog.at_level(logging.WARNING, logger="beamlet.cache"):
            for junk in ["junk", ("beamlet.cache.flush",), None, 10**30]:
                send("c", junk)
            reply = await call("c", "anything")
            await trio.sleep(0.1)
        assert reply == ("error", ("bad_request", "'anything'"))
        lines = [r for r in caplog.records if r.name == "beamlet.cache"]
        assert len(lines) == 1  # rate-limited: one line, then a count later
        assert "refused" in lines[0].getMessage() and "junk" in lines[0].getMessage()
        assert whereis("c") == pid and c.get("a") == 1

    await node.run(body)
