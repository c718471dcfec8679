"""What a hostile peer that holds the cookie can put on the wire, for the tests.

beamlet's own ``send`` refuses to send a runtime signal (``Down``,
``ExitSignal``, ``NodeUp``, ``NodeDown``) to another node as a plain message
(``TypeError``): the receiving node would drop it. A hostile peer does not use
beamlet's ``send``; it writes the frame itself. ``forge_send`` does that from a
process of a simulated or real node: it puts a plain ``send`` (to a pid) or
``send_named`` (to ``(name, node)``) event on the connection, with whatever
message, past the sender's checks. The receiving node's checks are what the
tests then exercise.
"""

from __future__ import annotations

from typing import Any

from beamlet.actors import Pid, self_pid
from beamlet.actors.lowlevel import current_node
from beamlet.cluster import _wire as wire  # a forger writes frames: the wire's own events

__all__ = ["forge_send"]


def forge_send(dest: Pid | tuple[str, str], msg: Any) -> None:
    """Send ``msg`` to ``dest`` on another node as a plain message, unchecked here."""
    router: Any = current_node().router
    if isinstance(dest, Pid):
        router._emit(dest.node, wire.send(dest, msg), control=False)
    else:
        name, node = dest
        router._emit(node, wire.send_named(self_pid(), name, msg), control=False)
