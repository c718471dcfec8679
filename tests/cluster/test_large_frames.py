"""Large data frames are decoded a step at a time, in order, off the critical path.

``Connection.next_events`` decodes a frame over ``LARGE_FRAME`` bytes in steps
(``Connection.decoding`` is True in between); the connection's reader lets
the node's other tasks run between steps. The node's event loop is never
held for long: measured here in CPU time of the loop's thread between two
wake-ups of a task that does nothing else, which a busy machine does not
inflate.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from beamlet.actors import Pid, receive, self_pid, send
from beamlet.cluster._codec import STEP_BYTES, Codec
from beamlet.cluster._connection import Connection, State
from beamlet.cluster._errors import RemoteProtocolError
from beamlet.cluster._events import Exit, Link, Send
from beamlet.cluster._frames import HEADER, LARGE_FRAME
from beamlet.cluster.simulation import simulated_cluster
from handshake import connected_pair

COOKIE = b"the-shared-cookie-0123456789"
B_PID = Pid("b@127.0.0.1", 9, 2)
M = 2**61 - 1


def _big_message(size: int) -> list[Any]:
    return [{"n": i, "text": "x" * 20, "pair": (i, -i)} for i in range(size // 40)]


def _drain(conn: Connection) -> tuple[list[Any], int]:
    """All the events, by next_events; and how many calls returned mid-frame."""
    events: list[Any] = []
    halfway = 0
    while True:
        got = conn.next_events(128)
        events += got
        if conn.decoding:
            halfway += 1
        elif not got:
            return events, halfway


def test_a_large_frame_is_decoded_in_steps_and_in_order() -> None:
    a, b = connected_pair(COOKIE)
    big = _big_message(1024 * 1024)
    frames = [
        a.send(Send(B_PID, "before")),
        a.send(Send(B_PID, big)),
        a.send(Link(Pid("a@127.0.0.1", 1, 1), B_PID)),
        a.send(Send(B_PID, "after")),
    ]
    assert len(frames[1]) > 16 * STEP_BYTES
    b.receive_data(b"".join(frames))
    events, halfway = _drain(b)
    assert [type(e) for e in events] == [Send, Send, Link, Send]
    assert events[0].msg == "before" and events[1].msg == big and events[3].msg == "after"
    assert halfway >= len(frames[1]) // STEP_BYTES
    assert not b.decoding


def test_the_hot_path_hands_a_large_frame_to_the_steps() -> None:
    """``receive_events`` reads Send frames straight from the received bytes;
    a large one is left to ``next_events`` and its steps."""
    a, b = connected_pair(COOKIE)
    big = _big_message(256 * 1024)
    data = a.send(Send(B_PID, 1)) + a.send(Send(B_PID, big)) + a.send(Send(B_PID, 2))
    first = b.receive_events(data)
    assert [e.msg for e in first] == [1]
    assert b.decoding
    rest, halfway = _drain(b)
    assert [e.msg for e in rest] == [big, 2] and halfway > 0
    # next_event decodes a large frame in one go, also one left half done.
    b.receive_data(a.send(Send(B_PID, big)) + a.send(Send(B_PID, 3)))
    assert b.next_events(1) == [] and b.decoding
    assert b.next_event() == Send(B_PID, big)
    assert b.next_event() == Send(B_PID, 3)
    reason = ("shutdown", ["x" * 100] * 1000)
    b.receive_data(a.send(Exit(Pid("a@127.0.0.1", 1, 1), B_PID, reason)))
    event = b.next_event()
    assert isinstance(event, Exit) and event.reason == reason


def test_a_large_frame_that_breaks_a_limit_fails_the_connection_after_the_events_before() -> None:
    a, b = connected_pair(COOKIE, max_frame_size=8 * 1024 * 1024)
    codec = Codec()
    # [16, pid, <a set of big ints that hash alike>], built without building the set.
    items = b"".join(codec.encode(k * M) for k in range(1, 30_000))
    colliding_set = b"\xdc" + (30_000).to_bytes(2, "big") + b"\xc7\x00\x02" + items
    body = bytes([0x93, 16]) + codec.encode(B_PID) + colliding_set
    colliding = HEADER.pack(len(body)) + body
    assert len(body) > LARGE_FRAME
    b.receive_data(a.send(Send(B_PID, "first")) + colliding + a.send(Send(B_PID, "never")))
    events: list[Any] = []
    with pytest.raises(RemoteProtocolError, match="repeat another key's hash, over the limit"):
        while True:
            events += b.next_events()
    assert [e.msg for e in events] == ["first"]
    assert b.state is State.ERROR and not b.decoding
    with pytest.raises(RemoteProtocolError, match="failed earlier"):
        b.next_events()


def test_a_large_frame_of_a_kind_not_allowed_is_refused_before_decoding() -> None:
    _a, b = connected_pair(COOKIE)
    hello_like = bytes([0x92, 1]) + b"\xc6" + (LARGE_FRAME + 10).to_bytes(4, "big")
    body = hello_like + b"\x00" * (LARGE_FRAME + 10)
    b.receive_data(HEADER.pack(len(body)) + body)
    with pytest.raises(RemoteProtocolError, match="Hello frame, which is not allowed"):
        b.next_events()
    assert not b.decoding


# -- the node's event loop -------------------------------------------------------------------


@contextmanager
def _time_in_gc() -> Iterator[list[float]]:
    """Yield a one-item list: the CPU time the garbage collector has spent so far.

    A full collection walks every object of the process, whatever made it
    run: with the objects of a whole test session, it takes a few hundred
    milliseconds, which is not the decoder's doing; the test leaves it out.
    """
    spent = [0.0]
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            spent[0] += time.thread_time() - started[0]

    gc.callbacks.append(callback)
    try:
        yield spent
    finally:
        gc.callbacks.remove(callback)


async def test_a_node_keeps_running_while_it_decodes_a_large_frame(autojump_clock: Any) -> None:
    """A 4 MiB message: the receiving node's loop is never held for more than a
    few milliseconds of CPU at a time (decoded in one go, it was a second or
    more here), a later message arrives after it, and both arrive."""
    async with simulated_cluster(
        ["a", "b"], max_frame_size=8 * 1024 * 1024, busy_limit=16 * 1024 * 1024
    ) as sim:
        got: list[Any] = []
        arrived = trio.Event()

        async def sink() -> None:
            while True:
                got.append(await receive())
                if len(got) == 2:
                    arrived.set()

        pid = sim.spawn("b", sink)
        big = _big_message(4 * 1024 * 1024)
        stalls: list[float] = []
        halfway = 0

        async def watch_the_loop() -> None:
            nonlocal halfway
            dist = sim.distribution("b")
            with _time_in_gc() as in_gc:
                last = time.thread_time() - in_gc[0]
                while not arrived.is_set():
                    was_sent = sent.is_set()  # (encoding it, in the sender, holds the loop too)
                    await trio.lowlevel.checkpoint()
                    now = time.thread_time() - in_gc[0]
                    if was_sent:
                        stalls.append(now - last)
                    last = now
                    halfway += any(p.session.conn.decoding for p in dist.peers.values())

        sent = trio.Event()

        async def client() -> None:
            send(pid, big)
            send(pid, ("after", self_pid()))
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_the_loop)
            await sim.run("a", client)
            with trio.fail_after(60):
                await arrived.wait()
        assert got[0] == big and got[1][0] == "after"
        assert halfway >= 4 * 1024 * 1024 // STEP_BYTES // 2
        assert max(stalls) < 0.1, sorted(stalls)[-5:]
