"""A node-local cache: reads and writes in the caller, TTLs, LRU, stats (see docs/cache.md)."""

import math

import trio
from beamlet.actors import run
from beamlet.apps.cache import Cache, lookup


async def main():
    # One owner process per cache; the entries live on the node, not in its mailbox.
    await Cache.start_link("sessions", max_size=3, ttl=60.0)
    sessions = lookup("sessions")

    sessions.put("ada", {"user": "ada"})
    sessions.put("bob", {"user": "bob"}, ttl=0.5)  # a TTL of its own
    assert sessions.get("ada") == {"user": "ada"}  # a dict lookup: no message sent
    assert sessions.get("nobody", "default") == "default"

    await trio.sleep(0.6)
    assert sessions.get("bob") is None  # expired entries are never returned

    # max_size=3: past it, the least recently used entry goes.
    sessions.put_many({"cy": 1, "dee": 2})
    sessions.get("ada")  # ada is used: cy is now the least recently used
    sessions.put("eve", 3)
    assert sessions.keys() == ["dee", "ada", "eve"]
    assert sessions.take("dee") == 2 and "dee" not in sessions

    # The friends Cachex users expect.
    assert sessions.incr("logins") == 1 and sessions.incr("logins", 2) == 3
    assert sessions.ttl("ada") <= 60.0 and sessions.ttl("missing") is None
    sessions.persist("ada")
    assert sessions.ttl("ada") == math.inf

    stats = sessions.stats()
    print(stats.hits, stats.misses, stats.evictions, f"{stats.hit_rate:.0%}")
    return stats.size


if __name__ == "__main__":
    print(run(main))
