"""Messages that distribution delivers to processes."""

from __future__ import annotations

from typing import Any

import attrs
from beamlet.actors import Down, ExitSignal

__all__ = ["RUNTIME_SIGNALS", "NodeDown", "NodeUp"]


@attrs.frozen
class NodeUp:
    """A node connected (sent to processes that called ``monitor_nodes``).

    Attributes:
        node: the node's name.
    """

    node: str


@attrs.frozen
class NodeDown:
    """A node disconnected (``monitor_nodes``/``monitor_node``).

    Attributes:
        node: the node's name.
        reason: why: ``"connection_closed"``, ``"net_tick_timeout"``,
            ``"disconnect"``, ``"connection_setup_failed"``, ``"shutdown"``, or
            the protocol error that closed the connection.
    """

    node: str
    reason: Any = "connection_closed"


#: The message types only the runtime delivers: a process that gets one knows
#: that a monitor fired (``Down``), a linked process exited (``ExitSignal``) or
#: a node came or went (``NodeUp``, ``NodeDown``), and acts on what it names (a
#: GenServer stops on an ``ExitSignal`` from its parent; a pool replaces a
#: worker whose monitor sent ``Down``; a cache flushes on ``NodeDown``). They
#: never cross between nodes as plain messages: ``send`` to a process on
#: another node refuses one with ``TypeError``, and a connection drops (and
#: logs) one that a peer sends, which would forge it. The real ones cross as
#: signals, from which the receiving node makes them. Inside another value
#: (a tuple, a list) they are data and cross as such.
RUNTIME_SIGNALS: frozenset[type] = frozenset({Down, ExitSignal, NodeUp, NodeDown})
