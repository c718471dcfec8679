"""Messages that distribution delivers to processes."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["NodeDown", "NodeUp"]


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
