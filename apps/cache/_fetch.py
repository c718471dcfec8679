"""``fetch``'s parts: what a computation may return, a flight, and the computation's process.

A miss starts one flight per key: the computation runs in a process of its
own on the cache's node (not in the first caller's scope), and every caller
that asks for the key meanwhile waits on the flight's event.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio
from beamlet.actors.lowlevel import Process

from ._errors import FetchAbortedError
from ._l2 import _MISS as _L2_MISS
from ._store import _check_ttl

if TYPE_CHECKING:
    from ._cache import Cache

__all__ = ["Flight", "NoCache", "WithTTL", "compute_process"]

T = TypeVar("T")


@attrs.frozen
class NoCache(Generic[T]):
    """What a ``fetch`` computation returns to give a value without caching it.

    Every caller waiting for the key gets ``value``; nothing is stored, so the
    next ``fetch`` computes again. Cachex's ``{:ignore, value}``; use it for
    "not found" answers or errors that should not stick::

        async def load_user(user_id):
            row = await db.get_user(user_id)
            return row if row is not None else NoCache(None)

    Attributes:
        value: what the waiting callers get.
    """

    value: T


@attrs.frozen
class WithTTL(Generic[T]):
    """What a ``fetch`` computation returns to cache its value with a TTL of its own.

    Cachex's ``{:commit, value, expire: ...}``: for values whose lifetime the
    computation knows (a token and its expiry, say). The cache's
    ``ttl_jitter`` applies to it as to any TTL.

    Attributes:
        value: the value, cached and given to every waiting caller.
        ttl: seconds it lives (``math.inf``: never).
    """

    value: T
    ttl: float = attrs.field()

    @ttl.validator
    def _check(self, attribute: Any, ttl: Any) -> None:
        _check_ttl("WithTTL ttl", ttl)


class Flight:
    """One computation of a key, and the callers waiting for it."""

    __slots__ = ("done", "error", "key", "proc", "value")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.proc: Process | None = None


async def compute_process(
    cache: Cache,
    flight: Flight,
    compute: Callable[..., Any],
    args: tuple[Any, ...],
    ttl: float | None,
) -> None:
    """The process of one ``fetch`` computation."""
    try:
        l2 = cache._l2
        if l2 is not None:
            found = await l2.read(flight.key)
            if found is not _L2_MISS:
                value, left = found
                if cache._flights.get(flight.key) is flight and not cache.closed:
                    cache._fill(flight.key, value, left)
                flight.proc = None
                cache._land(flight, NoCache(value), None)
                return
        result = compute(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        cache._fail(flight, exc)
        return
    except BaseException:
        cache._fail(
            flight,
            FetchAbortedError(
                cache.name,
                flight.key,
                "the computation was stopped before it ended "
                "(the cache's owner exited, or its process was killed)",
            ),
        )
        raise
    finally:
        flight.proc = None
    cache._land(flight, result, ttl)
