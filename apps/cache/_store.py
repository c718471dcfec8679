"""The cache's table: entries, TTLs, LRU eviction, size and byte bounds. Pure.

No Trio, no clock: every operation that needs the time takes ``now`` (the
owner passes ``trio.current_time()``), so the same calls at the same times
give the same results, and tests drive time by hand.

What it keeps:

- **TTL.** Each entry may expire: ``put(..., ttl=seconds)``, else the store's
  ``default_ttl`` (``None``: entries never expire), or ``math.inf`` for "never"
  when a default is set. An entry whose expiry time has come (``expires <=
  now``) is never returned: reads check it (lazy expiry) and drop it, and
  ``purge_expired(now)`` sweeps the rest; ``next_expiry()`` tells the owner
  when to sweep next.
- **max_size, with LRU eviction.** When a write leaves more than ``max_size``
  entries, expired entries go first, then the least *recently used* live ones,
  one at a time, until the bound holds again: the bound is exact after every
  write (no batch reclaim is needed, as eviction costs O(1) an entry). Reads
  (``get`` hits), writes and ``touch`` count as uses; ``exists``, ``ttl``,
  ``take`` and the TTL commands do not. Cachex's default is LRW (least
  recently *written*) with LRU as an opt-in hook, which suits caches whose
  working set is rewritten often; here a read is as cheap as Cachex's (a dict
  lookup and a ``move_to_end``), and LRU keeps an entry that is read all the
  time but written once, which is the common shape of a read-through cache.
- **max_bytes.** Optional: the sum of the entries' sizes, each given by the
  ``sizer`` when the entry is written (default: ``estimate_size``, an
  estimate), stays at or below it, evicting as for ``max_size``. A single value
  larger than ``max_bytes`` is refused (``EntryTooLargeError``).
- **Statistics**: hits, misses, writes, evictions, expirations, deletes.

Layout: an ``OrderedDict`` from key to ``(value, expires, nbytes)`` in LRU
order (least recent first), plus a heap of ``(expires, seq, key)`` for the
entries that expire. A heap record is not removed when its entry is rewritten
or deleted; it is dropped when it comes to the top, and the heap is rebuilt if
stale records outnumber the entries, so memory stays proportional to the
entries.
"""

from __future__ import annotations

import heapq
import itertools
import math
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import attrs
from beamlet.actors.lowlevel import check_number

__all__ = ["CacheStats", "CacheStore", "EntryTooLargeError", "estimate_size"]

_INF = math.inf
_NEVER = "math.inf: never"


class EntryTooLargeError(ValueError):
    """A value's size is above the cache's ``max_bytes``: it could never be kept.

    Attributes:
        key: the entry's key.
        size: the value's size, as the sizer gave it.
        max_bytes: the cache's bound.
    """

    def __init__(self, key: Any, size: int, max_bytes: int) -> None:
        super().__init__(
            f"cannot cache {key!r}: its value's size, {size} bytes, is above max_bytes={max_bytes}"
        )
        self.key = key
        self.size = size
        self.max_bytes = max_bytes


@attrs.frozen
class CacheStats:
    """Counters of one cache since it started.

    Attributes:
        hits: reads that found a live entry (``get``, ``take``).
        misses: reads that found none (absent or expired).
        writes: entries written (``put``, each entry of ``put_many`` and
            ``restore``, ``incr``/``decr``, ``get_and_update``).
        evictions: live entries removed to keep ``max_size`` or ``max_bytes``.
        expirations: entries removed because their TTL ran out (on a read, a
            write over them, or a sweep).
        deletes: live entries removed by ``delete`` or ``take``.

    A running cache (``Cache.stats()``) fills in the fields below too; the
    bare store leaves them at their defaults.

    Attributes:
        size: entries held (expired ones not yet swept included).
        nbytes: the sum of their sizes (0 unless ``max_bytes`` is set).
        computations: ``fetch`` computations started (one per miss and key,
            however many callers waited for it).
        invalidations_sent: batches of invalidated keys broadcast to the
            other nodes.
        invalidations_received: keys dropped (or whole-cache clears done)
            because another node wrote them.
        flushes: times the whole cache was emptied because the cluster
            changed (a node came up or went down), so that it starts cold
            rather than stale.
        l2: the second tier's state: ``None`` (no second tier), ``"up"`` or
            ``"down"`` (the cache then serves from memory alone).
        l2_errors: second-tier operations that failed (Redis down or slow,
            or a value Redis could not take).
    """

    hits: int = 0
    misses: int = 0
    writes: int = 0
    evictions: int = 0
    expirations: int = 0
    deletes: int = 0
    size: int = 0
    nbytes: int = 0
    computations: int = 0
    invalidations_sent: int = 0
    invalidations_received: int = 0
    flushes: int = 0
    l2: str | None = None
    l2_errors: int = 0

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``; 0.0 before any read."""
        reads = self.hits + self.misses
        return self.hits / reads if reads else 0.0


def estimate_size(value: Any) -> int:
    """A cheap estimate of a value's memory, in bytes: the default sizer.

    ``sys.getsizeof(value)``, plus that of each item one level down for a
    ``list``, ``tuple``, ``set``, ``frozenset`` or ``dict`` (keys and values).
    Exact for ``bytes`` and ``str``; deeper containers and the attributes of
    objects are not followed, so nested data counts low. It costs O(len) of a
    container. Pass ``sizer=len`` for ``bytes`` values, or a sizer of your
    own, when this does not fit.
    """
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        for key, item in value.items():
            size += sys.getsizeof(key) + sys.getsizeof(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            size += sys.getsizeof(item)
    return size


def _check_ttl(name: str, ttl: object) -> float:
    """Validate a TTL in seconds: a number >= 0; ``math.inf`` means never."""
    check_number(ttl, name, unit="seconds", note=_NEVER)
    return float(ttl)  # type: ignore[arg-type]


class CacheStore:
    """The entries of one cache, with TTLs, LRU eviction and size bounds.

    Not thread-safe, and needs no lock: one process owns it, and reads run
    in the callers of the same Trio thread between checkpoints.

    Example::

        store = CacheStore(max_size=2, default_ttl=60.0)
        store.put("a", 1, now=0.0)
        store.put("b", 2, now=0.0, ttl=5.0)
        assert store.get("a", now=1.0) == 1
        store.put("c", 3, now=2.0)              # evicts "b", least recently used
        assert store.get("b", now=2.0) is None
        assert store.get("a", now=61.0) is None  # expired

    Args:
        max_size: most entries kept (``None``: no bound).
        max_bytes: most bytes kept, summing each value's size (``None``: no
            bound).
        default_ttl: seconds an entry lives when ``put`` gives no ``ttl``
            (``None``: it never expires). Must be > 0.
        sizer: gives a value's size in bytes, an int >= 0; called once when
            an entry is written. Default: ``estimate_size`` when ``max_bytes``
            is set, else sizes are not measured.

    Raises:
        TypeError / ValueError: a bound that is not an int >= 0, a default
            TTL that is not a number > 0, a sizer that is not callable.
    """

    __slots__ = (
        "_bytes",
        "_data",
        "_default_ttl",
        "_deletes",
        "_evictions",
        "_expirations",
        "_heap",
        "_hits",
        "_lookup",
        "_max_bytes",
        "_max_size",
        "_misses",
        "_move_to_end",
        "_seq",
        "_sizer",
        "_writes",
    )

    def __init__(
        self,
        *,
        max_size: int | None = None,
        max_bytes: int | None = None,
        default_ttl: float | None = None,
        sizer: Callable[[Any], int] | None = None,
    ) -> None:
        check_number(max_size, "max_size", integer=True, optional=True)
        check_number(max_bytes, "max_bytes", integer=True, optional=True)
        check_number(
            default_ttl, "default_ttl", strict=True, optional=True, unit="seconds", note=_NEVER
        )
        self._max_size = max_size
        self._max_bytes = max_bytes
        self._default_ttl = None if default_ttl is None else float(default_ttl)
        if sizer is not None and not callable(sizer):
            raise TypeError(f"sizer must be a callable giving a size in bytes, not {sizer!r}")
        self._sizer = sizer if sizer is not None or max_bytes is None else estimate_size
        self._data: OrderedDict[Any, tuple[Any, float, int]] = OrderedDict()
        self._lookup = self._data.get
        self._move_to_end = self._data.move_to_end
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._bytes = 0
        self._hits = self._misses = self._writes = 0
        self._evictions = self._expirations = self._deletes = 0

    def __repr__(self) -> str:
        return (
            f"<CacheStore {len(self._data)} entries, max_size={self.max_size}, "
            f"max_bytes={self.max_bytes}, default_ttl={self.default_ttl}>"
        )

    def __len__(self) -> int:
        """Entries held, counting expired ones not yet dropped (see ``size``)."""
        return len(self._data)

    @property
    def max_size(self) -> int | None:
        """Most entries kept (``None``: no bound)."""
        return self._max_size

    @property
    def max_bytes(self) -> int | None:
        """Most bytes kept (``None``: no bound)."""
        return self._max_bytes

    @property
    def default_ttl(self) -> float | None:
        """Seconds an entry lives when ``put`` gives no ``ttl`` (``None``: forever)."""
        return self._default_ttl

    @property
    def nbytes(self) -> int:
        """The sum of the held entries' sizes (0 when sizes are not measured)."""
        return self._bytes

    # -- reads ---------------------------------------------------------------

    def get(self, key: Hashable, now: float, default: Any = None) -> Any:
        """The live value under ``key``, or ``default``; a hit makes it most recently used.

        Counts a hit or a miss; an expired entry is dropped (an expiration)
        and is a miss.
        """
        entry = self._lookup(key)
        if entry is not None and entry[1] > now:
            self._move_to_end(key)
            self._hits += 1
            return entry[0]
        if entry is not None:
            self._expire_entry(key, entry)
        self._misses += 1
        return default

    def exists(self, key: Hashable, now: float) -> bool:
        """Whether a live entry is under ``key``. Neither a use nor a read in the stats."""
        return self._live(key, now) is not None

    def ttl(self, key: Hashable, now: float) -> float | None:
        """Seconds left to the entry under ``key``: ``math.inf`` if it never expires,
        ``None`` if there is no live entry."""
        entry = self._live(key, now)
        if entry is None:
            return None
        return entry[1] - now if entry[1] != _INF else _INF

    def keys(self, now: float) -> list[Any]:
        """The live keys, least recently used first. Drops expired entries first."""
        self.purge_expired(now)
        return list(self._data)

    def size(self, now: float) -> int:
        """How many live entries there are. Drops expired entries first."""
        self.purge_expired(now)
        return len(self._data)

    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            writes=self._writes,
            evictions=self._evictions,
            expirations=self._expirations,
            deletes=self._deletes,
        )

    # -- writes --------------------------------------------------------------

    def put(self, key: Hashable, value: Any, now: float, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` as the most recently used entry.

        Args:
            key: any hashable.
            value: any value (stored by reference: do not mutate it after).
            now: the current time, in seconds.
            ttl: seconds it lives (0: expires at once; ``math.inf``: never);
                ``None``: the store's ``default_ttl``.

        Raises:
            TypeError / ValueError: ``ttl`` is not a number >= 0 or None.
            EntryTooLargeError: the value alone is above ``max_bytes``.
            In both cases the store is unchanged.
        """
        expires = self._expiry("ttl", ttl, now)
        nbytes = self._measure(key, value)
        self._set(key, value, expires, nbytes, now)
        self._writes += 1
        self._shrink(now)

    def put_many(
        self,
        items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        now: float,
        ttl: float | None = None,
    ) -> None:
        """``put`` each ``(key, value)`` of ``items``, in order, with one ``ttl``.

        All or nothing: if ``ttl`` or one value's size is refused, nothing is
        written. Bounds are enforced once, after the last entry (with the
        same result as one ``put`` at a time).
        """
        expires = self._expiry("ttl", ttl, now)
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        for index, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    f"put_many items must be (key, value) pairs; item {index} is {pair!r}"
                )
        sized = [(key, value, self._measure(key, value)) for key, value in pairs]
        for key, value, nbytes in sized:
            self._set(key, value, expires, nbytes, now)
        self._writes += len(sized)
        self._shrink(now)

    def delete(self, key: Hashable, now: float) -> bool:
        """Remove the entry under ``key``; return whether a live one was there."""
        entry = self._live(key, now)
        if entry is None:
            return False
        self._remove(key, entry)
        self._deletes += 1
        return True

    def discard(self, key: Hashable, now: float) -> bool:
        """Remove the entry under ``key`` without counting a delete; return whether a
        live one was there. For invalidations, which the owner counts itself (an
        expired entry still counts as an expiration)."""
        entry = self._live(key, now)
        if entry is None:
            return False
        self._remove(key, entry)
        return True

    def take(self, key: Hashable, now: float, default: Any = None) -> Any:
        """Remove and return the live value under ``key``, or ``default``.

        Counts a hit and a delete, or a miss.
        """
        entry = self._live(key, now)
        if entry is None:
            self._misses += 1
            return default
        self._remove(key, entry)
        self._hits += 1
        self._deletes += 1
        return entry[0]

    def clear(self, now: float) -> int:
        """Remove every entry; return how many live ones there were.

        Expired entries count as expirations; the live ones in no counter.
        """
        self.purge_expired(now)
        count = len(self._data)
        self._data.clear()
        self._heap.clear()
        self._bytes = 0
        return count

    def incr(
        self,
        key: Hashable,
        now: float,
        amount: float = 1,
        *,
        default: float = 0,
        ttl: float | None = None,
    ) -> Any:
        """Add ``amount`` to the number under ``key`` and return the result.

        With no live entry, ``default + amount`` is stored. The entry's
        expiry is kept unless ``ttl`` is given; a new entry gets ``ttl`` or
        the default TTL. A write and a use.

        Raises:
            TypeError: the stored value, ``amount`` or ``default`` is not an
                int or a float (bools are refused); nothing changes.
            EntryTooLargeError: the result is above ``max_bytes``.
        """
        check_number(amount, "amount", minimum=None)
        check_number(default, "default", minimum=None)

        def add(current: Any) -> tuple[Any, Any]:
            check_number(current, f"cannot incr {key!r}: its value", minimum=None)
            result = current + amount
            return result, result

        return self.get_and_update(key, now, add, default=default, ttl=ttl)

    def decr(
        self,
        key: Hashable,
        now: float,
        amount: float = 1,
        *,
        default: float = 0,
        ttl: float | None = None,
    ) -> Any:
        """``incr`` by ``-amount``."""
        check_number(amount, "amount", minimum=None)
        return self.incr(key, now, -amount, default=default, ttl=ttl)

    def get_and_update(
        self,
        key: Hashable,
        now: float,
        fn: Callable[[Any], tuple[Any, Any]],
        *,
        default: Any = None,
        ttl: float | None = None,
    ) -> Any:
        """Update the entry under ``key`` with ``fn`` in one step, as Elixir's ``Map.get_and_update``.

        ``fn`` gets the live value (or ``default``) and returns ``(reply,
        new_value)``; ``new_value`` is stored and ``reply`` returned. The
        entry's expiry is kept unless ``ttl`` is given; a new entry gets
        ``ttl`` or the default TTL. A write and a use.

        Raises:
            Whatever ``fn`` raises, and ``TypeError`` if it does not return a
            pair; ``EntryTooLargeError``. In each case nothing changes.
        """
        expires = None if ttl is None else self._expiry("ttl", ttl, now)
        entry = self._live(key, now)
        if entry is None:
            current = default
            if expires is None:
                expires = self._expiry("ttl", None, now)
        else:
            current = entry[0]
            if expires is None:
                expires = entry[1]
        answer = fn(current)
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise TypeError(
                f"get_and_update's fn must return a pair (reply, new_value), not {answer!r}"
            )
        reply, value = answer
        nbytes = self._measure(key, value)
        self._set(key, value, expires, nbytes, now)
        self._writes += 1
        self._shrink(now)
        return reply

    # -- TTL commands --------------------------------------------------------

    def expire(self, key: Hashable, now: float, ttl: float) -> bool:
        """Set the entry's TTL to ``ttl`` seconds from ``now`` (0: it expires at once;
        ``math.inf``: never); return whether a live entry was there."""
        expires = now + _check_ttl("ttl", ttl)
        entry = self._live(key, now)
        if entry is None:
            return False
        self._data[key] = (entry[0], expires, entry[2])
        if expires != _INF:
            self._schedule(key, expires)
        return True

    def persist(self, key: Hashable, now: float) -> bool:
        """Make the entry never expire; return whether a live entry was there."""
        return self.expire(key, now, _INF)

    def touch(self, key: Hashable, now: float) -> bool:
        """Make the entry the most recently used, keeping its expiry; return
        whether a live entry was there."""
        if self._live(key, now) is None:
            return False
        self._move_to_end(key)
        return True

    # -- expiry --------------------------------------------------------------

    def purge_expired(self, now: float) -> int:
        """Drop every entry whose expiry time has come; return how many (the sweep)."""
        heap = self._heap
        lookup = self._lookup
        count = 0
        while heap and heap[0][0] <= now:
            _, _, key = heapq.heappop(heap)
            entry = lookup(key)
            if entry is not None and entry[1] <= now:
                self._expire_entry(key, entry)
                count += 1
        return count

    def next_expiry(self) -> float | None:
        """When the next entry expires (it may be past, if not yet swept); ``None`` if none will."""
        heap = self._heap
        lookup = self._lookup
        while heap:
            expires, _, key = heap[0]
            entry = lookup(key)
            if entry is not None and entry[1] == expires:
                return expires
            heapq.heappop(heap)  # a record of an entry since rewritten or removed
        return None

    # -- export --------------------------------------------------------------

    def export(self, now: float) -> list[tuple[Any, Any, float]]:
        """The live entries as ``(key, value, ttl_left)``, least recently used first.

        ``ttl_left`` is ``math.inf`` for an entry that never expires. Feeding
        the list to ``restore`` rebuilds the same entries, in the same order.
        """
        self.purge_expired(now)
        return [
            (key, value, expires - now if expires != _INF else _INF)
            for key, (value, expires, _) in self._data.items()
        ]

    def restore(self, entries: Iterable[tuple[Any, Any, float | None]], now: float) -> int:
        """Merge exported entries in, as ``put`` in order; return how many were stored.

        An entry whose ``ttl_left`` is <= 0 has expired and is skipped; a
        ``None`` TTL means the default TTL. Entries over existing keys replace
        them. All or nothing: a malformed entry (``ValueError`` for one that
        is not a triple, ``TypeError`` for a TTL that is not a number,
        ``ValueError`` for a NaN one) or a value above ``max_bytes`` raises,
        naming its index, and nothing is written.
        """
        rows = []
        for index, row in enumerate(entries):
            if not (isinstance(row, tuple | list) and len(row) == 3):
                raise ValueError(f"entry {index} is not a (key, value, ttl) triple: {row!r}")
            key, value, ttl = row
            if ttl is not None:
                check_number(ttl, f"entry {index} ({key!r}): its TTL", minimum=None, unit="seconds")
                if ttl <= 0:
                    continue
            expires = self._expiry("ttl", ttl, now)
            rows.append((key, value, expires, self._measure(key, value)))
        for key, value, expires, nbytes in rows:
            self._set(key, value, expires, nbytes, now)
        self._writes += len(rows)
        self._shrink(now)
        return len(rows)

    # -- internals -----------------------------------------------------------

    def _expiry(self, name: str, ttl: float | None, now: float) -> float:
        if ttl is None:
            ttl = self._default_ttl
            if ttl is None:
                return _INF
        return now + _check_ttl(name, ttl)

    def _measure(self, key: Any, value: Any) -> int:
        sizer = self._sizer
        if sizer is None:
            return 0
        nbytes = sizer(value)
        check_number(nbytes, f"the size that sizer {sizer!r} gave for {key!r}", integer=True)
        if self._max_bytes is not None and nbytes > self._max_bytes:
            raise EntryTooLargeError(key, nbytes, self._max_bytes)
        return nbytes

    def _live(self, key: Any, now: float) -> tuple[Any, float, int] | None:
        """The live entry under ``key``, dropping it if it has expired."""
        entry = self._lookup(key)
        if entry is None or entry[1] > now:
            return entry
        self._expire_entry(key, entry)
        return None

    def _set(self, key: Any, value: Any, expires: float, nbytes: int, now: float) -> None:
        data = self._data
        old = data.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
            if old[1] <= now:
                self._expirations += 1
        data[key] = (value, expires, nbytes)
        self._bytes += nbytes
        if expires != _INF:
            self._schedule(key, expires)

    def _schedule(self, key: Any, expires: float) -> None:
        heap = self._heap
        heapq.heappush(heap, (expires, next(self._seq), key))
        if len(heap) > 2 * len(self._data) + 64:
            # Mostly records of entries since rewritten or removed: rebuild.
            seq = self._seq
            self._heap = [(e, next(seq), k) for k, (_, e, _) in self._data.items() if e != _INF]
            heapq.heapify(self._heap)

    def _remove(self, key: Any, entry: tuple[Any, float, int]) -> None:
        del self._data[key]
        self._bytes -= entry[2]

    def _expire_entry(self, key: Any, entry: tuple[Any, float, int]) -> None:
        self._remove(key, entry)
        self._expirations += 1

    def _shrink(self, now: float) -> None:
        """Evict until ``max_size`` and ``max_bytes`` hold: expired entries first, then LRU."""
        if not self._over():
            return
        self.purge_expired(now)
        data = self._data
        while self._over():
            _, entry = data.popitem(last=False)
            self._bytes -= entry[2]
            self._evictions += 1

    def _over(self) -> bool:
        return (self._max_size is not None and len(self._data) > self._max_size) or (
            self._max_bytes is not None and self._bytes > self._max_bytes
        )
