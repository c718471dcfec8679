"""fetch: a miss computed once however many callers wait; the cached decorator (docs/cache.md)."""

import trio
from beamlet.actors import run
from beamlet.apps.cache import Cache, NoCache, cached, lookup

queries = 0


async def query_db(user_id):
    """A slow source of truth."""
    global queries
    queries += 1
    await trio.sleep(0.1)
    if user_id < 0:
        return NoCache(None)  # "not found": give it to the callers, but do not cache it
    return {"id": user_id}


@cached("users", ttl=30.0)
async def load_user(user_id: int) -> dict:
    return await query_db(user_id)


async def main():
    await Cache.start_link("users", ttl=60.0)
    users = lookup("users")

    # 1,000 callers miss at once: one query, and all of them get its result.
    results = []

    async def caller():
        results.append(await users.fetch(("user", 1), query_db, 1))

    async with trio.open_nursery() as nursery:
        for _ in range(1000):
            nursery.start_soon(caller)
    assert queries == 1 and results == [{"id": 1}] * 1000

    # A caller that gives up does not stop the computation for the others.
    with trio.move_on_after(0.01):
        await users.fetch(("user", 2), query_db, 2)
    assert await users.fetch(("user", 2), query_db, 2) == {"id": 2}
    assert queries == 2

    # NoCache: returned, not cached.
    assert await users.fetch(("user", -1), query_db, -1) is None
    assert ("user", -1) not in users

    # The decorator: the key is made from the arguments.
    assert await load_user(7) == {"id": 7}
    assert await load_user(7) == {"id": 7}
    assert queries == 4  # 2, then -1, then 7 once
    load_user.invalidate(7)
    return users.stats().computations


if __name__ == "__main__":
    print(run(main))
