"""The extension point for destinations that are not on this node.

A ``Node`` handles everything addressed to its own processes. Signals for a pid
or name of another node go to ``node.router``. The local runtime ships
``LocalRouter``, which behaves as Erlang does towards a node it cannot reach:
messages are dropped, links break with ``"noconnection"`` and monitors fire
``Down(..., "noconnection")``. ``beamlet.cluster`` installs a router that carries
the signals over the network, and calls back into the node's ``remote_*``
methods for signals that arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ids import Pid, Ref
    from ._node import Node

__all__ = ["LocalRouter", "Router"]


class Router:
    """Carries signals to other nodes. Every method is synchronous and never blocks.

    Subclasses override all of them. The default implementations are those of
    ``LocalRouter``: no other node is reachable.
    """

    def __init__(self, node: Node) -> None:
        self.node = node

    def send(self, sender: Pid | None, dest: Pid, msg: Any) -> None:
        """Send ``msg`` to the remote pid ``dest`` (at most once, in order per pair)."""

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        """Send ``msg`` to the process registered as ``name`` on ``node``."""

    def link(self, local: Pid, remote: Pid) -> None:
        """``local`` has linked to ``remote``; tell the other side."""
        self.node.remote_exit(remote, local, "noconnection", link=True)

    def unlink(self, local: Pid, remote: Pid, id: int) -> None:
        """``local`` has removed its link to ``remote``; tell the other side.

        The other side's acknowledgement comes back as
        ``node.remote_unlink_ack(remote, local, id)``; without a connection,
        at once (this default).
        """
        self.node.remote_unlink_ack(remote, local, id)

    def exit(self, sender: Pid, dest: Pid, reason: Any, *, link: bool) -> None:
        """Send an exit signal to the remote pid ``dest``."""

    def monitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        """``watcher`` starts monitoring the remote ``target`` with ``ref``."""
        self.node.remote_down(watcher, ref, target, "noconnection")

    def demonitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        """``watcher`` stops monitoring ``target``."""

    def down(self, watcher: Pid, ref: Ref, target: Any, reason: Any) -> None:
        """A local process monitored by the remote ``watcher`` has exited."""


class LocalRouter(Router):
    """The router of a node without distribution: no other node is reachable."""
