"""The public surface of beamlet.apps.cache."""

from __future__ import annotations

import inspect

import beamlet.apps.cache as cache
from export_checks import check_documented, check_homes, check_public_names

PUBLIC = {
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
}

#: What the design binds: Cache.start_link, lookup, the Cache object's methods, cached.
DESIGN_METHODS = [
    "start_link",
    "child_spec",
    "get",
    "put",
    "delete",
    "clear",
    "fetch",
    "stats",
    "dump",
    "load",
]


def test_all_lists_exactly_the_public_names() -> None:
    check_public_names(cache, PUBLIC)


def test_each_public_name_says_it_comes_from_the_package_and_is_documented() -> None:
    check_homes(cache, PUBLIC)
    check_documented(cache, PUBLIC)


def test_the_design_names_exist_and_are_documented() -> None:
    for method in DESIGN_METHODS:
        assert inspect.getdoc(getattr(cache.Cache, method)), method
    assert inspect.iscoroutinefunction(cache.Cache.fetch)
    assert inspect.iscoroutinefunction(cache.Cache.dump)
    assert inspect.iscoroutinefunction(cache.Cache.load)
    assert inspect.iscoroutinefunction(cache.Cache.start_link)
    assert not inspect.iscoroutinefunction(cache.Cache.get)
    for name, member in vars(cache.Cache).items():
        if not name.startswith("_") and (callable(member) or isinstance(member, property)):
            assert inspect.getdoc(getattr(cache.Cache, name)), name
