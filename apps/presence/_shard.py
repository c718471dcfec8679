"""One presence shard: a thin process over ``TrackerCore``.

The shard owns one ``TrackerCore`` (one replica of the CRDT, for the topics
that ``shard_index`` sends to it) and does only what the core cannot: it
receives, it keeps time, it carries out the core's actions.

- Time: one timer at a time, armed on ``core.next_deadline()``, or just
  after ``core.next_down_check()`` if that is sooner; when it fires,
  ``core.on_heartbeat_tick(now)`` or ``core.check_downs(now)``. So a silent
  replica goes down within ``down_period`` of its last heartbeat, not up to
  a ``broadcast_period`` later.
- Messages from the other replicas of the shard arrive on the shard's PubSub
  topic and go to ``core.handle``; a malformed one is dropped and reported
  through a rate-limited ``BadInputLog``, and the shard serves on.
- Local requests (``track``, ``untrack``, ``update``) are calls, answered
  with ``("ok", value)`` or ``("error", exception)``; a malformed call gets
  an error too.
- Tracked processes are monitored: a ``Down`` untracks every presence of
  that process.
- Nodes are monitored (``monitor_nodes``): a node that connects gets the
  shard's heartbeat soon (``core.on_node_up``), so that a replica there
  that started before it connected need not wait for an idle heartbeat.
- Actions: ``Broadcast`` -> ``broadcast_from`` on the shard's topic,
  ``SendTo`` -> ``direct_broadcast`` to that node, ``Diff`` ->
  ``PresenceDiff`` per topic to the local subscribers (``local_broadcast``),
  ``ReplicaEvent`` -> a debug log line.

Readers never message the shard: they read ``core.state`` through the
presence's node-local table (``_presence``). The shard publishes its core
there in ``init``; when it exits the core stays in place, so that reads go on
answering until the restarted shard replaces it. A restarted shard is a new
replica (a new ``vsn``): it first tells its local subscribers that what the
old one showed has left, then tracks again the presences of the old one
whose processes are still alive (with new refs); the other nodes see the old
incarnation go at once and the new one's presences join.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    From,
    GenServer,
    Pid,
    Ref,
    demonitor,
    monitor,
    self_pid,
    send_after,
    trap_exits,
)
from beamlet.actors.lowlevel import BadInputLog, current_node, is_clean_exit
from beamlet.apps import pubsub as _pubsub
from beamlet.cluster import NodeDown, NodeUp, NotDistributedError, monitor_nodes

from ._delta import Entry
from ._errors import MalformedMessageError, NoPresenceError
from ._messages import GracefulPermdown, Heartbeat, PresenceDiff, TransferAck, TransferReq
from ._tracker import Action, Broadcast, Diff, ReplicaEvent, SendTo, TrackerCore

if TYPE_CHECKING:
    from ._presence import _Table

__all__ = ["Shard", "next_vsn"]

logger = logging.getLogger("beamlet.apps.presence")

_REPLICA_MESSAGES = (Heartbeat, TransferReq, TransferAck, GracefulPermdown)

_last_vsn = 0

#: How long after a replica's down deadline the shard checks it (seconds).
_DOWN_MARGIN = 1e-6


def next_vsn() -> int:
    """A new shard incarnation's number: wall-clock microseconds, always increasing.

    Larger than every earlier one in this OS process (two shards started in
    the same microsecond still differ) and, through the wall clock, than
    those of an earlier run of the node.
    """
    global _last_vsn
    _last_vsn = max(time.time_ns() // 1000, _last_vsn + 1)
    return _last_vsn


class _CallerError(Exception):
    """An exception raised by a function the caller gave (``update``'s), to hand back."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Tick:
    """The shard's timer message (one object per shard; only its own timer sends it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<presence heartbeat tick>"


def _fetched(
    fetch: Callable[[str, dict[Any, Any]], Any] | None, topic: str, presences: dict[Any, Any]
) -> Any:
    return presences if fetch is None else fetch(topic, presences)


def by_key(entries: list[Entry]) -> dict[Any, list[dict[str, Any]]]:
    """``{key: [meta, ...]}`` of ``entries``, each meta a copy."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for entry in entries:
        out.setdefault(entry.key, []).append(dict(entry.meta))
    return out


class Shard(GenServer):
    """The process of shard ``index`` of a presence (see the module doc)."""

    shutdown = 5.0

    table: _Table
    index: int
    core: TrackerCore
    topic: str
    monitors: dict[Pid, Ref]

    async def init(self, table: _Table, index: int) -> None:
        self.table = table
        self.index = index
        self.topic = table.shard_topic(index)
        self.pubsub = table.pubsub
        self.monitors = {}
        self.bad_input = BadInputLog(table.shard_name(index), logger)
        self.tick = _Tick()
        self.timer: Ref | None = None
        self.me = self_pid()
        # So that terminate runs on shutdown (permdown_on_shutdown); the
        # exit signals of the parent are handled by GenServer itself.
        trap_exits(True)
        previous = table.cores[index]
        self.core = TrackerCore(
            _pubsub.node_name(self.pubsub),
            next_vsn(),
            table.options,
            now=trio.current_time(),
            jitter=random.random(),
        )
        _pubsub.subscribe(self.pubsub, self.topic)
        try:
            monitor_nodes(True)  # a node that connects gets our heartbeat soon
        except NotDistributedError:
            pass  # a node alone: no peer to greet
        table.cores[index] = self.core
        if previous is not None:
            self._take_over(previous)
        self._arm()

    def _take_over(self, previous: TrackerCore) -> None:
        """After a restart: what the old incarnation showed leaves; its live presences come back."""
        shown = previous.state.online_list()
        if shown:
            self._perform([Diff([], shown)])
        node = current_node()
        own = [e for e in previous.state.online_list() if e.replica == previous.replica]
        for entry in own:
            if not node.is_alive(entry.pid) and node.is_local(entry.pid):
                continue
            meta = {k: v for k, v in entry.meta.items() if k not in ("ref", "prev_ref")}
            try:
                _ref, actions = self.core.track(entry.pid, entry.topic, entry.key, meta)
            except (TypeError, ValueError):  # pragma: no cover - it was accepted before
                continue
            self._watch(entry.pid)
            self._perform(actions)

    # -- time --------------------------------------------------------------------

    def _arm(self) -> None:
        """One timer: the next heartbeat tick, or the next down check if that comes first.

        A replica goes down once silent for *more* than ``down_period``: the
        check is due just after the deadline (a microsecond, well above the
        rounding of the clock's floats, so that the check does find it silent).
        """
        now = trio.current_time()
        at = self.core.next_deadline()
        down_at = self.core.next_down_check()
        if down_at is not None:
            at = min(at, max(down_at, now) + _DOWN_MARGIN)
        self.timer = send_after(max(0.0, at - now), self.me, self.tick)

    def _on_timer(self) -> None:
        now = trio.current_time()
        if now >= self.core.next_deadline():
            self._perform(self.core.on_heartbeat_tick(now))
        else:
            self._perform(self.core.check_downs(now))
        self._arm()

    # -- requests ------------------------------------------------------------------

    async def handle_call(self, request: Any, caller: From) -> Any:
        try:
            return ("ok", self._request(request))
        except (TypeError, ValueError, LookupError) as exc:
            return ("error", exc)
        except _CallerError as exc:
            return ("error", exc.error)

    def _request(self, request: Any) -> Any:
        if type(request) is not tuple or not request:
            self.bad_input.report("call", request)
            raise ValueError(f"a presence shard got a malformed request: {request!r}")
        op = request[0]
        if op == "track" and len(request) == 5:
            _, pid, topic, key, meta = request
            ref, actions = self.core.track(pid, topic, key, meta)
            self._watch(pid)
            self._perform(actions)
            return ref
        if op == "untrack" and len(request) == 4:
            _, pid, topic, key = request
            self._check_pid(pid, "untrack")
            self._perform(self.core.untrack(pid, topic, key))
            self._unwatch_if_done(pid)
            return None
        if op == "untrack_pid" and len(request) == 2:
            pid = request[1]
            self._check_pid(pid, "untrack")
            self._perform(self.core.untrack_pid(pid))
            self._unwatch_if_done(pid)
            return None
        if op == "update" and len(request) == 5:
            _, pid, topic, key, meta = request
            self._check_pid(pid, "update")
            if callable(meta):
                old = self.core.state.lookup(pid, topic, key)
                if old is None:
                    raise NoPresenceError(pid, topic, key)
                try:
                    meta = meta(dict(old.meta))
                except Exception as exc:  # the caller's function: its error is the caller's
                    raise _CallerError(exc) from None
            ref, actions = self.core.update(pid, topic, key, meta)
            self._perform(actions)
            return ref
        self.bad_input.report("call", request)
        raise ValueError(f"a presence shard got a malformed request: {request!r}")

    @staticmethod
    def _check_pid(pid: object, what: str) -> None:
        if type(pid) is not Pid:
            raise TypeError(f"{what}: pid must be a Pid, not {pid!r}")

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request)

    # -- messages ------------------------------------------------------------------

    async def handle_info(self, msg: Any) -> None:
        if msg is self.tick:
            self._on_timer()
        elif type(msg) in _REPLICA_MESSAGES:
            try:
                actions = self.core.handle(msg, trio.current_time())
            except MalformedMessageError as exc:
                self.bad_input.report(f"message ({exc})", msg)
                return
            self._perform(actions)
        elif type(msg) is NodeUp:
            self._perform(self.core.on_node_up(trio.current_time()))
        elif type(msg) is NodeDown:
            pass  # replicas go down on silence only (heartbeats), as in Phoenix
        elif type(msg) is Down and self.monitors.get(msg.pid) == msg.ref:
            del self.monitors[msg.pid]
            self._perform(self.core.untrack_pid(msg.pid))
        elif type(msg) is ExitSignal:
            # Trapped exit signals of processes that linked to the shard.
            self.bad_input.report("exit signal", msg, "unexpected")
        else:
            self.bad_input.report("message", msg, "unexpected")

    async def terminate(self, reason: Any) -> None:
        if self.table.permdown_on_shutdown and is_clean_exit(reason):
            self._perform(self.core.graceful_permdown())

    # -- tracked processes ----------------------------------------------------------

    def _watch(self, pid: Pid) -> None:
        if pid not in self.monitors:
            self.monitors[pid] = monitor(pid)

    def _unwatch_if_done(self, pid: Pid) -> None:
        ref = self.monitors.get(pid)
        if ref is not None and not self.core.tracks(pid):
            del self.monitors[pid]
            demonitor(ref, flush=True)

    # -- actions -------------------------------------------------------------------

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is Broadcast:
                _pubsub.broadcast_from(self.pubsub, self.me, self.topic, action.message)  # type: ignore[union-attr]
            elif kind is SendTo:
                _pubsub.direct_broadcast(action.node, self.pubsub, self.topic, action.message)  # type: ignore[union-attr]
            elif kind is Diff:
                self._publish(action)  # type: ignore[arg-type]
            elif kind is ReplicaEvent:
                logger.debug(
                    "%s: replica %r %s",
                    self.table.shard_name(self.index),
                    action.replica,  # type: ignore[union-attr]
                    action.kind,  # type: ignore[union-attr]
                )

    def _publish(self, diff: Diff) -> None:
        fetch = self.table.fetch
        for topic, (joins, leaves) in diff.by_topic().items():
            joined, left = by_key(joins), by_key(leaves)
            if fetch is not None:
                try:
                    joined = _fetched(fetch, topic, joined) if joined else joined
                    left = _fetched(fetch, topic, left) if left else left
                except Exception:
                    logger.exception(
                        "%s: the fetch hook raised on a diff of topic %r; "
                        "the diff goes out as it was",
                        self.table.name,
                        topic,
                    )
                    joined, left = by_key(joins), by_key(leaves)
            _pubsub.local_broadcast(self.pubsub, topic, PresenceDiff(topic, joined, left))

    def __repr__(self) -> str:
        return f"<presence shard {self.table.shard_name(self.index)}>"
