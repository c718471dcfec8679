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
    "DecodeError",
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
