"""Caches kept coherent across nodes by PubSub invalidation, in the simulation (docs/cache.md)."""

import trio
import trio.testing
from beamlet.apps.cache import Cache, lookup
from beamlet.apps.pubsub import PubSub
from beamlet.cluster.simulation import simulated_cluster

database = {"price:42": 100}  # the source of truth both nodes read


async def load(key):
    return database[key]


async def start(ready):
    await PubSub.start_link("app")  # the same PubSub on every node
    await Cache.start_link("prices", pubsub="app", ttl=60.0)
    ready.set()
    await trio.sleep_forever()


async def get_cache():
    return lookup("prices")


async def main():
    async with simulated_cluster(["a", "b"]) as sim:
        caches = {}
        for node in ("a", "b"):
            ready = trio.Event()
            sim.spawn(node, start, ready)
            await ready.wait()
            caches[node] = await sim.run(node, get_cache)
        a, b = caches["a"], caches["b"]
        await trio.sleep(1.0)  # the PubSub shards find each other

        assert await a.fetch("price:42", load, "price:42") == 100
        assert await b.fetch("price:42", load, "price:42") == 100

        # A write on a: the database, then a's cache. b gets only the key,
        # drops its copy, and reads the new price on its next fetch.
        database["price:42"] = 90
        a.put("price:42", 90)
        await trio.sleep(0.01)
        assert "price:42" not in b
        assert await b.fetch("price:42", load, "price:42") == 90

        # A partition: invalidations may be lost, so each side empties its
        # cache when it sees the other go, and again when it comes back.
        sim.partition({"a"}, {"b"})
        await sim.wait_until(lambda: "a@a" not in sim.nodes("b"))
        await trio.sleep(0.01)
        assert len(b) == 0 and b.stats().flushes >= 1
        return b.stats()


if __name__ == "__main__":
    print(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)))
