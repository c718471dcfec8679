"""beamlet.apps.presence: who is connected where, cluster-wide, with no database.

A Phoenix.Tracker-style CRDT replicated by heartbeats and deltas. The pure
core lives in private modules: ``_clock`` (version vectors), ``_delta``
(presences and deltas), ``_state`` (the CRDT), ``_replica`` (heartbeat
bookkeeping), ``_delta_generation`` (catching replicas up), ``_messages``
(the wire) and ``_tracker`` (one shard's protocol, event by event). The
shard processes and the public ``Presence`` API are built on them.
"""

__all__: list[str] = []
