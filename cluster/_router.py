"""The network router: signals to and from processes on other nodes.

``NetworkRouter`` is the node's ``Router`` once it is distributed: it turns a
send, link, unlink, exit, monitor, demonitor or down to a remote process into
an event on the connection to that node, and applies the events that arrive
(``dispatch``). A signal for a node not connected waits for a connection that
is under way, or that the ``auto_connect`` policy starts (``Membership.route``);
if none comes, links fire ``"noconnection"``, monitors ``Down(...,
"noconnection")`` and messages are dropped, as in Erlang (otp-semantics D11,
D15, D17).

``Distribution`` is the one subclass: it owns the connections (``peers``) and
the membership core (``membership``), and carries out its decisions
(``_apply``).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from beamlet.actors import Down, Pid, Ref
from beamlet.actors.lowlevel import Reply, Router

from . import _wire as wire
from ._membership import Membership
from ._messages import RUNTIME_SIGNALS
from ._peer import DistributionBusyError, Peer

__all__ = ["MAX_QUEUED", "NetworkRouter"]

logger = logging.getLogger("beamlet.cluster")

#: Messages that may wait for a connection to one node; past it ``send`` raises
#: ``DistributionBusyError`` (control signals always wait).
MAX_QUEUED = 10_000


class NetworkRouter(Router):
    """Routes the signals of local processes to other nodes, and theirs to local ones."""

    peers: dict[str, Peer]
    membership: Membership[Peer]

    def _apply(self) -> None:
        """Carry out what the membership core decided."""
        raise NotImplementedError

    # -- outgoing signals -----------------------------------------------------------------

    def _emit(self, node: str, event: Any, *, control: bool) -> bool:
        peer = self.peers.get(node)
        if peer is not None:
            peer.emit(event, control=control)
            return True
        queue = self.membership.route(node)
        self._apply()
        if queue is None:
            return False
        if not control and len(queue) >= MAX_QUEUED:
            raise DistributionBusyError(f"too many messages queued while connecting to {node}")
        wire.check_encodable(event)
        queue.append((event, control))
        return True

    def _undeliverable(self, node: str, event: Any) -> None:
        """Answer a control event that could not reach ``node`` as Erlang does."""
        kind = wire.kind(event)
        if kind == "link":
            self.node.remote_exit(event.to_pid, event.from_pid, "noconnection", link=True)
        elif kind == "unlink":  # no acknowledgement will come: the link is gone anyway
            self.node.remote_unlink_ack(event.to_pid, event.from_pid, event.id)
        elif kind == "monitor":
            target = event.target
            if isinstance(target, str):
                target = (target, node)
            self.node.remote_down(event.from_pid, event.ref, target, "noconnection")

    def send(self, sender: Pid | None, dest: Pid, msg: Any) -> None:
        # A call's reply answers a request the peer made: it is never refused,
        # so that a busy connection cannot crash the server that replies.
        if type(msg) in RUNTIME_SIGNALS:
            raise _signal_as_message(msg, str(dest))
        peer = self.peers.get(dest.node)
        if peer is not None:
            peer.emit_message(dest, msg, type(msg) is Reply)
        else:
            self._emit(dest.node, wire.send(dest, msg), control=type(msg) is Reply)

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        if type(msg) in RUNTIME_SIGNALS:
            raise _signal_as_message(msg, f"{name!r} on {node}")
        self._emit(node, wire.send_named(sender, name, msg), control=False)

    def link(self, local: Pid, remote: Pid) -> None:
        event = wire.link(local, remote)
        if not self._emit(remote.node, event, control=True):
            self.node.remote_exit(remote, local, "noconnection", link=True)

    def unlink(self, local: Pid, remote: Pid, id: int) -> None:
        if not self._emit(remote.node, wire.unlink(local, remote, id), control=True):
            self.node.remote_unlink_ack(remote, local, id)  # no connection: nothing to wait for

    def exit(self, sender: Pid, dest: Pid, reason: Any, *, link: bool) -> None:
        try:
            self._emit(dest.node, wire.exit(sender, dest, reason, link=link), control=True)
        except (TypeError, ValueError):  # a reason the codec cannot carry
            self._emit(dest.node, wire.exit(sender, dest, repr(reason), link=link), control=True)

    def monitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        node = target.node if isinstance(target, Pid) else target[1]
        event = wire.monitor(watcher, target, ref)
        if not self._emit(node, event, control=True):
            self.node.remote_down(watcher, ref, target, "noconnection")

    def demonitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        node = target.node if isinstance(target, Pid) else target[1]
        self._emit(node, wire.demonitor(watcher, target, ref), control=True)

    def down(self, watcher: Pid, ref: Ref, target: Any, reason: Any) -> None:
        try:
            self._emit(watcher.node, wire.down(target, watcher, ref, reason), control=True)
        except (TypeError, ValueError):  # a reason the codec cannot carry
            self._emit(watcher.node, wire.down(target, watcher, ref, repr(reason)), control=True)

    # -- incoming signals -----------------------------------------------------------------

    def dispatch(self, peer: Peer, event: Any) -> None:
        """Apply one control event that arrived from ``peer``."""
        node = self.node
        kind = wire.kind(event)
        if kind == "send" or kind == "send_named":
            msg = event.msg
            if type(msg) is Reply:
                dest = event.to_pid if kind == "send" else event.to_name
                if not node.remote_reply(peer.name, dest, msg):
                    peer.forged_reply(msg)
            elif type(msg) in RUNTIME_SIGNALS:
                peer.forged(msg)
            elif kind == "send":
                node.remote_send(event.to_pid, event.msg)
            else:
                node.remote_send_named(event.to_name, event.msg)
        elif kind == "link":
            node.remote_link(event.from_pid, event.to_pid)
        elif kind == "unlink":
            node.remote_unlink(event.from_pid, event.to_pid)
            self._emit(
                peer.name, wire.unlink_ack(event.to_pid, event.from_pid, event.id), control=True
            )
        elif kind == "unlink_ack":
            node.remote_unlink_ack(event.from_pid, event.to_pid, event.id)
        elif kind == "exit":
            node.remote_exit(event.from_pid, event.to_pid, event.reason, link=True)
        elif kind == "exit2":
            node.remote_exit(event.from_pid, event.to_pid, event.reason, link=False)
        elif kind == "monitor":
            node.remote_monitor(event.from_pid, event.target, event.ref)
        elif kind == "demonitor":
            node.remote_demonitor(event.target, event.ref)
        elif kind == "down":
            target = event.target
            if isinstance(target, str):
                target = (target, peer.name)
            if not node.remote_down(event.watcher, event.ref, target, event.reason, peer.name):
                peer.forged_reply(Down(event.ref, target, event.reason))
        elif kind == "gossip":
            if not peer.hidden:  # a hidden node's gossip is ignored, as it gets none
                self.learn(event.nodes)
        elif kind == "tick":
            pass
        else:  # pragma: no cover - the wire layer only yields known kinds
            logger.warning("ignoring an unknown event from %s: %r", peer.name, event)

    def learn(self, entries: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> None:
        """Gossip: remember node addresses and connect to the nodes not yet connected."""
        self.membership.learn(entries, trio.current_time())
        self._apply()


def _signal_as_message(msg: Any, dest: str) -> TypeError:
    """The error for a runtime signal sent as a plain message to another node."""
    kind = type(msg).__name__
    return TypeError(
        f"cannot send a {kind} to {dest}: a {kind} crosses between nodes only as the"
        " runtime's own signal, and the receiving node drops one sent as a message"
        " (it would forge that signal); send it inside another value, e.g. a tuple"
    )
