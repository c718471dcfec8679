"""Presences and deltas: what replicas send each other.

An ``Entry`` is one presence, ``(topic, pid, key) -> meta``, tagged with the
dot ``(replica, clock)`` of the change that created it. Only the replica that
created an entry ever removes it (the process is on its node); the others
learn of the removal.

A ``Delta`` is a set of entries together with its *causal context*: the dots
it accounts for. A dot in the context with no entry means "that presence is
gone" (or the dot was a removal, which creates nothing). For each replica, a
delta holds a ``Section``: a range ``(start, end]`` of that replica's dots,
all accounted for, plus a ``cloud`` of older dots it also accounts for (the
presences that the changes in the range removed). So one heartbeat's delta is
``(start, end]`` of its sender's dots with the entries still alive and the
removed older dots, and the whole state of a replica is the delta
``(0, clock]`` plus its cloud: a full state transfer is just a delta from
nothing, and both merge the same way (``PresenceState.merge``).

Merging ``B`` into ``A`` (the join of two delta states): keep the entries of
``A`` that ``B`` has too or does not account for, add the entries of ``B``
that ``A`` does not account for, and unite the contexts. That is
commutative, associative and idempotent, whatever the order, duplication or
loss of messages. ``merge_deltas`` joins two deltas into one only when their
ranges of each replica touch or overlap, so that the union is again a range
with no gap (the delta generations are built this way).

Wire form (plain data, so it crosses ``beamlet.cluster``'s codec as is)::

    {(node_name, vsn): [start, end, [cloud dot, ...],
                        [[clock, pid, topic, key, meta], ...]], ...}

``Delta.from_wire`` checks all of it and raises ``MalformedMessageError``
before anything is built from a bad one.

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import Any

from beamlet.actors import Pid

from ._clock import Clock, ReplicaRef
from ._errors import MalformedMessageError, NotContiguousError

__all__ = ["Delta", "Dot", "Entry", "Section", "check_replica", "merge_deltas"]

#: ``(replica, clock)``: names one change of one replica.
Dot = tuple[ReplicaRef, int]


class Entry:
    """One presence: a process ``pid`` tracked under ``topic`` with ``key`` and ``meta``.

    ``replica`` and ``clock`` form its dot, unique in the whole cluster. Entries
    are values: compare equal field by field and never change. ``meta`` is
    shared, not copied: do not mutate it.
    """

    __slots__ = ("_hash", "clock", "key", "meta", "pid", "replica", "topic")

    def __init__(
        self, replica: ReplicaRef, clock: int, pid: Pid, topic: str, key: Any, meta: dict[str, Any]
    ) -> None:
        self.replica = replica
        self.clock = clock
        self.pid = pid
        self.topic = topic
        self.key = key
        self.meta = meta
        self._hash = hash((replica, clock))

    @property
    def dot(self) -> Dot:
        """``(replica, clock)``."""
        return (self.replica, self.clock)

    def to_wire(self) -> list[Any]:
        """``[clock, pid, topic, key, meta]`` (the replica is the section's)."""
        return [self.clock, self.pid, self.topic, self.key, self.meta]

    def __eq__(self, other: object) -> bool:
        if type(other) is not Entry:
            return NotImplemented
        return (
            self.clock == other.clock
            and self.replica == other.replica
            and self.pid == other.pid
            and self.topic == other.topic
            and self.key == other.key
            and self.meta == other.meta
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return (
            f"Entry(topic={self.topic!r}, pid={self.pid!r}, key={self.key!r}, "
            f"meta={self.meta!r}, dot=({self.replica!r}, {self.clock}))"
        )


class Section:
    """What a delta says about the dots of one replica.

    Attributes:
        start: the range starts after this dot.
        end: the range ends at this dot (included); ``start <= end``.
        cloud: more dots accounted for, outside the range.
        entries: the live presences among those dots, by clock.
    """

    __slots__ = ("cloud", "end", "entries", "start")

    def __init__(
        self,
        start: int,
        end: int,
        cloud: set[int] | None = None,
        entries: dict[int, Entry] | None = None,
    ) -> None:
        self.start = start
        self.end = end
        self.cloud: set[int] = set() if cloud is None else cloud
        self.entries: dict[int, Entry] = {} if entries is None else entries

    def covers(self, clock: int) -> bool:
        """Whether the dot ``clock`` is accounted for."""
        return self.start < clock <= self.end or clock in self.cloud

    def context_size(self) -> int:
        """How many dots are accounted for."""
        return self.end - self.start + len(self.cloud)

    def copy(self) -> Section:
        """A copy whose cloud and entries may be changed independently."""
        return Section(self.start, self.end, set(self.cloud), dict(self.entries))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Section:
            return NotImplemented
        return (
            self.start == other.start
            and self.end == other.end
            and self.cloud == other.cloud
            and self.entries == other.entries
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Section(start={self.start}, end={self.end}, cloud={sorted(self.cloud)}, "
            f"entries={list(self.entries.values())})"
        )


class Delta:
    """Presences and the dots they account for, by replica (see the module doc).

    A delta being built (a shard's changes since its last heartbeat) is
    changed in place by ``PresenceState``; once sent or stored in a
    generation it is never changed again, so it may be shared.

    Attributes:
        sections: replica -> ``Section``.
    """

    __slots__ = ("sections",)

    def __init__(self, sections: dict[ReplicaRef, Section] | None = None) -> None:
        self.sections: dict[ReplicaRef, Section] = {} if sections is None else sections

    # -- reading -----------------------------------------------------------------

    def size(self) -> int:
        """Entries plus cloud dots: what the delta costs to send (ranges are free)."""
        return sum(len(s.entries) + len(s.cloud) for s in self.sections.values())

    def is_empty(self) -> bool:
        """Whether the delta accounts for no dot at all."""
        return all(s.end == s.start and not s.cloud for s in self.sections.values())

    def entries(self) -> Iterator[Entry]:
        """Every entry, section by section."""
        for section in self.sections.values():
            yield from section.entries.values()

    def start_clock(self) -> Clock:
        """Where the range of each replica starts (excluded)."""
        return {r: s.start for r, s in self.sections.items()}

    def end_clock(self) -> Clock:
        """Where the range of each replica ends (included)."""
        return {r: s.end for r, s in self.sections.items()}

    # -- deriving ----------------------------------------------------------------

    def pruned(self, keep: Container[ReplicaRef], exclude: ReplicaRef | None = None) -> Delta:
        """The sections of the replicas in ``keep``, except ``exclude``.

        A section is all or nothing, so the result is again a complete delta
        for the replicas it keeps. Sections are shared, not copied.
        """
        return Delta({r: s for r, s in self.sections.items() if r in keep and r != exclude})

    def without(self, replica: ReplicaRef) -> Delta:
        """This delta less the section of ``replica`` (sections shared)."""
        if replica not in self.sections:
            return self
        return Delta({r: s for r, s in self.sections.items() if r != replica})

    # -- wire --------------------------------------------------------------------

    def to_wire(self) -> dict[ReplicaRef, list[Any]]:
        """The plain-data form (see the module doc)."""
        return {
            replica: [
                s.start,
                s.end,
                sorted(s.cloud),
                [e.to_wire() for e in s.entries.values()],
            ]
            for replica, s in self.sections.items()
        }

    @classmethod
    def from_wire(cls, data: object) -> Delta:
        """Check and rebuild a delta received from another replica.

        Raises:
            MalformedMessageError: anything is off; says what and where.
        """
        if type(data) is not dict:
            raise MalformedMessageError(f"a delta must be a dict, not {type(data).__name__}")
        sections: dict[ReplicaRef, Section] = {}
        for replica, raw in data.items():
            check_replica(replica, "a delta's replica")
            sections[replica] = _section_from_wire(replica, raw)
        return cls(sections)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Delta:
            return NotImplemented
        return self.sections == other.sections

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Delta({self.sections!r})"


def check_replica(value: object, what: str) -> ReplicaRef:
    """Check that ``value`` is a replica ``(node_name: str, vsn: int)``.

    Raises:
        MalformedMessageError: it is not.
    """
    if (
        type(value) is not tuple
        or len(value) != 2
        or type(value[0]) is not str
        or type(value[1]) is not int
    ):
        raise MalformedMessageError(f"{what} must be a (node_name, vsn) tuple, not {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _section_from_wire(replica: ReplicaRef, raw: object) -> Section:
    where = f"the section of replica {replica!r}"
    if type(raw) is not list or len(raw) != 4:
        raise MalformedMessageError(f"{where} must be [start, end, cloud, entries]")
    start, end, raw_cloud, raw_entries = raw
    if not (_is_count(start) and _is_count(end) and start <= end):
        raise MalformedMessageError(
            f"{where} has a bad range ({_short(start)}, {_short(end)}]: "
            "it must be two ints with 0 <= start <= end"
        )
    if type(raw_cloud) is not list or not all(type(d) is int and d > 0 for d in raw_cloud):
        raise MalformedMessageError(f"{where} has a bad cloud: it must be a list of ints > 0")
    if type(raw_entries) is not list:
        raise MalformedMessageError(f"{where} has bad entries: they must be a list")
    section = Section(start, end, {d for d in raw_cloud if not start < d <= end})
    entries = section.entries
    for raw_entry in raw_entries:
        if type(raw_entry) is not list or len(raw_entry) != 5:
            raise MalformedMessageError(
                f"{where} has a bad entry {_short(raw_entry)}: "
                "it must be [clock, pid, topic, key, meta]"
            )
        clock, pid, topic, key, meta = raw_entry
        if type(clock) is not int or not section.covers(clock):
            raise MalformedMessageError(
                f"{where} has an entry with clock {_short(clock)} outside its context"
            )
        if clock in entries:
            raise MalformedMessageError(f"{where} has two entries with clock {clock}")
        if type(pid) is not Pid:
            raise MalformedMessageError(f"{where} has an entry whose pid is {_short(pid)}")
        if type(topic) is not str:
            raise MalformedMessageError(f"{where} has an entry whose topic is {_short(topic)}")
        try:
            hash(key)
        except TypeError:
            raise MalformedMessageError(
                f"{where} has an entry whose key is unhashable: {_short(key)}"
            ) from None
        if type(meta) is not dict:
            raise MalformedMessageError(f"{where} has an entry whose meta is {_short(meta)}")
        entries[clock] = Entry(replica, clock, pid, topic, key, meta)
    return section


def _merge_sections(a: Section, b: Section) -> Section:
    start = min(a.start, b.start)
    end = max(a.end, b.end)
    entries: dict[int, Entry] = {}
    b_entries = b.entries
    for clock, entry in a.entries.items():
        if clock in b_entries or not b.covers(clock):
            entries[clock] = entry
    for clock, entry in b_entries.items():
        if clock not in entries and not a.covers(clock):
            entries[clock] = entry
    cloud = {d for d in a.cloud | b.cloud if not start < d <= end}
    return Section(start, end, cloud, entries)


def merge_deltas(a: Delta, b: Delta) -> Delta:
    """Join two deltas into one delta covering both (neither is changed).

    Allowed only if, for every replica both deltas hold, their ranges touch
    or overlap (``b.start <= a.end`` and ``a.start <= b.end``): the union is
    then again a range without a gap. Merging is commutative, associative and
    idempotent.

    Raises:
        NotContiguousError: some replica's ranges leave a gap between them.
    """
    for replica, sa in a.sections.items():
        sb = b.sections.get(replica)
        if sb is not None and (sb.start > sa.end or sa.start > sb.end):
            raise NotContiguousError(
                f"replica {replica!r}: ranges ({sa.start}, {sa.end}] and "
                f"({sb.start}, {sb.end}] leave a gap"
            )
    sections = dict(a.sections)
    for replica, section in b.sections.items():
        mine = sections.get(replica)
        sections[replica] = section if mine is None else _merge_sections(mine, section)
    return Delta(sections)
