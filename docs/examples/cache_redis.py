"""A second tier in Redis, shared by two nodes: a local miss reads Redis (docs/cache.md).

Run with a Redis URL: ``python cache_redis.py redis://127.0.0.1:6379/0``.
"""

import sys

import trio
from beamlet.actors import open_node
from beamlet.apps.cache import Cache, lookup

renders = 0


async def render(page):
    global renders
    renders += 1
    return f"<h1>{page}</h1>"


async def start(url):
    # The cache starts, and serves from memory, even if Redis is down.
    await Cache.start_link("pages", ttl=60.0, l2=url)
    return lookup("pages")


async def main(url):
    # Two nodes in one program, as two machines would run them.
    async with open_node() as a, open_node() as b:
        pages_a = await a.run(start, url)
        pages_b = await b.run(start, url)
        pages_a.clear()  # here and in Redis: start from nothing

        # a misses here and in Redis: it renders once and stores in both.
        assert await pages_a.fetch("/home", render, "home") == "<h1>home</h1>"
        await a.run(pages_a.sync)  # the write has reached Redis

        # b misses in its memory, finds the page in Redis, and keeps a copy.
        assert await pages_b.fetch("/home", render, "home") == "<h1>home</h1>"
        assert renders == 1 and pages_b.get("/home") == "<h1>home</h1>"
        print(pages_b.stats().l2, pages_b.ttl("/home"))  # up, about 60 s left
        return renders


if __name__ == "__main__":
    print(trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
