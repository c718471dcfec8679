"""dump/load: a cache that survives a restart, TTLs counted in wall time (docs/cache.md)."""

import sys
import tempfile
from pathlib import Path

import trio
from beamlet.actors import run
from beamlet.apps.cache import Cache, CacheFileError, lookup


async def before_deploy(path):
    await Cache.start_link("pages", ttl=300.0)
    pages = lookup("pages")
    pages.put_many({"/": "<h1>home</h1>", "/about": "<h1>about</h1>"})
    return await pages.dump(path)  # atomic: a temporary file, fsync, rename


async def after_deploy(path):
    await Cache.start_link("pages", ttl=300.0)
    pages = lookup("pages")
    loaded = await pages.load(path)  # merged in; entries expired meanwhile are skipped
    assert pages.get("/") == "<h1>home</h1>"

    await trio.Path(path).write_bytes(b"not a dump")
    try:
        await pages.load(path)
    except CacheFileError as exc:
        print(exc, file=sys.stderr)  # cannot load cache file ...: nothing was loaded
    assert pages.size() == 2  # unchanged
    return loaded


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pages.cache"
        print(run(before_deploy, path), "entries dumped")
        print(run(after_deploy, path), "entries loaded")
