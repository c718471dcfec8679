"""The cache's optional second tier: Redis, shared by the nodes, behind the local table.

A local miss in ``fetch`` (or ``read``) asks Redis before computing, and fills
the local table with what Redis has, for the time Redis says it has left.
Writes go to both: the local table at once, in the caller; Redis in the
background, from the tier's writer process, so that ``put`` stays a plain
synchronous call. The writer takes every write made since its last round
(the latest per key), sends the deletes and SETs, and only then broadcasts
the keys' invalidation to the other nodes (with ``pubsub``): a node that
drops a key and reads it again finds the new value in Redis, not the old one.

Redis down. The connection layer (``beamlet.apps._redis``) marks it down at
the first failure, logs one line (not one per operation), reconnects with
backoff, and meanwhile refuses commands at once: the cache serves from
memory, reads skip Redis, ``stats().l2`` says ``"down"`` and
``stats().l2_errors`` counts what failed. Writes that could not reach Redis
leave Redis with an older value, so their keys are remembered (up to
``MAX_DIRTY``; past it, the whole namespace) and deleted from Redis first
thing when it is back: Redis may be cold, never stale, once the writer has
caught up.

Keys in Redis: ``beamlet:cache:NAME:`` followed by the key encoded by the
codec; values: the codec's bytes (msgpack, never pickle). A value the codec
cannot encode is refused by ``put`` before anything changes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from beamlet.actors.lowlevel import BadInputLog, Process, short_repr
from beamlet.cluster import DecodeError, decode, encode

from .._redis import (
    RedisCommandError,
    RedisConnection,
    RedisOptions,
    RedisUnavailableError,
    open_redis,
)
from ._invalidation import broadcast_invalidation

if TYPE_CHECKING:
    from ._cache import Cache

__all__ = ["MAX_DIRTY", "MAX_PENDING", "SecondTier"]

logger = logging.getLogger("beamlet.cache")

#: Writes waiting for the writer, at most; past it they are dropped and the
#: whole namespace is deleted from Redis instead (cold, not stale).
MAX_PENDING = 100_000

#: Keys whose write failed, remembered to be deleted from Redis when it is back.
MAX_DIRTY = 10_000

#: Seconds between two attempts to delete those keys while Redis is down.
RETRY_INTERVAL = 1.0

_MISS: Any = object()

_REDIS_ERRORS = (RedisUnavailableError, RedisCommandError)


class SecondTier:
    """One cache's Redis tier on one node: the writes to send, and its state."""

    def __init__(self, name: str, options: RedisOptions) -> None:
        self.name = name
        self.options = options
        self.prefix = f"beamlet:cache:{name}:".encode()
        self.redis: RedisConnection | None = None
        self.proc: Process | None = None
        self.pending: dict[bytes, tuple[bytes, float | None] | None] = {}
        self.clear_all = False
        self.dirty: set[bytes] = set()
        self.dirty_all = False
        self.errors = 0
        self._wake = trio.Event()
        self._busy = False
        self._idle = trio.Event()
        self.bad_values = BadInputLog(f"cache {name!r} (Redis tier)", logger)

    @property
    def state(self) -> str:
        """``"up"`` while Redis answers, else ``"down"``."""
        redis = self.redis
        return "up" if redis is not None and redis.up else "down"

    # -- encoding ---------------------------------------------------------------------------

    def redis_key(self, key: Any) -> bytes:
        """The Redis key of ``key``.

        Raises:
            TypeError: the codec cannot encode ``key``.
        """
        try:
            return self.prefix + encode(key)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cache {self.name!r} keeps its entries in Redis too, and "
                f"key {short_repr(key)} cannot be encoded: {exc}"
            ) from None

    def encode_value(self, key: Any, value: Any) -> bytes:
        """The bytes of ``value`` for Redis.

        Raises:
            TypeError / ValueError: the codec cannot encode it (the message
                names the cache and the key).
        """
        try:
            return encode(value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"cache {self.name!r} keeps its entries in Redis too, and the value "
                f"for key {short_repr(key)} cannot be encoded: {exc}"
            ) from None

    # -- writes (from the caller, synchronous) -----------------------------------------------

    def write(self, rkey: bytes, data: bytes, ttl: float | None) -> None:
        """Queue a SET (``ttl``: seconds left, None: no expiry; <= 0: a delete)."""
        self.pending[rkey] = None if ttl is not None and ttl <= 0 else (data, ttl)
        self.poke()

    def delete(self, rkey: bytes) -> None:
        """Queue a delete."""
        self.pending[rkey] = None
        self.poke()

    def clear(self) -> None:
        """Queue the deletion of the cache's whole namespace in Redis."""
        self.pending.clear()
        self.clear_all = True
        self.poke()

    def poke(self) -> None:
        """Wake the writer (and keep what waits for it bounded)."""
        if len(self.pending) > MAX_PENDING:
            logger.warning(
                "cache %r: over %d writes wait for Redis; they are dropped and the "
                "cache's entries in Redis deleted instead",
                self.name,
                MAX_PENDING,
            )
            self.pending.clear()
            self.clear_all = True
        self._wake.set()

    # -- reads (in a fetch's process, or a read's caller) ---------------------------------

    async def read(self, key: Any) -> tuple[Any, float | None] | Any:
        """``(value, seconds left or None)`` from Redis, or ``_MISS`` (absent, down, bad)."""
        redis = self.redis
        if redis is None or not redis.up:
            return _MISS
        try:
            rkey = self.redis_key(key)
        except TypeError:
            return _MISS  # it cannot be there
        try:
            found = await redis.get_with_ttl(rkey)
        except _REDIS_ERRORS:
            self.errors += 1
            return _MISS
        if found is None:
            return _MISS
        data, ttl = found
        try:
            value = decode(data)
        except DecodeError as exc:
            self.errors += 1
            self.bad_values.report("value in Redis", key, f"undecodable ({exc}); deleted")
            self.delete(rkey)
            return _MISS
        return value, ttl

    # -- the writer process -----------------------------------------------------------------

    async def run(self, cache: Cache, ready: trio.Event) -> None:
        """The writer: opens Redis, then sends the queued writes round after round."""
        async with open_redis(self.options, name=f"cache {self.name}") as redis:
            self.redis = redis
            ready.set()
            while True:
                self._busy = False
                self._idle.set()
                await self._wait()
                self._busy = True
                ops, clear_all = self.pending, self.clear_all
                self.pending, self.clear_all = {}, False
                keys = list(cache._pending)
                cache._pending.clear()
                if (self.dirty or self.dirty_all) and redis.up:
                    await self._clean(redis)
                if ops or clear_all:
                    await self._apply(redis, ops, clear_all)
                pubsub = cache._pubsub
                if keys and pubsub is not None:
                    broadcast_invalidation(pubsub, self.name, cache.pid, keys)
                    cache._invalidations_sent += 1

    async def wait_idle(self) -> None:
        """Wait until the writer has sent (or failed to send) every write queued before,
        and, if Redis is up, deleted the keys whose writes failed."""
        while self.proc is not None and (
            self.pending or self.clear_all or self._busy or (self._stale and self.state == "up")
        ):
            if self._idle.is_set():
                self._idle = trio.Event()
            await self._idle.wait()

    @property
    def _stale(self) -> bool:
        return bool(self.dirty) or self.dirty_all

    async def _wait(self) -> None:
        if self._stale:
            with trio.move_on_after(RETRY_INTERVAL):
                await self._wake.wait()
        else:
            await self._wake.wait()
        self._wake = trio.Event()

    async def _apply(
        self,
        redis: RedisConnection,
        ops: dict[bytes, tuple[bytes, float | None] | None],
        clear_all: bool,
    ) -> None:
        try:
            if clear_all:
                await redis.delete_matching(self.prefix + b"*")
            deletes = [rkey for rkey, op in ops.items() if op is None]
            if deletes:
                await redis.delete(*deletes)
            by_ttl: dict[float | None, list[tuple[bytes, bytes]]] = {}
            for rkey, op in ops.items():
                if op is not None:
                    by_ttl.setdefault(op[1], []).append((rkey, op[0]))
            for ttl, items in by_ttl.items():
                await redis.set_many(items, ttl=ttl)
        except _REDIS_ERRORS:
            self.errors += 1
            if clear_all:
                self.dirty_all = True
            self._remember(ops)

    def _remember(self, rkeys: Any) -> None:
        """Keys whose value in Redis may be stale: to delete when Redis is back."""
        if self.dirty_all:
            return
        self.dirty.update(rkeys)
        if len(self.dirty) > MAX_DIRTY:
            self.dirty.clear()
            self.dirty_all = True

    async def _clean(self, redis: RedisConnection) -> None:
        try:
            if self.dirty_all:
                await redis.delete_matching(self.prefix + b"*")
                self.dirty_all = False
                self.dirty.clear()
            else:
                dirty = list(self.dirty)
                for i in range(0, len(dirty), 1000):
                    await redis.delete(*dirty[i : i + 1000])
                self.dirty.difference_update(dirty)
        except _REDIS_ERRORS:
            self.errors += 1


def coerce_options(l2: Any) -> RedisOptions:
    """The Redis options of ``l2`` (a URL, a mapping of options), checked.

    Raises:
        TypeError / ValueError: bad options.
        RedisNotInstalledError: coredis is not installed.
    """
    from .._redis import require_coredis

    if not isinstance(l2, str | dict) and not hasattr(l2, "keys"):
        raise TypeError(
            f"l2 must be a Redis URL (a str) or a mapping of Redis options, not {short_repr(l2)}"
        )
    options = RedisOptions.coerce(l2)
    require_coredis("the cache's Redis tier (l2)")
    return options
