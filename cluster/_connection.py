"""The distribution connection: a sans-IO state machine, bytes in, events out.

One ``Connection`` is one side of one link between two nodes. It does no I/O
and reads no clock: the caller feeds it received bytes (``receive_data``),
pulls events (``next_event``) and writes the bytes it returns (``send``,
``initiate``, ``data_to_send``). The handshake (initiator A, acceptor B)::

    A -> B  Hello(name, creation, flags, version range, nonce_a)
    B -> A  Challenge(name, creation, flags, chosen version, nonce_b) | Refused(reason)
    A -> B  Proof(HMAC(key, transcript, "initiator"))
    B -> A  Proof(HMAC(key, transcript, "acceptor"))   | Refused("bad cookie")
    both    Connected(peer_name, peer_creation, flags, version)

A calls ``initiate()`` and sends what it returns. From then on the connection
answers handshake frames itself: after each ``next_event()`` during the
handshake, send ``data_to_send()``. ``next_event`` returns ``Hello`` (on B) and
``Challenge`` (on A) for observation, then ``Connected``; A gets ``Refused`` if
B refused it. Once connected, ``send(event)`` returns the frame for a data
event and ``next_event`` returns the peer's data events.

Errors. ``LocalProtocolError`` from ``send``/``initiate`` means the call is not
allowed in this state; nothing changes. Anything wrong from the peer raises
``RemoteProtocolError`` from ``next_event`` and moves to ``ERROR``, where
``receive_data`` and ``next_event`` keep raising it and ``send`` raises
``LocalProtocolError``; ``data_to_send()`` may still hold a ``Refused`` frame
worth sending before closing. ``CLOSED`` (refused, or the peer ended the stream
cleanly) ignores further data and ``next_event`` returns ``ConnectionClosed``.
Encoding failures in ``send`` raise the codec's ``TypeError``/``ValueError``
and leave the connection as it was.

Every legal transition is in ``TRANSITIONS``; everything else is an error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final

from beamlet.actors import Pid

from ._auth import AuthKey, Role, Transcript, new_nonce
from ._codec import Codec, Decoding
from ._errors import DecodeError, LocalProtocolError, RemoteProtocolError, short_repr
from ._events import (
    DATA_EVENTS,
    Capability,
    Challenge,
    Connected,
    ConnectionClosed,
    Event,
    Hello,
    NodesGossip,
    Proof,
    Refused,
    Send,
    is_valid_node_name,
    validate_node_name,
)
from ._frames import (
    DEFAULT_MAX_FRAME_SIZE,
    KINDS,
    LARGE_FRAME,
    MAX_HANDSHAKE_FRAME,
    SEND_HEAD,
    FrameReader,
    SendCodec,
    data_event,
    decode_data,
    decode_handshake,
    encode_data,
    encode_handshake,
    frame_kind,
)
from ._registry import MessageRegistry

__all__ = [
    "DEFAULT_FLAGS",
    "MAX_VERSION",
    "MIN_VERSION",
    "NEED_DATA",
    "REQUIRED_FLAGS",
    "TRANSITIONS",
    "Connection",
    "NeedData",
    "State",
]

#: The protocol versions this implementation speaks.
MIN_VERSION = 1
MAX_VERSION = 1
#: Capabilities offered by default, and those a peer must have.
DEFAULT_FLAGS = int(Capability.BASE | Capability.GOSSIP | Capability.UNLINK_ID)
REQUIRED_FLAGS = int(Capability.BASE | Capability.UNLINK_ID)


class State(enum.Enum):
    """Where a connection is in its life."""

    #: Initiator, before ``initiate()``.
    IDLE = "IDLE"
    #: Acceptor, waiting for the initiator's ``Hello``.
    WAIT_HELLO = "WAIT_HELLO"
    #: Initiator, ``Hello`` sent, waiting for ``Challenge`` or ``Refused``.
    WAIT_CHALLENGE = "WAIT_CHALLENGE"
    #: Our challenge or proof is out; waiting for the peer's ``Proof``.
    WAIT_PROOF = "WAIT_PROOF"
    #: Authenticated; data events flow both ways.
    CONNECTED = "CONNECTED"
    #: Refused, or ended cleanly. Terminal.
    CLOSED = "CLOSED"
    #: The peer broke the protocol. Terminal.
    ERROR = "ERROR"


class NeedData(enum.Enum):
    """The type of ``NEED_DATA``."""

    NEED_DATA = "NEED_DATA"


#: Returned by ``next_event`` when no complete frame is buffered.
NEED_DATA: Final = NeedData.NEED_DATA

_I, _A = Role.INITIATOR, Role.ACCEPTOR
_S = State

#: (role, state, "send" | "recv", event type) -> next state. Receiving
#: ``Hello`` (acceptor), ``Challenge`` and ``Proof`` (both) makes the connection
#: queue its own answer: ``Challenge``, ``Proof`` and ``Proof`` respectively.
TRANSITIONS: dict[tuple[Role, State, str, type], State] = {
    (_I, _S.IDLE, "send", Hello): _S.WAIT_CHALLENGE,
    (_I, _S.WAIT_CHALLENGE, "recv", Challenge): _S.WAIT_PROOF,
    (_I, _S.WAIT_CHALLENGE, "recv", Refused): _S.CLOSED,
    (_I, _S.WAIT_PROOF, "recv", Proof): _S.CONNECTED,
    (_I, _S.WAIT_PROOF, "recv", Refused): _S.CLOSED,
    (_A, _S.WAIT_HELLO, "recv", Hello): _S.WAIT_PROOF,
    (_A, _S.WAIT_HELLO, "send", Refused): _S.CLOSED,
    (_A, _S.WAIT_PROOF, "recv", Proof): _S.CONNECTED,
    (_A, _S.WAIT_PROOF, "send", Refused): _S.CLOSED,
    **{
        (role, _S.CONNECTED, direction, event_type): _S.CONNECTED
        for role in Role
        for direction in ("send", "recv")
        for event_type in DATA_EVENTS
    },
    **{(role, _S.CONNECTED, "recv", ConnectionClosed): _S.CLOSED for role in Role},
}

_ALLOWED: dict[tuple[Role, State, str], dict[type, State]] = {
    (role, state, direction): {}
    for role in Role
    for state in State
    for direction in ("send", "recv")
}
for (_role, _state, _direction, _type), _next in TRANSITIONS.items():
    _ALLOWED[_role, _state, _direction][_type] = _next

_EVENT_TYPES = frozenset([*KINDS.values(), Connected, ConnectionClosed])

# Reading an Enum member off its class is slow; the hot paths use these.
_CONNECTED, _CLOSED, _ERROR = State.CONNECTED, State.CLOSED, State.ERROR

#: The frame kinds each role may receive once connected (from ``TRANSITIONS``).
_CONNECTED_KINDS: dict[Role, frozenset[int]] = {
    role: frozenset(k for k, t in KINDS.items() if t in _ALLOWED[role, _CONNECTED, "recv"])
    for role in Role
}


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"Connection: {name!r} must be an int in {low}..{high}, not {value!r}")
    return value


class Connection:
    """One side of a distribution link, as a sans-IO state machine.

    Args:
        role: ``Role.INITIATOR`` (we connect) or ``Role.ACCEPTOR`` (we listen).
        node_name: this node's name, ``"name@host"``.
        creation: this node's incarnation (32-bit).
        cookie: the shared cookie, at least 16 bytes; only a key derived from
            it is kept.
        flags: the ``Capability`` bits offered.
        required_flags: bits the peer must offer, or it is refused.
        min_version: the lowest protocol version spoken.
        max_version: the highest.
        max_frame_size: the largest data frame body sent or received.
        registry: the classes that may cross; ``default_registry`` by default.
        expected_peer: for an initiator that dialled a known node, its name;
            reaching a node of another name fails the handshake.

    Raises:
        ValueError: a bad node name, creation, version range, frame size, or
            a cookie that is too short (the message never shows the cookie).
        TypeError: the cookie is neither bytes nor str.
    """

    def __init__(
        self,
        role: Role,
        *,
        node_name: str,
        creation: int,
        cookie: bytes | str,
        flags: int = DEFAULT_FLAGS,
        required_flags: int = REQUIRED_FLAGS,
        min_version: int = MIN_VERSION,
        max_version: int = MAX_VERSION,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        registry: MessageRegistry | None = None,
        expected_peer: str | None = None,
    ) -> None:
        if not isinstance(role, Role):
            raise TypeError(f"Connection: 'role' must be a Role, not {role!r}")
        self.role = role
        self.node_name = validate_node_name(node_name)
        self.creation = _check_int("creation", creation, 0, 2**32 - 1)
        self._flags = _check_int("flags", int(flags), 0, 2**64 - 1)
        self._required = _check_int("required_flags", int(required_flags), 0, 2**64 - 1)
        self._min_version = _check_int("min_version", min_version, 1, 65535)
        self._max_version = _check_int("max_version", max_version, min_version, 65535)
        self.max_frame_size = _check_int("max_frame_size", max_frame_size, 1024, 2**32 - 1)
        if expected_peer is not None:
            validate_node_name(expected_peer)
        self._expected_peer = expected_peer
        self._key = AuthKey(cookie)
        self._codec = Codec(registry, max_size=max_frame_size)
        self._sends = SendCodec(self._codec)
        self._reader = FrameReader()
        # The frames over LARGE_FRAME bytes are decoded in steps, by next_events.
        self._small_frame = min(self.max_frame_size, LARGE_FRAME)
        self._decoding: Decoding | None = None
        self._decoding_head = b""  # the first bytes of the frame being decoded
        self._out = bytearray()
        self._nonce = new_nonce()
        self._hello: Hello | None = None
        self._challenge: Challenge | None = None
        self._eof = False
        #: The error that moved the connection to ``ERROR``, if any.
        self.failure: RemoteProtocolError | None = None
        #: The peer's node name and creation: as claimed during the handshake,
        #: authenticated once the state is ``CONNECTED``.
        self.peer_name: str | None = None
        self.peer_creation: int | None = None
        #: The capabilities and version in use, once ``CONNECTED``.
        self.flags: int | None = None
        #: The bits the peer offered (authenticated), once ``CONNECTED``.
        self.peer_flags: int | None = None
        self.version: int | None = None
        self._set_state(State.IDLE if role is Role.INITIATOR else State.WAIT_HELLO)

    def __repr__(self) -> str:
        peer = self.peer_name or "?"
        return f"<Connection {self.role.value} {self.node_name} <-> {peer} {self._state.name}>"

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def decoding(self) -> bool:
        """True while a large data frame is half decoded: call ``next_events`` again.

        ``next_events`` decodes a data frame of more than ``LARGE_FRAME``
        bytes a step at a time, and returns (the events before it) after each
        step until the frame's event is ready, so that the driver can let
        other work run in between. Events keep their order.
        """
        return self._decoding is not None

    @property
    def codec(self) -> Codec:
        """The codec of data frames (its ``max_size`` is ``max_frame_size``)."""
        return self._codec

    def _set_state(self, state: State) -> None:
        self._state = state
        self._can_send = _ALLOWED[self.role, state, "send"]
        self._can_recv = _ALLOWED[self.role, state, "recv"]

    # -- sending ------------------------------------------------------------------

    def initiate(self) -> bytes:
        """Start the handshake (initiator): return the ``Hello`` frame to send.

        Raises:
            LocalProtocolError: not an initiator in state ``IDLE``.
        """
        new_state = self._can_send.get(Hello)
        if new_state is None:
            raise LocalProtocolError(
                f"initiate() is for an initiator in state IDLE, not an {self.role.value} "
                f"in state {self._state.name}"
            )
        self._hello = Hello(
            self.node_name,
            self.creation,
            self._flags,
            self._min_version,
            self._max_version,
            self._nonce,
        )
        self._set_state(new_state)
        return encode_handshake(self._hello)

    def send(self, event: Event) -> bytes:
        """Return the bytes that carry ``event`` to the peer.

        Data events need state ``CONNECTED``. The acceptor may send
        ``Refused(reason)`` during the handshake, which ends it (any answer not
        yet taken with ``data_to_send()`` is dropped).

        Raises:
            LocalProtocolError: ``event`` may not be sent in this state.
            TypeError: ``event`` is not an event, or holds an unencodable value.
            ValueError: the frame would exceed ``max_frame_size`` or a codec limit.
        """
        t = type(event)
        new_state = self._can_send.get(t)
        if new_state is None:
            raise LocalProtocolError(self._cannot_send(event))
        if new_state is _CONNECTED:
            if t is Send:
                return self._sends.encode(event.to_pid, event.msg)  # type: ignore[union-attr]
            if t is NodesGossip and not (self.flags or 0) & Capability.GOSSIP:
                raise LocalProtocolError("the peer does not speak NodesGossip")
            return encode_data(event, self._codec)  # type: ignore[arg-type]
        if t is Refused:
            self._out.clear()
            self._set_state(new_state)
            return encode_handshake(event)  # type: ignore[arg-type]
        raise LocalProtocolError(self._cannot_send(event))

    def send_message(self, to_pid: Pid, msg: Any) -> bytes:
        """Return the bytes of ``Send(to_pid, msg)``: ``send`` without building the event.

        Raises:
            LocalProtocolError: not ``CONNECTED``.
            TypeError: ``to_pid`` is not a ``Pid``, or ``msg`` holds an unencodable value.
            ValueError: the frame would exceed ``max_frame_size`` or a codec limit.
        """
        if self._state is not _CONNECTED or type(to_pid) is not Pid:
            return self.send(Send(to_pid, msg))  # raises the error
        return self._sends.encode(to_pid, msg)

    def send_many(self, events: Iterable[Event]) -> bytes:
        """Return the bytes for several events, in order, in one buffer.

        If one event fails, the exception propagates and nothing is returned;
        data events do not change the state, so the others can be sent again.

        Raises:
            LocalProtocolError, TypeError, ValueError: as ``send``.
        """
        send = self.send
        return b"".join([send(event) for event in events])

    def _cannot_send(self, event: object) -> str:
        t = type(event)
        if t not in _EVENT_TYPES:
            raise TypeError(f"send() takes a protocol event, not {short_repr(event)}")
        name = t.__name__
        state = self._state.name
        if t in (Hello, Challenge, Proof):
            return f"{name} is sent by the connection itself (use initiate()); state {state}"
        if self._state is _ERROR:
            return f"cannot send {name}: the connection failed ({self.failure})"
        if self._state is _CLOSED:
            return f"cannot send {name}: the connection is closed"
        if t is Refused:
            return f"only the acceptor may send Refused, during the handshake (state {state})"
        if t in (Connected, ConnectionClosed):
            return f"{name} is an event to receive, not to send"
        return f"cannot send {name} before the handshake completes (state {state})"

    def data_to_send(self) -> bytes:
        """Return and forget the handshake answers queued by ``next_event``."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- receiving ----------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Hand over bytes received from the peer; ``b""`` means end of stream.

        Raises:
            RemoteProtocolError: the connection is in ``ERROR``.
            LocalProtocolError: bytes after the end of stream.
        """
        state = self._state
        if state is _ERROR:
            raise RemoteProtocolError(f"the connection failed earlier: {self.failure}")
        if state is _CLOSED:
            return
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data() got bytes after the end of stream")
            return
        if data:
            self._reader.feed(data)
        else:
            self._eof = True

    def receive_events(self, data: bytes | bytearray, limit: int | None = None) -> list[Event]:
        """``receive_data(data)``, then ``next_events(limit)``: the driver's hot path.

        When nothing is buffered, the ``Send`` frames at the start of ``data``
        are decoded from it directly (``SendCodec.decode_run``), without a
        copy into the frame buffer first: a message or a reply that arrives on
        its own, as in a request/response exchange, never goes through it.
        Only what follows them is buffered. The result, and the errors, are
        those of the two calls.

        Args:
            data: bytes received from the peer (not ``b""``: the end of
                stream goes through ``receive_data``).
            limit: return at most this many events (by default, all there are).

        Raises:
            RemoteProtocolError, LocalProtocolError: as ``receive_data`` and
                ``next_events``.
        """
        if (
            self._state is not _CONNECTED
            or self._eof
            or self._reader.buffered
            or self._decoding is not None
        ):
            self.receive_data(data)
            return self.next_events(limit)
        left = (1 << 62) if limit is None else limit
        events: list[Event] = []
        n = len(data)
        pos = self._sends.decode_run(data, 0, n, self._small_frame, left, events)
        if pos == n:
            return events
        self._reader.feed(memoryview(data)[pos:] if pos else data)
        if len(events) >= left:
            return events
        try:
            return events + self.next_events(left - len(events))
        except RemoteProtocolError:
            if events:  # as next_events: these first, the failure is set, the next call raises
                return events
            raise

    def next_event(self) -> Event | NeedData:
        """Return the next event, or ``NEED_DATA`` if no complete frame is buffered.

        During the handshake, call ``data_to_send()`` after it and send the bytes.

        Raises:
            RemoteProtocolError: the peer broke the protocol (the connection is
                now in ``ERROR``), or it already had.
        """
        state = self._state
        if state is _CLOSED:
            return ConnectionClosed()
        if state is _ERROR:
            raise RemoteProtocolError(f"the connection failed earlier: {self.failure}")
        try:
            if self._decoding is not None:  # left half done by next_events
                decoded = None
                while decoded is None:
                    decoded = self._decode_step()
                return decoded
            limit = self.max_frame_size if state is _CONNECTED else MAX_HANDSHAKE_FRAME
            body = self._reader.next_frame(limit)
            if body is None:
                return self._on_eof() if self._eof else NEED_DATA
            kind = frame_kind(body)
            event_type = KINDS.get(kind) if kind is not None else None
            if event_type is None:
                raise RemoteProtocolError(
                    f"the peer sent garbage (not a beamlet frame) in state {state.name}"
                )
            new_state = self._can_recv.get(event_type)
            if new_state is None:
                raise RemoteProtocolError(
                    f"the peer sent a {event_type.__name__} frame, "
                    f"which is not allowed in state {state.name}"
                )
            if state is _CONNECTED:
                if body.startswith(SEND_HEAD):
                    sent = self._sends.decode(body)
                    if sent is not None:
                        return sent
                return decode_data(body, self._codec)
            return self._handshake(decode_handshake(body), new_state)
        except RemoteProtocolError as exc:
            self.failure = exc
            self._set_state(_ERROR)
            raise

    def next_events(self, limit: int | None = None) -> list[Event]:
        """Return the events of the complete frames buffered (maybe none).

        Once connected, this is ``next_event`` called until it returns
        ``NEED_DATA``, or ``limit`` times, in one go; except that a data frame
        of more than ``LARGE_FRAME`` bytes is decoded a step at a time (at
        most ``STEP_BYTES`` of it per call, see ``Codec.decode_steps``): while
        ``decoding`` is True, the call returns after one step, and the next
        call goes on. During the handshake it returns at most one event, as
        the answer to each must be sent before the next is read. A
        ``ConnectionClosed`` comes last.

        Args:
            limit: return at most this many events (by default, all there are).

        Raises:
            RemoteProtocolError: as ``next_event``. Events of the frames before
                a bad one are returned first; the next call raises.
        """
        if self._state is not _CONNECTED:
            event = self.next_event()
            return [] if event is NEED_DATA else [event]  # type: ignore[list-item]
        allowed = _CONNECTED_KINDS[self.role]
        codec = self._codec
        sends = self._sends
        reader = self._reader
        max_size = self.max_frame_size
        small = self._small_frame
        left = (1 << 62) if limit is None else limit
        events: list[Event] = []
        append = events.append
        try:
            while left > 0:
                if self._decoding is not None:
                    decoded = self._decode_step()
                    if decoded is None:
                        break  # one step per call
                    append(decoded)
                    left -= 1
                    continue
                # Runs of Send frames straight from the buffer; any other
                # frame, one at a time, by the general path.
                left -= reader.take_sends(sends, small, left, events)
                if left <= 0:
                    break
                bodies = reader.frames(max_size, 1)
                if not bodies:
                    break
                body = bodies[0]
                if len(body) > small:
                    kind = frame_kind(body)
                    if kind not in allowed:
                        self._bad_kind(kind)
                    try:
                        self._decoding = codec.decode_steps(body)
                    except DecodeError as exc:  # pragma: no cover - the reader checked the size
                        raise RemoteProtocolError(f"undecodable data frame: {exc}") from None
                    self._decoding_head = bytes(body[:2])
                    continue
                left -= 1
                if body.startswith(SEND_HEAD):
                    sent = sends.decode(body)
                    if sent is not None:
                        append(sent)
                        continue
                kind = frame_kind(body)
                if kind not in allowed:
                    self._bad_kind(kind)
                append(decode_data(body, codec))
        except RemoteProtocolError as exc:
            self.failure = exc
            self._set_state(_ERROR)
            if events:
                return events
            raise
        if not events and self._eof and self._decoding is None:
            return [self.next_event()]  # type: ignore[list-item]
        return events

    def _decode_step(self) -> Event | None:
        """One step of the large frame being decoded; its event once done, else None.

        Raises:
            RemoteProtocolError: the frame does not decode.
        """
        decoding = self._decoding
        assert decoding is not None
        try:
            if not decoding.step():
                return None
        except DecodeError as exc:
            raise RemoteProtocolError(f"undecodable data frame: {exc}") from None
        finally:
            if decoding.done:
                self._decoding = None
        return data_event(self._decoding_head, decoding.value)

    def _bad_kind(self, kind: int | None) -> None:
        state = self._state.name
        event_type = KINDS.get(kind) if kind is not None else None
        if event_type is None:
            raise RemoteProtocolError(
                f"the peer sent garbage (not a beamlet frame) in state {state}"
            )
        raise RemoteProtocolError(
            f"the peer sent a {event_type.__name__} frame, which is not allowed in state {state}"
        )

    def _on_eof(self) -> ConnectionClosed:
        if self._reader.buffered:
            raise RemoteProtocolError("the peer closed the stream in the middle of a frame")
        new_state = self._can_recv.get(ConnectionClosed)
        if new_state is None:
            raise RemoteProtocolError(
                f"the peer closed the stream during the handshake (state {self._state.name})"
            )
        self._set_state(new_state)
        return ConnectionClosed()

    # -- handshake ------------------------------------------------------------------

    def _handshake(
        self, event: Hello | Challenge | Proof | Refused, new_state: State
    ) -> Hello | Challenge | Connected | Refused:
        if type(event) is Hello:
            self._on_hello(event)
        elif type(event) is Challenge:
            self._on_challenge(event)
        elif type(event) is Proof:
            return self._on_proof(event, new_state)
        self._set_state(new_state)
        return event  # type: ignore[return-value]

    def _refuse(self, reason: str, peer: object) -> RemoteProtocolError:
        self._out += encode_handshake(Refused(reason))
        return RemoteProtocolError(f"refused node {short_repr(peer)}: {reason}")

    def _on_hello(self, hello: Hello) -> None:
        if not is_valid_node_name(hello.node):
            raise self._refuse("illegal node name", hello.node)
        if hello.node == self.node_name:
            raise self._refuse("the peer uses this node's own name", hello.node)
        low = max(self._min_version, hello.min_version)
        high = min(self._max_version, hello.max_version)
        if hello.min_version > hello.max_version or low > high:
            raise self._refuse(
                f"no common protocol version: peer {hello.min_version}..{hello.max_version}, "
                f"this node {self._min_version}..{self._max_version}",
                hello.node,
            )
        missing = self._required & ~hello.flags
        if missing:
            raise self._refuse(f"missing required capabilities {missing:#x}", hello.node)
        self._hello = hello
        self._challenge = Challenge(self.node_name, self.creation, self._flags, high, self._nonce)
        self._out += encode_handshake(self._challenge)
        self.peer_name = hello.node
        self.peer_creation = hello.creation

    def _on_challenge(self, challenge: Challenge) -> None:
        peer = challenge.node
        problem = None
        if not is_valid_node_name(peer):
            problem = "an illegal node name"
        elif peer == self.node_name:
            problem = "this node's own name"
        elif self._expected_peer is not None and peer != self._expected_peer:
            problem = f"a different name from the expected {self._expected_peer!r}"
        elif not self._min_version <= challenge.version <= self._max_version:
            problem = f"protocol version {challenge.version}, which this node does not speak"
        elif self._required & ~challenge.flags:
            problem = f"missing required capabilities {self._required & ~challenge.flags:#x}"
        elif challenge.nonce == self._nonce:
            problem = "this node's own nonce"
        if problem is not None:
            raise RemoteProtocolError(f"the acceptor {short_repr(peer)} answered with {problem}")
        self._challenge = challenge
        self.peer_name = peer
        self.peer_creation = challenge.creation
        digest = self._key.proof(self._transcript(), Role.INITIATOR)
        self._out += encode_handshake(Proof(digest))

    def _on_proof(self, proof: Proof, new_state: State) -> Connected:
        transcript = self._transcript()
        peer_role = Role.INITIATOR if self.role is Role.ACCEPTOR else Role.ACCEPTOR
        if not self._key.verify(transcript, peer_role, proof.digest):
            message = (
                f"the handshake with {short_repr(self.peer_name)} failed: its proof does "
                "not match (a different cookie?)"
            )
            if self.role is Role.ACCEPTOR:
                self._out += encode_handshake(Refused("bad cookie"))
            raise RemoteProtocolError(message)
        if self.role is Role.ACCEPTOR:
            self._out += encode_handshake(Proof(self._key.proof(transcript, Role.ACCEPTOR)))
        hello, challenge = self._hello, self._challenge
        assert hello is not None and challenge is not None
        self.flags = hello.flags & challenge.flags
        self.peer_flags = challenge.flags if self.role is Role.INITIATOR else hello.flags
        self.version = challenge.version
        self._set_state(new_state)
        return Connected(self.peer_name, self.peer_creation, self.flags, self.version)  # type: ignore[arg-type]

    def _transcript(self) -> Transcript:
        hello, challenge = self._hello, self._challenge
        assert hello is not None and challenge is not None
        return Transcript(
            initiator_name=hello.node,
            acceptor_name=challenge.node,
            initiator_creation=hello.creation,
            acceptor_creation=challenge.creation,
            initiator_flags=hello.flags,
            acceptor_flags=challenge.flags,
            min_version=hello.min_version,
            max_version=hello.max_version,
            version=challenge.version,
            initiator_nonce=hello.nonce,
            acceptor_nonce=challenge.nonce,
        )
