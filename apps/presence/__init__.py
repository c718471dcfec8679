"""beamlet.apps.presence: who is connected where, cluster-wide, with no database.

A Phoenix.Tracker-style CRDT replicated by heartbeats and deltas over a
PubSub (see docs/presence.md). ``Presence.start_link`` / ``child_spec`` run a
presence on a node; ``track``, ``untrack`` and ``update`` change it;
``list_presences`` and ``get_by_key`` read this node's copy without waiting
for any process; subscribers of a topic get a ``PresenceDiff`` per change.

The pure core lives in private modules: ``_clock`` (version vectors),
``_delta`` (presences and deltas), ``_state`` (the CRDT), ``_replica``
(heartbeat bookkeeping), ``_delta_generation`` (catching replicas up),
``_messages`` (the wire) and ``_tracker`` (one shard's protocol, event by
event); ``_shard`` is the process over it, ``_presence`` the public API.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup

from ._errors import (
    AlreadyTrackedError as AlreadyTrackedError,
    NoPresenceError as NoPresenceError,
)
from ._messages import PresenceDiff as PresenceDiff
from ._presence import (
    Fetch as Fetch,
    Presence as Presence,
    UnknownPresenceError as UnknownPresenceError,
    get_by_key as get_by_key,
    list_presences as list_presences,
    track as track,
    untrack as untrack,
    update as update,
)

__all__ = [
    "AlreadyTrackedError",
    "Fetch",
    "NoPresenceError",
    "Presence",
    "PresenceDiff",
    "UnknownPresenceError",
    "get_by_key",
    "list_presences",
    "track",
    "untrack",
    "update",
]

_fixup(__name__, globals())
