"""beamlet.apps.cache: a per-node cache, read in the caller without message passing.

The table itself (TTL, LRU eviction, size and byte bounds, statistics) is the
pure ``CacheStore`` in ``_store.py``; the process that owns it sweeps expired
entries and applies invalidations.
"""
