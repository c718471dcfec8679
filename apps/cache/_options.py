"""The options of a cache: checked in the caller of ``start_link``, before anything starts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from beamlet.actors.lowlevel import check_number, short_repr

from .._redis import RedisOptions
from ._l2 import coerce_options
from ._store import _NEVER

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_SWEEP_INTERVAL",
    "Options",
    "check_arguments",
    "check_options",
]

#: The default bound on the number of entries of a cache.
DEFAULT_MAX_SIZE = 100_000

#: The default time between two sweeps of expired entries (rolling), as Cachex's Janitor.
DEFAULT_SWEEP_INTERVAL = 3.0


@attrs.frozen
class Options:
    """The validated options of a cache."""

    max_size: int | None
    ttl: float | None
    max_bytes: int | None
    sizer: Callable[[Any], int] | None
    pubsub: str | None
    sweep_interval: float | None
    ttl_jitter: float
    flush_on_cluster_change: bool
    l2: RedisOptions | None = None


def check_options(
    name: object,
    max_size: object,
    ttl: object,
    max_bytes: object,
    sizer: object,
    pubsub: object,
    sweep_interval: object,
    ttl_jitter: object,
    flush_on_cluster_change: object,
    l2: object = None,
) -> Options:
    """Validate ``Cache.start_link``'s options in the caller, each error naming its option."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a cache is named by a non-empty str, not {short_repr(name)}")
    check_number(max_size, "max_size", integer=True, optional=True)
    check_number(max_bytes, "max_bytes", integer=True, optional=True)
    check_number(
        ttl, "ttl (the default TTL)", strict=True, optional=True, unit="seconds", note=_NEVER
    )
    if sizer is not None and not callable(sizer):
        raise TypeError(f"sizer must be a callable giving a size in bytes, not {short_repr(sizer)}")
    if pubsub is not None and (not isinstance(pubsub, str) or not pubsub):
        raise TypeError(f"pubsub must be the name of a PubSub (a str) or None, not {pubsub!r}")
    check_number(sweep_interval, "sweep_interval", strict=True, optional=True, unit="seconds")
    check_number(ttl_jitter, "ttl_jitter", maximum=1, below=True, note="a fraction of the TTL")
    if not isinstance(flush_on_cluster_change, bool):
        raise TypeError(f"flush_on_cluster_change must be a bool, not {flush_on_cluster_change!r}")
    return Options(
        max_size,  # type: ignore[arg-type]
        None if ttl is None else float(ttl),  # type: ignore[arg-type]
        max_bytes,  # type: ignore[arg-type]
        sizer,  # type: ignore[arg-type]
        pubsub,
        None if sweep_interval is None else float(sweep_interval),  # type: ignore[arg-type]
        float(ttl_jitter),  # type: ignore[arg-type]
        flush_on_cluster_change,
        None if l2 is None else coerce_options(l2),
    )


#: The names of ``check_options``' parameters: the options that
#: ``Cache.start_link`` and ``Cache.child_spec`` share.
_OPTION_NAMES = tuple(inspect.signature(check_options).parameters)


def check_arguments(arguments: Mapping[str, Any]) -> Options:
    """``check_options`` on the options among a caller's arguments, by name.

    ``Cache.start_link`` and ``Cache.child_spec`` pass their ``locals()`` on
    entry, so that the list of options is written once, as the parameters
    of ``check_options``, and a new option cannot be checked by one and
    forgotten by the other.
    """
    return check_options(**{name: arguments[name] for name in _OPTION_NAMES})
