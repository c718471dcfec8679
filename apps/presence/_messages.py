"""The messages presence shards send each other.

All go through the shard's PubSub topic: ``Heartbeat`` and
``GracefulPermdown`` are broadcast to every other replica of the shard,
``TransferReq`` and ``TransferAck`` are sent to one node. They are
``@message`` classes whose fields are plain data (str, int, dicts, lists,
tuples, pids; a delta in its wire form, see ``_delta``), so they cross
``beamlet.cluster``'s codec; receivers check every field
(``TrackerCore.handle``) before using any.

Wire names start with ``"beamlet/presence."``: a ``/`` cannot appear in a
module path, so no class registered under its default name can clash.
"""

from __future__ import annotations

from typing import Any

import attrs
from beamlet.cluster import message

from ._clock import Clock, ReplicaRef

__all__ = ["GracefulPermdown", "Heartbeat", "PresenceDiff", "TransferAck", "TransferReq"]


@message(name="beamlet/presence.Heartbeat")
@attrs.frozen
class Heartbeat:
    """Sent every ``broadcast_period`` with changes, or after a silence, without.

    Attributes:
        replica: the sender, ``(node_name, vsn)``.
        clocks: the sender's advertised clock (its up replicas).
        delta: the sender's changes since its last heartbeat (wire form), or
            None for an empty heartbeat.
    """

    replica: ReplicaRef
    clocks: Clock
    delta: dict[ReplicaRef, list[Any]] | None = None


@message(name="beamlet/presence.TransferReq")
@attrs.frozen
class TransferReq:
    """Asks one replica for what the sender is missing.

    Attributes:
        ref: a number the sender picks, echoed in the answer.
        replica: the sender.
        clocks: the sender's advertised clock: what it has, and which
            replicas it knows.
    """

    ref: int
    replica: ReplicaRef
    clocks: Clock


@message(name="beamlet/presence.TransferAck")
@attrs.frozen
class TransferAck:
    """The answer to a ``TransferReq``: a delta generation or the full state.

    Attributes:
        ref: the request's ``ref``.
        replica: the sender.
        delta: the delta, in wire form.
    """

    ref: int
    replica: ReplicaRef
    delta: dict[ReplicaRef, list[Any]]


@message(name="beamlet/presence.GracefulPermdown")
@attrs.frozen
class GracefulPermdown:
    """The sender is going away for good: forget it now, not after ``down_period``.

    Attributes:
        replica: the sender.
    """

    replica: ReplicaRef


@message(name="beamlet/presence.PresenceDiff")
@attrs.frozen
class PresenceDiff:
    """Presences of ``topic`` that appeared (``joins``) and went away (``leaves``).

    Each node's presence publishes its own diffs to its own subscribers, on
    the PubSub topic ``topic`` (``local_broadcast``): subscribe with
    ``beamlet.apps.pubsub.subscribe(pubsub, topic)`` to receive them. Diffs
    never cross the wire; every node computes them from what it merges.

    Both maps have the shape ``list_presences`` returns, ``{key: [meta, ...]}``
    (after the presence's ``fetch`` hook, if it has one); each meta carries
    its ``"ref"``. An ``update`` is the leave of the old meta and the join of
    the new one (with ``"prev_ref"``) in the same diff. Applied in order,
    diffs keep a copy of ``list_presences`` up to date: a presence joins once
    and leaves once.

    Attributes:
        topic: the topic.
        joins: ``{key: [meta, ...]}`` that joined.
        leaves: ``{key: [meta, ...]}`` that left.
    """

    topic: str
    joins: dict[Any, Any]
    leaves: dict[Any, Any]
