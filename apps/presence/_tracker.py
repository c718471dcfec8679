"""What one presence shard does, event by event, as a pure state machine.

A presence is split into shards by topic (``shard_index``); each shard is a
replica of the CRDT (``_state``) with its own PubSub topic, and talks only
to the replicas of the same shard on other nodes. ``TrackerCore`` holds
everything one shard knows and turns each event into a list of *actions*
(values), which the shard process carries out in order:

- ``Broadcast(message)``: send to every other replica of this shard
  (PubSub ``broadcast_from`` on the shard's topic);
- ``SendTo(node, message)``: send to the replica on ``node``
  (``direct_broadcast``);
- ``Diff(joins, leaves)``: presences that appeared and disappeared for local
  readers, to publish (as ``PresenceDiff`` per topic);
- ``ReplicaEvent(kind, replica)``: a replica came up, went down, or was
  forgotten (for logs and tests).

The protocol (Phoenix.Tracker's), driven by ``on_heartbeat_tick`` every
``broadcast_period``:

1. Heartbeat: if anything changed locally, broadcast the delta with our
   clock, and keep it in the delta generations; after ``max_silent_periods``
   quiet periods broadcast an empty heartbeat, so peers know we are alive.
2. Every ``clock_sample_periods`` ticks, compare the clocks heard since with
   ours, and ask for a transfer only from the fewest replicas whose clocks
   cover all that we lack (``_clock.append_clock``): deltas normally suffice,
   and a transfer is the exception (a lost delta, a new replica, a heal).
3. Replicas silent for ``down_period`` go down (their presences leave), for
   ``permdown_period`` are forgotten.

A heartbeat from a replica we did not know, or that was down, brings it up
(its presences join again with no transfer); from a new incarnation of a
known node, the old one is forgotten at once (``_replica``). A replica
coming up gets our heartbeat at once, if none went out in the last
``broadcast_period`` (else at the next tick), and the next tick samples
clocks: a node joining an idle cluster does not wait for the others' next
idle heartbeat, and however many replicas come up, at most one heartbeat per
period is added (``_greet``).

Clocks compared for transfers are limited to the replicas we have up: a
replica that knows one we never heard of (or have down) is not "ahead" of us
for it, which would make us ask it for transfers that cannot help, over and
over (Phoenix issue #135, and its variant during a partition).

Pure: no I/O, no clock reads, no randomness. ``now`` (seconds) and the first
heartbeat's ``jitter`` are passed in.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import attrs
from beamlet.actors import Pid
from beamlet.actors.lowlevel import check_number
from beamlet.cluster import encode

from ._clock import Clock, ReplicaRef, append_clock, clockset_replicas, filter_replicas
from ._delta import Delta, Entry, check_replica
from ._delta_generation import extract, push, remove_replica
from ._errors import MalformedMessageError, NoPresenceError
from ._messages import GracefulPermdown, Heartbeat, TransferAck, TransferReq
from ._replica import Replica, detect_downs, put_heartbeat
from ._state import PresenceState

__all__ = [
    "Action",
    "Broadcast",
    "Diff",
    "ReplicaEvent",
    "SendTo",
    "TrackerCore",
    "TrackerOptions",
    "shard_index",
]


def shard_index(topic: str, pool_size: int) -> int:
    """The shard of ``topic`` among ``pool_size``: the same on every node and run.

    (Python's ``hash`` of a str changes from one process to the next; CRC-32
    does not.)
    """
    return zlib.crc32(topic.encode()) % pool_size


# -- options ---------------------------------------------------------------------


def _positive_seconds(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_number(value, attribute.name, strict=True, finite=True, unit="seconds")


def _positive_int(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_number(value, attribute.name, minimum=1, integer=True)


def _sizes(value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"max_delta_sizes must be a sequence of ints >= 1, not {value!r}")
    sizes = tuple(value)
    if not sizes:
        raise ValueError(
            f"max_delta_sizes must be a non-empty sequence of ints >= 1, not {value!r}"
        )
    for index, n in enumerate(sizes):
        check_number(n, f"max_delta_sizes[{index}]", minimum=1, integer=True)
    return sizes


def _default_down_period(options: TrackerOptions) -> float:
    return options.broadcast_period * options.max_silent_periods * 2


@attrs.frozen
class TrackerOptions:
    """The timings of a presence shard; the defaults are Phoenix.Tracker's.

    Attributes:
        broadcast_period: seconds between heartbeats (1.5).
        max_silent_periods: after this many periods without changes, an empty
            heartbeat is sent anyway (10, so every 15 s when idle).
        down_period: seconds of silence before a replica is down (its
            presences leave); by default ``broadcast_period *
            max_silent_periods * 2`` (30 s); at least ``2 * broadcast_period``,
            and longer than the silence of an idle replica,
            ``(max_silent_periods + 1) * broadcast_period`` (16.5 s).
        permdown_period: seconds of silence before a replica is forgotten
            (1200, 20 minutes); more than ``down_period``.
        clock_sample_periods: heartbeats between transfer decisions (2).
        max_delta_sizes: sizes of the delta generations ((100, 1000, 10000)).

    Raises:
        TypeError / ValueError: an option is of the wrong type or out of
            range; the message names it and its value.
    """

    broadcast_period: float = attrs.field(default=1.5, validator=_positive_seconds)
    max_silent_periods: int = attrs.field(default=10, validator=_positive_int)
    down_period: float = attrs.field(
        default=attrs.Factory(_default_down_period, takes_self=True), validator=_positive_seconds
    )
    permdown_period: float = attrs.field(default=1200.0, validator=_positive_seconds)
    clock_sample_periods: int = attrs.field(default=2, validator=_positive_int)
    max_delta_sizes: tuple[int, ...] = attrs.field(default=(100, 1000, 10000), converter=_sizes)

    def __attrs_post_init__(self) -> None:
        if self.down_period < 2 * self.broadcast_period:
            raise ValueError(
                f"down_period must be at least twice broadcast_period "
                f"(2 x {self.broadcast_period} s), not {self.down_period}"
            )
        idle = (self.max_silent_periods + 1) * self.broadcast_period
        if self.down_period <= idle:
            raise ValueError(
                f"down_period must be longer than the silence between the heartbeats of an "
                f"idle replica ((max_silent_periods + 1) x broadcast_period = {idle:g} s), "
                f"or idle replicas would be seen down; not {self.down_period}"
            )
        if self.permdown_period <= self.down_period:
            raise ValueError(
                f"permdown_period must be larger than down_period ({self.down_period} s), "
                f"not {self.permdown_period}"
            )


#: The most replicas (node names) a shard keeps a record of. A heartbeat from
#: one more name makes room by forgetting the replica that has been down the
#: longest; with every known replica up, it is refused. So heartbeats made up
#: under any number of names cost a bounded table (and a bounded clock in every
#: heartbeat this shard sends), and the replicas that are up keep being served.
MAX_REPLICAS = 1024


# -- actions ---------------------------------------------------------------------


@attrs.frozen
class Broadcast:
    """Send ``message`` to every other replica of this shard."""

    message: Heartbeat | GracefulPermdown


@attrs.frozen
class SendTo:
    """Send ``message`` to this shard's replica on node ``node``."""

    node: str
    message: TransferReq | TransferAck


@attrs.frozen
class Diff:
    """Presences that became visible (``joins``) and stopped being visible (``leaves``).

    An update is a leave of the old entry and a join of the new one, in the
    same diff.
    """

    joins: list[Entry]
    leaves: list[Entry]

    def by_topic(self) -> dict[str, tuple[list[Entry], list[Entry]]]:
        """``{topic: (joins, leaves)}``."""
        out: dict[str, tuple[list[Entry], list[Entry]]] = {}
        for entry in self.joins:
            out.setdefault(entry.topic, ([], []))[0].append(entry)
        for entry in self.leaves:
            out.setdefault(entry.topic, ([], []))[1].append(entry)
        return out


@attrs.frozen
class ReplicaEvent:
    """Replica ``replica`` came ``"up"``, went ``"down"``, or was forgotten (``"permdown"``)."""

    kind: Literal["up", "down", "permdown"]
    replica: ReplicaRef


Action: TypeAlias = Broadcast | SendTo | Diff | ReplicaEvent

#: ``update``'s meta: a new meta, or a function of the old one (given a copy).
MetaUpdate: TypeAlias = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]


def _check_clock(value: object, what: str) -> Clock:
    if type(value) is not dict:
        raise MalformedMessageError(f"{what} must be a dict, not {type(value).__name__}")
    for replica, n in value.items():
        check_replica(replica, f"a replica in {what}")
        if type(n) is not int or n < 0:
            raise MalformedMessageError(f"{what} has a bad counter for {replica!r}: {n!r}")
    return value


def _check_ref(value: object) -> int:
    if type(value) is not int:
        raise MalformedMessageError(f"a transfer's ref must be an int, not {value!r}")
    return value


# -- the core --------------------------------------------------------------------


class TrackerCore:
    """The state and protocol logic of one presence shard (see the module doc).

    Args:
        name: this node's name.
        vsn: this shard incarnation's number, larger than any earlier
            incarnation's on this node (the shard uses wall-clock microseconds).
        options: the timings.
        now: the current time, in seconds.
        jitter: a number in [0, 1]; the first heartbeat is due
            ``jitter * 0.25 * broadcast_period`` after ``now``, so that nodes
            started together do not heartbeat in step.

    Attributes:
        replica: ``(name, vsn)``.
        state: the CRDT; reads (``list_presences``, ``get_by_key``...) go
            straight to it.
        replicas: ``{node_name: Replica}`` for the other replicas heard from.
        generations: the delta generations.
    """

    def __init__(
        self,
        name: str,
        vsn: int,
        options: TrackerOptions | None = None,
        *,
        now: float,
        jitter: float = 0.0,
    ) -> None:
        if type(name) is not str or not name:
            raise TypeError(f"name must be a non-empty str, not {name!r}")
        check_number(vsn, "vsn", minimum=None, integer=True)
        check_number(jitter, "jitter", maximum=1)
        self.name = name
        self.replica: ReplicaRef = (name, vsn)
        self.options = TrackerOptions() if options is None else options
        self.state = PresenceState(self.replica)
        self.replicas: dict[str, Replica] = {}
        self.generations: list[Delta] = []
        self._pending_clocks: dict[ReplicaRef, Clock] = {}
        self._silent_periods = self.options.max_silent_periods
        self._last_heartbeat_at = -math.inf
        self._node_up_greeted_at = -math.inf
        self._sample_count = self.options.clock_sample_periods
        self._next_ref = 0
        self._next_tick_at = now + jitter * 0.25 * self.options.broadcast_period

    def __repr__(self) -> str:
        return f"<TrackerCore {self.replica!r}: {self.state.size()} presences>"

    # -- time --------------------------------------------------------------------

    def next_deadline(self) -> float:
        """When ``on_heartbeat_tick`` is due next (seconds)."""
        return self._next_tick_at

    def on_heartbeat_tick(self, now: float) -> list[Action]:
        """The periodic work: heartbeat, transfer requests, down detection.

        Call it at (or after) ``next_deadline()``; the next deadline is then
        ``now + broadcast_period``.
        """
        options = self.options
        actions: list[Action] = []
        state = self.state
        if state.has_delta() or (
            self._silent_periods >= options.max_silent_periods and self._may_heartbeat(now)
        ):
            actions.append(self._heartbeat(now))
        else:
            self._silent_periods += 1

        if self._sample_count <= 1:
            clocks = state.clocks()
            for replica in self.replicas_to_sync():
                self._next_ref += 1
                actions.append(
                    SendTo(replica[0], TransferReq(self._next_ref, self.replica, clocks))
                )
            self._pending_clocks.clear()
            self._sample_count = options.clock_sample_periods
        else:
            self._sample_count -= 1

        actions.extend(self.check_downs(now))
        self._next_tick_at = now + options.broadcast_period
        return actions

    def _may_heartbeat(self, now: float) -> bool:
        """Whether an empty heartbeat may go out now: none went out in the last period."""
        return now >= self._last_heartbeat_at + self.options.broadcast_period

    def _heartbeat(self, now: float) -> Broadcast:
        """Our heartbeat: the local changes since the last one (if any) and our clock."""
        state = self.state
        wire = None
        if state.has_delta():
            delta = state.take_delta()
            wire = delta.to_wire()
            self.generations = push(self.generations, delta, self.options.max_delta_sizes)
        self._silent_periods = 0
        self._last_heartbeat_at = now
        return Broadcast(Heartbeat(self.replica, state.clocks(), wire))

    def _greet(self, now: float, actions: list[Action]) -> None:
        """A replica came up: let it hear from us soon, and compare clocks at the next tick.

        A newcomer learns of us only from our heartbeats, and an idle shard
        sends one every ``max_silent_periods + 1`` periods. So we heartbeat at
        once if none went out in the last ``broadcast_period``, else at the
        next tick: however many replicas come up (made-up ones included), at
        most one heartbeat per period is added. And the next tick samples the
        clocks heard (rather than every ``clock_sample_periods`` ticks), so
        that what the newcomer has, or we lack, is asked for within a period.
        """
        self._sample_count = 1
        if self._may_heartbeat(now):
            actions.append(self._heartbeat(now))
        else:
            self._silent_periods = self.options.max_silent_periods

    def on_node_up(self, now: float) -> list[Action]:
        """A node connected to ours: it may run a replica that never heard from us.

        Until a node connects, heartbeats cannot reach it: a node whose shard
        started before it connected, with nothing to say, would else wait for
        our next idle heartbeat. So our heartbeat goes out at once, and the
        next tick samples clocks. Connections are not messages anyone on the
        PubSub can make up: these heartbeats have their own limit, one per
        ``broadcast_period`` (else at the next tick), and leave the one of
        replicas coming up alone, so that the replica of that node, once
        heard, is answered at once too.
        """
        self._sample_count = 1
        if now < self._node_up_greeted_at + self.options.broadcast_period:
            self._silent_periods = self.options.max_silent_periods
            return []
        self._node_up_greeted_at = now
        last = self._last_heartbeat_at
        heartbeat = self._heartbeat(now)
        self._last_heartbeat_at = last
        return [heartbeat]

    def next_down_check(self) -> float | None:
        """When the next replica goes down or is forgotten if nothing is heard from it.

        The tick checks every ``broadcast_period``; a shard that also calls
        ``check_downs`` just after this time sees a silent replica down within
        ``down_period`` of its last heartbeat, not up to one period later.
        None if no replica is known.
        """
        options = self.options
        deadlines = [
            r.last_heartbeat_at
            + (options.down_period if r.status == "up" else options.permdown_period)
            for r in self.replicas.values()
        ]
        return min(deadlines) if deadlines else None

    def check_downs(self, now: float) -> list[Action]:
        """Down the replicas silent for more than ``down_period``, forget those past
        ``permdown_period`` (``on_heartbeat_tick`` does it too)."""
        options = self.options
        actions: list[Action] = []
        for before, change in detect_downs(
            self.replicas, now, options.down_period, options.permdown_period
        ):
            if before.status == "up":
                self._down(before.ref, actions)
            if change == "permdown":
                self._permdown(before.ref, actions)
        return actions

    def replicas_to_sync(self) -> list[ReplicaRef]:
        """The replicas to ask for a transfer now, from the clocks heard since the last time.

        The fewest (up) replicas whose clocks, limited to the replicas we have
        up, together cover everything we lack; none if our clock covers them.
        """
        up = {r for r, is_up in self.state.replicas().items() if is_up}
        clockset: list[tuple[ReplicaRef, Clock]] = []
        for sender, clock in self._pending_clocks.items():
            if sender in up:
                clockset = append_clock(clockset, (sender, filter_replicas(clock, up)))
        clockset = append_clock(clockset, (self.replica, self.state.clocks()))
        return [r for r in clockset_replicas(clockset) if r != self.replica]

    # -- messages from other replicas ----------------------------------------------

    def handle(self, message: object, now: float) -> list[Action]:
        """Dispatch a message received on the shard's topic.

        Raises:
            MalformedMessageError: not a presence message, or a malformed one;
                nothing was changed.
        """
        if type(message) is Heartbeat:
            return self.on_heartbeat(message, now)
        if type(message) is TransferReq:
            return self.on_transfer_req(message)
        if type(message) is TransferAck:
            return self.on_transfer_ack(message)
        if type(message) is GracefulPermdown:
            return self.on_graceful_permdown(message)
        raise MalformedMessageError(f"not a presence message: {type(message).__name__}")

    def on_heartbeat(self, message: Heartbeat, now: float) -> list[Action]:
        """A heartbeat from another replica: record it, merge its delta, keep its clock.

        Raises:
            MalformedMessageError: nothing was changed.
        """
        replica = check_replica(message.replica, "a heartbeat's replica")
        clocks = _check_clock(message.clocks, "a heartbeat's clocks")
        delta = None if message.delta is None else Delta.from_wire(message.delta)
        if delta is not None and any(r != replica for r in delta.sections):
            raise MalformedMessageError(
                f"the delta of a heartbeat from {replica!r} holds other replicas' sections"
            )
        if replica[0] == self.name:
            # Ourselves, or a late message of an earlier incarnation of this shard.
            return []
        actions: list[Action] = []
        if replica[0] not in self.replicas and len(self.replicas) >= MAX_REPLICAS:
            self._make_room(replica, actions)
        outcome = put_heartbeat(self.replicas, replica, now)
        if outcome.ignored:
            return []
        old = outcome.replaced
        if old is not None:
            if old.status == "up":
                self._down(old.ref, actions)
            self._permdown(old.ref, actions)
        if outcome.came_up:
            actions.append(ReplicaEvent("up", replica))
            self._diff(actions, self.state.replica_up(replica), [])
        if delta is not None and self._follows(delta):
            joins, leaves = self.state.merge(delta)
            self._diff(actions, joins, leaves)
            self.generations = push(self.generations, delta, self.options.max_delta_sizes)
        self._pending_clocks[replica] = clocks
        if outcome.came_up:
            self._greet(now, actions)
        return actions

    def _make_room(self, newcomer: ReplicaRef, actions: list[Action]) -> None:
        """Forget the replica down the longest, for ``newcomer`` (``MAX_REPLICAS``).

        Raises:
            MalformedMessageError: every known replica is up: nothing was changed.
        """
        down = [r for r in self.replicas.values() if r.status == "down"]
        if not down:
            raise MalformedMessageError(
                f"a heartbeat from replica {newcomer!r} refused: this shard already keeps "
                f"{len(self.replicas)} replicas (the most it keeps), all up"
            )
        oldest = min(down, key=lambda r: r.last_heartbeat_at)
        del self.replicas[oldest.name]
        self._permdown(oldest.ref, actions)

    def _follows(self, delta: Delta) -> bool:
        """Whether every section of ``delta`` starts within what we have of its replica.

        A delta's section ``(start, end]`` carries, in its cloud, the older
        dots that the changes in its range removed. If we lack some dots
        before ``start`` (a delta was lost), merging it would let our clock
        move past those dots once the gap is filled by later dots, without
        ever learning of the removals the lost delta carried: we would keep
        the removed presences forever with a clock equal to everyone's, so no
        transfer would ever repair it. Such a delta is not merged; the
        sender's clock (kept for the next transfer decision) makes us ask for
        a transfer, which starts within what we have.
        """
        context = self.state.context
        return all(
            section.start <= context[r]
            for r, section in delta.sections.items()
            if r in context and r != self.replica
        )

    def on_transfer_req(self, message: TransferReq) -> list[Action]:
        """Answer a transfer request with a delta generation or the full state.

        Only a replica this shard knows (heard from, that incarnation) is
        answered; a request from any other is ignored.

        Raises:
            MalformedMessageError: nothing was sent.
        """
        ref = _check_ref(message.ref)
        requester = check_replica(message.replica, "a transfer request's replica")
        clocks = _check_clock(message.clocks, "a transfer request's clocks")
        if requester == self.replica:
            return []
        known = self.replicas.get(requester[0])
        if known is None or known.vsn != requester[1]:
            # Not a replica we know (its heartbeats come first, on the same
            # path; or it was forgotten since): ignored, as a stale message.
            # No state for strangers, nothing sent to a node named only by a
            # request; a live requester asks again after its next sample.
            return []
        delta = extract(self.state, self.generations, requester, clocks)
        return [SendTo(requester[0], TransferAck(ref, self.replica, delta.to_wire()))]

    def on_transfer_ack(self, message: TransferAck) -> list[Action]:
        """Merge a transfer (only what concerns replicas we know is taken).

        A transfer from a replica this shard does not know is ignored.

        Raises:
            MalformedMessageError: nothing was changed.
        """
        _check_ref(message.ref)
        sender = check_replica(message.replica, "a transfer's replica")
        delta = Delta.from_wire(message.delta)
        known = self.replicas.get(sender[0])
        if known is None or known.vsn != sender[1]:
            return []  # not a replica we know (any more): ignored, as a stale message
        context = self.state.context
        # Only the sections that start within what we have (see ``_follows``):
        # a transfer answers our clock, unless it changed since we asked.
        delta = Delta(
            {
                r: section
                for r, section in delta.sections.items()
                if r in context and section.start <= context[r]
            }
        )
        actions: list[Action] = []
        joins, leaves = self.state.merge(delta)
        self._diff(actions, joins, leaves)
        return actions

    def on_graceful_permdown(self, message: GracefulPermdown) -> list[Action]:
        """A replica says it is gone for good: its presences leave now.

        Raises:
            MalformedMessageError: nothing was changed.
        """
        name, vsn = check_replica(message.replica, "a graceful permdown's replica")
        known = self.replicas.get(name)
        if known is None or known.vsn != vsn:
            return []
        del self.replicas[name]
        actions: list[Action] = []
        if known.status == "up":
            self._down(known.ref, actions)
        self._permdown(known.ref, actions)
        return actions

    # -- local requests ----------------------------------------------------------

    def track(
        self, pid: Pid, topic: str, key: Any, meta: Mapping[str, Any]
    ) -> tuple[str, list[Action]]:
        """Track ``pid`` under ``(topic, key)`` with ``meta``.

        Returns:
            ``(ref, actions)``: the new presence's unique ref, and its join.

        Raises:
            AlreadyTrackedError: ``pid`` is already tracked there.
            TypeError: a bad argument, or a key or meta that cannot cross the
                wire; nothing was changed.
        """
        stored = self._checked(pid, topic, key, meta, "track")
        entry = self.state.join(pid, topic, key, stored)
        return entry.meta["ref"], [Diff([entry], [])]

    def untrack(self, pid: Pid, topic: str, key: Any) -> list[Action]:
        """Stop tracking ``pid`` under ``(topic, key)``; no-op if it is not tracked."""
        entry = self.state.leave(pid, topic, key)
        return [] if entry is None else [Diff([], [entry])]

    def untrack_pid(self, pid: Pid) -> list[Action]:
        """Stop tracking ``pid`` everywhere (it exited, or ``untrack(pid)``)."""
        entries = self.state.leave_pid(pid)
        return [Diff([], entries)] if entries else []

    def update(self, pid: Pid, topic: str, key: Any, meta: MetaUpdate) -> tuple[str, list[Action]]:
        """Replace the meta of ``pid``'s presence under ``(topic, key)``.

        ``meta`` is the new meta, or a function given a copy of the current
        one that returns it. The new meta gets a new ``"ref"`` and
        ``"prev_ref"``, the old one's ref.

        Returns:
            ``(ref, actions)``: the new ref, and the leave of the old entry
            with the join of the new one.

        Raises:
            NoPresenceError: ``pid`` is not tracked there (on this node).
            TypeError: as for ``track``.
        """
        old = self.state.lookup(pid, topic, key)
        if old is None:
            raise NoPresenceError(pid, topic, key)
        if callable(meta):
            meta = meta(dict(old.meta))
        stored = self._checked(pid, topic, key, meta, "update")
        leave, join = self.state.update(pid, topic, key, stored)
        return join.meta["ref"], [Diff([join], [leave])]

    def tracks(self, pid: Pid) -> bool:
        """Whether this shard tracks ``pid`` under any topic (else it may unlink it)."""
        return any(e.replica == self.replica for e in self.state.get_by_pid(pid))

    def graceful_permdown(self) -> list[Action]:
        """Tell the other replicas we are gone for good (then stop the shard)."""
        return [Broadcast(GracefulPermdown(self.replica))]

    @staticmethod
    def _checked(
        pid: object, topic: object, key: object, meta: object, what: str
    ) -> dict[str, Any]:
        if type(pid) is not Pid:
            raise TypeError(f"{what}: pid must be a Pid, not {pid!r}")
        if type(topic) is not str:
            raise TypeError(f"{what}: topic must be a str, not {topic!r}")
        if not isinstance(meta, Mapping):
            raise TypeError(f"{what}: meta must be a dict, not {meta!r}")
        stored = dict(meta)
        try:
            hash(key)
            encode((key, stored))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{what}: the key and meta of a presence must be hashable and cross the wire "
                f"(key {key!r}): {exc}"
            ) from None
        return stored

    # -- replica status ------------------------------------------------------------

    def _diff(self, actions: list[Action], joins: list[Entry], leaves: list[Entry]) -> None:
        if joins or leaves:
            actions.append(Diff(joins, leaves))

    def _down(self, replica: ReplicaRef, actions: list[Action]) -> None:
        actions.append(ReplicaEvent("down", replica))
        self._diff(actions, [], self.state.replica_down(replica))

    def _permdown(self, replica: ReplicaRef, actions: list[Action]) -> None:
        actions.append(ReplicaEvent("permdown", replica))
        self._diff(actions, [], self.state.replica_permdown(replica))
        self.generations = remove_replica(self.generations, replica)
        self._pending_clocks.pop(replica, None)
