"""The owner process of a cache: it owns the table, sweeps it, and applies invalidations.

One per cache and node. It does not serve reads or writes (they run in the
callers); it

- holds the ``Cache`` in the node's table of caches (a ``NodeVar``), so that
  the entries go when it exits, as an ETS table goes with its owner;
- sweeps expired entries every ``sweep_interval`` seconds (rolling: the
  next sweep is due that long after the previous one ended);
- with ``pubsub``: broadcasts the keys written on this node, in batches
  (``Invalidate``), drops the keys the other nodes wrote, and empties the
  cache when a node comes up or goes down (``flush_on_cluster_change``);
- checks every message it gets: anything else is logged (rate-limited) and
  dropped, and a call is answered with an error.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
from beamlet.actors import From, GenServer, Pid, send_after
from beamlet.actors.lowlevel import BadInputLog, add_exit_hook, current_process, short_repr
from beamlet.apps.pubsub import broadcast_from, subscribe
from beamlet.cluster import NodeDown, NodeUp, NotDistributedError, message, monitor_nodes

from ._cache import _FLUSH, ALL_KEYS, CACHES, Cache, _Options

__all__ = ["CacheServer", "Invalidate", "topic"]

logger = logging.getLogger("beamlet.cache")


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


class _Sweep:
    """The sweep timer's message (local, never sent out)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<cache sweep>"


_SWEEP = _Sweep()

#: The one call the owner serves (``Cache.sync``).
_SYNC = "beamlet.cache.sync"

#: The most keys in one ``Invalidate`` message.
_BATCH = 1000


class CacheServer(GenServer):
    """The owner process of one cache on one node (see the module's docstring)."""

    async def init(self, name: str, options: _Options) -> None:
        proc = current_process()
        self.name = name
        self.options = options
        self.pid = proc.pid
        self.bad_input = BadInputLog(f"cache {name!r}", logger)
        self.cache = cache = Cache(name, options, proc)
        CACHES.set(cache, key=name)
        add_exit_hook(proc, lambda pid, reason: cache._close(reason))
        if options.pubsub is not None:
            subscribe(options.pubsub, topic(name))
            if options.flush_on_cluster_change:
                try:
                    monitor_nodes(True)
                except NotDistributedError:
                    pass  # a node alone has no peers to miss invalidations from
        if options.sweep_interval is not None:
            send_after(options.sweep_interval, proc.pid, _SWEEP)

    async def handle_call(self, request: Any, caller: From) -> Any:
        if request == _SYNC:
            return "ok"  # every message that came before is handled
        self.bad_input.report("call", request, "unexpected")
        return ("error", ("bad_request", short_repr(request)))

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> None:
        if msg is _SWEEP:
            self.cache.purge()
            assert self.options.sweep_interval is not None
            send_after(self.options.sweep_interval, self.pid, _SWEEP)
        elif msg is _FLUSH:
            self._flush()
        elif type(msg) is Invalidate:
            if not self._invalidated(msg):
                self.bad_input.report("message", msg, "malformed")
        elif type(msg) is NodeUp or type(msg) is NodeDown:
            if self.options.flush_on_cluster_change:
                self._cluster_changed()
        else:
            self.bad_input.report("message", msg, "unexpected")

    # -- invalidations ------------------------------------------------------------------

    def _flush(self) -> None:
        """Broadcast the keys written here since the last flush, as one batch."""
        cache = self.cache
        pending = cache._pending
        if not pending:
            return
        keys: tuple[Any, ...] | None = None if ALL_KEYS in pending else tuple(pending)
        pending.clear()
        self._broadcast(Invalidate(self.name, keys, self.pid))
        cache._invalidations_sent += 1

    def _broadcast(self, msg: Invalidate) -> None:
        """Send ``msg`` to the other nodes' caches, in batches the codec takes.

        If a batch cannot be sent (a key over the codec's limits, which
        ``put`` does not check), the other nodes are told to drop every key
        instead: they start cold rather than keep a stale entry.
        """
        pubsub = self.options.pubsub
        assert pubsub is not None
        keys = msg.keys
        batches = (
            [msg]
            if keys is None or len(keys) <= _BATCH
            else [
                Invalidate(msg.cache, keys[i : i + _BATCH], msg.origin)
                for i in range(0, len(keys), _BATCH)
            ]
        )
        try:
            for batch in batches:
                broadcast_from(pubsub, self.pid, topic(self.name), batch)
        except (TypeError, ValueError) as exc:
            logger.error(
                "cache %r could not broadcast an invalidation (%s): "
                "the other nodes are told to clear this cache instead",
                self.name,
                exc,
            )
            broadcast_from(
                pubsub, self.pid, topic(self.name), Invalidate(self.name, None, self.pid)
            )

    def _invalidated(self, msg: Invalidate) -> bool:
        """Apply another node's invalidation; False if the message is malformed."""
        keys = msg.keys
        if not (
            msg.cache == self.name
            and type(msg.origin) is Pid
            and (keys is None or type(keys) is tuple)
        ):
            return False
        if msg.origin == self.pid:
            return True  # our own
        cache = self.cache
        store = cache._store
        flights = cache._flights
        if keys is None:
            store.clear(cache._now())
            flights.clear()
            cache._invalidations_received += 1
            return True
        now = cache._now()
        for key in keys:
            try:
                store.discard(key, now)
            except TypeError:  # unhashable: it cannot be here
                continue
            flights.pop(key, None)
        cache._invalidations_received += len(keys)
        return True

    def _cluster_changed(self) -> None:
        """A node came up or went down: invalidations may have been lost; start cold."""
        cache = self.cache
        cache._store.clear(cache._now())
        cache._flights.clear()
        cache._flushes += 1
