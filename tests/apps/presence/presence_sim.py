"""A network of presence shard cores, for tests: virtual time, any delivery order.

Every message goes through ``beamlet.cluster``'s codec on its way. Each
node's diffs are applied to a *view* of what its subscribers were told;
applying a diff checks that no presence joins twice or leaves without having
joined, and after every event the view must equal what the node lists.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
from beamlet.actors import Pid
from beamlet.apps.presence._delta import Dot, Entry
from beamlet.apps.presence._tracker import (
    Action,
    Broadcast,
    Diff,
    ReplicaEvent,
    SendTo,
    TrackerCore,
    TrackerOptions,
)
from beamlet.cluster import decode, encode


@attrs.define
class Envelope:
    """One message in flight."""

    src: str
    dst: str
    message: Any
    size: int
    at: float


class SimNet:
    """Shard cores by node name, and the messages between them."""

    def __init__(self, options: TrackerOptions, now: float = 0.0) -> None:
        self.options = options
        self.now = now
        self.cores: dict[str, TrackerCore] = {}
        self.queue: list[Envelope] = []
        self.log: list[Envelope] = []
        self.views: dict[str, dict[Dot, Entry]] = {}
        self.events: list[tuple[str, ReplicaEvent, float]] = []
        self.blocked: set[tuple[str, str]] = set()
        self.suspended: set[str] = set()
        self._vsns = itertools.count(1)
        self._pids = itertools.count(1)

    # -- nodes ---------------------------------------------------------------------

    def start(self, name: str, jitter: float = 0.0) -> TrackerCore:
        """Start (or restart, as a new incarnation) the shard of node ``name``."""
        core = TrackerCore(name, next(self._vsns), self.options, now=self.now, jitter=jitter)
        self.cores[name] = core
        self.views[name] = {}
        self.suspended.discard(name)
        return core

    def kill(self, name: str) -> None:
        """The node dies: no more ticks; messages to it are lost."""
        del self.cores[name]
        del self.views[name]
        self.suspended.discard(name)

    def pid(self, name: str) -> Pid:
        return Pid(name, next(self._pids), self.cores[name].replica[1])

    def block(self, src: str, dst: str) -> None:
        """Messages from ``src`` to ``dst`` are lost (one way)."""
        self.blocked.add((src, dst))

    def partition(self, side: set[str], other: set[str]) -> None:
        for a in side:
            for b in other:
                self.blocked.add((a, b))
                self.blocked.add((b, a))

    def heal(self) -> None:
        self.blocked.clear()

    # -- local requests ------------------------------------------------------------

    def track(self, name: str, pid: Pid, topic: str, key: Any, meta: dict[str, Any]) -> str:
        ref, actions = self.cores[name].track(pid, topic, key, meta)
        self.perform(name, actions)
        return ref

    def untrack(self, name: str, pid: Pid, topic: str, key: Any) -> None:
        self.perform(name, self.cores[name].untrack(pid, topic, key))

    def update(self, name: str, pid: Pid, topic: str, key: Any, meta: dict[str, Any]) -> str:
        ref, actions = self.cores[name].update(pid, topic, key, meta)
        self.perform(name, actions)
        return ref

    # -- messages ------------------------------------------------------------------

    def perform(self, name: str, actions: list[Action]) -> None:
        """Carry out a node's actions, in order."""
        for action in actions:
            if type(action) is Broadcast:
                for dst in self.cores:
                    if dst != name:
                        self.send(name, dst, action.message)
            elif type(action) is SendTo:
                self.send(name, action.node, action.message)
            elif type(action) is Diff:
                self._apply(name, action)
            elif type(action) is ReplicaEvent:
                self.events.append((name, action, self.now))
            else:
                raise AssertionError(f"unknown action {action!r}")
        self.check(name)

    def send(self, src: str, dst: str, message: Any) -> None:
        data = encode(message)
        envelope = Envelope(src, dst, decode(data), len(data), self.now)
        self.log.append(envelope)
        if (src, dst) not in self.blocked and dst in self.cores:
            self.queue.append(envelope)

    def deliverable(self) -> list[int]:
        """Indexes of the queued messages that can be delivered now."""
        return [i for i, e in enumerate(self.queue) if e.dst not in self.suspended]

    def deliver(self, index: int, keep: bool = False) -> None:
        """Deliver one queued message (and keep a copy queued if ``keep``: a duplicate)."""
        envelope = self.queue[index] if keep else self.queue.pop(index)
        self.deliver_envelope(envelope)

    def deliver_envelope(self, envelope: Envelope) -> None:
        """Deliver a message taken off the queue (unless its link is cut or its node dead)."""
        core = self.cores.get(envelope.dst)
        if core is None or (envelope.src, envelope.dst) in self.blocked:
            return
        self.perform(envelope.dst, core.handle(envelope.message, self.now))

    def deliver_all(self) -> None:
        """Deliver everything deliverable, oldest first, until nothing is left."""
        while True:
            ready = self.deliverable()
            if not ready:
                return
            self.deliver(ready[0])

    # -- time ----------------------------------------------------------------------

    def tick(self, name: str) -> None:
        core = self.cores[name]
        self.now = max(self.now, core.next_deadline())
        self.perform(name, core.on_heartbeat_tick(self.now))

    def run_until(self, t: float, instant: bool = True) -> None:
        """Run every heartbeat due until time ``t``, in order; deliver at once if ``instant``."""
        while True:
            due = [
                (core.next_deadline(), name)
                for name, core in self.cores.items()
                if name not in self.suspended and core.next_deadline() <= t
            ]
            if not due:
                break
            _, name = min(due)
            self.tick(name)
            if instant:
                self.deliver_all()
        self.now = t
        if instant:
            self.deliver_all()

    def run(self, seconds: float, instant: bool = True) -> None:
        self.run_until(self.now + seconds, instant)

    # -- checks ----------------------------------------------------------------------

    def _apply(self, name: str, diff: Diff) -> None:
        view = self.views[name]
        for entry in diff.leaves:
            assert view.pop(entry.dot, None) == entry, f"{name}: leave of {entry} not shown"
        for entry in diff.joins:
            assert entry.dot not in view, f"{name}: duplicate join of {entry}"
            view[entry.dot] = entry

    def check(self, name: str) -> None:
        core = self.cores.get(name)
        if core is None:
            return
        listed = {e.dot: e for e in core.state.online_list()}
        assert self.views[name] == listed, f"{name}: diffs and list disagree"

    def listed(self, name: str, topic: str) -> set[tuple[Any, str]]:
        """``{(key, ref)}`` listed by node ``name`` for ``topic``."""
        return {
            (key, meta["ref"])
            for key, metas in self.cores[name].state.list_presences(topic).items()
            for meta in metas
        }

    def transfer_requests(self, since: int = 0) -> list[tuple[str, str]]:
        """``(src, dst)`` of every transfer request sent after ``log[since]``."""
        return [
            (e.src, e.dst) for e in self.log[since:] if type(e.message).__name__ == "TransferReq"
        ]

    def events_of(self, name: str) -> list[tuple[str, str]]:
        """``(kind, node of the replica)`` of node ``name``'s replica events, in order."""
        return [(ev.kind, ev.replica[0]) for n, ev, _ in self.events if n == name]
