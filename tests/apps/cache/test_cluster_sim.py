"""Cluster invalidation over PubSub, in the simulation: writes, deletes, clears, a partition,
a restarted node, the TTL backstop, bad input."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import send
from beamlet.apps.cache import Cache, lookup
from beamlet.apps.cache._invalidation import Invalidate, topic
from beamlet.apps.pubsub import PubSub
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster


async def _holder(options: dict[str, Any], ready: trio.Event) -> None:
    await PubSub.start_link("ps")
    await Cache.start_link("c", pubsub="ps", **options)
    ready.set()
    await trio.sleep_forever()


async def _lookup() -> Cache:
    return lookup("c")


async def start_cache(sim: SimulatedCluster, short: str, **options: Any) -> Cache:
    ready = trio.Event()
    sim.spawn(short, _holder, options, ready)
    await ready.wait()
    return await sim.run(short, _lookup)


async def fill(cache: Cache, key: Any, value: Any) -> None:
    """Put ``value`` in ``cache`` as a fetch does: a local fill, no broadcast."""

    async def compute() -> Any:
        return value

    assert await cache.fetch(key, compute) == value


async def start_caches(sim: SimulatedCluster, shorts: list[str], **options: Any) -> list[Cache]:
    """A cache on each node; returns once invalidations flow between all of them."""
    caches = [await start_cache(sim, short, **options) for short in shorts]
    for n in range(100):  # the PubSub shards find each other through pg
        key = ("probe", n)
        for cache in caches[1:]:
            await fill(cache, key, "x")
        caches[0].put(key, "y")
        await trio.sleep(0.1)
        if all(key not in cache for cache in caches[1:]):
            break
    else:
        raise AssertionError("invalidations never flowed")
    for cache in caches:
        cache.clear()
    await trio.sleep(0.1)
    return caches


async def test_writes_deletes_and_clears_invalidate_every_other_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        a, b, c = await start_caches(sim, ["a", "b", "c"])
        for cache in (a, b, c):
            await fill(cache, "k", "old")
        sent = a.stats().invalidations_sent
        a.put("k", "new")
        await trio.sleep(0.01)
        assert "k" not in b and "k" not in c
        assert a.get("k") == "new"  # its own event is ignored
        assert a.stats().invalidations_sent == sent + 1
        assert b.stats().invalidations_received >= 1

        await fill(b, "k", "new")
        c.delete("k")
        await trio.sleep(0.01)
        assert "k" not in a and "k" not in b

        for cache in (a, b):
            await fill(cache, "x", 1)
            await fill(cache, "y", 2)
        c.clear()
        await trio.sleep(0.01)
        assert len(a) == len(b) == 0

        # Many writes at once go out in batches, the keys only.
        for i in range(2500):
            await fill(b, i, "old")
        sent = a.stats().invalidations_sent
        a.put_many((i, "new") for i in range(2500))
        await trio.sleep(0.01)
        assert len(b) == 0
        assert a.stats().invalidations_sent == sent + 1  # one flush (three messages)

        # incr, take and get_and_update are writes too.
        for op in (
            lambda: a.incr("n"),
            lambda: a.take("n"),
            lambda: a.get_and_update("n", lambda v: (v, 1)),
        ):
            await fill(b, "n", 0)
            op()
            await trio.sleep(0.01)
            assert "n" not in b


async def test_a_partition_makes_both_sides_start_cold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = {"k": 1}

    async def load() -> int:
        return source["k"]

    async with simulated_cluster(["a", "b"], ticktime=4.0) as sim:
        a, b = await start_caches(sim, ["a", "b"], ttl=300.0)
        assert await a.fetch("k", load) == 1 and await b.fetch("k", load) == 1
        flushes = b.stats().flushes

        sim.partition({"a"}, {"b"})
        source["k"] = 2
        a.put("k", 2)  # its invalidation is lost
        await trio.sleep(0.5)
        assert b.get("k") == 1  # stale, until b notices the partition (the TTL is the backstop)

        await sim.wait_until(lambda: "a@a" not in sim.nodes("b"))
        await trio.sleep(0.01)
        assert b.stats().flushes == flushes + 1 and "k" not in b  # cold, not stale
        assert await b.fetch("k", load) == 2

        source["k"] = 3
        a.put("k", 3)  # lost again: b may serve 2 while the partition lasts
        assert b.get("k") == 2

        sim.heal()
        await sim.wait_connected()
        await trio.sleep(0.01)
        assert b.stats().flushes == flushes + 2 and "k" not in b
        assert await b.fetch("k", load) == 3
        assert "k" not in a  # a flushed too (on NodeDown and NodeUp of b)
        assert a.stats().flushes >= 2


async def test_the_ttl_bounds_staleness_when_an_invalidation_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_cluster(["a", "b"], ticktime=4.0) as sim:
        a, b = await start_caches(sim, ["a", "b"], ttl=30.0, flush_on_cluster_change=False)
        start = trio.current_time()
        await fill(b, "k", "old")
        sim.partition({"a"}, {"b"})
        a.put("k", "new")
        await sim.wait_until(lambda: "a@a" not in sim.nodes("b"))
        assert b.get("k") == "old"  # no flush: only the TTL protects b
        await trio.sleep_until(start + 29.999)
        assert b.get("k") == "old"
        await trio.sleep_until(start + 30.0)
        assert b.get("k") is None
        assert b.stats().flushes == 0


async def test_a_restarted_node_starts_cold_and_its_peers_flush(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_cluster(["a", "b"], ticktime=4.0) as sim:
        a, b = await start_caches(sim, ["a", "b"])
        await fill(a, "k", "v")
        await fill(b, "k", "v")
        flushes = a.stats().flushes
        sim.crash("b")
        await sim.wait_until(lambda: "b@b" not in sim.nodes("a"))
        await trio.sleep(0.01)
        assert a.stats().flushes == flushes + 1 and "k" not in a
        assert b.closed  # its cache went with the node
        await sim.restart("b")
        await sim.wait_connected()
        b2 = await start_cache(sim, "b")
        assert len(b2) == 0
        await sim.wait_until(lambda: a.stats().flushes >= flushes + 2)


async def test_own_forged_and_malformed_invalidations(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        a, b = await start_caches(sim, ["a", "b"])
        await fill(a, "k", "v")

        async def deliver(msg: Any) -> None:
            send(a.pid, msg)

        with caplog.at_level(logging.WARNING, logger="beamlet.cache"):
            await sim.run("b", deliver, Invalidate("c", ("k",), a.pid))  # a's own: ignored
            await sim.run("b", deliver, Invalidate("other", ("k",), b.pid))  # another cache
            await sim.run("b", deliver, Invalidate("c", ["k"], b.pid))  # type: ignore[arg-type]
            await trio.sleep(0.01)
        assert a.get("k") == "v"
        assert any("refused a malformed message" in r.getMessage() for r in caplog.records)
        # A well-formed one from b is applied; an unhashable key in it is skipped.
        await sim.run("b", deliver, Invalidate("c", (["x"], "k"), b.pid))
        await trio.sleep(0.01)
        assert "k" not in a


async def test_keys_that_cannot_be_broadcast_are_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_cluster(["a"]) as sim:
        (a,) = [await start_cache(sim, "a")]
        key = trio.Lock  # hashable, but the codec cannot send it
        with pytest.raises(TypeError, match="broadcasts its keys to the other nodes"):
            a.put(key, 1)
        with pytest.raises(TypeError, match="cannot be sent"):
            a.delete(key)
        assert len(a) == 0
        a.put(("fine", 1, b"x"), 1)  # the usual keys pass without encoding
        assert topic("c") == "beamlet.cache:c"


async def test_the_pubsub_must_run_first(autojump_clock: trio.testing.MockClock) -> None:
    from beamlet.actors import whereis
    from beamlet.apps.pubsub import UnknownPubSubError

    async with simulated_cluster(["a"]) as sim:

        async def body() -> None:
            with pytest.raises(UnknownPubSubError, match="no PubSub named 'ps'"):
                await Cache.start_link("c", pubsub="ps")
            assert whereis("c") is None

        await sim.run("a", body)
        with pytest.raises(TypeError, match="pubsub must be the name of a PubSub"):
            Cache.child_spec("c", pubsub=3)  # type: ignore[arg-type]
