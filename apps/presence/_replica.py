"""Which replicas a shard hears from, and when each went silent.

A shard keeps one record per node name: the incarnation (``vsn``) it last
heard from there, when, and whether it is up or down. Heartbeats are the
only signal (no node monitoring, as in Phoenix.Tracker): silence longer than
``down_period`` makes a replica *down* (its presences hidden), longer than
``permdown_period`` makes it *permdown* (forgotten).

Incarnations. A restarted shard comes back under the same name with a new,
larger ``vsn`` (the shard takes it from the wall clock in microseconds).
When a heartbeat names a newer incarnation, the old one is replaced at once:
down and permdown in one step, so its presences go and nothing of it is kept
(this is what keeps 1,000 restarts inside the permdown window from growing
anything). A heartbeat of an *older* incarnation than the one known is a
late message of a dead shard and is ignored while the known one is up; if
the known one is down, the older one replaces it (the wall clock may have
stepped back across the restart, and the live shard must not stay invisible).

Records are frozen values; the functions here update the ``{name: Replica}``
dict they are given, in place, and say what changed.

Pure: no I/O, no clock reads (``now`` is passed in, in seconds).
"""

from __future__ import annotations

from typing import Literal

import attrs

from ._clock import ReplicaRef

__all__ = ["HeartbeatOutcome", "Replica", "detect_downs", "put_heartbeat"]

Status = Literal["up", "down"]


@attrs.frozen
class Replica:
    """What a shard knows of the replica of one node name.

    Attributes:
        name: the node name.
        vsn: the incarnation last heard from.
        last_heartbeat_at: when its last heartbeat arrived (seconds).
        status: ``"up"`` or ``"down"`` (a permdown replica has no record).
    """

    name: str
    vsn: int
    last_heartbeat_at: float
    status: Status = "up"

    @property
    def ref(self) -> ReplicaRef:
        """``(name, vsn)``."""
        return (self.name, self.vsn)


@attrs.frozen
class HeartbeatOutcome:
    """What one heartbeat changed (see ``put_heartbeat``).

    Attributes:
        current: the record after the heartbeat, or None if it was ignored.
        previous: the record before it, or None if the name was new.
    """

    current: Replica | None
    previous: Replica | None

    @property
    def ignored(self) -> bool:
        """A late heartbeat of an older incarnation, dropped: nothing changed."""
        return self.current is None

    @property
    def came_up(self) -> bool:
        """The sender was unknown, down, or a new incarnation, and is up now."""
        if self.current is None:
            return False
        prev = self.previous
        return prev is None or prev.vsn != self.current.vsn or prev.status == "down"

    @property
    def replaced(self) -> Replica | None:
        """The previous incarnation this heartbeat supersedes (to down and permdown)."""
        prev = self.previous
        if self.current is None or prev is None or prev.vsn == self.current.vsn:
            return None
        return prev


def put_heartbeat(replicas: dict[str, Replica], ref: ReplicaRef, now: float) -> HeartbeatOutcome:
    """Record a heartbeat from replica ``ref`` received at ``now``.

    - an unknown name: a new record, up;
    - the known incarnation: its time is updated, and it is up again if it was down;
    - a newer incarnation: it replaces the record (``replaced`` is the old one);
    - an older incarnation: ignored if the known one is up, else it replaces it.

    Args:
        replicas: ``{name: Replica}``, updated in place.
        ref: ``(name, vsn)`` of the sender.
        now: the current time, in seconds.
    """
    name, vsn = ref
    prev = replicas.get(name)
    if prev is not None and vsn < prev.vsn and prev.status == "up":
        return HeartbeatOutcome(current=None, previous=prev)
    current = Replica(name, vsn, now, "up")
    replicas[name] = current
    return HeartbeatOutcome(current=current, previous=prev)


def detect_downs(
    replicas: dict[str, Replica], now: float, down_period: float, permdown_period: float
) -> list[tuple[Replica, Literal["down", "permdown"]]]:
    """Find the replicas silent for too long, and update their records.

    Silent for more than ``permdown_period``: the record is removed
    (``"permdown"``; the caller downs it first if it was up). Silent for more
    than ``down_period`` and up: the record becomes down (``"down"``).

    Args:
        replicas: ``{name: Replica}``, updated in place.
        now: the current time, in seconds.
        down_period: seconds of silence before a replica is down.
        permdown_period: seconds of silence before it is forgotten.

    Returns:
        ``[(record before, "down" | "permdown"), ...]``.
    """
    changes: list[tuple[Replica, Literal["down", "permdown"]]] = []
    for name, replica in list(replicas.items()):
        silence = now - replica.last_heartbeat_at
        if silence > permdown_period:
            del replicas[name]
            changes.append((replica, "permdown"))
        elif silence > down_period and replica.status == "up":
            replicas[name] = attrs.evolve(replica, status="down")
            changes.append((replica, "down"))
    return changes
