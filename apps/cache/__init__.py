"""beamlet.apps.cache: a per-node cache, read in the caller without message passing.

``Cache.start_link(name, ...)`` starts a cache on this node; ``lookup(name)``
gives its ``Cache`` object, whose ``get``, ``put``, ``delete`` and friends run
in the caller, and ``await cache.fetch(key, compute)`` computes a miss once
however many callers wait. ``cached`` memoizes an async function in a cache.
See docs/cache.md.

The table itself (TTL, LRU eviction, size and byte bounds, statistics) is the
pure ``CacheStore`` in ``_store.py``; the process that owns it (``_server``)
sweeps expired entries and applies invalidations.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup

from ._cache import Cache as Cache, lookup as lookup
from ._cached import CachedFunction as CachedFunction, cached as cached
from ._errors import (
    CacheClosedError as CacheClosedError,
    CacheFileError as CacheFileError,
    FetchAbortedError as FetchAbortedError,
    UnknownCacheError as UnknownCacheError,
)
from ._fetch import NoCache as NoCache, WithTTL as WithTTL
from ._invalidation import Invalidate as Invalidate
from ._store import (
    CacheStats as CacheStats,
    EntryTooLargeError as EntryTooLargeError,
    estimate_size as estimate_size,
)

__all__ = [
    "Cache",
    "CacheClosedError",
    "CacheFileError",
    "CacheStats",
    "CachedFunction",
    "EntryTooLargeError",
    "FetchAbortedError",
    "Invalidate",
    "NoCache",
    "UnknownCacheError",
    "WithTTL",
    "cached",
    "estimate_size",
    "lookup",
]

_fixup(__name__, globals())
