"""``cached``: memoize an async function in a cache, one computation per key and node."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

from beamlet.actors.lowlevel import short_repr

from ._cache import Cache, _check_ttl, lookup

__all__ = ["CachedFunction", "cached"]

P = ParamSpec("P")
R = TypeVar("R")


class CachedFunction(Generic[P, R]):
    """An async function whose results are kept in a cache; ``cached`` makes them.

    Calling it is ``await cache.fetch(key, fn, *args, **kwargs)``, with the
    key made from the arguments: a hit returns the cached result, a miss
    runs ``fn`` once however many callers ask for the same arguments at
    once. ``fn`` may return ``NoCache(value)`` or ``WithTTL(value, ttl)``.

    Attributes:
        __wrapped__: the undecorated function.
    """

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]],
        cache: str | Cache,
        ttl: float | None,
        key: Callable[P, Hashable] | None,
    ) -> None:
        self.__wrapped__ = fn
        self._cache = cache
        self._ttl = ttl
        self._key = key
        self._qualname = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', fn)}"
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<cached {self._qualname} in {self._cache!r}>"

    @property
    def cache(self) -> Cache:
        """The cache it uses (looked up by name on each call when given a name)."""
        cache = self._cache
        return lookup(cache) if type(cache) is str else cache  # type: ignore[return-value]

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> Hashable:
        """The key of a call with these arguments.

        By default ``(module.qualname, args)``, plus the keyword arguments
        as sorted ``(name, value)`` pairs when there are some: two calls
        share a result when they pass equal arguments the same way
        (``f(1)`` and ``f(x=1)`` do not).

        Raises:
            TypeError: an argument is not hashable (give ``cached`` a ``key``).
        """
        if self._key is not None:
            key = self._key(*args, **kwargs)
        elif kwargs:
            key = (self._qualname, args, tuple(sorted(kwargs.items())))
        else:
            key = (self._qualname, args)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"cached function {self._qualname}: the key {short_repr(key)} of this call "
                "is not hashable; pass hashable arguments, or cached(..., key=fn)"
            ) from None
        return key

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        if kwargs:
            return await cache.fetch(  # type: ignore[no-any-return]
                key, functools.partial(self.__wrapped__, *args, **kwargs), ttl=self._ttl
            )
        return await cache.fetch(key, self.__wrapped__, *args, ttl=self._ttl)  # type: ignore[no-any-return]

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the cached result of a call with these arguments (on every node, with
        ``pubsub``); return whether one was cached here."""
        return self.cache.delete(self.cache_key(*args, **kwargs))


def cached(
    cache: str | Cache, *, ttl: float | None = None, key: Callable[..., Hashable] | None = None
) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
    """Decorator: keep an async function's results in ``cache``, as ``cachetools``'
    ``cached`` or ``aiocache``'s do, with one computation per key and node.

    Example::

        @cached("users", ttl=60.0)
        async def load_user(user_id: int) -> dict:
            return await db.fetch_user(user_id)

        user = await load_user(42)       # computed once, then read from the cache
        load_user.invalidate(42)         # dropped (on every node, with pubsub)

    Args:
        cache: the cache's name (looked up on each call, so that a
            restarted cache is found) or a ``Cache`` object.
        ttl: the TTL of the results (default: the cache's).
        key: makes the key from the call's arguments (default: see
            ``CachedFunction.cache_key``); with ``pubsub``, keys must be
            values the codec can send, which the default key is when the
            arguments are.

    Raises:
        TypeError / ValueError: a bad ``cache``, ``ttl`` or ``key``; a
            decorated object that is not callable.
    """
    if not (type(cache) is str and cache) and not isinstance(cache, Cache):
        raise TypeError(f"cached needs a cache name (a str) or a Cache, not {short_repr(cache)}")
    if ttl is not None:
        _check_ttl("ttl", ttl)
    if key is not None and not callable(key):
        raise TypeError(f"cached's key must be a callable making a key, not {short_repr(key)}")

    def decorate(fn: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        if not callable(fn):
            raise TypeError(f"cached decorates an async function, not {short_repr(fn)}")
        return CachedFunction(fn, cache, ttl, key)

    return decorate
