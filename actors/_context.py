"""Context variables: which process and which node the running code belongs to.

Nothing in beamlet is a module-level singleton: several nodes may live in one
``trio.run``. Each process task sets the current process; ``open_node`` sets the
current node for code that runs outside any process.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from ._errors import NotInProcessError

if TYPE_CHECKING:
    from ._node import Node
    from ._process import Process

__all__ = ["current_node", "current_node_or_none", "current_process", "current_process_or_none"]

_process: ContextVar[Process | None] = ContextVar("beamlet_process", default=None)
_node: ContextVar[Node | None] = ContextVar("beamlet_node", default=None)


def current_process_or_none() -> Process | None:
    """The process the calling code runs in, or None outside any process."""
    return _process.get()


def current_process() -> Process:
    """The process the calling code runs in.

    Raises:
        NotInProcessError: called outside a process.
    """
    proc = _process.get()
    if proc is None:
        raise NotInProcessError("this must be called from inside a beamlet process")
    return proc


def current_node_or_none() -> Node | None:
    """The node of the calling process, else the node of the enclosing ``open_node``, else None."""
    proc = _process.get()
    if proc is not None:
        return proc.node
    return _node.get()


def current_node() -> Node:
    """The node of the calling process, or of the enclosing ``open_node``.

    Raises:
        NotInProcessError: there is no current node.
    """
    node = current_node_or_none()
    if node is None:
        raise NotInProcessError(
            "no beamlet node here: call this from a process, or inside `async with open_node()`"
        )
    return node
