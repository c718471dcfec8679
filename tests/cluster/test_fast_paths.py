"""The shortcuts of the message path, against the general path they stand for.

``SendCodec`` must make the bytes that ``encode_data`` makes and decode what
``decode_data`` decodes, within the same limits; ``Connection.next_events``
must give what ``next_event`` gives. Over TCP, a message sent while the
connection is idle is written by the sender itself: the tests force short
and failed writes, and check that every message still arrives, in order.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
from beamlet.actors import Pid, Ref, receive, self_pid, send
from beamlet.cluster import connect, listen_address, open_node
from beamlet.cluster._auth import Role
from beamlet.cluster._codec import EXT_PID, Codec
from beamlet.cluster._connection import NEED_DATA, Connection, State
from beamlet.cluster._errors import RemoteProtocolError
from beamlet.cluster._events import Link, Send, Tick, unchecked_send
from beamlet.cluster._frames import HEADER, SendCodec, decode_data, encode_data
from handshake import connected_pair
from hypothesis import given, settings, strategies as st

COOKIE = b"the-shared-cookie-0123456789"
B_PID = Pid("b@127.0.0.1", 9, 2)
LONG_PID = Pid("n" * 250 + "@h", 1, 2)  # its extension needs a 16-bit length


messages = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.sampled_from([B_PID, LONG_PID, Ref("a@h", 3, 1)]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
    ),
    max_leaves=12,
)
pids = st.builds(
    Pid,
    st.sampled_from(["b@127.0.0.1", "x@h", "n" * 250 + "@h", "é@h"]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=200)
@given(pids, messages)
def test_send_codec_makes_and_reads_the_bytes_of_the_general_codec(pid: Pid, msg: Any) -> None:
    codec = Codec()
    fast = SendCodec(codec)
    frame = encode_data(Send(pid, msg), codec)
    assert fast.encode(pid, msg) == frame
    assert fast.encode(pid, msg) == frame  # from the cache
    body = frame[4:]
    assert fast.decode(body) == decode_data(body, codec) == Send(pid, msg)
    assert fast.decode(bytearray(body)) == Send(pid, msg)


@settings(max_examples=100)
@given(st.lists(st.tuples(pids, st.booleans(), st.integers()), min_size=1, max_size=12))
def test_one_send_codec_over_many_pids_keeps_each_frame_exact(
    sends: list[tuple[Pid, bool, int]],
) -> None:
    """Pids alternate, repeat as the same object and as equal copies: every
    frame is still the general codec's, whichever cache answered."""
    codec = Codec()
    fast = SendCodec(codec)
    previous: Pid | None = None
    for pid, reuse, msg in sends:
        if reuse and previous is not None:
            pid = previous  # the very object of the last send
        elif previous is not None and pid == previous:
            pid = Pid(pid.node, pid.id, pid.creation)  # an equal, distinct object
        assert fast.encode(pid, msg) == encode_data(Send(pid, msg), codec)
        previous = pid


def test_connection_send_paths_agree() -> None:
    a, b = connected_pair(COOKIE)
    for pid, msg in [(B_PID, 1), (LONG_PID, ("x", [1, 2])), (B_PID, {"k": B_PID})]:
        frame = a.send_message(pid, msg)
        assert frame == a.send(Send(pid, msg)) == encode_data(Send(pid, msg), a.codec)
        b.receive_data(frame)
        assert b.next_events() == [Send(pid, msg)]


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_the_depth_limit_is_that_of_the_whole_frame(depth: int) -> None:
    codec = Codec(max_depth=5)
    fast = SendCodec(codec)
    msg = _nested(depth)  # the frame nests one level more
    loose = Codec(max_depth=50).encode([16, B_PID, msg])
    if depth + 1 <= 5:
        assert fast.encode(B_PID, msg) == encode_data(Send(B_PID, msg), codec)
        assert fast.decode(loose) == decode_data(loose, codec) == Send(B_PID, msg)
        return
    with pytest.raises(ValueError, match="deeper"):
        encode_data(Send(B_PID, msg), codec)
    with pytest.raises(ValueError, match="deeper"):
        fast.encode(B_PID, msg)
    with pytest.raises(RemoteProtocolError):
        decode_data(loose, codec)
    with pytest.raises(RemoteProtocolError):
        fast.decode(loose)


def test_the_size_limit_is_that_of_the_whole_frame() -> None:
    codec = Codec(max_size=1024)
    fast = SendCodec(codec)
    prefix = len(encode_data(Send(B_PID, b""), codec)) - 4 - 2  # the frame less bin8 header
    fits = b"x" * (1024 - prefix - 3)  # bin16 header: 3 bytes
    assert fast.encode(B_PID, fits) == encode_data(Send(B_PID, fits), codec)
    with pytest.raises(ValueError, match="max_size=1024"):
        encode_data(Send(B_PID, fits + b"x"), codec)
    with pytest.raises(ValueError, match="max_size=1024"):
        fast.encode(B_PID, fits + b"x")


def test_with_max_depth_1_the_general_path_is_used() -> None:
    codec = Codec(max_depth=1)
    fast = SendCodec(codec)
    frame = encode_data(Send(B_PID, 7), codec)
    assert fast.encode(B_PID, 7) == frame
    assert fast.decode(frame[4:]) is None
    assert decode_data(frame[4:], codec) == Send(B_PID, 7)


def _body(*parts: bytes) -> bytes:
    return b"\x93\x10" + b"".join(parts)


def _pid_payload(pid: Pid) -> bytes:
    return pid.creation.to_bytes(8, "big") + pid.id.to_bytes(8, "big") + pid.node.encode()


def test_odd_pid_layouts() -> None:
    codec = Codec()
    fast = SendCodec(codec)
    payload = _pid_payload(B_PID)
    # a pid sent with a 16-bit length, which msgpack itself would not choose
    ext16 = b"\xc8" + len(payload).to_bytes(2, "big") + bytes([EXT_PID]) + payload
    body = _body(ext16, msgpack.packb("hi"))
    assert fast.decode(body) == decode_data(body, codec) == Send(B_PID, "hi")
    # not a pid where the pid goes: the general path says what is wrong
    ref = codec.encode(Ref("a@h", 3, 1))
    for odd in (_body(ref, b"\x01"), _body(msgpack.packb("x"), b"\x01"), _body(b"\xc7")):
        assert fast.decode(odd) is None
        with pytest.raises(RemoteProtocolError):
            decode_data(odd, codec)
    # a malformed pid
    bad = b"\xc7\x03" + bytes([EXT_PID]) + b"abc"
    assert fast.decode(_body(bad, b"\x01")) is None
    with pytest.raises(RemoteProtocolError):
        decode_data(_body(bad, b"\x01"), codec)
    # a good pid, then a bad message or none
    good = codec.encode(B_PID)
    for tail in (b"", b"\xc1", b"\x01\x02", codec.encode(B_PID)[:5]):
        with pytest.raises(RemoteProtocolError, match="undecodable"):
            fast.decode(_body(good, tail))


def test_a_full_cache_starts_again() -> None:
    codec = Codec()
    fast = SendCodec(codec)
    frames = [fast.encode(Pid("b@h", i, 1), i) for i in range(5000)]
    for i, frame in enumerate(frames):
        assert fast.decode(frame[4:]) == Send(Pid("b@h", i, 1), i)
    assert fast.decode(frames[0][4:]) == Send(Pid("b@h", 0, 1), 0)


def test_unchecked_send_is_a_send() -> None:
    event = unchecked_send(B_PID, ("x", 1))
    assert type(event) is Send
    assert event == Send(B_PID, ("x", 1))
    assert hash(event) == hash(Send(B_PID, ("x", 1)))
    with pytest.raises(AttributeError):
        event.msg = 2  # type: ignore[misc]


def test_next_events_gives_what_next_event_gives() -> None:
    a, b = connected_pair(COOKIE)
    events = [Send(B_PID, i) if i % 3 else Tick() for i in range(50)]
    data = b"".join(a.send(e) for e in events)
    b.receive_data(data[:-3])
    got = b.next_events()
    b.receive_data(data[-3:])
    got += b.next_events()
    assert got == events
    assert b.next_events() == []


def test_next_events_in_batches() -> None:
    a, b = connected_pair(COOKIE)
    events = [Send(B_PID, i) for i in range(10)]
    b.receive_data(b"".join(a.send(e) for e in events))
    assert b.next_events(limit=4) == events[:4]
    assert b.next_events(limit=4) == events[4:8]
    assert b.next_events(limit=4) == events[8:]
    assert b.next_events(limit=4) == []
    b.receive_data(b"")
    assert [type(e).__name__ for e in b.next_events(limit=4)] == ["ConnectionClosed"]


def test_the_events_before_a_bad_frame_come_first_then_the_error() -> None:
    a, b = connected_pair(COOKIE)
    good = a.send(Send(B_PID, 1)) + a.send(Send(B_PID, 2))
    garbage = HEADER.pack(2) + b"\x93\x7f"  # kind 127: no such frame
    b.receive_data(good + garbage + a.send(Send(B_PID, 3)))
    assert b.next_events() == [Send(B_PID, 1), Send(B_PID, 2)]
    assert b.state is State.ERROR
    with pytest.raises(RemoteProtocolError, match="garbage"):
        b.next_events()


def test_an_oversized_frame_after_good_ones() -> None:
    a, b = connected_pair(COOKIE)
    good = a.send(Send(B_PID, 1))
    b.receive_data(good + HEADER.pack(b.max_frame_size + 1))
    assert b.next_events() == [Send(B_PID, 1)]
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        b.next_events()


def test_next_events_during_the_handshake_gives_one_event_at_a_time() -> None:
    a = Connection(Role.INITIATOR, node_name="a@127.0.0.1", creation=1, cookie=COOKIE)
    b = Connection(Role.ACCEPTOR, node_name="b@127.0.0.1", creation=2, cookie=COOKIE)
    b.receive_data(a.initiate())
    events = b.next_events()
    assert [type(e).__name__ for e in events] == ["Hello"]
    assert b.next_events() == []
    b.receive_data(b"")  # the end of the stream, mid-handshake
    with pytest.raises(RemoteProtocolError):
        b.next_events()


# -- over TCP ---------------------------------------------------------------------------------


async def _echo() -> None:
    while True:
        sender, msg = await receive()
        send(sender, msg)


async def _address() -> str | None:
    return listen_address()


async def _burst_then_ping_pong(dest: Any, sizes: list[int]) -> list[Any]:
    """Send a burst in one step, then a ping-pong; return what came back."""
    me = self_pid()
    sent = [(i, b"x" * size) for i, size in enumerate(sizes)]
    for msg in sent:
        send(dest, (me, msg))
    got = [await receive(timeout=10) for _ in sent]
    for i in range(50):
        send(dest, (me, ("ping", i)))
        got.append(await receive(timeout=10))
    assert got == sent + [("ping", i) for i in range(50)]
    return got


async def _run_pair(body: Callable[[Any, Any], Any]) -> None:
    async with open_node("t1@127.0.0.1", cookie=COOKIE) as n1:
        address = await n1.run(_address)
        async with open_node("t2@127.0.0.1", cookie=COOKIE) as n2:
            echo = n1.spawn(_echo)
            assert await n2.run(connect, address)
            await body(n2, echo)


async def test_tcp_bursts_and_ping_pong_keep_their_order() -> None:
    async def body(n2: Any, echo: Any) -> None:
        await n2.run(_burst_then_ping_pong, echo, [10, 30_000, 3, 60_000, 0] * 8)

    await _run_pair(body)


async def test_tcp_many_small_messages_in_one_read() -> None:
    """More messages in one read than the reader dispatches at a time."""

    async def body(n2: Any, echo: Any) -> None:
        await n2.run(_burst_then_ping_pong, echo, [0, 1, 2] * 700)

    await _run_pair(body)


@pytest.mark.parametrize("failure", ["short", "would_block", "broken_once"])
async def test_tcp_short_or_failed_direct_writes_lose_nothing(
    monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    import beamlet.cluster._peer as peer_module

    real_write = os.write
    calls = []

    def write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if failure == "short":
            return real_write(fd, bytes(data[: max(1, len(data) // 3)]))
        if failure == "would_block":
            raise BlockingIOError(errno.EAGAIN, "try again")
        if len(calls) == 1:
            raise OSError(errno.EINTR, "interrupted")  # the writer retries all of it
        return real_write(fd, data)

    async def body(n2: Any, echo: Any) -> None:
        monkeypatch.setattr(peer_module.os, "write", write)
        await n2.run(_burst_then_ping_pong, echo, [5, 100_000, 1, 7] * 4)
        monkeypatch.undo()
        assert calls  # the direct path was taken

    await _run_pair(body)


async def test_tcp_a_node_that_sends_and_exits_at_once() -> None:
    """Messages written directly right before the sender's node shuts down still arrive."""
    async with open_node("t1@127.0.0.1", cookie=COOKIE) as n1:
        address = await n1.run(_address)
        done = trio.Event()
        got: list[Any] = []

        async def collector() -> None:
            while len(got) < 100:
                got.append(await receive())
            done.set()

        pid = n1.spawn(collector)
        async with open_node("t2@127.0.0.1", cookie=COOKIE) as n2:
            assert await n2.run(connect, address)

            async def fire() -> None:
                for i in range(100):
                    send(pid, i)
                    await trio.lowlevel.checkpoint()

            await n2.run(fire)
            with trio.fail_after(10):
                await done.wait()
        assert got == list(range(100))


def _outcome(step: Callable[[], list[Any]]) -> tuple[str, Any]:
    """What a step gave, compared by ``repr``: a damaged byte may decode a float
    as NaN, which is not equal to itself."""
    try:
        return "events", repr(step())
    except RemoteProtocolError as exc:
        return "error", str(exc)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.sampled_from([B_PID, LONG_PID]), messages), min_size=1, max_size=6),
    st.data(),
)
def test_receive_events_is_receive_data_then_next_events(
    sends: list[tuple[Pid, Any]], data: st.DataObject
) -> None:
    """The one-whole-frame shortcut changes nothing: same events, same errors,
    same state, for whole frames, split ones, several at once and damaged ones."""
    a, _ = connected_pair(COOKIE)
    wire = bytearray(b"".join(a.send_message(pid, msg) for pid, msg in sends))
    if data.draw(st.booleans()):  # damage a byte: a bad message, kind or length
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=4))))
    chunks = [bytes(wire[i:j]) for i, j in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    limit = data.draw(st.sampled_from([None, 1, 2, 128]))
    _, fast = connected_pair(COOKIE)
    _, slow = connected_pair(COOKIE)
    for chunk in chunks:

        def general(chunk: bytes = chunk) -> list[Any]:
            slow.receive_data(chunk)
            return slow.next_events(limit)

        expected = _outcome(general)
        assert _outcome(lambda chunk=chunk: fast.receive_events(chunk, limit)) == expected
        assert fast.state is slow.state
        assert str(fast.failure) == str(slow.failure)
        if expected[0] == "error":
            break
        # What a limit left buffered comes out the same way.
        assert _outcome(lambda: fast.next_events()) == _outcome(lambda: slow.next_events())


def test_receive_events_takes_a_lone_send_frame_directly() -> None:
    a, b = connected_pair(COOKIE)
    frame = a.send_message(B_PID, ("reply", 1))
    assert b.receive_events(frame) == [Send(B_PID, ("reply", 1))]
    assert b.next_events() == []
    # A lone frame with a bad message fails the connection, as next_events would.
    bad = bytearray(a.send_message(B_PID, 1))
    bad[-1] = 0xC1  # never used in msgpack
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        b.receive_events(bytes(bad))
    assert b.state is State.ERROR
    assert b.failure is not None


def _one_by_one(conn: Connection) -> tuple[list[Any], str | None]:
    got: list[Any] = []
    try:
        while (event := conn.next_event()) is not NEED_DATA:
            got.append(event)
    except RemoteProtocolError:
        return got, str(conn.failure)
    return got, None


def _in_batches(conn: Connection, limit: int | None) -> tuple[list[Any], str | None]:
    got: list[Any] = []
    try:
        while batch := conn.next_events(limit):
            got += batch
    except RemoteProtocolError:  # "failed earlier" after the events before the bad frame
        return got, str(conn.failure)
    return got, None


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from([B_PID, LONG_PID, Pid("c@h", 1, 1)]), messages).map(
                lambda t: Send(*t)
            ),
            st.just(Tick()),
            st.builds(Link, st.just(B_PID), st.just(LONG_PID)),
        ),
        min_size=1,
        max_size=10,
    ),
    st.data(),
)
def test_next_events_gives_what_next_event_gives_for_any_stream(
    events: list[Any], data: st.DataObject
) -> None:
    """Runs of Send frames are read straight from the buffer; other kinds, pid
    changes, damaged bytes and limits give what one next_event at a time gives."""
    a, _ = connected_pair(COOKIE)
    wire = bytearray(b"".join(a.send(e) for e in events))
    if data.draw(st.booleans()):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    limit = data.draw(st.sampled_from([None, 1, 3]))
    _, single = connected_pair(COOKIE)
    _, batched = connected_pair(COOKIE)
    results = []
    for conn, take in ((single, _one_by_one), (batched, lambda c: _in_batches(c, limit))):
        got, error = [], None
        for chunk in (bytes(wire[:cut]), bytes(wire[cut:])):
            if chunk and error is None:
                conn.receive_data(chunk)
                more, error = take(conn)
                got += more
        results.append((got, error, conn.state))
    assert results[0] == results[1]
