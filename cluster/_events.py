"""Events of the distribution protocol: what the connection reads and writes.

A connection turns bytes into these events (``next_event``) and these events
into bytes (``send``). Handshake events (``Hello``, ``Challenge``, ``Proof``)
are produced and answered by the connection itself and returned only for
observation; ``Refused``, ``Connected`` and ``ConnectionClosed`` report how
the handshake and the stream ended. After the handshake, the data events are
the control messages of the distribution layer, modelled on Erlang's
(``SEND``, ``REG_SEND``, ``LINK``, ``UNLINK``, ``EXIT``, ``EXIT2``,
``MONITOR_P``, ``DEMONITOR_P``, ``MONITOR_P_EXIT``), plus ``NodesGossip`` for
full-mesh membership and ``Tick`` for liveness.

All events are frozen attrs classes whose validators name the field and the
bad value. Node names are checked here too: ``name@host``, at most 255 ASCII
characters, exactly one ``@``.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import attrs
from beamlet.actors import Pid, Ref

from ._auth import DIGEST_SIZE, NONCE_SIZE
from ._errors import short_repr

__all__ = [
    "DATA_EVENTS",
    "MAX_NODE_NAME_LEN",
    "MAX_REASON_LEN",
    "Capability",
    "Challenge",
    "Connected",
    "ConnectionClosed",
    "DataEvent",
    "Demonitor",
    "Event",
    "Exit",
    "Exit2",
    "Hello",
    "Link",
    "Monitor",
    "MonitorExit",
    "NodesGossip",
    "Proof",
    "Refused",
    "Send",
    "SendNamed",
    "Tick",
    "Unlink",
    "UnlinkAck",
    "is_valid_node_name",
    "unchecked_send",
    "validate_address",
    "validate_node_name",
]

MAX_NODE_NAME_LEN = 255
#: The longest ``Refused`` reason.
MAX_REASON_LEN = 200
#: The most peers one ``NodesGossip`` may list.
MAX_GOSSIP_NODES = 4096

_NODE_NAME_RE = re.compile(r"[A-Za-z0-9_.+-]+@[A-Za-z0-9_.:\[\]%-]+")
_HOST_RE = re.compile(r"[A-Za-z0-9_.:\[\]%-]{1,253}")
_U32 = 1 << 32
_U64 = 1 << 64


class Capability(enum.IntFlag):
    """Optional features a node speaks; a connection uses the intersection.

    ``BASE`` is every control message but ``NodesGossip``, and is required by
    default. ``UNLINK_ID`` is the link protocol with acknowledged unlinks
    (``Unlink`` with an id, ``UnlinkAck``; Erlang's ``DFLAG_UNLINK_ID``), also
    required by default: a node without it is refused at the handshake
    instead of failing at its first unlink. Unknown bits from newer peers are
    ignored.

    ``HIDDEN`` is not a feature but a property of the node that offers it: a
    hidden node (Erlang's ``-hidden``). A connection is hidden when either
    side offers it (``Connection.peer_flags`` holds what the peer offered).
    """

    BASE = 1
    GOSSIP = 2
    HIDDEN = 4
    UNLINK_ID = 8


def is_valid_node_name(name: object) -> bool:
    """Tell whether ``name`` is a legal node name like ``"a@127.0.0.1"``.

    Legal: a str of at most 255 characters, ``alive@host`` with exactly one
    ``@``; ``alive`` is letters, digits and ``_ . + -``; ``host`` is letters,
    digits and ``_ . - : [ ] %`` (host names, IPv4 and IPv6 addresses).
    """
    return (
        type(name) is str
        and len(name) <= MAX_NODE_NAME_LEN
        and _NODE_NAME_RE.fullmatch(name) is not None
    )


def validate_node_name(name: object) -> str:
    """Check a node name ``"name@host"``; return it.

    The one rule for node names, the same for a node's own name and for the
    names peers give: see ``is_valid_node_name``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: it is not a legal node name (the message quotes it, shortened).
    """
    if type(name) is not str:
        raise TypeError(f"a node name is a str 'name@host', not {short_repr(name)}")
    if not is_valid_node_name(name):
        raise ValueError(
            f"illegal node name {short_repr(name)}: expected 'name@host' (the name: "
            "letters, digits and '_.+-'; the host: a host name or an IP address)"
        )
    return name


def validate_address(address: object) -> str:
    """Return ``address`` if it looks like ``"host:port"`` (IPv6 as ``[::1]:4000``).

    Raises:
        ValueError: it does not.
    """
    if type(address) is str:
        host, sep, port = address.rpartition(":")
        if (
            sep
            and _HOST_RE.fullmatch(host)
            and port.isascii()
            and port.isdigit()
            and len(port) <= 5
            and 0 < int(port) < 65536
        ):
            return address
    raise ValueError(f"illegal address {short_repr(address)}: expected 'host:port'")


# -- validators -------------------------------------------------------------------


def _fail(instance: object, attribute: attrs.Attribute[Any], value: object, expected: str) -> None:
    raise TypeError(
        f"{type(instance).__name__}: {attribute.name!r} must be {expected}, not {short_repr(value)}"
    )


def _pid(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not Pid:
        _fail(instance, attribute, value, "a Pid")


def _optional_pid(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and type(value) is not Pid:
        _fail(instance, attribute, value, "a Pid or None")


def _ref(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not Ref:
        _fail(instance, attribute, value, "a Ref")


def _str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str:
        _fail(instance, attribute, value, "a str")


def _target(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not Pid and type(value) is not str:
        _fail(instance, attribute, value, "a Pid or a registered name (str)")


def _u32(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 <= value < _U32:
        _fail(instance, attribute, value, "an int in 0..2**32-1")


def _u64(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 <= value < _U64:
        _fail(instance, attribute, value, "an int in 0..2**64-1")


def _version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 < value < 65536:
        _fail(instance, attribute, value, "an int in 1..65535")


def _nonce(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not bytes or len(value) != NONCE_SIZE:
        _fail(instance, attribute, value, f"{NONCE_SIZE} bytes")


def _digest(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not bytes or len(value) != DIGEST_SIZE:
        _fail(instance, attribute, value, f"{DIGEST_SIZE} bytes")


def _name_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Peers' names are checked by the connection, which refuses them politely.
    if type(value) is not str or len(value) > 1024:
        _fail(instance, attribute, value, "a str of at most 1024 characters")


def _node_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_valid_node_name(value):
        _fail(instance, attribute, value, "a node name 'name@host'")


def _reason_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str or len(value) > MAX_REASON_LEN:
        _fail(instance, attribute, value, f"a str of at most {MAX_REASON_LEN} characters")


def _gossip(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not tuple or len(value) > MAX_GOSSIP_NODES:
        _fail(instance, attribute, value, f"a tuple of at most {MAX_GOSSIP_NODES} entries")
    for entry in value:  # type: ignore[attr-defined]
        if (
            type(entry) is not tuple
            or len(entry) != 2
            or not is_valid_node_name(entry[0])
            or not _is_address(entry[1])
        ):
            _fail(instance, attribute, entry, "made of (node name, 'host:port') tuples")


def _is_address(value: object) -> bool:
    try:
        validate_address(value)
    except ValueError:
        return False
    return True


# -- handshake ----------------------------------------------------------------------


@attrs.frozen
class Hello:
    """Initiator to acceptor: who I am, what I speak, and my nonce.

    Attributes:
        node: the initiator's node name (checked by the acceptor).
        creation: the initiator's incarnation.
        flags: the ``Capability`` bits it speaks.
        min_version: the lowest protocol version it speaks.
        max_version: the highest.
        nonce: 32 random bytes.
    """

    node: str = attrs.field(validator=_name_str)
    creation: int = attrs.field(validator=_u32)
    flags: int = attrs.field(validator=_u64)
    min_version: int = attrs.field(validator=_version)
    max_version: int = attrs.field(validator=_version)
    nonce: bytes = attrs.field(validator=_nonce, repr=False)


@attrs.frozen
class Challenge:
    """Acceptor to initiator: who I am, the version chosen, and my nonce.

    Attributes:
        node: the acceptor's node name (checked by the initiator).
        creation: the acceptor's incarnation.
        flags: the ``Capability`` bits it speaks.
        version: the protocol version chosen for the connection.
        nonce: 32 random bytes.
    """

    node: str = attrs.field(validator=_name_str)
    creation: int = attrs.field(validator=_u32)
    flags: int = attrs.field(validator=_u64)
    version: int = attrs.field(validator=_version)
    nonce: bytes = attrs.field(validator=_nonce, repr=False)


@attrs.frozen
class Proof:
    """Either side: an HMAC over the whole handshake transcript.

    Attributes:
        digest: the 32-byte HMAC-SHA256.
    """

    digest: bytes = attrs.field(validator=_digest, repr=False)


@attrs.frozen
class Refused:
    """Acceptor to initiator: the connection is refused, and why.

    Attributes:
        reason: a short human-readable reason, e.g. ``"bad cookie"``.
    """

    reason: str = attrs.field(validator=_reason_str)


@attrs.frozen
class Connected:
    """The handshake succeeded; data events may flow both ways.

    Attributes:
        peer_name: the authenticated peer's node name.
        peer_creation: its incarnation.
        flags: the ``Capability`` bits both sides speak.
        version: the protocol version in use.
    """

    peer_name: str = attrs.field(validator=_node_name)
    peer_creation: int = attrs.field(validator=_u32)
    flags: int = attrs.field(validator=_u64)
    version: int = attrs.field(validator=_version)


@attrs.frozen
class ConnectionClosed:
    """The peer closed the stream cleanly (end of data at a frame boundary)."""


# -- data events --------------------------------------------------------------------


@attrs.frozen
class Send:
    """Deliver ``msg`` to the process ``to_pid`` (Erlang ``SEND``).

    Attributes:
        to_pid: the receiving process, on the peer node.
        msg: any encodable value.
    """

    to_pid: Pid = attrs.field(validator=_pid)
    msg: Any


_new = object.__new__
_set_to_pid = Send.__dict__["to_pid"].__set__  # the slots, below the frozen __setattr__
_set_msg = Send.__dict__["msg"].__set__


def unchecked_send(to_pid: Pid, msg: Any) -> Send:
    """Return ``Send(to_pid, msg)`` without running its validator.

    For the hot paths that have already checked that ``to_pid`` is a ``Pid``
    (the frame decoder does); everything else calls ``Send``.
    """
    event: Send = _new(Send)
    _set_to_pid(event, to_pid)
    _set_msg(event, msg)
    return event


@attrs.frozen
class SendNamed:
    """Deliver ``msg`` to the process registered as ``to_name`` (``REG_SEND``).

    Attributes:
        from_pid: the sender, or ``None``.
        to_name: the registered name on the peer node.
        msg: any encodable value.
    """

    from_pid: Pid | None = attrs.field(validator=_optional_pid)
    to_name: str = attrs.field(validator=_str)
    msg: Any


@attrs.frozen
class Link:
    """Create a link between ``from_pid`` (here) and ``to_pid`` (there).

    Attributes:
        from_pid: the linking process.
        to_pid: the process on the peer node.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    to_pid: Pid = attrs.field(validator=_pid)


@attrs.frozen
class Unlink:
    """Remove the link between ``from_pid`` and ``to_pid`` (Erlang ``UNLINK_ID``).

    The peer answers with ``UnlinkAck(to_pid, from_pid, id)``. Until then the
    unlinker ignores a ``Link`` from ``to_pid``, so that a link and an unlink
    that cross leave both sides agreeing that there is no link.

    Attributes:
        from_pid: the unlinking process.
        to_pid: the process on the peer node.
        id: a number the acknowledgement repeats (unique per unlinking node).
    """

    from_pid: Pid = attrs.field(validator=_pid)
    to_pid: Pid = attrs.field(validator=_pid)
    id: int = attrs.field(validator=_u64)


@attrs.frozen
class UnlinkAck:
    """The answer to ``Unlink`` (Erlang ``UNLINK_ID_ACK``): the link is gone here too.

    Attributes:
        from_pid: the process that was unlinked (here).
        to_pid: the unlinking process (on the peer node).
        id: the ``id`` of the ``Unlink`` it answers.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    to_pid: Pid = attrs.field(validator=_pid)
    id: int = attrs.field(validator=_u64)


@attrs.frozen
class Exit:
    """A linked process exited: the exit signal travels along the link (``EXIT``).

    Attributes:
        from_pid: the process that exited.
        to_pid: the linked process on the peer node.
        reason: the exit reason.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    to_pid: Pid = attrs.field(validator=_pid)
    reason: Any


@attrs.frozen
class Exit2:
    """An explicit ``send_exit(to_pid, reason)`` (Erlang ``EXIT2``).

    Attributes:
        from_pid: the sender of the signal.
        to_pid: the target on the peer node.
        reason: the exit reason.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    to_pid: Pid = attrs.field(validator=_pid)
    reason: Any


@attrs.frozen
class Monitor:
    """``from_pid`` monitors ``target`` on the peer node (``MONITOR_P``).

    Attributes:
        from_pid: the watching process.
        target: a pid, or a name registered on the peer node.
        ref: the monitor reference.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    target: Pid | str = attrs.field(validator=_target)
    ref: Ref = attrs.field(validator=_ref)


@attrs.frozen
class Demonitor:
    """Cancel the monitor ``ref`` (``DEMONITOR_P``).

    Attributes:
        from_pid: the watching process.
        target: what it monitored, as in ``Monitor``.
        ref: the monitor reference.
    """

    from_pid: Pid = attrs.field(validator=_pid)
    target: Pid | str = attrs.field(validator=_target)
    ref: Ref = attrs.field(validator=_ref)


@attrs.frozen
class MonitorExit:
    """A monitored process exited, or never existed (``MONITOR_P_EXIT``).

    The peer turns it into ``Down(ref, ..., reason)`` for ``watcher``.

    Attributes:
        target: the monitored pid, or the registered name it was monitored by.
        watcher: the watching process, on the peer node.
        ref: the monitor reference.
        reason: the exit reason (``"noproc"`` if it did not exist).
    """

    target: Pid | str = attrs.field(validator=_target)
    watcher: Pid = attrs.field(validator=_pid)
    ref: Ref = attrs.field(validator=_ref)
    reason: Any


@attrs.frozen
class NodesGossip:
    """The cluster members the sender knows, so that the mesh closes.

    Needs ``Capability.GOSSIP`` on both sides.

    Attributes:
        nodes: ``(node_name, "host:port")`` pairs.
    """

    nodes: tuple[tuple[str, str], ...] = attrs.field(validator=_gossip)


@attrs.frozen
class Tick:
    """Keepalive: an empty frame sent on an idle connection."""


#: The events that may flow once connected.
DATA_EVENTS: tuple[type, ...] = (
    Send,
    SendNamed,
    Link,
    Unlink,
    UnlinkAck,
    Exit,
    Exit2,
    Monitor,
    Demonitor,
    MonitorExit,
    NodesGossip,
    Tick,
)

DataEvent = (
    (Send | SendNamed | Link | Unlink | UnlinkAck | Exit | Exit2 | Monitor | Demonitor)
    | MonitorExit
    | NodesGossip
    | Tick
)
Event = DataEvent | Hello | Challenge | Proof | Refused | Connected | ConnectionClosed
