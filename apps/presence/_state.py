"""The presence CRDT: one replica's view of who is tracked where, cluster-wide.

What it is. An observed-remove set of presences ``(topic, pid, key) -> meta``
with dot-based causal context, replicated as delta state (the design of
Phoenix.Tracker's ``State``). Each replica (one shard incarnation,
``(node_name, vsn)``) only ever adds and removes presences of its own node;
it numbers its changes 1, 2, 3... and tags each presence with the dot
``(replica, n)`` of the change that added it. Every other replica keeps, per
replica it knows:

- ``clock``: every dot up to here has been seen (the version vector entry);
- ``cloud``: dots seen beyond it, when messages came out of order or were
  lost (``compact`` folds them into ``clock`` once the gap is filled);
- ``entries``: the live presences among the dots seen.

A presence is gone when its dot is in the context but not in the entries.
Merging a delta (``_delta.Delta``: entries plus the dots they account for)
adds the entries whose dots we have not seen, removes ours whose dots the
delta accounts for but does not hold, and adds the delta's dots to our
context. That is a join of two states: commutative, associative and
idempotent, so replicas converge whatever the order, duplication or loss of
deltas, once each has seen the others' dots (the shard asks for a transfer
when clocks show it has not).

Rules that keep it correct and bounded:

- A replica never takes anything about its own dots from others: it is the
  only source of truth about its own presences.
- A merge ignores replicas this state does not know (never heard of, or
  purged by ``replica_permdown``). A replica becomes known by
  ``replica_up``, when its own heartbeat arrives, so a purged incarnation
  cannot come back from someone else's stale copy.
- ``replica_down`` hides a replica's presences (reads skip them and they are
  returned as leaves) but keeps them; ``replica_up`` shows them again,
  returned as joins, with no state transfer; ``replica_permdown`` forgets the
  replica completely (entries, clock, cloud, status).
- ``clocks()``, the clock advertised to others, leaves out down replicas, so
  that a replica that never knew a dead one is not seen as behind.
- The joins and leaves that every method returns are exactly the changes to
  what the reads return: changes to a down replica's hidden presences are
  not reported (they will be, as joins, if it comes back up).

Local changes also accumulate in the current *delta* (``take_delta``), which
the shard sends with its next heartbeat.

Mutable: the methods change the state in place and return what changed.
Reads are cheap, from indexes by topic (then key) and by pid, and never
copy metas: do not mutate them.

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from beamlet.actors import Pid

from ._clock import Clock, ReplicaRef
from ._delta import Delta, Dot, Entry, Section
from ._errors import AlreadyTrackedError, NoPresenceError

__all__ = ["PresenceState", "make_ref", "ref_prefix"]

#: The meta keys the state sets: the presence's unique ref, and on an update
#: the ref of the presence it replaced.
REF = "ref"
PREV_REF = "prev_ref"


def ref_prefix(replica: ReplicaRef) -> str:
    """Twelve URL-safe characters that stand for ``replica`` in its presences' refs."""
    name, vsn = replica
    digest = hashlib.blake2b(f"{name}\x00{vsn}".encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


def make_ref(replica: ReplicaRef, clock: int) -> str:
    """The unique ref of the presence added by dot ``(replica, clock)``.

    ``"<replica prefix>.<clock in hex>"``: derived from the dot alone, so it
    needs nothing random or timed, and unique as long as no two replicas
    share a 72-bit prefix.
    """
    return f"{ref_prefix(replica)}.{clock:x}"


class _Replica:
    """What this state knows of one replica's dots."""

    __slots__ = ("clock", "cloud", "entries", "up")

    def __init__(self, up: bool = True) -> None:
        self.clock = 0
        self.cloud: set[int] = set()
        self.entries: dict[int, Entry] = {}
        self.up = up

    def seen(self, clock: int) -> bool:
        return clock <= self.clock or clock in self.cloud

    def add_context(self, section: Section) -> None:
        if section.start <= self.clock:
            if section.end > self.clock:
                self.clock = section.end
        elif section.end > section.start:
            self.cloud.update(range(section.start + 1, section.end + 1))
        if section.cloud:
            self.cloud.update(section.cloud)
        self.compact()

    def compact(self) -> None:
        cloud = self.cloud
        if not cloud:
            return
        clock = self.clock
        while clock + 1 in cloud:
            clock += 1
        self.clock = clock
        if min(cloud) <= clock:
            self.cloud = {d for d in cloud if d > clock}

    def copy(self) -> _Replica:
        other = _Replica(self.up)
        other.clock = self.clock
        other.cloud = set(self.cloud)
        other.entries = dict(self.entries)
        return other


class PresenceState:
    """One replica's state of the presence CRDT (see the module doc).

    Args:
        replica: this replica, ``(node_name, vsn)``.
    """

    __slots__ = ("_by_pid", "_by_topic", "_delta", "_down", "_ref_prefix", "_replicas", "replica")

    def __init__(self, replica: ReplicaRef) -> None:
        self.replica = replica
        self._replicas: dict[ReplicaRef, _Replica] = {replica: _Replica()}
        self._down: set[ReplicaRef] = set()
        self._by_topic: dict[str, dict[Any, dict[Dot, Entry]]] = {}
        self._by_pid: dict[Pid, dict[Dot, Entry]] = {}
        self._delta = Delta({replica: Section(0, 0)})
        self._ref_prefix = ref_prefix(replica)

    def __repr__(self) -> str:
        return (
            f"<PresenceState {self.replica!r}: {self.size()} presences, "
            f"{len(self._replicas)} replicas ({len(self._down)} down)>"
        )

    # -- causal context ----------------------------------------------------------

    @property
    def context(self) -> Clock:
        """The clock of every known replica, down ones included."""
        return {r: data.clock for r, data in self._replicas.items()}

    def clocks(self) -> Clock:
        """The clock to advertise: every known replica that is up, and this one.

        Down replicas are left out (Phoenix issue #135): a replica that came
        up after one went down never knew it, and must not look behind us
        because of it.
        """
        return {r: data.clock for r, data in self._replicas.items() if data.up}

    def cloud(self, replica: ReplicaRef) -> set[int]:
        """The dots of ``replica`` seen beyond its clock (a copy)."""
        data = self._replicas.get(replica)
        return set() if data is None else set(data.cloud)

    def replicas(self) -> dict[ReplicaRef, bool]:
        """Every known replica and whether it is up."""
        return {r: data.up for r, data in self._replicas.items()}

    def knows(self, replica: ReplicaRef) -> bool:
        """Whether ``replica`` is known (up or down)."""
        return replica in self._replicas

    def is_up(self, replica: ReplicaRef) -> bool:
        """Whether ``replica`` is known and up."""
        data = self._replicas.get(replica)
        return data is not None and data.up

    # -- reads -------------------------------------------------------------------

    def get_by_topic(self, topic: str) -> list[Entry]:
        """The visible presences of ``topic`` (those of down replicas are hidden)."""
        keys = self._by_topic.get(topic)
        if not keys:
            return []
        down = self._down
        if not down:
            return [e for entries in keys.values() for e in entries.values()]
        return [e for entries in keys.values() for e in entries.values() if e.replica not in down]

    def list_presences(self, topic: str) -> dict[Any, list[dict[str, Any]]]:
        """``{key: [meta, ...]}`` for the visible presences of ``topic``.

        One meta per tracked process (or device) under that key, each with its
        unique ``"ref"``. Keys with no visible presence are absent.
        """
        keys = self._by_topic.get(topic)
        if not keys:
            return {}
        down = self._down
        out: dict[Any, list[dict[str, Any]]] = {}
        for key, entries in keys.items():
            if down:
                metas = [e.meta for e in entries.values() if e.replica not in down]
                if metas:
                    out[key] = metas
            else:
                out[key] = [e.meta for e in entries.values()]
        return out

    def get_by_key(self, topic: str, key: Any) -> list[tuple[Pid, dict[str, Any]]]:
        """``[(pid, meta), ...]`` for the visible presences of ``key`` in ``topic``."""
        keys = self._by_topic.get(topic)
        entries = keys.get(key) if keys else None
        if not entries:
            return []
        down = self._down
        return [(e.pid, e.meta) for e in entries.values() if e.replica not in down]

    def get_by_pid(self, pid: Pid) -> list[Entry]:
        """Every presence of ``pid``, hidden ones included."""
        entries = self._by_pid.get(pid)
        return list(entries.values()) if entries else []

    def lookup(self, pid: Pid, topic: str, key: Any) -> Entry | None:
        """This replica's own presence of ``pid`` under ``(topic, key)``, if any."""
        keys = self._by_topic.get(topic)
        entries = keys.get(key) if keys else None
        if entries:
            own = self.replica
            for entry in entries.values():
                if entry.pid == pid and entry.replica == own:
                    return entry
        return None

    def online_list(self) -> list[Entry]:
        """Every visible presence, all topics."""
        down = self._down
        return [
            e for r, data in self._replicas.items() if r not in down for e in data.entries.values()
        ]

    def dirty_list(self, topic: str) -> list[Entry]:
        """Every presence of ``topic``, including those of down replicas."""
        keys = self._by_topic.get(topic)
        return [e for entries in keys.values() for e in entries.values()] if keys else []

    def topics(self) -> list[str]:
        """Every topic with at least one presence (hidden ones included)."""
        return list(self._by_topic)

    def size(self) -> int:
        """How many presences are stored, hidden ones included."""
        return sum(len(data.entries) for data in self._replicas.values())

    # -- local changes -----------------------------------------------------------

    def join(self, pid: Pid, topic: str, key: Any, meta: Mapping[str, Any]) -> Entry:
        """Track ``pid`` under ``(topic, key)`` on this replica.

        The stored meta is a copy of ``meta`` with ``"ref"`` set to the new
        presence's unique ref (any ``"ref"`` given is replaced).

        Returns:
            The new entry (a join).

        Raises:
            AlreadyTrackedError: this replica already tracks ``pid`` there.
        """
        if self.lookup(pid, topic, key) is not None:
            raise AlreadyTrackedError(pid, topic, key)
        return self._add(pid, topic, key, meta, None)

    def leave(self, pid: Pid, topic: str, key: Any) -> Entry | None:
        """Untrack ``pid`` from ``(topic, key)``; the removed entry (a leave), or None."""
        entry = self.lookup(pid, topic, key)
        if entry is None:
            return None
        self._forget_own(entry)
        self._bump()
        return entry

    def leave_pid(self, pid: Pid) -> list[Entry]:
        """Untrack every presence of ``pid`` on this replica; the removed entries."""
        entries = self._by_pid.get(pid)
        if not entries:
            return []
        own = self.replica
        mine = [e for e in entries.values() if e.replica == own]
        for entry in mine:
            self._forget_own(entry)
            self._bump()
        return mine

    def update(
        self, pid: Pid, topic: str, key: Any, meta: Mapping[str, Any]
    ) -> tuple[Entry, Entry]:
        """Replace the meta of ``pid``'s presence: a leave and a join, in one change.

        The new meta is a copy of ``meta`` with a new ``"ref"`` and with
        ``"prev_ref"`` set to the old one.

        Returns:
            ``(old entry, new entry)``: a leave and a join.

        Raises:
            NoPresenceError: this replica does not track ``pid`` there.
        """
        old = self.lookup(pid, topic, key)
        if old is None:
            raise NoPresenceError(pid, topic, key)
        self._forget_own(old)
        return old, self._add(pid, topic, key, meta, old.meta.get(REF))

    def _bump(self) -> int:
        own = self._replicas[self.replica]
        own.clock += 1
        self._delta.sections[self.replica].end = own.clock
        return own.clock

    def _add(self, pid: Pid, topic: str, key: Any, meta: Mapping[str, Any], prev_ref: Any) -> Entry:
        clock = self._bump()
        stored = dict(meta)
        stored[REF] = f"{self._ref_prefix}.{clock:x}"
        if prev_ref is not None:
            stored[PREV_REF] = prev_ref
        entry = Entry(self.replica, clock, pid, topic, key, stored)
        self._replicas[self.replica].entries[clock] = entry
        self._delta.sections[self.replica].entries[clock] = entry
        self._index(entry)
        return entry

    def _forget_own(self, entry: Entry) -> None:
        del self._replicas[self.replica].entries[entry.clock]
        self._unindex(entry)
        section = self._delta.sections[self.replica]
        if section.entries.pop(entry.clock, None) is None:
            # Added before this delta began: say it is gone.
            section.cloud.add(entry.clock)

    # -- the delta ---------------------------------------------------------------

    def has_delta(self) -> bool:
        """Whether anything changed locally since the last ``take_delta``."""
        section = self._delta.sections[self.replica]
        return section.end > section.start

    def peek_delta(self) -> Delta:
        """The delta being built (do not change it)."""
        return self._delta

    def take_delta(self) -> Delta:
        """Return the local changes since the last call, and start a new delta.

        The returned delta is never changed afterwards. It holds only this
        replica's section: ``(previous clock, current clock]``, the presences
        added since and still there, and the older ones removed since.
        """
        delta = self._delta
        clock = self._replicas[self.replica].clock
        self._delta = Delta({self.replica: Section(clock, clock)})
        return delta

    # -- merging -----------------------------------------------------------------

    def merge(self, delta: Delta) -> tuple[list[Entry], list[Entry]]:
        """Merge a delta or a full state from another replica into this one.

        Sections of this replica and of replicas this state does not know are
        ignored. ``delta`` is not changed, and may be merged elsewhere too.
        Merging the same delta again changes nothing and returns nothing.

        Returns:
            ``(joins, leaves)``: presences that became visible, and presences
            that stopped being visible (both empty for a down replica).
        """
        joins: list[Entry] = []
        leaves: list[Entry] = []
        for replica, section in delta.sections.items():
            if replica == self.replica:
                continue
            data = self._replicas.get(replica)
            if data is None:
                continue
            visible = data.up
            mine = data.entries
            theirs = section.entries
            for clock, entry in theirs.items():
                if not data.seen(clock):
                    mine[clock] = entry
                    self._index(entry)
                    if visible:
                        joins.append(entry)
            if mine:
                if section.context_size() <= len(mine):
                    candidates: Iterable[int] = [
                        c for c in range(section.start + 1, section.end + 1) if c in mine
                    ] + [c for c in section.cloud if c in mine]
                else:
                    candidates = [c for c in mine if section.covers(c)]
                for clock in candidates:
                    if clock not in theirs:
                        entry = mine.pop(clock)
                        self._unindex(entry)
                        if visible:
                            leaves.append(entry)
            data.add_context(section)
        return joins, leaves

    def extract(self, remote: ReplicaRef, remote_clock: Mapping[ReplicaRef, Any]) -> Delta:
        """The full state, as a delta for replica ``remote``.

        Only the replicas that ``remote_clock`` names (those ``remote`` knows
        and has up) are included, and not ``remote`` itself, whose own
        presences it knows best. Each section is ``(0, clock]`` plus the
        cloud, with every entry: merged by ``remote``, it is a full transfer.
        """
        return Delta(
            {
                r: Section(0, data.clock, set(data.cloud), dict(data.entries))
                for r, data in self._replicas.items()
                if r in remote_clock and r != remote
            }
        )

    # -- replicas ----------------------------------------------------------------

    def replica_up(self, replica: ReplicaRef) -> list[Entry]:
        """Mark ``replica`` up (known from now on); its presences shown again are joins."""
        if replica == self.replica:
            return []
        data = self._replicas.get(replica)
        if data is None:
            self._replicas[replica] = _Replica()
            return []
        if data.up:
            return []
        data.up = True
        self._down.discard(replica)
        return list(data.entries.values())

    def replica_down(self, replica: ReplicaRef) -> list[Entry]:
        """Mark ``replica`` down: its presences are kept but hidden, and returned as leaves."""
        data = self._replicas.get(replica)
        if data is None or not data.up or replica == self.replica:
            return []
        data.up = False
        self._down.add(replica)
        return list(data.entries.values())

    def replica_permdown(self, replica: ReplicaRef) -> list[Entry]:
        """Forget ``replica`` for good: its presences, its clock, its cloud, its status.

        Returns:
            The presences that were still visible (none if it was down): leaves.
        """
        if replica == self.replica:
            return []
        data = self._replicas.pop(replica, None)
        if data is None:
            return []
        self._down.discard(replica)
        for entry in data.entries.values():
            self._unindex(entry)
        return list(data.entries.values()) if data.up else []

    # -- indexes -----------------------------------------------------------------

    def _index(self, entry: Entry) -> None:
        dot = (entry.replica, entry.clock)
        keys = self._by_topic.get(entry.topic)
        if keys is None:
            keys = self._by_topic[entry.topic] = {}
        entries = keys.get(entry.key)
        if entries is None:
            keys[entry.key] = {dot: entry}
        else:
            entries[dot] = entry
        by_pid = self._by_pid.get(entry.pid)
        if by_pid is None:
            self._by_pid[entry.pid] = {dot: entry}
        else:
            by_pid[dot] = entry

    def _unindex(self, entry: Entry) -> None:
        dot = (entry.replica, entry.clock)
        keys = self._by_topic[entry.topic]
        entries = keys[entry.key]
        del entries[dot]
        if not entries:
            del keys[entry.key]
            if not keys:
                del self._by_topic[entry.topic]
        by_pid = self._by_pid[entry.pid]
        del by_pid[dot]
        if not by_pid:
            del self._by_pid[entry.pid]

    # -- whole state -------------------------------------------------------------

    def copy(self) -> PresenceState:
        """An independent copy (entries, which never change, are shared)."""
        other = PresenceState.__new__(PresenceState)
        other.replica = self.replica
        other._replicas = {r: data.copy() for r, data in self._replicas.items()}
        other._down = set(self._down)
        other._by_topic = {
            topic: {key: dict(entries) for key, entries in keys.items()}
            for topic, keys in self._by_topic.items()
        }
        other._by_pid = {pid: dict(entries) for pid, entries in self._by_pid.items()}
        other._delta = Delta({r: s.copy() for r, s in self._delta.sections.items()})
        other._ref_prefix = self._ref_prefix
        return other

    def snapshot(
        self,
    ) -> tuple[dict[Dot, Entry], Clock, dict[ReplicaRef, frozenset[int]], frozenset[ReplicaRef]]:
        """Everything that defines the state, as comparable values.

        ``(entries by dot, context, non-empty clouds, down replicas)``: two
        states with equal snapshots answer every read the same.
        """
        return (
            {(r, c): e for r, data in self._replicas.items() for c, e in data.entries.items()},
            self.context,
            {r: frozenset(data.cloud) for r, data in self._replicas.items() if data.cloud},
            frozenset(self._down),
        )
