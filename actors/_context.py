"""Context variables: which process and which node the running code belongs to.

Nothing in beamlet is a module-level singleton: several nodes may live in one
``trio.run``. Each process task sets the current process; ``open_node`` sets the
current node for code that runs outside any process.
"""

from __future__ import annotations

import sys
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
        raise NotInProcessError(
            f"{_caller()} must be called from inside a beamlet process "
            "(a function started with spawn, node.run or run)"
        )
    return proc


def _caller() -> str:
    """The public beamlet function that needed a process or a node, for the error message.

    The outermost beamlet function, below the user's code, whose name is public.
    """
    try:
        frame = sys._getframe(1)  # current_process or current_node
    except (AttributeError, ValueError):  # not CPython
        return "this"
    name = frame.f_code.co_name
    up = frame.f_back
    while up is not None and str(up.f_globals.get("__name__", "")).startswith("beamlet."):
        if not up.f_code.co_name.startswith("_"):
            name = up.f_code.co_name
        up = up.f_back
    return f"{name}()"


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
            f"{_caller()} needs a beamlet node, and there is none here: call it from a "
            "process, or inside `async with open_node()`"
        )
    return node
