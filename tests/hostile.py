"""What the bad-input tests throw at a process, and how a hostile peer sends it.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from hostile import ...``. What those tests check is the process the terms
are thrown at (it keeps serving); the thrower's own failures (the codec
refusing a term, a call with no answer) are expected and ignored.

beamlet's own ``send`` refuses to send a runtime signal (``Down``,
``ExitSignal``, ``NodeUp``, ``NodeDown``: ``RUNTIME_SIGNALS``) to another node
as a plain message (``TypeError``), since the receiving node would drop it. A
hostile peer that holds the cookie does not use beamlet's ``send``; it writes
the frame itself. ``forge_send`` does that, and ``throw`` sends through it to
another node, so that what is checked is the receiving node.
"""

from __future__ import annotations

from typing import Any

from beamlet.actors import CallExitError, CallTimeoutError, Pid, call, cast, self_pid, send
from beamlet.actors.lowlevel import current_node
from beamlet.cluster import _wire as wire  # a forger writes frames: the wire's own events

#: The ways to throw a term.
WAYS = ("call", "cast", "send")
__all__ = ["THROWER_ERRORS", "WAYS", "forge_send", "throw"]
#: What the thrower itself may get: no answer, the callee's exit, a term the codec refuses.
THROWER_ERRORS = (CallTimeoutError, CallExitError, TypeError, ValueError, OverflowError)


async def throw(dest: Any, how: str, term: Any, *, timeout: float = 2) -> None:
    """Send ``term`` to ``dest`` (a pid, a name, or ``(name, node)``) by ``how``, one
    of ``WAYS``; a call waits ``timeout`` seconds at most. Any of ``THROWER_ERRORS``
    is ignored; an unknown ``how`` raises ``ValueError`` before anything is sent."""
    if how not in WAYS:
        raise ValueError(f"throw: {how!r} is not one of {WAYS}")
    try:
        if how == "call":
            await call(dest, term, timeout=timeout)
        elif how == "cast":
            cast(dest, term)
        elif _remote(dest):
            forge_send(dest, term)
        else:
            send(dest, term)
    except THROWER_ERRORS:
        pass


def _remote(dest: Any) -> bool:
    node = current_node()
    if isinstance(dest, Pid):
        return dest.node != node.name
    return isinstance(dest, tuple) and len(dest) == 2 and dest[1] != node.name


def forge_send(dest: Pid | tuple[str, str], msg: Any) -> None:
    """Send ``msg`` to ``dest`` on another node as a plain message, unchecked here:
    a ``send`` (to a pid) or ``send_named`` (to ``(name, node)``) event put on
    the connection as a peer that writes its own frames would."""
    router: Any = current_node().router
    if isinstance(dest, Pid):
        router._emit(dest.node, wire.send(dest, msg), control=False)
    else:
        name, node = dest
        router._emit(node, wire.send_named(self_pid(), name, msg), control=False)
