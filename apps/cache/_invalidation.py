"""Invalidations: the message that carries written keys to the other nodes, and its sending."""

from __future__ import annotations

import logging
from typing import Any

import attrs
from beamlet.actors import Pid
from beamlet.apps.pubsub import broadcast_from
from beamlet.cluster import message

__all__ = ["ALL_KEYS", "Invalidate", "broadcast_invalidation", "topic"]

logger = logging.getLogger("beamlet.cache")

#: In a list of written keys: "every key" (a ``clear``).
ALL_KEYS: Any = object()

#: The most keys in one ``Invalidate`` message.
BATCH = 1000


@message(name="beamlet/cache.Invalidate")
@attrs.frozen
class Invalidate:
    """Keys written on one node, broadcast so that the others drop their copies.

    Only the keys travel, never the values (FunWithFlags' notifications do
    the same): a node that needs the new value reads it again.

    Attributes:
        cache: the cache's name.
        keys: the keys written, in order; ``None``: every key (a ``clear``).
        origin: the owner process of the cache that wrote them; a node
            ignores its own.
    """

    cache: str
    keys: tuple[Any, ...] | None
    origin: Pid


def topic(name: str) -> str:
    """The PubSub topic of the cache called ``name``."""
    return f"beamlet.cache:{name}"


def broadcast_invalidation(pubsub: str, name: str, origin: Pid, keys: list[Any]) -> None:
    """Tell the other nodes' caches called ``name`` to drop ``keys`` (``ALL_KEYS``: all).

    Sent with ``broadcast_from(origin)``, in batches of at most ``BATCH``
    keys. If a batch cannot be sent (a key over the codec's limits, which
    writes do not check), the other nodes are told to drop every key
    instead: they start cold rather than keep a stale entry.
    """
    channel = topic(name)
    if any(key is ALL_KEYS for key in keys):
        batches = [Invalidate(name, None, origin)]
    else:
        batches = [
            Invalidate(name, tuple(keys[i : i + BATCH]), origin) for i in range(0, len(keys), BATCH)
        ]
    try:
        for batch in batches:
            broadcast_from(pubsub, origin, channel, batch)
    except (TypeError, ValueError) as exc:
        logger.error(
            "cache %r could not broadcast an invalidation (%s): "
            "the other nodes are told to clear this cache instead",
            name,
            exc,
        )
        broadcast_from(pubsub, origin, channel, Invalidate(name, None, origin))
