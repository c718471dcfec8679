"""Exceptions of the codec and the wire protocol.

The protocol says whose fault an error is, as h11 does: ``LocalProtocolError``
means this side tried to do something the protocol forbids (a bug in the
caller), ``RemoteProtocolError`` means the peer sent something it must not
(garbage, a forged proof, a frame that is illegal in the current state). Both
are ``ProtocolError``. Decoding untrusted bytes raises ``DecodeError`` and
nothing else; the connection turns it into a ``RemoteProtocolError`` at its one
inbound boundary.

No message built by this package ever contains the cookie or a key derived
from it.
"""

from __future__ import annotations

from beamlet.actors.lowlevel import short_repr

__all__ = [
    "ConnectError",
    "DecodeError",
    "InsecureListenError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "short_repr",
]


class DecodeError(ValueError):
    """Bytes could not be decoded into a value.

    Raised for malformed msgpack, unknown extension codes or message names,
    values that break a size or depth limit, and registered classes that
    refuse their fields. Decoding never raises any other exception type.
    """


class InsecureListenError(ValueError):
    """A node would listen on a host other machines reach, without TLS.

    Raised by ``open_node``, ``run`` and ``start_distribution`` for a node
    named after a non-loopback host without ``tls=`` or ``insecure=True``;
    nothing was started.

    Attributes:
        host: the host the node would have listened on.
    """

    def __init__(self, host: str) -> None:
        super().__init__(f"refusing to listen on {host} without TLS; pass tls=... or insecure=True")
        self.host = host


class ProtocolError(Exception):
    """The distribution protocol was violated, by one side or the other."""


class LocalProtocolError(ProtocolError):
    """This side tried to send something the protocol does not allow now.

    For example, a data event before the handshake is complete, or anything
    after the connection was closed. It signals a bug in the caller; the
    connection state is left unchanged.
    """


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: garbage, a bad proof, an illegal frame.

    The connection that raised it is in its ``ERROR`` state (or ``CLOSED`` if
    the peer was refused) and should be dropped.
    """


class ConnectError(ConnectionError):
    """``connect(..., raise_on_error=True)`` could not connect, and why.

    The message names the node or address and says why, e.g. ``could not
    connect to b@10.0.0.6 (10.0.0.6:4370): refused by the peer: bad cookie
    (the two nodes have different cookies)``, or the TLS cause
    (``certificate verify failed: unable to get local issuer certificate``).

    Attributes:
        reason: why, in words (the part after the colon).
        node: the node's name, if known (asked for, or found at the address).
        address: the ``"host:port"`` dialled, if one was.
    """

    def __init__(self, reason: str, *, node: str | None = None, address: str | None = None) -> None:
        what = f"{node} ({address})" if node and address else node or address or "the node"
        super().__init__(f"could not connect to {what}: {reason}")
        self.reason = reason
        self.node = node
        self.address = address

    def __str__(self) -> str:
        return str(self.args[0])
