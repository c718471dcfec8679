"""The Redis second tier against a real redis-server (the ``redis_server`` fixture): reads
through, writes to both, Redis killed and paused mid-run, bad values. Real sockets, so real
time: every wait is bounded and waits for an event."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from beamlet.actors import Node, open_node, receive
from beamlet.apps.cache import Cache, lookup
from beamlet.cluster import encode

#: Short timeouts, so that a paused Redis is noticed quickly.
FAST = {"connect_timeout": 0.5, "command_timeout": 0.5, "reconnect_initial": 0.05}


@asynccontextmanager
async def cache_node(url: str, **options: Any) -> AsyncIterator[tuple[Node, Cache]]:
    """A node running cache "c" with the second tier at ``url``."""
    async with open_node(watchdog_threshold=None) as node:
        started = trio.Event()
        stop = trio.Event()

        async def holder() -> None:
            await Cache.start_link("c", l2={"url": url, **FAST}, **options)
            started.set()
            await stop.wait()

        node.spawn(holder)
        await started.wait()
        cache = await node.run(_lookup)
        try:
            yield node, cache
        finally:
            stop.set()


async def _lookup() -> Cache:
    return lookup("c")


async def sync(node: Node, cache: Cache) -> None:
    await node.run(cache.sync)


def constant(value: Any, calls: list[Any]) -> Any:
    async def compute() -> Any:
        calls.append(value)
        return value

    return compute


async def redis_value(cache: Cache, key: Any) -> Any:
    tier = cache._l2
    assert tier is not None and tier.redis is not None
    data = await tier.redis.get(tier.redis_key(key))
    return None if data is None else data


async def test_misses_read_redis_and_writes_go_to_both(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with (
            cache_node(redis_server.url, ttl=60.0) as (na, a),
            cache_node(redis_server.url, ttl=60.0) as (nb, b),
        ):
            assert a.stats().l2 == "up"
            calls: list[Any] = []
            a.put("user:1", {"name": "Ada"}, ttl=30.0)
            await sync(na, a)
            assert await redis_value(a, "user:1") == encode({"name": "Ada"})
            # b misses locally, finds it in Redis, and fills itself: no computation.
            assert await b.fetch("user:1", constant("computed", calls)) == {"name": "Ada"}
            assert calls == [] and b.get("user:1") == {"name": "Ada"}
            assert 29.0 < b.ttl("user:1") <= 30.0  # type: ignore[operator]
            # A computed value goes to Redis too; a's read finds it there.
            assert await b.fetch("user:2", constant("two", calls)) == "two"
            await sync(nb, b)
            assert await a.read("user:2") == "two" and a.get("user:2") == "two"
            assert await a.read("absent", "default") == "default"
            # Deletes and clears reach Redis.
            a.delete("user:1")
            await sync(na, a)
            assert await redis_value(a, "user:1") is None
            b.put_many({"x": 1, "y": 2})
            await sync(nb, b)
            assert await a.read("x") == 1
            b.clear()
            await sync(nb, b)
            assert await redis_value(a, "y") is None and await redis_value(a, "user:2") is None
            assert a.incr("n") == 1
            await sync(na, a)
            assert await redis_value(a, "n") == encode(1)


async def test_redis_killed_mid_run_the_cache_serves_from_memory(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(40):
        async with cache_node(redis_server.url) as (node, cache):
            calls: list[Any] = []
            cache.put("kept", "value")
            await sync(node, cache)
            with caplog.at_level(logging.WARNING):
                redis_server.kill()
                for i in range(200):
                    cache.put(("k", i), i)  # local at once; Redis fails behind
                await sync(node, cache)
                assert cache.stats().l2 == "down"
                assert cache.stats().l2_errors >= 1
                assert cache.get("kept") == "value" and cache.get(("k", 199)) == 199
                for i in range(50):  # misses compute, without waiting for Redis
                    assert await cache.fetch(("miss", i), constant(i, calls)) == i
                assert len(calls) == 50
                assert await cache.read("nowhere") is None
            down_lines = [
                r for r in caplog.records if r.levelno >= logging.WARNING and "down" in r.message
            ]
            assert len(down_lines) == 1, [r.message for r in caplog.records]  # once, not per op

            await redis_server.restart_async()  # the same port, empty
            tier = cache._l2
            assert tier is not None and tier.redis is not None
            await tier.redis.wait_up()
            assert cache.stats().l2 == "up"
            cache.put("after", "back")
            await sync(node, cache)
            assert await redis_value(cache, "after") == encode("back")


async def test_writes_lost_while_redis_hangs_never_leave_it_stale(redis_server: Any) -> None:
    with trio.fail_after(40):
        async with cache_node(redis_server.url) as (node, cache):
            cache.put("k", "old")
            await sync(node, cache)
            assert await redis_value(cache, "k") == encode("old")
            os.kill(redis_server.pid, signal.SIGSTOP)  # Redis hangs: commands time out
            try:
                cache.put("k", "new")  # cannot reach Redis, which keeps "old"
                await sync(node, cache)
                assert cache.stats().l2 == "down" and cache.get("k") == "new"
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            tier = cache._l2
            assert tier is not None and tier.redis is not None
            await tier.redis.wait_up()
            await sync(node, cache)  # the writer deletes what it could not update
            assert not tier.dirty
            assert await redis_value(cache, "k") is None  # cold, not stale


async def test_values_redis_cannot_take_are_refused(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with cache_node(redis_server.url) as (node, cache):
            cache.put("lock", "before")
            await sync(node, cache)
            with pytest.raises(TypeError, match="value for key 'lock' cannot be encoded"):
                cache.put("lock", trio.Lock())
            with pytest.raises(TypeError, match="cannot be encoded"):
                cache.put(trio.Lock, 1)
            await sync(node, cache)
            assert cache.get("lock") == "before"
            assert await redis_value(cache, "lock") == encode("before")
            # A computed value Redis cannot take is kept here only.
            lock = trio.Lock()
            assert await cache.fetch("computed", constant(lock, [])) is lock
            assert cache.get("computed") is lock
            await sync(node, cache)
            assert await redis_value(cache, "computed") is None


async def test_an_undecodable_value_in_redis_is_a_miss(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with cache_node(redis_server.url) as (node, cache):
            tier = cache._l2
            assert tier is not None and tier.redis is not None
            await tier.redis.set(tier.redis_key("k"), b"\xc1 not msgpack")
            calls: list[Any] = []
            assert await cache.fetch("k", constant("fresh", calls)) == "fresh"
            assert calls == ["fresh"] and cache.stats().l2_errors == 1
            await sync(node, cache)
            assert await redis_value(cache, "k") == encode("fresh")


async def test_bad_l2_options(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="l2 must be a Redis URL"):
            await Cache.start_link("c", l2=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown Redis option"):
            Cache.child_spec("c", l2={"bogus": 1})
        with pytest.raises(ValueError):
            Cache.child_spec("c", l2="http://not-redis")

    await node.run(body)


async def test_the_cache_starts_while_redis_is_down(redis_server: Any) -> None:
    url = redis_server.url
    redis_server.kill()
    with trio.fail_after(30):
        async with cache_node(url) as (node, cache):
            assert cache.stats().l2 == "down"
            cache.put("a", 1)
            assert cache.get("a") == 1
            redis_server.start()
            tier = cache._l2
            assert tier is not None and tier.redis is not None
            await tier.redis.wait_up()
            cache.put("b", 2)
            await sync(node, cache)
            assert await redis_value(cache, "b") == encode(2)


async def test_with_pubsub_a_node_rereads_the_new_value_from_redis(redis_server: Any) -> None:
    """The writer broadcasts the invalidation only once Redis has the new value."""
    from beamlet.apps.cache import Invalidate
    from beamlet.apps.pubsub import PubSub, subscribe
    from beamlet.cluster.simulation import simulated_cluster

    url = redis_server.url

    async def holder(ready: trio.Event) -> None:
        await PubSub.start_link("ps")
        await Cache.start_link("c", pubsub="ps", l2={"url": url, **FAST})
        ready.set()
        await trio.sleep_forever()

    with trio.fail_after(30):
        async with simulated_cluster(["a", "b"]) as sim:  # real time: Redis is real
            caches = []
            for short in ("a", "b"):
                ready = trio.Event()
                sim.spawn(short, holder, ready)
                await ready.wait()
                caches.append(await sim.run(short, _lookup))
            a, b = caches
            calls: list[Any] = []
            heard = trio.Event()

            async def listen() -> None:
                subscribe("ps", b.topic)
                while True:
                    msg = await receive()
                    if isinstance(msg, Invalidate) and msg.keys and "price" in msg.keys:
                        await b.sync()
                        heard.set()

            sim.spawn("b", listen)
            for n in range(100):  # until the PubSub shards have met through pg
                key = ("probe", n)
                await b.fetch(key, constant("x", []))
                a.put(key, "y")
                await trio.sleep(0.05)
                if key not in b:
                    break
            assert await b.fetch("price", constant(100, calls)) == 100
            await sim.run("b", b.sync)  # b's writer has put 100 in Redis
            a.put("price", 90)
            await heard.wait()
            assert "price" not in b
            # b reads Redis again, and finds the new price there, not the old one.
            assert await b.fetch("price", constant(-1, calls)) == 90
            assert calls == [100]
