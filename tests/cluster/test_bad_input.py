"""Hostile and broken input on a real TCP listener.

Raw sockets send a distributed node garbage, truncated or oversized frames, a
wrong cookie, an unknown extension type after a good handshake, or nothing at
all. Each time the node closes that connection and says why in the log
(``beamlet.cluster``), keeps serving a legitimate node, and keeps no state
behind. Real time: every wait is bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import trio
from beamlet.actors import Node, Pid, link, receive, self_pid, send
from beamlet.cluster import Connection, Distribution, connect, listen_address, nodes, open_node
from beamlet.cluster._auth import Role
from beamlet.cluster._connection import NEED_DATA
from beamlet.cluster._events import Connected, ConnectionClosed, Refused
from beamlet.cluster._frames import HEADER

COOKIE = "bad-input-cookie-0123456789abcdef"
OTHER_COOKIE = "some-other-cookie-0123456789abcdef"
LOGGER = "beamlet.cluster"


def _dist(node: Node) -> Distribution:
    router = node.router
    assert isinstance(router, Distribution)
    return router


async def _address() -> str | None:
    return listen_address()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def _closed_by_the_node(stream: trio.SocketStream, timeout: float = 5.0) -> None:
    """Read until the node closes the connection (bounded)."""
    with trio.fail_after(timeout):
        while True:
            try:
                if not await stream.receive_some(65536):
                    return
            except trio.BrokenResourceError:
                return


async def _drive(conn: Connection, stream: trio.SocketStream) -> list[Any]:
    """Run a client handshake by hand; return the events up to Connected or the end."""
    events: list[Any] = []
    await stream.send_all(conn.initiate())
    with trio.fail_after(5):
        while True:
            try:
                event = conn.next_event()
            except Exception as exc:  # the node refused us: a RemoteProtocolError
                events.append(exc)
                return events
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
            if event is NEED_DATA:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                conn.receive_data(data)
                continue
            events.append(event)
            if isinstance(event, Connected | Refused | ConnectionClosed):
                return events


async def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` in real time, for at most ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - polling node state from outside
            await trio.sleep(0.01)


def _walk(task: Any) -> Iterator[Any]:
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _walk(child)


def _task_count() -> int:
    return sum(1 for _ in _walk(trio.lowlevel.current_root_task()))


def _records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING
    ]


async def _new_warning(caplog: pytest.LogCaptureFixture, before: int, text: str) -> str:
    """Wait until a warning containing ``text`` is logged after the first ``before`` ones."""
    with trio.fail_after(5):
        while True:
            for message in _records(caplog)[before:]:
                if text in message:
                    return message
            await trio.sleep(0.01)


@pytest.fixture
async def server(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with open_node(
        "srv@127.0.0.1", cookie=COOKIE, handshake_timeout=0.5, max_frame_size=64 * 1024
    ) as node:
        address = await node.run(_address)
        assert address is not None
        yield node, address


async def _raw(address: str) -> trio.SocketStream:
    host, port = _host_port(address)
    return await trio.open_tcp_stream(host, port)


def _frame(fields: list[Any]) -> bytes:
    body: bytes = msgpack.packb(fields)
    return HEADER.pack(len(body)) + body


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x00\x00\x05hello", "garbage"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "over the limit"),
        (b"\xff\xff\xff\xff", "over the limit"),
        (_frame([1, "smtp", 1, 1, "x@y", 1, 1, b"n" * 32]), "malformed Hello"),
    ],
    ids=["garbage", "http", "oversized-prefix", "wrong-protocol"],
)
async def test_bad_bytes_close_that_connection_with_a_logged_reason(
    server: Any, caplog: pytest.LogCaptureFixture, data: bytes, why: str
) -> None:
    node, address = server
    before = len(_records(caplog))
    stream = await _raw(address)
    await stream.send_all(data)
    await _closed_by_the_node(stream)
    await stream.aclose()
    message = await _new_warning(caplog, before, "refused an incoming connection")
    assert why in message
    assert _dist(node).peers == {}


async def test_a_truncated_handshake_then_close_is_logged(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node, address = server
    hello = Connection(
        Role.INITIATOR, node_name="x@127.0.0.1", creation=1, cookie=COOKIE
    ).initiate()
    before = len(_records(caplog))
    stream = await _raw(address)
    await stream.send_all(hello[: len(hello) // 2])
    await stream.aclose()
    message = await _new_warning(caplog, before, "refused an incoming connection")
    assert "middle of a frame" in message
    assert _dist(node).membership.hellos == {}


async def test_a_hello_with_the_wrong_cookie_is_refused(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node, address = server
    before = len(_records(caplog))
    stream = await _raw(address)
    conn = Connection(
        Role.INITIATOR, node_name="intruder@127.0.0.1", creation=5, cookie=OTHER_COOKIE
    )
    events = await _drive(conn, stream)
    assert events[-1] == Refused("bad cookie")
    await _closed_by_the_node(stream)
    await stream.aclose()
    message = await _new_warning(caplog, before, "refused an incoming connection")
    assert "intruder@127.0.0.1" in message and "proof does not match" in message
    assert COOKIE not in " ".join(_records(caplog))
    assert _dist(node).peers == {}


async def test_an_unknown_extension_type_after_connecting_closes_the_connection(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node, address = server
    stream = await _raw(address)
    conn = Connection(Role.INITIATOR, node_name="rogue@127.0.0.1", creation=9, cookie=COOKIE)
    events = await _drive(conn, stream)
    assert isinstance(events[-1], Connected)
    await _wait_until(lambda: "rogue@127.0.0.1" in _dist(node).peers)
    # a local process keeps sending to the rogue node while its connection fails
    sent: list[int] = []

    async def chatter() -> None:
        rogue = Pid("rogue@127.0.0.1", 1, 9)
        while True:
            send(rogue, len(sent))
            link(rogue)
            sent.append(1)
            await trio.lowlevel.checkpoint()

    chatty = node.spawn(chatter, trap_exits=True)
    await _wait_until(lambda: len(sent) > 10)
    before = len(_records(caplog))
    body = msgpack.packb([16, msgpack.ExtType(99, b"??"), "hello"])
    await stream.send_all(HEADER.pack(len(body)) + body)
    await _closed_by_the_node(stream)
    await stream.aclose()
    message = await _new_warning(caplog, before, "closing the connection to rogue@127.0.0.1")
    assert "extension" in message
    await _wait_until(lambda: not _dist(node).peers)
    count = len(sent)
    await _wait_until(lambda: len(sent) > count + 10)  # the sender lives on: sends are dropped
    assert node.process_info(chatty) is not None


async def test_saying_nothing_times_the_handshake_out(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node, address = server
    before = len(_records(caplog))
    start = trio.current_time()
    stream = await _raw(address)
    await _closed_by_the_node(stream, timeout=5)
    elapsed = trio.current_time() - start
    await stream.aclose()
    assert 0.4 <= elapsed < 3.0  # handshake_timeout is 0.5 s
    assert "timed out" in await _new_warning(caplog, before, "handshake timed out")
    assert _dist(node).peers == {} and _dist(node).membership.hellos == {}


async def _pong_server() -> None:
    while True:
        sender, msg = await receive()
        send(sender, ("pong", msg))


async def _ping(dest: Any) -> Any:
    send(dest, (self_pid(), "ping"))
    return await receive(timeout=5)


@pytest.mark.timeout(60)
async def test_a_flood_of_bad_connections_leaves_no_state_and_a_real_node_still_connects(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node, address = server
    node.spawn(_pong_server, name="pong")
    dist = _dist(node)
    baseline = _task_count()
    hello = Connection(
        Role.INITIATOR, node_name="n2@127.0.0.1", creation=1, cookie=COOKIE
    ).initiate()

    async def one_bad(i: int) -> None:
        stream = await _raw(address)
        try:
            kind = i % 4
            if kind == 0:
                await stream.send_all(b"\x13\x37" * 50)
            elif kind == 1:
                await stream.send_all(hello)  # a Hello claiming the real node's name, then gone
            elif kind == 2:
                await stream.send_all(b"\x7f\xff\xff\xff")
            else:
                await stream.send_all(hello[:10])
        finally:
            await stream.aclose()

    for _wave in range(4):
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one_bad, i)
    await _wait_until(lambda: _task_count() <= baseline and not dist.membership.hellos)
    membership = dist.membership
    assert dist.peers == {} and membership.handshakes == {} and membership.waiting == {}
    assert membership.hellos == {} and membership.dialing == set()

    # a legitimate node connects and talks, after all that
    async with open_node("n2@127.0.0.1", cookie=COOKIE) as n2:
        assert await n2.run(connect, address)
        assert await n2.run(_ping, ("pong", "srv@127.0.0.1")) == ("pong", "ping")

        async def seen() -> list[str]:
            return nodes()

        assert await node.run(seen) == ["n2@127.0.0.1"]


@pytest.mark.timeout(60)
async def test_connections_waiting_to_authenticate_are_capped_oldest_dropped_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with open_node(
        "srv@127.0.0.1", cookie=COOKIE, handshake_timeout=30, max_unauthenticated=8
    ) as node:
        node.spawn(_pong_server, name="pong")
        dist = _dist(node)
        address = await node.run(_address)
        assert address is not None
        idle = []
        for i in range(20):  # one at a time, so that the node sees them in this order
            idle.append(await _raw(address))
            await _wait_until(lambda i=i: len(dist._unauthenticated) == min(i + 1, 8))
        for stream in idle[:12]:  # the twelve oldest were dropped, long before the timeout
            await _closed_by_the_node(stream, timeout=5)
        assert len(dist._unauthenticated) == 8
        # a legitimate node gets in: its connection is the newest, not dropped
        async with open_node("n2@127.0.0.1", cookie=COOKIE) as n2:
            assert await n2.run(connect, address)
            assert await n2.run(_ping, ("pong", "srv@127.0.0.1")) == ("pong", "ping")
        assert len(dist._unauthenticated) == 7  # the legitimate one dropped the oldest idle
        for stream in idle:
            await stream.aclose()
        await _wait_until(lambda: len(dist._unauthenticated) == 0)
    dropped = [m for m in _records(caplog) if "had not authenticated" in m]
    assert len(dropped) == 1 and "max_unauthenticated=8" in dropped[0]


async def test_max_unauthenticated_is_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_unauthenticated"):
            async with open_node("x@127.0.0.1", cookie=COOKIE, max_unauthenticated=bad):
                pass
