"""Bad input gives a clear exception that names the problem."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from beamlet.actors import (
    GenServer,
    Node,
    NoProcError,
    NoReply,
    NoSuchNameError,
    NotInProcessError,
    Pid,
    async_stream,
    async_task,
    call,
    cancel_timer,
    cast,
    demonitor,
    link,
    monitor,
    open_node,
    receive,
    register,
    reply,
    run,
    self_pid,
    send,
    send_after,
    send_exit,
    spawn,
    spawn_monitor,
    stop,
    unlink,
    unregister,
    whereis,
)

BAD_TIMEOUTS: list[tuple[Any, type[Exception], str]] = [
    (-1, ValueError, ">= 0"),
    (math.nan, ValueError, ">= 0"),
    (-math.inf, ValueError, ">= 0"),
    ("1", TypeError, "number"),
    (True, TypeError, "number"),
    ([1], TypeError, "number"),
]


def sync_fn() -> None:
    pass


async def async_fn() -> None:
    pass


class Server(GenServer):
    pass


async def test_spawn_needs_an_async_function(node: Node) -> None:
    async def body() -> None:
        for bad in [sync_fn, lambda: None, 42, None]:
            with pytest.raises(TypeError, match="async"):
                spawn(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="sync_fn"):
            spawn(sync_fn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async"):
            async_task(sync_fn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="async"):
            async_stream(sync_fn, [1])  # type: ignore[arg-type]

    await node.run(body)
    with pytest.raises(TypeError, match="async"):
        node.spawn(sync_fn)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async"):
        await node.run(sync_fn)  # type: ignore[arg-type]


def test_run_needs_an_async_function() -> None:
    with pytest.raises(TypeError, match="async"):
        run(sync_fn)  # type: ignore[arg-type]


async def test_bad_destinations(node: Node) -> None:
    async def body() -> None:
        for bad in [42, None, ("only-one",), ("name", 1), (1, "node"), ["name", "node"], b"x"]:
            with pytest.raises(TypeError, match="destination"):
                send(bad, "msg")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="destination"):
                send_after(1, bad, "msg")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="destination"):
                monitor(bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="destination"):
                await call(bad, "msg")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="destination"):
                cast(bad, "msg")  # type: ignore[arg-type]
        for fn in [link, unlink]:
            with pytest.raises(TypeError, match="Pid"):
                fn("name")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Pid"):
            send_exit("name", "boom")  # type: ignore[arg-type]

    await node.run(body)


async def test_send_to_an_unregistered_name(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(NoSuchNameError, match="'ghost'"):
            send("ghost", "boo")
        send(("ghost", self_pid().node), "never raises")
        send(("ghost", "other@node"), "never raises")

    await node.run(body)


@pytest.mark.parametrize(("bad", "error", "text"), BAD_TIMEOUTS)
async def test_bad_timeouts(node: Node, bad: Any, error: type[Exception], text: str) -> None:
    async def body() -> None:
        server = await Server.start()
        assert server is not None
        with pytest.raises(error, match=text):
            await receive(timeout=bad)
        with pytest.raises(error, match=text):
            await call(server, "x", timeout=bad)
        with pytest.raises(error, match=text):
            await stop(server, timeout=bad)
        with pytest.raises(error, match=text):
            send_after(bad, self_pid(), "x")
        with pytest.raises(error, match=text):
            await Server.start(timeout=bad)
        with pytest.raises(error, match=text):
            NoReply(timeout=bad)
        task = async_task(async_fn)
        with pytest.raises(error, match=text):
            await task.join(timeout=bad)
        with pytest.raises(error, match=text):
            await task.poll(bad)
        with pytest.raises(error, match=text):
            async_stream(async_fn, [], timeout=bad)

    await node.run(body)


async def test_bad_match_predicate(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="predicate"):
            await receive("not callable")  # type: ignore[arg-type]
        send(self_pid(), "a message")
        with pytest.raises(TypeError, match="not callable"):
            await receive("not callable")  # type: ignore[arg-type]

    await node.run(body)


async def test_bad_names(node: Node) -> None:
    async def body() -> None:
        for bad in [None, 1, b"bytes", ("tuple",)]:
            with pytest.raises(TypeError, match="name must be a str"):
                register(bad)  # type: ignore[arg-type]
            if bad is not None:  # name=None means no name
                with pytest.raises(TypeError, match="name must be a str"):
                    spawn(async_fn, name=bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="name must be a str"):
                whereis(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            register("")
        with pytest.raises(ValueError, match="empty"):
            await Server.start(name="")
        with pytest.raises(NoSuchNameError, match="'unknown'"):
            unregister("unknown")

    await node.run(body)


async def test_register_a_dead_pid(node: Node) -> None:
    async def body() -> None:
        pid, _ref = spawn_monitor(async_fn)
        await receive()
        with pytest.raises(NoProcError, match=repr(pid).replace(".", r"\.")):
            register("dead", pid)

    await node.run(body)


async def test_bad_refs(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="Ref"):
            cancel_timer("ref")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Ref"):
            demonitor(self_pid())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="From"):
            reply(self_pid(), "x")  # type: ignore[arg-type]

    await node.run(body)


async def test_bad_stream_concurrency(node: Node) -> None:
    async def body() -> None:
        for bad, error in [(0, ValueError), (-1, ValueError), ("2", TypeError), (1.5, TypeError)]:
            with pytest.raises(error, match="max_concurrency"):
                async_stream(async_fn, [], max_concurrency=bad)

    await node.run(body)


async def test_bad_watchdog_threshold() -> None:
    for bad in [0, -1, math.nan]:
        with pytest.raises(ValueError, match="watchdog_threshold"):
            async with open_node(watchdog_threshold=bad):
                pass  # pragma: no cover
    for bad in ["1", True]:
        with pytest.raises(TypeError, match="watchdog_threshold"):
            async with open_node(watchdog_threshold=bad):  # type: ignore[arg-type]
                pass  # pragma: no cover


async def test_process_only_calls_outside_a_process(node: Node) -> None:
    with pytest.raises(NotInProcessError):
        self_pid()
    with pytest.raises(NotInProcessError):
        await receive()
    with pytest.raises(NotInProcessError):
        link(Pid("a", 1, 1))
    with pytest.raises(NotInProcessError):
        monitor("x")
    with pytest.raises(NotInProcessError):
        spawn(async_fn, link=True)
    with pytest.raises(NotInProcessError):
        await call("x", "y")
    with pytest.raises(NotInProcessError):
        async_task(async_fn)
    with pytest.raises(NotInProcessError):
        await Server.start_link()


async def test_no_node_at_all() -> None:
    with pytest.raises(NotInProcessError, match="open_node"):
        spawn(async_fn)
    with pytest.raises(NotInProcessError):
        send(Pid("a", 1, 1), "x")
    with pytest.raises(NotInProcessError):
        whereis("x")


async def test_spawn_on_a_closed_node() -> None:
    async with open_node() as node:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        node.spawn(async_fn)


async def test_two_receives_in_one_process(node: Node) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(RuntimeError, match="already waiting"):
                await receive()
            nursery.cancel_scope.cancel()

    await node.run(body)
