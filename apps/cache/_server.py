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

import trio
from beamlet.actors import From, GenServer, Pid, send_after
from beamlet.actors.lowlevel import BadInputLog, add_exit_hook, current_process, short_repr
from beamlet.apps.pubsub import subscribe
from beamlet.cluster import NodeDown, NodeUp, NotDistributedError, monitor_nodes

from ._cache import _FLUSH, CACHES, Cache
from ._invalidation import Invalidate, broadcast_invalidation, topic
from ._options import Options

__all__ = ["CacheServer"]

logger = logging.getLogger("beamlet.cache")


class _Sweep:
    """The sweep timer's message (local, never sent out)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<cache sweep>"


_SWEEP = _Sweep()

#: The one call the owner serves (``Cache.sync``).
_SYNC = "beamlet.cache.sync"


class CacheServer(GenServer):
    """The owner process of one cache on one node (see the module's docstring)."""

    async def init(self, name: str, options: Options) -> None:
        proc = current_process()
        self.name = name
        self.options = options
        self.pid = proc.pid
        self.bad_input = BadInputLog(f"cache {name!r}", logger)
        self.cache = cache = Cache(name, options, proc)
        add_exit_hook(proc, lambda pid, reason: cache._close(reason))
        tier = cache._l2
        if tier is not None:
            ready = trio.Event()
            tier.proc = proc.node.spawn_process(tier.run, (cache, ready), link_to=proc)
            await ready.wait()  # Redis was tried once (up or not, the cache serves)
        CACHES.set(cache, key=name)
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
        keys = list(pending)
        pending.clear()
        assert self.options.pubsub is not None
        broadcast_invalidation(self.options.pubsub, self.name, self.pid, keys)
        cache._invalidations_sent += 1

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
