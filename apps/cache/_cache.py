"""``Cache``: a node's handle on one cache, read and written in the caller.

The entries live in a ``CacheStore`` hung on the node (a ``NodeVar`` owned by
the cache's owner process, see ``_server``), so ``get``, ``put`` and their
friends are plain method calls in the calling task, with no message to
anyone: an ETS table read, in BEAM terms. The owner process only sweeps
expired entries, applies the invalidations other nodes send, broadcasts this
node's own, and takes the table with it when it exits.

``fetch`` runs each computation in a process of its own on the cache's node
(not in the first caller's scope), so that a caller that gives up does not
stop it for the others; callers wait on the flight's event.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio
from beamlet.actors import Pid, call
from beamlet.actors.lowlevel import (
    BadInputLog,
    Node,
    NodeVar,
    Process,
    short_repr,
)
from beamlet.cluster import encode

from . import _file
from ._errors import CacheClosedError, CacheFileError, UnknownCacheError
from ._fetch import Flight, NoCache, WithTTL, compute_process
from ._invalidation import ALL_KEYS
from ._l2 import _MISS as _L2_MISS, SecondTier
from ._options import DEFAULT_MAX_SIZE, DEFAULT_SWEEP_INTERVAL, Options, check_arguments
from ._store import CacheStats, CacheStore, EntryTooLargeError, _check_ttl

__all__ = ["CACHES", "Cache", "lookup"]

logger = logging.getLogger("beamlet.cache")

T = TypeVar("T")

#: This node's caches, by name, each owned by its owner process.
CACHES: NodeVar[Cache] = NodeVar("beamlet.apps.cache")

_MISS: Any = object()


def lookup(name: str) -> Cache:
    """This node's ``Cache`` called ``name``.

    Reads the node's table of caches directly (no message), so it is cheap,
    but a hot path may keep the object (until the cache restarts: see
    ``CacheClosedError``).

    Raises:
        UnknownCacheError: no cache of that name runs on this node.
        NotInProcessError: there is no current node.
    """
    cache = CACHES.get(key=name, default=None)
    if cache is None:
        if not isinstance(name, str):
            raise TypeError(f"a cache is named by a str, not {short_repr(name)}")
        raise UnknownCacheError(name)
    return cache


class _ClosedStore:
    """Stands in for the store of a closed cache: any use raises ``CacheClosedError``."""

    __slots__ = ("name", "reason")

    def __init__(self, name: str, reason: Any) -> None:
        self.name = name
        self.reason = reason

    def __getattr__(self, attr: str) -> Any:
        raise CacheClosedError(self.name, self.reason)

    def __len__(self) -> int:
        raise CacheClosedError(self.name, self.reason)


def _is_wire_key(key: Any) -> bool:
    """A quick yes for the keys the codec always takes (it is asked about the others)."""
    t = type(key)
    if t is str or t is int or t is bytes:
        return -(2**63) <= key < 2**64 if t is int else True
    if t is tuple:
        return all(_is_wire_key(k) for k in key)
    return False


class Cache:
    """One cache on this node: entries with TTLs and a size bound, read in the caller.

    Start one with ``Cache.start_link(name, ...)`` (or ``Cache.child_spec``
    under a supervisor); get the object with ``lookup(name)``. Every method
    but ``fetch``, ``dump`` and ``load`` is synchronous and runs in the
    caller, with no message passing, from any task or process of the
    cache's node.

    Example::

        async def main():
            await Cache.start_link("users", max_size=10_000, ttl=60.0)
            users = lookup("users")
            users.put("ada", {"name": "Ada"})
            assert users.get("ada") == {"name": "Ada"}
            user = await users.fetch("bob", load_user, "bob")  # computed once

    Values are stored by reference: do not mutate a value after putting it.
    Keys are any hashable; with ``pubsub``, keys must also be values the
    codec can send (str, int, bytes, tuples of them, ...), as they are
    broadcast. Time is Trio's clock (``trio.current_time()``), so TTLs run
    in virtual time under ``MockClock``.

    Eviction: when a write leaves more than ``max_size`` entries (or more
    than ``max_bytes``), expired entries go first, then the least recently
    used ones (a ``get`` hit, a write or ``touch`` is a use).

    Expiry: an expired entry is never returned (reads check it); the owner
    process also sweeps expired entries every ``sweep_interval`` seconds,
    so that they do not hold memory.
    """

    __slots__ = (
        "__weakref__",
        "_bad_values",
        "_computations",
        "_default_ttl",
        "_flights",
        "_flushes",
        "_invalidations_received",
        "_invalidations_sent",
        "_jitter",
        "_l2",
        "_name",
        "_node",
        "_now",
        "_owner",
        "_pending",
        "_pubsub",
        "_random",
        "_store",
    )

    def __init__(self, name: str, options: Options, owner: Process) -> None:
        self._name = name
        self._store: CacheStore = CacheStore(
            max_size=options.max_size,
            max_bytes=options.max_bytes,
            default_ttl=options.ttl,
            sizer=options.sizer,
        )
        self._default_ttl = options.ttl
        self._jitter = options.ttl_jitter
        self._random = random.Random()
        self._pubsub = options.pubsub
        self._l2 = None if options.l2 is None else SecondTier(name, options.l2)
        self._owner = owner
        self._node: Node = owner.node
        self._now = trio.lowlevel.current_clock().current_time
        self._flights: dict[Any, Flight] = {}
        self._pending: list[Any] = []
        self._computations = 0
        self._invalidations_sent = 0
        self._invalidations_received = 0
        self._flushes = 0
        self._bad_values = BadInputLog(f"cache {name!r}", logger)

    def __repr__(self) -> str:
        state = "closed" if isinstance(self._store, _ClosedStore) else f"{len(self._store)} entries"
        return f"<Cache {self._name!r} {state}>"

    # -- starting -------------------------------------------------------------------------

    @classmethod
    async def start_link(
        cls,
        name: str,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        ttl: float | None = None,
        max_bytes: int | None = None,
        sizer: Callable[[Any], int] | None = None,
        sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
        ttl_jitter: float = 0.0,
        pubsub: str | None = None,
        flush_on_cluster_change: bool = True,
        l2: str | Mapping[str, Any] | None = None,
    ) -> Pid:
        """Start the cache ``name`` on this node, owned by a new process linked to the caller.

        Returns after the cache is ready: ``lookup(name)`` then finds it.
        The owner process is registered under ``name``.

        Args:
            name: the cache's name (a str), unique on the node.
            max_size: most entries (default 100,000; ``None``: no bound).
                Past it the least recently used entry is evicted.
            ttl: the default TTL in seconds (``None``, the default: entries
                never expire unless ``put`` gives a ``ttl``).
            max_bytes: most bytes, summing each value's size as ``sizer``
                gives it (``None``: no bound). A value larger than this is
                refused with ``EntryTooLargeError``.
            sizer: a value's size in bytes (default: ``estimate_size``, a
                shallow estimate; ``len`` suits bytes values).
            sweep_interval: seconds between two sweeps of expired entries
                (default 3, as Cachex; ``None``: no sweep, expired entries
                are dropped when read or evicted).
            ttl_jitter: a fraction in [0, 1): every finite TTL is shortened
                by a random part of it up to this fraction, so that entries
                written together do not all expire (and get recomputed)
                together. 0 by default.
            pubsub: the name of a running ``PubSub`` (the same on every
                node): writes and deletes then invalidate the key on every
                node's cache of this name (only the keys are sent, never the
                values), and keys must be values the codec can send.
            flush_on_cluster_change: with ``pubsub``, empty the cache when a
                node comes up or goes down (True, the default), so that a
                cache that may have missed invalidations (a partition, a
                peer's crash or restart) starts cold rather than stale.
            l2: a second tier in Redis, shared by the nodes: a Redis URL
                (``"redis://host:6379/0"``) or a mapping of the connection's
                options (``url``, ``connect_timeout``, ``command_timeout``,
                ``reconnect_initial``, ``reconnect_max``, ...). A local miss
                in ``fetch`` or ``read`` asks Redis before computing; writes
                go to both. Needs the ``redis`` extra (coredis). The cache
                starts (and serves from memory) even if Redis is down:
                ``start_link`` waits for one attempt to reach it, at most
                ``connect_timeout + command_timeout`` seconds.

        Raises:
            TypeError / ValueError: a bad option (the message names it).
            UnknownPubSubError: ``pubsub`` is not running on this node
                (start the PubSub first).
            StartError: a process is already registered under ``name``.
            NotInProcessError: there is no calling process to link to.
        """
        options = check_arguments(locals())
        from ._server import CacheServer

        if pubsub is not None:
            from beamlet.apps.pubsub import node_name

            node_name(pubsub)  # UnknownPubSubError now, rather than a failed start
        return await CacheServer.start_link(name, options, name=name)

    @classmethod
    def child_spec(
        cls,
        name: str,
        *,
        id: Hashable = None,
        restart: str = "permanent",
        shutdown: float | str = 5.0,
        max_size: int | None = DEFAULT_MAX_SIZE,
        ttl: float | None = None,
        max_bytes: int | None = None,
        sizer: Callable[[Any], int] | None = None,
        sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
        ttl_jitter: float = 0.0,
        pubsub: str | None = None,
        flush_on_cluster_change: bool = True,
        l2: str | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Describe the cache for a supervisor (a mapping ``ChildSpec`` accepts).

        Takes ``start_link``'s options, checked here, plus ``id`` (default
        ``("beamlet.cache", name)``), ``restart`` and ``shutdown``. A
        restarted cache starts empty.
        """
        options = check_arguments(locals())
        from ._server import CacheServer

        return CacheServer.child_spec(
            name,
            options,
            id=("beamlet.cache", name) if id is None else id,
            name=name,
            restart=restart,
            shutdown=shutdown,
        )

    # -- identity ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The cache's name."""
        return self._name

    @property
    def pid(self) -> Pid:
        """The cache's owner process."""
        return self._owner.pid

    @property
    def topic(self) -> str:
        """The PubSub topic on which the caches of this name announce their writes.

        A process that subscribes to it (on the cache's PubSub) receives an
        ``Invalidate`` for each batch of keys another node wrote, as the
        owner does: to reload them, say, as FunWithFlags does.
        """
        return f"beamlet.cache:{self._name}"

    @property
    def closed(self) -> bool:
        """True once the owner process has exited (the object is then unusable)."""
        return isinstance(self._store, _ClosedStore)

    # -- reads --------------------------------------------------------------------------

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The live value under ``key``, or ``default``; a hit makes it the most recently used.

        Counts a hit or a miss.
        """
        return self._store.get(key, self._now(), default)

    def get_many(self, keys: Iterable[Hashable]) -> dict[Any, Any]:
        """The live entries among ``keys``, as a dict (absent keys are left out)."""
        store = self._store
        now = self._now()
        found = {}
        for key in keys:
            value = store.get(key, now, _MISS)
            if value is not _MISS:
                found[key] = value
        return found

    def exists(self, key: Hashable) -> bool:
        """Whether a live entry is under ``key`` (neither a hit nor a miss; not a use)."""
        return self._store.exists(key, self._now())

    def __contains__(self, key: Hashable) -> bool:
        return self._store.exists(key, self._now())

    def ttl(self, key: Hashable) -> float | None:
        """Seconds left to the entry under ``key``: ``math.inf`` if it never expires,
        ``None`` if there is no live entry."""
        return self._store.ttl(key, self._now())

    def keys(self) -> list[Any]:
        """The live keys, least recently used first."""
        return self._store.keys(self._now())

    def size(self) -> int:
        """How many live entries there are."""
        return self._store.size(self._now())

    def __len__(self) -> int:
        return self._store.size(self._now())

    def stats(self) -> CacheStats:
        """A snapshot of the counters and the state (see ``CacheStats``)."""
        store = self._store
        return attrs.evolve(
            store.stats(),
            size=len(store),
            nbytes=store.nbytes,
            computations=self._computations,
            invalidations_sent=self._invalidations_sent,
            invalidations_received=self._invalidations_received,
            flushes=self._flushes,
            l2=None if self._l2 is None else self._l2.state,
            l2_errors=0 if self._l2 is None else self._l2.errors,
        )

    # -- writes -------------------------------------------------------------------------

    def put(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` (on every node's copy: the others drop theirs).

        Args:
            key: any hashable (with ``pubsub``, one the codec can send).
            value: any value, stored by reference. With a second tier, one
                the codec can encode.
            ttl: seconds it lives (0: expires at once; ``math.inf``: never);
                ``None``: the cache's ``ttl``. ``ttl_jitter`` shortens it
                by a random fraction.

        Raises:
            TypeError / ValueError: a bad ``ttl``, a key that cannot be
                broadcast, a value the second tier cannot encode.
            EntryTooLargeError: the value alone is above ``max_bytes``.
            CacheClosedError: the cache's owner has exited.
            Nothing is written when it raises.
        """
        if self._pubsub is not None and not _is_wire_key(key):
            self._check_wire_key(key)
        l2 = self._l2
        if l2 is None:
            self._store.put(key, value, self._now(), self._ttl(ttl))
            self._wrote(key)
            return
        rkey, data = l2.redis_key(key), l2.encode_value(key, value)
        self._store.put(key, value, self._now(), self._ttl(ttl))
        l2.write(rkey, data, self._left(key))
        self._wrote(key)

    def put_many(
        self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]], ttl: float | None = None
    ) -> None:
        """``put`` each ``(key, value)`` of ``items`` with one ``ttl``; all or nothing."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if self._pubsub is not None:
            for pair in pairs:
                if isinstance(pair, tuple) and len(pair) == 2 and not _is_wire_key(pair[0]):
                    self._check_wire_key(pair[0])
        l2 = self._l2
        encoded = []
        if l2 is not None:
            for pair in pairs:
                if isinstance(pair, tuple) and len(pair) == 2:
                    encoded.append((l2.redis_key(pair[0]), l2.encode_value(*pair)))
        self._store.put_many(pairs, self._now(), self._ttl(ttl))
        if l2 is not None:
            for (key, _), (rkey, data) in zip(pairs, encoded, strict=True):
                l2.write(rkey, data, self._left(key))
        for key, _ in pairs:
            self._wrote(key)

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key`` here and on every node; return whether a
        live one was here."""
        if self._pubsub is not None and not _is_wire_key(key):
            self._check_wire_key(key)
        found = self._store.delete(key, self._now())
        self._l2_delete(key)
        self._wrote(key)
        return found

    def take(self, key: Hashable, default: Any = None) -> Any:
        """Remove and return the live value under ``key`` (here and on every node), or
        ``default``."""
        if self._pubsub is not None and not _is_wire_key(key):
            self._check_wire_key(key)
        value = self._store.take(key, self._now(), _MISS)
        self._l2_delete(key)
        if value is _MISS:
            return default
        self._wrote(key)
        return value

    def clear(self) -> int:
        """Remove every entry, here and on every node; return how many live ones were here.

        With a second tier, its entries of this cache are removed too.
        """
        count = self._store.clear(self._now())
        self._flights.clear()
        if self._l2 is not None:
            self._l2.clear()
        if self._pubsub is not None:
            self._announce(ALL_KEYS)
        return count

    def incr(
        self, key: Hashable, amount: float = 1, *, default: float = 0, ttl: float | None = None
    ) -> Any:
        """Add ``amount`` to the number under ``key`` (``default`` if none) and return it.

        Atomic on this node (nothing else runs in between). The entry keeps
        its expiry unless ``ttl`` is given. Other nodes drop their copy: a
        counter is a node's own, not a cluster-wide one.

        Raises:
            TypeError: the stored value is not a number; nothing changes.
        """
        return self._update(key, "incr", amount, default, ttl)

    def decr(
        self, key: Hashable, amount: float = 1, *, default: float = 0, ttl: float | None = None
    ) -> Any:
        """``incr`` by ``-amount``."""
        return self._update(key, "decr", amount, default, ttl)

    def get_and_update(
        self,
        key: Hashable,
        fn: Callable[[Any], tuple[Any, Any]],
        *,
        default: Any = None,
        ttl: float | None = None,
    ) -> Any:
        """Update the entry under ``key`` in one step: ``fn(current) -> (reply, new_value)``.

        ``fn`` gets the live value (or ``default``); ``new_value`` is stored
        and ``reply`` returned. The entry keeps its expiry unless ``ttl`` is
        given. Whatever ``fn`` raises propagates and nothing changes.
        """
        if not callable(fn):
            raise TypeError(f"get_and_update needs a callable, not {short_repr(fn)}")
        return self._update(key, "get_and_update", fn, default, ttl)

    def expire(self, key: Hashable, ttl: float) -> bool:
        """Set the entry's TTL to ``ttl`` seconds from now; return whether a live entry
        was there. Local: other nodes keep their own TTLs."""
        return self._store.expire(key, self._now(), ttl)

    def persist(self, key: Hashable) -> bool:
        """Make the entry never expire; return whether a live entry was there."""
        return self._store.persist(key, self._now())

    def touch(self, key: Hashable) -> bool:
        """Make the entry the most recently used, keeping its TTL; return whether a
        live entry was there."""
        return self._store.touch(key, self._now())

    def purge(self) -> int:
        """Drop the expired entries now (the sweep); return how many."""
        return self._store.purge_expired(self._now())

    async def read(self, key: Hashable, default: Any = None) -> Any:
        """``get``, through the second tier: on a local miss, the value Redis has.

        A value found in Redis fills the local table, for the time Redis
        has left on it (the cache's ``ttl`` if none). Without a second tier,
        or while Redis is down, it is ``get`` (with a checkpoint).

        Cancellation:
            Safe: a cancelled read fills nothing.
        """
        value = self._store.get(key, self._now(), _MISS)
        l2 = self._l2
        if value is not _MISS or l2 is None:
            await trio.lowlevel.checkpoint()
            return default if value is _MISS else value
        found = await l2.read(key)
        if found is _L2_MISS:
            return default
        value, left = found
        if not self.closed:
            self._fill(key, value, left)
        return value

    # -- fetch --------------------------------------------------------------------------

    async def fetch(
        self,
        key: Hashable,
        compute: Callable[..., Awaitable[Any] | Any],
        *args: Any,
        ttl: float | None = None,
    ) -> Any:
        """The value under ``key``; on a miss, ``compute(*args)`` once for every caller.

        A hit returns at once. On a miss (with a second tier: after Redis
        missed too), the first caller starts ``compute(*args)`` in a process
        of its own on the cache's node; any other caller that asks for the
        same key before it ends waits for the same computation, however
        many there are. Its result is cached (with ``ttl``, or the cache's)
        and returned to every waiter; an exception it raises is raised in
        every waiter (the same exception object) and nothing is cached.

        ``compute`` may return ``NoCache(value)`` to hand ``value`` to the
        waiters without caching it, or ``WithTTL(value, ttl)`` to cache it
        with a TTL of its own. It is usually an async function; a plain
        function's result is used as it is (it runs in the node's thread:
        keep it quick).

        If the entry is written, deleted or invalidated while it is being
        computed, the result still goes to the callers waiting for it but
        is not cached (it may be stale).

        Raises:
            TypeError: ``compute`` is not callable; a bad ``ttl``.
            FetchAbortedError: the computation was stopped (the cache's
                owner exited, or its process was killed).
            Whatever ``compute`` raised.

        Cancellation:
            A cancelled caller stops waiting; the computation goes on for
            the other callers (and is cached), even if no caller is left.
        """
        if not callable(compute):
            raise TypeError(f"fetch needs a callable compute function, not {short_repr(compute)}")
        if ttl is not None:
            _check_ttl("ttl", ttl)
        value = self._store.get(key, self._now(), _MISS)
        if value is not _MISS:
            await trio.lowlevel.checkpoint_if_cancelled()
            return value
        flight = self._flights.get(key)
        if flight is None:
            if self._pubsub is not None and not _is_wire_key(key):
                self._check_wire_key(key)
            flight = self._flights[key] = Flight(key)
            self._computations += 1
            try:
                flight.proc = self._node.spawn_process(
                    compute_process, (self, flight, compute, args, ttl)
                )
            except BaseException:
                del self._flights[key]
                raise
        await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value

    async def sync(self, timeout: float | None = 5.0) -> None:
        """Wait until the owner process has handled every message that reached it before,
        and the second tier's writer has sent every write made before.

        That is: the invalidations that were delivered to the owner, the
        sweep that was due, the cluster changes; with ``l2``, the writes to
        Redis (sent, or failed while Redis is down). A process subscribed to
        the cache's topic on the same PubSub gets each ``Invalidate`` as the
        owner does; after ``sync`` the owner has applied it. Tests,
        benchmarks and shutdown code use it; a cache's readers never need
        to wait. Call it from a process.

        Raises:
            CallTimeoutError: the owner did not answer in ``timeout`` seconds.
            CallExitError: the owner has exited.
            trio.TooSlowError: the second tier's writer did not catch up in
                ``timeout`` seconds.

        Cancellation:
            Safe: nothing changes.
        """
        from ._server import _SYNC

        with trio.fail_after(math.inf if timeout is None else timeout):
            await call(self._owner.pid, _SYNC, timeout=timeout)
            if self._l2 is not None:
                await self._l2.wait_idle()

    # -- dump and load ------------------------------------------------------------------

    async def dump(self, path: str | os.PathLike[str]) -> int:
        """Write the live entries to the file ``path``; return how many.

        The file is msgpack through beamlet's codec (no pickle), with a
        checksum, written to a temporary file in the same directory, fsynced
        and renamed over ``path``: ``path`` holds the old file or the new
        one, never a part. Each entry keeps its time left to live, dated by
        the wall clock, so that a ``load`` after a restart (even of the
        machine) counts the time gone by. The entries are taken at once;
        encoding and writing run in a thread.

        Returns:
            The number of entries written.

        Raises:
            TypeError / ValueError: a key or value the codec cannot encode
                (the message names the key); no file is written.
            OSError: the file cannot be written; ``path`` is unchanged.

        Cancellation:
            The write goes on to its end in its thread (it is not cut in
            the middle); the caller is cancelled after it.
        """
        entries = self._store.export(self._now())
        data = await trio.to_thread.run_sync(
            _file.encode_dump, self._name, entries, _file.wall_time()
        )
        await trio.to_thread.run_sync(_file.write_atomically, Path(path), data)
        return len(entries)

    async def load(self, path: str | os.PathLike[str]) -> int:
        """Merge the entries of a ``dump`` file into the cache; return how many were loaded.

        Entries replace those under the same keys (as ``put``, in the order
        they were used, the most recent last, so that the LRU order is
        kept), each with the time it had left to live less the wall time
        gone by since the dump; entries that have expired meanwhile are
        skipped. It is a local fill: nothing is broadcast to other nodes.
        With ``pubsub``, a loaded entry may be stale if another node wrote
        its key while this one was down (the TTL bounds it): see the guide.

        Raises:
            CacheFileError: the file is truncated, corrupted or not a dump;
                nothing is loaded.
            EntryTooLargeError: an entry is above ``max_bytes``; nothing is
                loaded.
            OSError: the file cannot be read.

        Cancellation:
            Reading and decoding run in a thread, to their end.
        """
        path = Path(path)
        data = await trio.to_thread.run_sync(_file.read_file, path)
        try:
            _, entries = await trio.to_thread.run_sync(_file.decode_dump, data, _file.wall_time())
        except _file.DumpFormatError as exc:
            raise CacheFileError(path, str(exc)) from None
        count = self._store.restore(entries, self._now())
        if self._flights:
            for key, _, _ in entries:
                self._flights.pop(key, None)
        return count

    # -- internals ----------------------------------------------------------------------

    def _ttl(self, ttl: float | None) -> float | None:
        """The TTL of a write: ``ttl`` or the default, shortened by the jitter."""
        if not self._jitter:
            return ttl
        if ttl is None:
            ttl = self._default_ttl
            if ttl is None:
                return None
        else:
            _check_ttl("ttl", ttl)
        if ttl == 0 or ttl == math.inf:
            return ttl
        return ttl * (1.0 - self._jitter * self._random.random())

    def _left(self, key: Any) -> float | None:
        """Seconds left to the entry under ``key`` (None: it never expires; 0: gone)."""
        left = self._store.ttl(key, self._now())
        if left is None:
            return 0.0
        return None if left == math.inf else left

    def _l2_delete(self, key: Any) -> None:
        l2 = self._l2
        if l2 is not None:
            try:
                l2.delete(l2.redis_key(key))
            except TypeError:
                pass  # a key that cannot be encoded cannot be in Redis

    def _wrote(self, key: Any) -> None:
        """After a write or delete of ``key``: detach its computation, tell the others."""
        if self._flights:
            self._flights.pop(key, None)
        if self._pubsub is not None:
            self._announce(key)

    def _announce(self, key: Any) -> None:
        pending = self._pending
        if not pending:
            if self._l2 is not None:
                self._l2.poke()  # its writer broadcasts, once Redis has the writes
            else:
                self._owner.deliver(_FLUSH)
        pending.append(key)

    def _check_wire_key(self, key: Any) -> None:
        try:
            hash(key)
            encode(key)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cache {self._name!r} broadcasts its keys to the other nodes, and "
                f"key {short_repr(key)} cannot be sent: {exc}"
            ) from None

    def _update(self, key: Any, op: str, arg: Any, default: Any, ttl: float | None) -> Any:
        if self._pubsub is not None and not _is_wire_key(key):
            self._check_wire_key(key)
        if ttl is not None:
            ttl = self._ttl(ttl)
        store = self._store
        now = self._now()
        if op == "get_and_update":
            result = store.get_and_update(key, now, arg, default=default, ttl=ttl)
        elif op == "incr":
            result = store.incr(key, now, arg, default=default, ttl=ttl)
        else:
            result = store.decr(key, now, arg, default=default, ttl=ttl)
        l2 = self._l2
        if l2 is not None:
            value = store.get(key, now, _MISS)
            try:
                l2.write(l2.redis_key(key), l2.encode_value(key, value), self._left(key))
            except (TypeError, ValueError) as exc:
                self._l2_delete(key)  # no older value must stay there
                l2.bad_values.report("value", key, f"kept here only, not in Redis: {exc}")
        self._wrote(key)
        return result

    def _fill(self, key: Any, value: Any, ttl: float | None) -> bool:
        """Store a computed (or second-tier) value: no broadcast, it is no write."""
        try:
            self._store.put(key, value, self._now(), self._ttl(ttl))
        except EntryTooLargeError as exc:
            self._bad_values.report("value", key, f"not cached: {exc}")
            return False
        return True

    def _land(self, flight: Flight, result: Any, ttl: float | None) -> None:
        """A computation ended with ``result``: cache it (if still wanted), wake the waiters."""
        current = self._flights.get(flight.key) is flight
        if current:
            del self._flights[flight.key]
        kind = type(result)
        if kind is NoCache:
            flight.value = result.value
        else:
            if kind is WithTTL:
                value, ttl = result.value, result.ttl
            else:
                value = result
            flight.value = value
            if current and not self.closed and self._fill(flight.key, value, ttl):
                l2 = self._l2
                if l2 is not None:
                    key = flight.key
                    try:
                        rkey, data = l2.redis_key(key), l2.encode_value(key, value)
                    except (TypeError, ValueError) as exc:
                        l2.bad_values.report("value", key, f"kept here only, not in Redis: {exc}")
                    else:
                        l2.write(rkey, data, self._left(key))
        flight.done.set()

    def _fail(self, flight: Flight, error: BaseException) -> None:
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]
        flight.error = error
        flight.done.set()

    def _close(self, reason: Any) -> None:
        """The owner has exited: the entries go, computations are stopped, the object
        refuses any use."""
        self._store = _ClosedStore(self._name, reason)  # type: ignore[assignment]
        self._pending.clear()
        for flight in list(self._flights.values()):
            if flight.proc is not None:
                flight.proc.kill("shutdown")
        if self._l2 is not None and self._l2.proc is not None:
            self._l2.proc.kill("shutdown")


class _Flush:
    """Tells the owner that invalidations are pending (a local message, never sent out)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<cache flush>"


_FLUSH = _Flush()
