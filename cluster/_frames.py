"""Framing: events to length-prefixed frames and back.

Every frame is a 4-byte big-endian length followed by that many bytes of
body. An empty body is a ``Tick``. Any other body is a msgpack array whose
first element is the frame kind, a small int:

====  ============  ===========================================================
kind  event         body
====  ============  ===========================================================
1     Hello         ``[1, "beamlet", min_version, max_version, node, creation,
                    flags, nonce]``
2     Challenge     ``[2, version, node, creation, flags, nonce]``
3     Proof         ``[3, digest]``
4     Refused       ``[4, reason]``
16    Send          ``[16, to_pid, msg]``
17    SendNamed     ``[17, from_pid | None, to_name, msg]``
18    Link          ``[18, from_pid, to_pid]``
19    Unlink        ``[19, from_pid, to_pid, id]``
20    Exit          ``[20, from_pid, to_pid, reason]``
21    Exit2         ``[21, from_pid, to_pid, reason]``
22    Monitor       ``[22, from_pid, target, ref]``
23    Demonitor     ``[23, from_pid, target, ref]``
24    MonitorExit   ``[24, target, watcher, ref, reason]``
25    NodesGossip   ``[25, [[node, "host:port"], ...]]``
26    UnlinkAck     ``[26, from_pid, to_pid, id]``
====  ============  ===========================================================

Handshake frames are plain msgpack (no extension types) of at most
``MAX_HANDSHAKE_FRAME`` bytes; later versions may append fields, which are
ignored. Data frames are encoded with the codec, within the connection's
``max_frame_size``. The kind sits in the body's second byte, so a frame that
is illegal in the current state is refused before it is decoded, and an
oversized one from its length prefix, before its body is buffered. A data
frame over ``LARGE_FRAME`` bytes is decoded a step at a time (see
``Connection.next_events``).

``Send`` frames carry nearly all the traffic; ``SendCodec`` makes and reads
them by a shortcut, with the bytes and the limits of the general path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]
from beamlet.actors import Pid

from ._codec import DEFAULT_MAX_SIZE, EXT_PID, Codec
from ._errors import DecodeError, RemoteProtocolError, short_repr
from ._events import (
    Challenge,
    DataEvent,
    Demonitor,
    Exit,
    Exit2,
    Hello,
    Link,
    Monitor,
    MonitorExit,
    NodesGossip,
    Proof,
    Refused,
    Send,
    SendNamed,
    Tick,
    Unlink,
    UnlinkAck,
    unchecked_send,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER",
    "KINDS",
    "LARGE_FRAME",
    "MAX_HANDSHAKE_FRAME",
    "PROTOCOL_NAME",
    "SEND",
    "SEND_HEAD",
    "TICK",
    "TICK_FRAME",
    "FrameReader",
    "SendCodec",
    "data_event",
    "decode_data",
    "decode_handshake",
    "encode_data",
    "encode_handshake",
    "frame_kind",
]

HEADER = struct.Struct(">I")
#: The largest handshake frame body accepted or sent.
MAX_HANDSHAKE_FRAME = 4096
#: The default largest data frame body. Decoding a frame may take up to about
#: 80 times its size in memory (see the codec's "Cost" section): 8 MiB keeps
#: one frame under 700 MB in the worst case, and a few dozen MB usually.
DEFAULT_MAX_FRAME_SIZE = DEFAULT_MAX_SIZE
#: Data frame bodies larger than this are decoded a step at a time
#: (``Codec.decode_steps``), so that the caller can let other work run
#: between steps; smaller ones are decoded at once, with bounded cost.
LARGE_FRAME = 64 * 1024
#: Names the protocol in ``Hello``, so that a stray client is told apart early.
PROTOCOL_NAME = "beamlet"

TICK = Tick()
TICK_FRAME = HEADER.pack(0)

#: Frame kind -> event type (kind 0 stands for the empty ``Tick`` frame).
KINDS: dict[int, type] = {
    0: Tick,
    1: Hello,
    2: Challenge,
    3: Proof,
    4: Refused,
    16: Send,
    17: SendNamed,
    18: Link,
    19: Unlink,
    20: Exit,
    21: Exit2,
    22: Monitor,
    23: Demonitor,
    24: MonitorExit,
    25: NodesGossip,
    26: UnlinkAck,
}

#: Once this many bytes were consumed (and at least half the buffer), compact.
_COMPACT_AT = 64 * 1024


class FrameReader:
    """Splits a byte stream into frame bodies, copying each body once.

    Bytes are appended to one buffer and read from a moving offset; the
    consumed prefix is dropped when the buffer empties or when it makes up
    most of a large buffer, so many frames in one chunk cost no quadratic copying.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buf += data

    def frames(self, max_size: int, limit: int | None = None) -> list[bytearray]:
        """Return the complete frame bodies buffered, in order (maybe none).

        Args:
            max_size: the largest body allowed.
            limit: return at most this many (by default, all).

        Raises:
            RemoteProtocolError: the first frame announces more than ``max_size``
                bytes. If an earlier frame is complete, the frames before the
                oversized one are returned, and the next call raises.
        """
        buf = self._buf
        pos = self._pos
        size = len(buf)
        bodies: list[bytearray] = []
        unpack_from = HEADER.unpack_from
        if limit is None:
            limit = size  # more than there can be
        while size - pos >= 4 and len(bodies) < limit:
            (length,) = unpack_from(buf, pos)
            if length > max_size:
                if bodies:
                    break
                self._pos = pos
                raise RemoteProtocolError(
                    f"the peer announced a frame of {length} bytes, over the limit of {max_size}"
                )
            end = pos + 4 + length
            if end > size:
                break
            bodies.append(buf[pos + 4 : end])
            pos = end
        self._consumed(pos)
        return bodies

    def take_sends(self, sends: SendCodec, max_size: int, limit: int, out: list[Any]) -> int:
        """Decode the ``Send`` frames at the head of the buffer into ``out``
        (``SendCodec.decode_run``); return how many were taken."""
        before = len(out)
        buf = self._buf
        pos = sends.decode_run(buf, self._pos, len(buf), max_size, limit, out)
        if pos != self._pos:
            self._consumed(pos)
        return len(out) - before

    def _consumed(self, pos: int) -> None:
        """Everything before ``pos`` has been read: move on, dropping it when it pays."""
        buf = self._buf
        size = len(buf)
        if pos == size:
            buf.clear()
            self._pos = 0
        elif pos >= _COMPACT_AT and pos * 2 >= size:
            del buf[:pos]
            self._pos = 0
        else:
            self._pos = pos

    def next_frame(self, max_size: int) -> bytearray | None:
        """Return the next complete frame body, or ``None`` if more bytes are needed.

        Args:
            max_size: the largest body allowed now.

        Raises:
            RemoteProtocolError: the next frame announces more than ``max_size``
                bytes (raised as soon as its length prefix is in).
        """
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if size - pos < 4:
            return None
        (length,) = HEADER.unpack_from(buf, pos)
        if length > max_size:
            raise RemoteProtocolError(
                f"the peer announced a frame of {length} bytes, over the limit of {max_size}"
            )
        start = pos + 4
        end = start + length
        if end > size:
            return None
        body = buf[start:end]
        self._consumed(end)
        return body


def frame_kind(body: bytes | bytearray) -> int | None:
    """Return the kind of a frame body (0 for a tick), or ``None`` if it has none."""
    if not body:
        return 0
    if len(body) > 1 and 0x91 <= body[0] <= 0x9F and body[1] < 0x80:
        return body[1]
    return None


def _frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


# -- handshake ----------------------------------------------------------------------


def encode_handshake(event: Hello | Challenge | Proof | Refused) -> bytes:
    """Return the frame (header included) for a handshake event."""
    fields: list[Any]
    if type(event) is Hello:
        fields = [
            1,
            PROTOCOL_NAME,
            event.min_version,
            event.max_version,
            event.node,
            event.creation,
            event.flags,
            event.nonce,
        ]
    elif type(event) is Challenge:
        fields = [2, event.version, event.node, event.creation, event.flags, event.nonce]
    elif type(event) is Proof:
        fields = [3, event.digest]
    elif type(event) is Refused:
        fields = [4, event.reason]
    else:
        raise TypeError(f"not a handshake event: {short_repr(event)}")
    body = msgpack.packb(fields, use_bin_type=True)
    if len(body) > MAX_HANDSHAKE_FRAME:  # pragma: no cover - fields are bounded
        raise ValueError("handshake frame too large")
    return _frame(body)


def _no_ext(code: int, payload: bytes) -> Any:
    raise ValueError(f"extension type {code} in a handshake frame")


def decode_handshake(body: bytes | bytearray) -> Hello | Challenge | Proof | Refused:
    """Decode a handshake frame body.

    Raises:
        RemoteProtocolError: the body is malformed or not a handshake frame.
    """
    try:
        v = msgpack.unpackb(body, ext_hook=_no_ext, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise RemoteProtocolError(
            f"malformed handshake frame: {type(exc).__name__}: {short_repr(str(exc), 120)}"
        ) from None
    kind = v[0] if type(v) is list and v else None
    name = KINDS[kind].__name__ if type(kind) is int and kind in KINDS else "handshake"
    try:
        if kind == 1 and len(v) >= 8:
            _, proto, min_version, max_version, node, creation, flags, nonce = v[:8]
            if proto != PROTOCOL_NAME:
                raise ValueError(f"protocol {short_repr(proto)}, expected {PROTOCOL_NAME!r}")
            return Hello(node, creation, flags, min_version, max_version, nonce)
        if kind == 2 and len(v) >= 6:
            _, version, node, creation, flags, nonce = v[:6]
            return Challenge(node, creation, flags, version, nonce)
        if kind == 3 and len(v) >= 2:
            return Proof(v[1])
        if kind == 4 and len(v) >= 2:
            return Refused(v[1])
    except (TypeError, ValueError) as exc:
        raise RemoteProtocolError(f"malformed {name} frame: {exc}") from None
    raise RemoteProtocolError(f"malformed {name} frame")


# -- data ---------------------------------------------------------------------------

#: Kind of the ``Send`` frame, the one that carries nearly all the traffic.
SEND = 16

#: How a ``Send`` body starts: a msgpack array of 3, then the kind.
SEND_HEAD = bytes([0x93, SEND])

_DATA_ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    Send: lambda e: [SEND, e.to_pid, e.msg],
    SendNamed: lambda e: [17, e.from_pid, e.to_name, e.msg],
    Link: lambda e: [18, e.from_pid, e.to_pid],
    Unlink: lambda e: [19, e.from_pid, e.to_pid, e.id],
    Exit: lambda e: [20, e.from_pid, e.to_pid, e.reason],
    Exit2: lambda e: [21, e.from_pid, e.to_pid, e.reason],
    Monitor: lambda e: [22, e.from_pid, e.target, e.ref],
    Demonitor: lambda e: [23, e.from_pid, e.target, e.ref],
    MonitorExit: lambda e: [24, e.target, e.watcher, e.ref, e.reason],
    NodesGossip: lambda e: [25, [[node, address] for node, address in e.nodes]],
    UnlinkAck: lambda e: [26, e.from_pid, e.to_pid, e.id],
}


def _gossip(v: list[Any]) -> NodesGossip:
    _, nodes = v
    if type(nodes) is not list:
        raise TypeError("NodesGossip: 'nodes' must be a list")
    pairs = []
    for entry in nodes:
        if type(entry) is not list or len(entry) != 2:
            raise TypeError(f"NodesGossip: bad entry {short_repr(entry)}")
        pairs.append((entry[0], entry[1]))
    return NodesGossip(tuple(pairs))


def _arity(n: int, build: Callable[..., DataEvent]) -> Callable[[list[Any]], DataEvent]:
    def decode(v: list[Any]) -> DataEvent:
        if len(v) != n + 1:
            raise ValueError(f"{n} fields expected, got {len(v) - 1}")
        return build(*v[1:])

    return decode


_new_send = unchecked_send


def _send(v: list[Any]) -> Send:
    if len(v) != 3:
        raise ValueError(f"2 fields expected, got {len(v) - 1}")
    to_pid = v[1]
    if type(to_pid) is not Pid:
        raise TypeError(f"Send: 'to_pid' must be a Pid, not {short_repr(to_pid)}")
    return _new_send(to_pid, v[2])


_DATA_DECODERS: dict[int, Callable[[list[Any]], DataEvent]] = {
    SEND: _send,
    17: _arity(3, SendNamed),
    18: _arity(2, Link),
    19: _arity(3, Unlink),
    20: _arity(3, Exit),
    21: _arity(3, Exit2),
    22: _arity(3, Monitor),
    23: _arity(3, Demonitor),
    24: _arity(4, MonitorExit),
    25: _gossip,
    26: _arity(3, UnlinkAck),
}


def encode_data(event: DataEvent, codec: Codec) -> bytes:
    """Return the frame (header included) for a data event.

    Raises:
        TypeError: the event holds a value the codec cannot encode, or is not
            a data event.
        ValueError: the frame would break the codec's limits.
    """
    t = type(event)
    if t is Tick:
        return TICK_FRAME
    encoder = _DATA_ENCODERS.get(t)
    if encoder is None:
        raise TypeError(f"not a data event: {short_repr(event)}")
    body = codec.encode(encoder(event))
    return HEADER.pack(len(body)) + body


#: The pids whose frame prefixes a ``SendCodec`` keeps (it starts again past it).
_PREFIX_CACHE_SIZE = 4096


class SendCodec:
    """``Send`` frames, nearly all the traffic, by a shortcut; same bytes, same limits.

    A ``Send`` body is ``[16, to_pid, msg]``: the array header, the kind and
    the pid (an extension value), then the message. The bytes before the
    message are cached per pid in both directions, and only the message goes
    through a codec, whose ``max_depth`` is one less than the frame codec's,
    since the message sits one level down in the frame. So the frames are
    those that ``encode_data`` makes, and a message is accepted exactly when
    its whole frame is.

    Args:
        codec: the connection's frame codec (registry and limits).
    """

    def __init__(self, codec: Codec) -> None:
        self._frame_codec = codec
        self.max_size = codec.max_size
        #: None when the limits leave no room for the shortcut (``max_depth`` 1).
        self._codec: Codec | None = None
        if codec.max_depth > 1:
            self._codec = Codec(
                codec.registry,
                max_size=codec.max_size,
                max_depth=codec.max_depth - 1,
                max_array_len=codec.max_array_len,
                max_map_len=codec.max_map_len,
            )
        self._prefixes: dict[Pid, bytes] = {}  # pid -> array header, kind and pid
        self._sent_pid: Pid | None = None  # the pid of the last frame encoded
        self._sent_prefix = b""
        self._pids: dict[bytes, Pid] = {}  # the pid's extension bytes -> pid
        # The pid of the last frame decoded, and its bytes (at first, any pid).
        self._last_pid = Pid("nonode@nohost", 0, 0)
        self._last_key: bytes = codec.encode(self._last_pid)
        self._last_end = 2 + len(self._last_key)  # where the message starts
        self._last_head = SEND_HEAD + self._last_key  # how its frames' bodies start

    def encode(self, to_pid: Pid, msg: Any) -> bytes:
        """Return the frame (header included) of ``Send(to_pid, msg)``.

        Raises:
            TypeError: ``to_pid`` is malformed, or ``msg`` holds a value the codec
                cannot encode.
            ValueError: the frame would break the codec's limits.
        """
        codec = self._codec
        if codec is None:
            return encode_data(Send(to_pid, msg), self._frame_codec)
        if to_pid is self._sent_pid:  # the same pid object as last time: no hashing
            prefix = self._sent_prefix
        else:
            known = self._prefixes.get(to_pid)
            if known is None:
                prefix = self._frame_codec.encode([SEND, to_pid, None])[:-1]  # without the nil
                if len(self._prefixes) >= _PREFIX_CACHE_SIZE:
                    self._prefixes.clear()
                self._prefixes[to_pid] = prefix
            else:
                prefix = known
            self._sent_pid = to_pid
            self._sent_prefix = prefix
        payload = codec.encode(msg)
        size = len(prefix) + len(payload)
        if size > self.max_size:
            raise ValueError(f"encoded message is {size} bytes, over max_size={self.max_size}")
        return HEADER.pack(size) + prefix + payload

    def decode_run(
        self,
        buf: bytes | bytearray,
        pos: int,
        size: int,
        max_size: int,
        limit: int,
        out: list[Any],
    ) -> int:
        """Decode the whole ``Send`` frames at ``buf[pos:size]``, up to ``limit``.

        The events go to ``out``; the return value is where the first frame
        not taken starts. A run of frames to one pid is read straight from the
        buffer, the message with no copy of the frame body first. This stops,
        without raising, at anything else: an incomplete or oversized frame,
        another kind, a pid in another layout, a message that does not decode;
        the general path (``FrameReader.frames``, ``decode_data``) takes it
        from there, and raises if it is bad.
        """
        codec = self._codec
        if codec is None:
            return pos
        decode = codec.decode
        unpack_from = HEADER.unpack_from
        append = out.append
        new_send = _new_send
        pid = self._last_pid
        head = self._last_head
        start = len(head)
        count = 0
        while count < limit and size - pos >= 4:
            (length,) = unpack_from(buf, pos)
            end = pos + 4 + length
            if end > size or length > max_size:
                break
            if buf.startswith(head, pos + 4):
                try:
                    msg = decode(buf[pos + 4 + start : end])
                except DecodeError:
                    break
                append(new_send(pid, msg))
            elif buf.startswith(SEND_HEAD, pos + 4):  # another pid: cache it, go on
                try:
                    sent = self.decode(buf[pos + 4 : end])
                except RemoteProtocolError:
                    break
                if sent is None:
                    break
                append(sent)
                pid = self._last_pid
                head = self._last_head
                start = len(head)
            else:
                break
            pos = end
            count += 1
        return pos

    def decode(self, body: bytes | bytearray) -> Send | None:
        """Decode a body that starts with ``[16,`` in the usual layout.

        Returns:
            The ``Send``, or None if the pid is not a plain pid extension; then
            ``decode_data`` decodes the body (or says what is wrong with it).

        Raises:
            RemoteProtocolError: the message is malformed.
        """
        codec = self._codec
        if codec is None:
            return None
        if body.startswith(self._last_key, 2):
            pid = self._last_pid
            end = self._last_end
        else:
            marker = body[2] if len(body) > 2 else None
            if marker == 0xC7 and len(body) > 4:  # ext 8: size, type, payload
                end, code = 5 + body[3], body[4]
            elif marker == 0xC8 and len(body) > 5:  # ext 16
                end, code = 6 + (body[3] << 8 | body[4]), body[5]
            else:
                return None
            if code != EXT_PID or end > len(body):
                return None
            key = bytes(body[2:end])
            known = self._pids.get(key)
            if known is None:
                try:
                    decoded = self._frame_codec.decode(key)
                except DecodeError:
                    return None
                if type(decoded) is not Pid:  # pragma: no cover - an EXT_PID decodes to a Pid
                    return None
                if len(self._pids) >= _PREFIX_CACHE_SIZE:
                    self._pids.clear()
                known = self._pids[key] = decoded
            pid = known
            self._last_key = key
            self._last_pid = pid
            self._last_end = end
            self._last_head = SEND_HEAD + key
        try:
            msg = codec.decode(body[end:])
        except DecodeError as exc:
            raise RemoteProtocolError(f"undecodable data frame: {exc}") from None
        return _new_send(pid, msg)


def decode_data(body: bytes | bytearray, codec: Codec) -> DataEvent:
    """Decode a data frame body (empty for a ``Tick``).

    Raises:
        RemoteProtocolError: the body is malformed or not a data frame.
    """
    if not body:
        return TICK
    try:
        v = codec.decode(body)
    except DecodeError as exc:
        raise RemoteProtocolError(f"undecodable data frame: {exc}") from None
    return data_event(body, v)


def data_event(body: bytes | bytearray, v: Any) -> DataEvent:
    """The event of a (non-empty) data frame ``body``, whose decoded value is ``v``.

    Raises:
        RemoteProtocolError: the value is not a data frame.
    """
    if body[0] == 0x93 and body[1] == SEND and type(v[1]) is Pid:
        return _new_send(v[1], v[2])  # [16, pid, msg]: nearly all the traffic
    kind = v[0] if type(v) is list and v else None
    decoder = _DATA_DECODERS.get(kind) if type(kind) is int else None
    if decoder is None:
        raise RemoteProtocolError(f"not a data frame: kind {short_repr(kind)}")
    try:
        return decoder(v)
    except (TypeError, ValueError) as exc:
        name = KINDS[v[0]].__name__
        raise RemoteProtocolError(f"malformed {name} frame: {exc}") from None
