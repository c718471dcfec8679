"""The ``cached`` decorator: keys from arguments, one computation per key, invalidation."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import Node
from beamlet.apps.cache import Cache, CachedFunction, NoCache, UnknownCacheError, cached, lookup


async def test_results_are_cached_by_arguments(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[Any] = []

    @cached("users", ttl=30.0)
    async def load_user(user_id: int, *, full: bool = False) -> dict[str, Any]:
        calls.append((user_id, full))
        await trio.sleep(1)
        return {"id": user_id, "full": full}

    async def body() -> None:
        await Cache.start_link("users")
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(load_user, 1)
        assert await load_user(1) == {"id": 1, "full": False}
        assert await load_user(1, full=True) == {"id": 1, "full": True}
        assert await load_user(2) == {"id": 2, "full": False}
        assert calls == [(1, False), (1, True), (2, False)]
        key = load_user.cache_key(1)
        assert lookup("users").ttl(key) == 28.0  # put at 1 s, read at 3 s
        assert load_user.invalidate(1) is True
        assert load_user.invalidate(1) is False
        await load_user(1)
        assert len(calls) == 4
        assert load_user.__name__ == "load_user" and isinstance(load_user, CachedFunction)

    await node.run(body)


async def test_a_cache_object_a_custom_key_and_nocache(node: Node) -> None:
    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        seen = []

        @cached(c, key=lambda path, **_: path.lower())
        async def read(path: str, **options: Any) -> Any:
            seen.append(path)
            return NoCache(None) if path == "missing" else f"<{path}>"

        assert await read("A") == "<A>"
        assert await read("a", mode="r") == "<A>"  # the same key
        assert c.get("a") == "<A>"
        assert await read("missing") is None
        assert await read("missing") is None
        assert seen == ["A", "missing", "missing"]

    await node.run(body)


async def test_bad_uses_are_clear_errors(node: Node) -> None:
    @cached("nowhere")
    async def f(x: Any) -> Any:
        return x

    async def body() -> None:
        with pytest.raises(UnknownCacheError, match="'nowhere'"):
            await f(1)
        await Cache.start_link("nowhere")
        with pytest.raises(TypeError, match="is not hashable; pass hashable arguments"):
            await f([1, 2])
        assert await f((1, 2)) == (1, 2)

    await node.run(body)
    with pytest.raises(TypeError, match="cached needs a cache name"):
        cached(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl must be a number of seconds >= 0"):
        cached("c", ttl=-1)
    with pytest.raises(TypeError, match="key must be a callable"):
        cached("c", key="k")  # type: ignore[arg-type]
