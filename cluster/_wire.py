"""The seam between the sans-IO protocol and the Trio driver.

``Session`` drives one ``Connection`` over one Trio stream: it runs the
handshake with real I/O, then encodes outgoing events and decodes incoming
bytes. The small constructors below build the control events that the router
sends, and ``kind`` names an incoming event for dispatch. This module also
registers the runtime's own message classes (GenServer envelopes, node and
group notifications, and every type declared with lowlevel's
``register_wire_type``, such as a supervisor's replies) with the codec, so
they cross between nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from beamlet.actors import From, Pid, Ref
from beamlet.actors.lowlevel import Call, Cast, StopRequest, WireType, on_wire_type

from ._auth import Role
from ._codec import encode
from ._connection import DEFAULT_FLAGS, NEED_DATA, Connection
from ._cookie import Cookie
from ._errors import ProtocolError, RemoteProtocolError
from ._events import (
    Capability,
    Challenge,
    Connected,
    ConnectionClosed,
    Demonitor,
    Exit,
    Exit2,
    Hello,
    Link,
    Monitor,
    MonitorExit,
    NodesGossip,
    Refused,
    Send,
    SendNamed,
    Tick,
    Unlink,
    UnlinkAck,
    validate_node_name,
)
from ._frames import encode_handshake
from ._messages import NodeDown, NodeUp
from ._registry import default_registry

__all__ = [
    "SIMULTANEOUS",
    "HandshakeAborted",
    "Observer",
    "ProtocolError",
    "RefusedError",
    "Session",
    "check_encodable",
    "kind",
]

#: The ``Refused`` reason of an acceptor that keeps another connection to the
#: same node (both nodes dialled each other at once, or the initiator was late).
SIMULTANEOUS = "simultaneous connection"

#: Watches a handshake: called with ``Hello`` (acceptor), ``Challenge``
#: (initiator) and ``Connected`` (both), before this side answers. It returns
#: None to go on, or the reason to give the handshake up.
Observer = Callable[[Any], "str | None"]


class HandshakeAborted(ProtocolError):
    """This node gave a handshake up (its observer said so); nothing is wrong with the peer."""


class RefusedError(RemoteProtocolError):
    """The acceptor refused the connection.

    Attributes:
        reason: the reason it gave (``SIMULTANEOUS``, ``"bad cookie"``, ...).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the peer refused the connection: {reason}")
        self.reason = reason


def _from_fields(fields: Any) -> From:
    pid, ref = fields
    if not isinstance(pid, Pid) or not isinstance(ref, Ref):
        raise ValueError("a From is (Pid, Ref)")
    return From(pid, ref)


def _call(fields: Any) -> Call:
    caller, request = fields
    if not isinstance(caller, From):
        raise ValueError("a Call starts with a From")
    return Call(caller, request)


def _node_name(value: Any) -> str:
    return validate_node_name(value)


for _cls, _name, _to, _from in (
    (From, "beamlet.From", lambda f: (f.pid, f.ref), _from_fields),
    (Call, "beamlet.Call", lambda c: (c.caller, c.request), _call),
    (Cast, "beamlet.Cast", lambda c: (c.request,), lambda f: Cast(f[0])),
    (StopRequest, "beamlet.StopRequest", lambda s: (s.reason,), lambda f: StopRequest(f[0])),
    (NodeUp, "beamlet.NodeUp", lambda n: (n.node,), lambda f: NodeUp(_node_name(f[0]))),
    (
        NodeDown,
        "beamlet.NodeDown",
        lambda n: (n.node, n.reason),
        lambda f: NodeDown(_node_name(f[0]), f[1]),
    ),
):
    default_registry.register_system_type(_cls, _name, _to, _from)


def _register_wire_type(wire_type: WireType) -> None:
    default_registry.register_system_type(
        wire_type.cls, wire_type.name, wire_type.to_fields, wire_type.from_fields
    )


# The types of the packages below this one (a supervisor's replies and child
# specs), declared with ``register_wire_type``, now and as they are imported.
on_wire_type(_register_wire_type)


class Session:
    """One connection's protocol state, driven over a Trio stream."""

    __slots__ = ("conn", "encode_message", "initiator")

    def __init__(
        self,
        *,
        initiator: bool,
        name: str,
        creation: int,
        cookie: Cookie,
        max_frame_size: int,
        expected_peer: str | None = None,
        hidden: bool = False,
    ) -> None:
        self.initiator = initiator
        self.conn = Connection(
            Role.INITIATOR if initiator else Role.ACCEPTOR,
            node_name=name,
            creation=creation,
            cookie=cookie.secret,
            flags=DEFAULT_FLAGS | Capability.HIDDEN if hidden else DEFAULT_FLAGS,
            max_frame_size=max_frame_size,
            expected_peer=expected_peer,
        )
        #: ``encode_message(dest, msg)``: the bytes of ``send(dest, msg)``,
        #: without building the event (the connection's ``send_message``).
        self.encode_message = self.conn.send_message

    async def handshake(
        self, stream: trio.abc.Stream, observe: Observer | None = None
    ) -> tuple[str, int]:
        """Authenticate both sides; return the peer's name and creation.

        Args:
            stream: the connection's stream.
            observe: called with ``Hello`` (on the acceptor), ``Challenge`` (on
                the initiator) and ``Connected`` (on both) before this side
                answers; if it returns a reason, the handshake is given up: the
                acceptor answers ``Refused(reason)`` instead of its proof, the
                initiator sends nothing more.

        Raises:
            HandshakeAborted: ``observe`` gave the handshake up.
            RefusedError: the peer refused us.
            ProtocolError: the peer failed to prove the cookie, or broke the protocol.
            trio.BrokenResourceError: the stream failed.

        Cancellation:
            The handshake is abandoned; the caller closes the stream.
        """
        conn = self.conn
        if self.initiator:
            await stream.send_all(conn.initiate())
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError:
                answer = conn.data_to_send()  # a Refused frame, worth sending
                if answer:
                    with trio.move_on_after(1):
                        await stream.send_all(answer)
                raise
            kind = type(event)
            if observe is not None and kind in (Hello, Challenge, Connected):
                reason = observe(event)
                if reason is not None:
                    conn.data_to_send()  # our answer (a challenge or a proof) stays unsent
                    if not self.initiator:
                        with trio.move_on_after(1):
                            await stream.send_all(encode_handshake(Refused(reason)))
                    raise HandshakeAborted(reason)
            answer = conn.data_to_send()
            if answer:
                await stream.send_all(answer)
            if event is NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if kind is Connected:
                return event.peer_name, event.peer_creation  # type: ignore[union-attr]
            if kind is Refused:
                raise RefusedError(event.reason)  # type: ignore[union-attr]
            if kind is ConnectionClosed:
                raise RemoteProtocolError("the peer closed the connection during the handshake")

    @property
    def failure(self) -> ProtocolError | None:
        """What the peer did wrong, once it broke the protocol."""
        return self.conn.failure

    def encode(self, event: Any) -> bytes:
        return self.conn.send(event)


def check_encodable(event: Any) -> None:
    """Raise ``TypeError`` now if ``event`` cannot be encoded (for queued sends)."""
    for field in ("msg", "reason"):
        value = getattr(event, field, None)
        if value is not None:
            encode(value)


_KINDS: dict[type, str] = {
    Send: "send",
    SendNamed: "send_named",
    Link: "link",
    Unlink: "unlink",
    UnlinkAck: "unlink_ack",
    Exit: "exit",
    Exit2: "exit2",
    Monitor: "monitor",
    Demonitor: "demonitor",
    MonitorExit: "down",
    NodesGossip: "gossip",
    Tick: "tick",
}


def kind(event: Any) -> str:
    """The name of a control event's kind (``"send"``, ``"link"``, ...)."""
    return _KINDS.get(type(event), "unknown")


def send(dest: Pid, msg: Any) -> Send:
    return Send(dest, msg)


def send_named(sender: Pid | None, name: str, msg: Any) -> SendNamed:
    return SendNamed(sender, name, msg)


def link(local: Pid, remote: Pid) -> Link:
    return Link(local, remote)


def unlink(local: Pid, remote: Pid, id: int) -> Unlink:
    return Unlink(local, remote, id)


def unlink_ack(local: Pid, remote: Pid, id: int) -> UnlinkAck:
    return UnlinkAck(local, remote, id)


def exit(sender: Pid, dest: Pid, reason: Any, *, link: bool) -> Exit | Exit2:
    return Exit(sender, dest, reason) if link else Exit2(sender, dest, reason)


def _target(target: Pid | tuple[str, str]) -> Pid | str:
    return target if isinstance(target, Pid) else target[0]


def monitor(watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> Monitor:
    return Monitor(watcher, _target(target), ref)


def demonitor(watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> Demonitor:
    return Demonitor(watcher, _target(target), ref)


def down(target: Any, watcher: Pid, ref: Ref, reason: Any) -> MonitorExit:
    return MonitorExit(_target(target), watcher, ref, reason)


def gossip(entries: list[tuple[str, str | None]]) -> NodesGossip:
    return NodesGossip(tuple((n, a) for n, a in entries if a is not None))


def tick() -> Tick:
    return Tick()
