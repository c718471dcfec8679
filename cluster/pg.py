"""Process groups across a cluster, like Erlang's ``pg``.

Groups live in scopes; each scope is a process on every node that runs it
(the ``"default"`` scope starts with distribution). A process joins a group
on its own node; the scope tells the same scope on every connected node, so
``members(group)`` lists the members on all nodes. Reads do not message the
scope: they read the node-local table directly.

Members vanish when their process exits and when their node goes down.
Membership is eventually consistent and exchanged only between directly
connected nodes; a partition that heals re-syncs the full membership.

Example::

    await pg.join("workers")
    for pid in pg.members("workers"):
        send(pid, ("job", 1))
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import attrs
from beamlet.actors import (
    Down,
    From,
    GenServer,
    Pid,
    Ref,
    call,
    demonitor as demonitor_process,
    monitor as monitor_process,
    self_pid,
    send,
)
from beamlet.actors.lowlevel import BadInputLog, Node, NodeVar, current_node, current_process

from ._api import distribution
from ._codec import encode
from ._distribution import DistributionBusyError
from ._messages import NodeDown, NodeUp
from ._pg_state import Change, GroupsState
from ._system import bad_request

__all__ = [
    "GroupChange",
    "NotLocalError",
    "ScopeNotStartedError",
    "demonitor",
    "groups",
    "join",
    "leave",
    "local_members",
    "members",
    "monitor",
    "start_scope",
]

DEFAULT_SCOPE = "default"

logger = logging.getLogger("beamlet.cluster")


class NotLocalError(ValueError):
    """Only local processes can join or leave a group (``nolocal``)."""


class ScopeNotStartedError(LookupError):
    """The scope is not running on this node."""


@attrs.frozen
class GroupChange:
    """Sent to group monitors: pids joined or left a group.

    Attributes:
        ref: the reference ``monitor`` returned.
        kind: ``"join"`` or ``"leave"``.
        group: the group.
        pids: the pids that joined or left.
    """

    ref: Ref
    kind: str
    group: Any
    pids: tuple[Pid, ...]


def _server_name(scope: str) -> str:
    return f"beamlet_pg_{scope}"


#: Each node's group tables, by scope name, owned by the scope's process: a
#: scope that exits, even killed (without ``terminate``), takes its table
#: with it, as an ETS table goes with its owner.
_STATES: NodeVar[GroupsState] = NodeVar("beamlet.cluster.pg")


def _state(scope: str, node: Node | None = None) -> GroupsState:
    node = node if node is not None else current_node()
    state = _STATES.get(key=scope, default=None, node=node)
    if state is None:
        raise ScopeNotStartedError(f"the pg scope {scope!r} is not running on {node.name}")
    return state


class _Scope(GenServer):
    """The scope process: owns the node's ``GroupsState`` and talks to its peers."""

    async def init(self, scope: str) -> None:
        proc = current_process()
        self.scope = scope
        self.name = _server_name(scope)
        self.node = proc.node
        self.state = GroupsState()
        _STATES.set(self.state, key=scope)
        self.watched: dict[Pid, Ref] = {}  # local member -> monitor
        self.peers: dict[str, Pid] = {}  # node -> that node's scope process
        self.peer_monitors: dict[Ref, Pid] = {}  # monitor -> a peer scope process
        self.monitors: dict[Ref, tuple[Pid, Any]] = {}  # group monitors
        self.watchers: dict[Ref, Ref] = {}  # process monitor of a watcher -> group monitor
        self.bad_input = BadInputLog(self.name, logger)
        dist = distribution(self.node)
        dist.monitor_nodes(proc.pid, True)
        for node in dist.nodes():
            self._send((self.name, node), ("discover", proc.pid))

    def _add_peer(self, peer: Pid) -> None:
        """Remember the scope process of another node, and watch it."""
        old = self.peers.get(peer.node)
        if old == peer:
            return
        self.peers[peer.node] = peer
        self.peer_monitors[monitor_process(peer)] = peer
        if old is not None:  # that node's scope restarted: its old members are gone
            self._publish(self.state.drop_node(peer.node), tell_peers=False)

    def _is_peer(self, pid: Any) -> bool:
        return isinstance(pid, Pid) and self.node.is_remote(pid.node)

    def _publish(self, changes: list[Change], *, tell_peers: bool) -> None:
        me = self_pid()
        for kind, group, pids in changes:
            if tell_peers:
                for peer in list(self.peers.values()):
                    self._send(peer, (kind, me, group, pids))
            for ref, (watcher, watched_group) in list(self.monitors.items()):
                if watched_group == group:
                    self._send(watcher, GroupChange(ref, kind, group, tuple(pids)))

    def _send(self, dest: Any, msg: Any) -> None:
        """Send to a peer or a watcher; a message that cannot go is logged, not fatal."""
        try:
            send(dest, msg)
        except (TypeError, ValueError, DistributionBusyError) as exc:
            # A peer that misses a change gets the full state on its next sync.
            logger.warning("pg %s: cannot send to %r: %r", self.scope, dest, exc)

    def _local_pids(self, value: Any, *, alive: bool) -> list[Pid] | None:
        """The pids of a join or leave, if they are pids of this node (and alive)."""
        if type(value) is not list and type(value) is not tuple:
            return None
        node = self.node
        for pid in value:
            if type(pid) is not Pid or not node.is_local(pid):
                return None
            if alive and node.lookup(pid) is None:
                return None
        return list(value)

    async def handle_call(self, request: Any, caller: From) -> Any:
        op = request[0] if type(request) is tuple and request else None
        if (op == "join" or op == "leave") and len(request) == 3 and _hashable(request[1]):
            group = request[1]
            pids = self._local_pids(request[2], alive=op == "join")
            if pids is not None:
                return self._join(group, pids) if op == "join" else self._leave(group, pids)
        elif op == "monitor" and len(request) == 3 and _hashable(request[1]):
            group, watcher = request[1], request[2]
            if type(watcher) is Pid:
                ref = self.node.make_ref()
                self.monitors[ref] = (watcher, group)
                self.watchers[monitor_process(watcher)] = ref
                return ref, self.state.members(group)
        elif op == "demonitor" and len(request) == 2 and type(request[1]) is Ref:
            ref = request[1]
            for process_ref, group_ref in list(self.watchers.items()):
                if group_ref == ref:
                    del self.watchers[process_ref]
                    demonitor_process(process_ref, flush=True)
            return self.monitors.pop(ref, None) is not None
        self.bad_input.report("call", request)
        return bad_request(request)

    def _join(self, group: Hashable, pids: list[Pid]) -> bool:
        for pid in pids:
            if pid not in self.watched:
                self.watched[pid] = monitor_process(pid)
        self._publish([self.state.join(group, pids)], tell_peers=True)
        return True

    def _leave(self, group: Hashable, pids: list[Pid]) -> bool:
        change = self.state.leave(group, pids)
        if change is None:
            return False
        for pid in pids:
            if pid in self.watched and not self.state.memberships(pid):
                demonitor_process(self.watched.pop(pid), flush=True)
        self._publish([change], tell_peers=True)
        return True

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> None:
        kind = type(msg)
        if kind is tuple:
            handled = bool(msg) and type(msg[0]) is str and self._peer_message(msg)
        elif kind is Down:
            handled = type(msg.ref) is Ref and self._down(msg)
        elif kind is NodeUp or kind is NodeDown:
            handled = type(msg.node) is str and self._node_event(msg)
        else:
            handled = False
        if not handled:
            self.bad_input.report("message", msg, "unexpected")

    def _node_event(self, msg: NodeUp | NodeDown) -> bool:
        """A node came or went. A stale notice (or a forged one) changes nothing."""
        connected = msg.node in distribution(self.node).nodes()
        if type(msg) is NodeUp:
            if connected:
                self._send((self.name, msg.node), ("discover", self_pid()))
            return True
        if connected:
            return True  # it is up (again): its NodeUp and a sync follow
        self.peers.pop(msg.node, None)
        self._publish(self.state.drop_node(msg.node), tell_peers=False)
        return True

    def _peer_message(self, msg: tuple[Any, ...]) -> bool:
        """Handle a message from the scope of another node; False if it is not one."""
        kind = msg[0]
        if kind == "discover" and len(msg) == 2 and self._is_peer(msg[1]):
            peer = msg[1]
            self._send(peer, ("sync", self_pid(), self.state.local_snapshot()))
            if self.peers.get(peer.node) != peer:
                self._add_peer(peer)
                self._send(peer, ("discover", self_pid()))
            return True
        if kind == "sync" and len(msg) == 3 and self._is_peer(msg[1]):
            peer, groups = msg[1], _groups(msg[2], msg[1].node)
            if groups is None:
                return False
            self._add_peer(peer)
            self._publish(self.state.sync(peer.node, groups), tell_peers=False)
            return True
        if (kind == "join" or kind == "leave") and len(msg) == 4 and self._is_peer(msg[1]):
            peer, group, pids = msg[1], msg[2], _pids(msg[3], msg[1].node)
            if pids is None or not _hashable(group):
                return False
            if self.peers.get(peer.node) != peer:
                return True  # not synced with that scope yet: its sync will carry this
            if kind == "join":
                change: Change | None = self.state.remote_join(peer.node, group, pids)
            else:
                change = self.state.remote_leave(peer.node, group, pids)
            if change is not None:
                self._publish([change], tell_peers=False)
            return True
        return False

    def _down(self, msg: Down) -> bool:
        """Handle a monitor's ``Down``; False if it is none of this scope's monitors."""
        ref = msg.ref
        pid = msg.pid
        if type(pid) is Pid and self.watched.get(pid) == ref:  # a local member exited
            del self.watched[pid]
            self._publish(self.state.drop_local(pid), tell_peers=True)
            return True
        if ref in self.watchers:  # a group monitor's watcher exited
            self.monitors.pop(self.watchers.pop(ref), None)
            return True
        if ref in self.peer_monitors:
            peer = self.peer_monitors.pop(ref)
            if self.peers.get(peer.node) == peer:  # that node's scope is gone
                del self.peers[peer.node]
                self._publish(self.state.drop_node(peer.node), tell_peers=False)
            return True
        return False


async def start_scope(scope: str = DEFAULT_SCOPE) -> Pid | None:
    """Start the scope ``scope`` on the current (distributed) node; return its pid."""
    if not isinstance(scope, str) or not scope:
        raise TypeError(f"a pg scope is a non-empty str, not {scope!r}")
    return await _Scope.start(scope, name=_server_name(scope))


def child_spec(scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
    """A child spec that runs the scope under a supervisor."""
    return _Scope.child_spec(scope, id=("pg", scope), name=_server_name(scope))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _pids(value: Any, node: str) -> list[Pid] | None:
    """The pids of a peer's message, if they are pids of its node."""
    if not isinstance(value, list | tuple):
        return None
    if not all(isinstance(p, Pid) and p.node == node for p in value):
        return None
    return list(value)


def _groups(value: Any, node: str) -> dict[Hashable, list[Pid]] | None:
    """A peer's full report ``{group: [pid, ...]}``, if well formed."""
    if not isinstance(value, dict):
        return None
    groups = {}
    for group, pids in value.items():
        checked = _pids(pids, node)
        if checked is None or not _hashable(group):
            return None
        groups[group] = checked
    return groups


def _check_group(group: Any) -> None:
    if not _hashable(group):
        raise TypeError(f"a pg group must be hashable, not {group!r}")
    encode(group)  # raises TypeError if it cannot cross to other nodes


def _local_pids(pid: Pid | list[Pid] | None) -> list[Pid]:
    node = current_node()
    pids = [self_pid()] if pid is None else (list(pid) if isinstance(pid, list) else [pid])
    for p in pids:
        if not isinstance(p, Pid):
            raise TypeError(f"pg needs pids, not {p!r}")
        if not node.is_local(p):
            raise NotLocalError(f"only local processes can join or leave a group; {p!r} is not")
    return pids


async def join(
    group: Hashable, pid: Pid | list[Pid] | None = None, scope: str = DEFAULT_SCOPE
) -> None:
    """Make ``pid`` (default: the caller; or each pid of a list) a member of ``group``.

    A process may join a group several times; it must then leave as many times.

    Raises:
        NotLocalError: a pid is not on this node.
        ScopeNotStartedError: the scope is not running here.
        TypeError: the group is not hashable, or cannot cross to other nodes.
    """
    _state(scope)
    _check_group(group)
    await call(_server_name(scope), ("join", group, _local_pids(pid)))


async def leave(
    group: Hashable, pid: Pid | list[Pid] | None = None, scope: str = DEFAULT_SCOPE
) -> bool:
    """Remove one membership of ``pid`` in ``group``.

    Returns:
        False if it was not a member (``not_joined``).
    """
    _state(scope)
    result: bool = await call(_server_name(scope), ("leave", group, _local_pids(pid)))
    return result


def members(group: Hashable, scope: str = DEFAULT_SCOPE) -> list[Pid]:
    """The members of ``group`` on every connected node, in no particular order."""
    return _state(scope).members(group)


def local_members(group: Hashable, scope: str = DEFAULT_SCOPE) -> list[Pid]:
    """The members of ``group`` on this node."""
    return _state(scope).local_members(group)


def groups(scope: str = DEFAULT_SCOPE) -> list[Hashable]:
    """Every group with at least one member, on any connected node."""
    return _state(scope).groups()


async def monitor(group: Hashable, scope: str = DEFAULT_SCOPE) -> tuple[Ref, list[Pid]]:
    """Watch ``group``: ``GroupChange`` messages arrive on every join and leave.

    Returns:
        The monitor's ref and the current members.
    """
    _state(scope)
    ref, pids = await call(_server_name(scope), ("monitor", group, self_pid()))
    return ref, pids


async def demonitor(ref: Ref, scope: str = DEFAULT_SCOPE) -> bool:
    """Stop a group monitor; return False if it was unknown."""
    result: bool = await call(_server_name(scope), ("demonitor", ref))
    return result
