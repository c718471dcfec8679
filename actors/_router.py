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

__all__ = ["LocalRouter", "Router", "install_router"]


class Router:
    """Carries signals to other nodes. Every method is synchronous and never blocks.

    A node sends every signal whose destination is on another node to its
    router: messages (``send``, ``send_named``), links (``link``,
    ``unlink``), exit signals (``exit``) and monitors (``monitor``,
    ``demonitor``, ``down``). Subclasses override all of them; the defaults
    are those of ``LocalRouter``: no other node is reachable. Install one
    with ``install_router``.

    For signals that arrive from another node, a router calls the node back:
    ``node.remote_send(dest, msg)``, ``remote_send_named(name, msg)``,
    ``remote_reply(origin, dest, reply)`` for a ``Reply`` (a pid or a name;
    False: refused, it is not from the node the process called),
    ``remote_link(remote, local)``, ``remote_unlink(remote, local)`` (and
    answers with an acknowledgement), ``remote_unlink_ack(remote, local, id)``,
    ``remote_exit(sender, dest, reason, link=...)``,
    ``remote_monitor(watcher, target, ref)``, ``remote_demonitor(target, ref)``,
    ``remote_down(watcher, ref, object, reason, origin)`` (False: refused,
    the monitored process is not on ``origin``); and ``node.node_down(name)``
    when the connection to a node is lost (links break with
    ``"noconnection"``, monitors fire). A node may be renamed once it has a
    router that gives it a network name (``node.rename(name)``).

    Attributes:
        node: the node this router serves.
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


def install_router(router: Router) -> Router:
    """Make ``router`` the router of its node (``router.node``); return the previous one.

    From then on, every signal for another node goes to ``router``. The
    distribution layer installs its router when a node starts distribution.

    Raises:
        TypeError: ``router`` is not a ``Router``.
        RuntimeError: the node is closed.
    """
    if not isinstance(router, Router):
        raise TypeError(f"install_router() needs a Router, not {router!r}")
    node = router.node
    if node.closed:
        raise RuntimeError(f"node {node.name} is closed")
    previous = node.router
    node.router = router
    return previous
