"""Version vectors ("clocks") of presence replicas, and sets of them.

A *replica* is one incarnation of one presence shard: ``(node_name, vsn)``,
where ``vsn`` tells apart the incarnations of a shard on the same node (a
restarted shard is a new replica). Every change a replica makes to its own
presences gets the next number of its counter; ``(replica, n)`` is a *dot*.

A *clock* maps replicas to counters: ``{replica: n}`` says "I have seen every
dot of ``replica`` up to ``n``". A replica missing from a clock counts as 0.
Clocks are plain dicts so that they cross the wire as they are.

A *clockset* is a list of ``(replica, clock)`` pairs kept small: only clocks
that something else in the set does not already cover. The shard collects the
clocks that the other replicas advertise in their heartbeats, adds its own,
and asks for a state transfer from the replicas left in the set: the fewest
replicas whose knowledge, together, covers everything anyone claims to know.

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "Clock",
    "ClockSet",
    "ReplicaRef",
    "append_clock",
    "clockset_replicas",
    "dominates",
    "dominates_or_equal",
    "filter_replicas",
    "lowerbound",
    "upperbound",
]

#: One incarnation of one shard: ``(node_name, vsn)``.
ReplicaRef = tuple[str, int]

#: A version vector: the highest contiguous dot seen, per replica.
Clock = dict[ReplicaRef, int]

#: ``[(replica, clock), ...]``, each clock as advertised by its replica.
ClockSet = list[tuple[ReplicaRef, Clock]]


def dominates(c1: Mapping[ReplicaRef, int], c2: Mapping[ReplicaRef, int]) -> bool:
    """Whether ``c1`` has seen everything ``c2`` has (``c1 >= c2`` entry by entry).

    A replica missing from a clock counts as 0, so ``{a: 1}`` dominates
    ``{a: 1, b: 0}``. Every clock dominates itself.
    """
    return all(n <= c1.get(replica, 0) for replica, n in c2.items())


def dominates_or_equal(c1: Mapping[ReplicaRef, int], c2: Mapping[ReplicaRef, int]) -> bool:
    """Whether ``c1`` is at least ``c2`` on every replica that ``c1`` names.

    Unlike ``dominates``, replicas that only ``c2`` names are not compared.
    Two empty clocks compare true; an empty ``c1`` against a non-empty ``c2``
    compares false.
    """
    if not c1:
        return not c2
    return all(n >= c2.get(replica, 0) for replica, n in c1.items())


def upperbound(c1: Mapping[ReplicaRef, int], c2: Mapping[ReplicaRef, int]) -> Clock:
    """The entry-wise maximum of two clocks (a replica in one only is kept)."""
    out = dict(c1)
    for replica, n in c2.items():
        if n > out.get(replica, -1):
            out[replica] = n
    return out


def lowerbound(c1: Mapping[ReplicaRef, int], c2: Mapping[ReplicaRef, int]) -> Clock:
    """The entry-wise minimum over shared replicas; a replica in one clock only is kept."""
    out = dict(c1)
    for replica, n in c2.items():
        mine = out.get(replica)
        if mine is None or n < mine:
            out[replica] = n
    return out


def filter_replicas(clock: Mapping[ReplicaRef, int], replicas: Iterable[ReplicaRef]) -> Clock:
    """The entries of ``clock`` for ``replicas`` only."""
    return {r: clock[r] for r in replicas if r in clock}


def clockset_replicas(clockset: ClockSet) -> list[ReplicaRef]:
    """The replicas of a clockset, in order."""
    return [replica for replica, _ in clockset]


def append_clock(
    clockset: ClockSet, entry: tuple[ReplicaRef, Mapping[ReplicaRef, int]]
) -> ClockSet:
    """Add one replica's clock to a clockset, keeping only clocks that add knowledge.

    - an empty clock adds nothing: the set is returned unchanged;
    - a clock that dominates the union of the set replaces the whole set;
    - a clock the union of the set already covers is not added;
    - otherwise (no member dominates it) the members it dominates are dropped
      and it is added.

    On ties the newcomer wins: append your own clock last, so that a replica
    that knows exactly what you know is not asked for a transfer.

    Args:
        clockset: the current set (not modified).
        entry: ``(replica, clock)``.

    Returns:
        The new clockset.
    """
    replica, clock = entry
    if not clock:
        return clockset
    union: Clock = {}
    for _, member in clockset:
        union = upperbound(union, member)
    if dominates(clock, union):
        return [(replica, dict(clock))]
    if dominates(union, clock):
        return clockset
    kept = [(r, member) for r, member in clockset if not dominates(clock, member)]
    kept.append((replica, dict(clock)))
    return kept
