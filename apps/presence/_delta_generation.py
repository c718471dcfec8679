"""Delta generations: recent deltas kept to catch a lagging replica up cheaply.

A shard keeps a few *generations*, each the join (``merge_deltas``) of the
most recent deltas it sent or received, up to a size (``max_delta_sizes``,
Phoenix's ``[100, 1000, 10000]``): generation 0 covers the last few changes,
the last one covers many more. When a replica asks for a transfer, the shard
answers with the smallest generation that fills the whole gap between the
requester's clock and its own, and falls back to its full state when none
does (the requester was away too long, or the shard itself missed a delta).

Pushing a delta: each generation takes it if their ranges are contiguous
and the result stays within that generation's size; otherwise the
generation restarts from the (new) generation below it, and generation 0
from the delta itself. So a generation never has a gap, and a delta that
would leave one is never merged into it.

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._clock import ReplicaRef
from ._delta import Delta, merge_deltas
from ._errors import NotContiguousError
from ._state import PresenceState

__all__ = ["extract", "fills_gap", "push", "remove_replica"]


def push(generations: Sequence[Delta], delta: Delta, max_sizes: Sequence[int]) -> list[Delta]:
    """Add ``delta`` to every generation it fits (see the module doc).

    Args:
        generations: the current generations (not changed); empty at first.
        delta: a delta that will not change any more.
        max_sizes: the size limit of each generation, smallest first.

    Returns:
        The new generations, one per size.
    """
    if not generations:
        return [delta] * len(max_sizes)
    out: list[Delta] = []
    below = delta
    for generation, max_size in zip(generations, max_sizes, strict=True):
        try:
            merged: Delta | None = merge_deltas(generation, delta)
        except NotContiguousError:
            merged = None
        new = merged if merged is not None and merged.size() <= max_size else below
        out.append(new)
        below = new
    return out


def remove_replica(generations: Sequence[Delta], replica: ReplicaRef) -> list[Delta]:
    """The generations without anything of ``replica`` (permdown)."""
    return [generation.without(replica) for generation in generations]


def fills_gap(generation: Delta, gaps: Mapping[ReplicaRef, tuple[int, int]]) -> bool:
    """Whether ``generation`` covers every gap ``{replica: (have, want)}`` entirely.

    A gap ``(have, want)`` is the dots ``(have, want]``; the generation fills
    it if its range of that replica starts at or before ``have`` and ends at
    or after ``want``. There must be at least one gap.
    """
    if not gaps:
        return False
    sections = generation.sections
    for replica, (have, want) in gaps.items():
        section = sections.get(replica)
        if section is None or section.start > have or section.end < want:
            return False
    return True


def extract(
    state: PresenceState,
    generations: Sequence[Delta],
    remote: ReplicaRef,
    remote_clock: Mapping[ReplicaRef, int],
) -> Delta:
    """What to send replica ``remote`` that asked for a transfer with ``remote_clock``.

    The gaps are the replicas that both know (``remote`` has them up), other
    than ``remote`` itself, where this state's clock is ahead. The answer is
    the first generation that fills them all, pruned to the replicas
    ``remote`` knows; or an empty delta if there is no gap; or else the full
    state (``PresenceState.extract``).
    """
    context = state.context
    gaps = {
        r: (have, context[r])
        for r, have in remote_clock.items()
        if r != remote and r in context and context[r] > have
    }
    if not gaps:
        return Delta()
    for generation in generations:
        if fills_gap(generation, gaps):
            return generation.pruned(remote_clock, exclude=remote)
    return state.extract(remote, remote_clock)
