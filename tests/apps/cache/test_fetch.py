"""fetch: single-flight computation of misses, its errors and cancellations, in virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import Node, Pid, self_pid, send_exit, stop
from beamlet.actors.lowlevel import current_process
from beamlet.apps.cache import Cache, FetchAbortedError, NoCache, WithTTL, lookup


class Source:
    """A slow source of values that counts its computations."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self.calls = 0
        self.pids: list[Pid] = []

    async def load(self, key: Any) -> Any:
        self.calls += 1
        self.pids.append(current_process().pid)
        await trio.sleep(self.delay)
        return ("value", key)


async def test_a_thousand_concurrent_callers_share_one_computation(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=1.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        start = trio.current_time()
        results: list[Any] = []

        async def caller() -> None:
            results.append(await c.fetch("k", source.load, "k"))
            assert trio.current_time() == start + 1.0

        async with trio.open_nursery() as nursery:
            for _ in range(1000):
                nursery.start_soon(caller)
        assert source.calls == 1
        assert results == [("value", "k")] * 1000
        assert c.stats().computations == 1
        # Cached: the next caller gets it at once, with no computation.
        assert await c.fetch("k", source.load, "k") == ("value", "k")
        assert source.calls == 1 and trio.current_time() == start + 1.0
        # The computation ran in a process of its own, not in a caller.
        assert source.pids[0] != self_pid()

    await node.run(body)


async def test_different_keys_compute_concurrently(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=2.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for key in ["a", "b", "c"]:
                for _ in range(10):
                    nursery.start_soon(c.fetch, key, source.load, key)
        assert source.calls == 3
        assert trio.current_time() == start + 2.0
        assert c.get_many(["a", "b", "c"]) == {k: ("value", k) for k in "abc"}

    await node.run(body)


async def test_an_error_reaches_every_waiter_and_is_not_cached(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        await trio.sleep(1)
        raise ConnectionError(f"db down #{calls}")

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        errors: list[BaseException] = []

        async def caller() -> None:
            try:
                await c.fetch("k", failing)
            except ConnectionError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(caller)
        assert calls == 1 and len(errors) == 100
        assert all(str(e) == "db down #1" for e in errors)
        assert "k" not in c
        # Not cached: the next fetch computes again.
        with pytest.raises(ConnectionError, match="db down #2"):
            await c.fetch("k", failing)

    await node.run(body)


async def test_cancelled_waiters_do_not_cancel_the_computation(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=5.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        start = trio.current_time()
        got: list[Any] = []

        async def patient() -> None:
            got.append(await c.fetch("k", source.load, "k"))

        async with trio.open_nursery() as nursery:
            # The first caller, which started the computation, gives up at 1 s.
            with trio.move_on_after(1.0) as first:
                await c.fetch("k", source.load, "k")
            assert first.cancelled_caught
            for _ in range(10):
                nursery.start_soon(patient)
            with trio.move_on_after(2.0):
                await c.fetch("k", source.load, "k")
        assert source.calls == 1
        assert got == [("value", "k")] * 10
        assert trio.current_time() == start + 5.0
        assert c.get("k") == ("value", "k")

    await node.run(body)


async def test_a_computation_with_no_caller_left_still_fills_the_cache(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=3.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        start = trio.current_time()
        with trio.move_on_after(1.0):
            await c.fetch("k", source.load, "k")
        assert "k" not in c
        await trio.sleep_until(start + 3.0)
        await trio.testing.wait_all_tasks_blocked()
        assert c.get("k") == ("value", "k") and source.calls == 1

    await node.run(body)


async def test_nocache_and_withttl_results(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def not_found() -> Any:
        return NoCache(None)

    async def token() -> Any:
        return WithTTL("secret", 2.0)

    async def body() -> None:
        await Cache.start_link("c", ttl=60.0)
        c = lookup("c")
        assert await c.fetch("user:1", not_found) is None
        assert "user:1" not in c
        assert await c.fetch("token", token) == "secret"
        assert c.ttl("token") == 2.0
        assert await c.fetch("plain", lambda: "sync value", ttl=7.0) == "sync value"
        assert c.ttl("plain") == 7.0
        with pytest.raises(ValueError, match="WithTTL ttl must be a number of seconds >= 0"):
            WithTTL("x", -1)

    await node.run(body)


async def test_a_write_during_the_computation_wins(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=2.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.fetch, "put", source.load, "put")
            nursery.start_soon(c.fetch, "deleted", source.load, "deleted")
            await trio.sleep(1.0)
            c.put("put", "newer")
            c.delete("deleted")
            # A caller after the write starts a computation of its own.
            assert await c.fetch("deleted", source.load, "deleted") == ("value", "deleted")
        assert c.get("put") == "newer"  # the older computation did not overwrite it
        assert source.calls == 3

    await node.run(body)


async def test_waiters_get_an_error_when_the_owner_exits_midway(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=10.0)

    async def body() -> None:
        pid = await Cache.start_link("c")
        c = lookup("c")
        errors: list[BaseException] = []

        async def caller() -> None:
            try:
                await c.fetch("k", source.load, "k")
            except FetchAbortedError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(caller)
            await trio.sleep(1.0)
            await stop(pid)
        assert len(errors) == 5
        assert "cache 'c' could not compute 'k'" in str(errors[0])
        assert errors[0].key == "k"  # type: ignore[attr-defined]

    await node.run(body)


async def test_a_killed_computation_reaches_its_waiters(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    source = Source(delay=10.0)

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")

        async def killer() -> None:
            await trio.sleep(1.0)
            send_exit(source.pids[0], "kill")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            with pytest.raises(FetchAbortedError):
                await c.fetch("k", source.load, "k")
        # Nothing cached, nothing left in flight: the next fetch computes.
        source.delay = 0
        assert await c.fetch("k", source.load, "k") == ("value", "k")

    await node.run(body)


async def test_bad_compute_and_ttl_are_refused(node: Node) -> None:
    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        with pytest.raises(TypeError, match="fetch needs a callable compute function, not 42"):
            await c.fetch("k", 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ttl must be a number of seconds >= 0"):
            await c.fetch("k", Source().load, "k", ttl=-2)
        assert c.stats().computations == 0

    await node.run(body)
