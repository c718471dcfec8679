"""Via names: processes named through a unique Registry, wherever a registered name goes."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    AlreadyRegisteredError,
    CallExitError,
    Down,
    GenServer,
    Ignore,
    NameTakenError,
    Node,
    NoSuchNameError,
    Registered,
    Registry,
    StartError,
    Stop,
    UnknownRegistryError,
    Via,
    call,
    cast,
    monitor,
    process_info,
    receive,
    registered,
    self_pid,
    send,
    send_after,
    send_exit,
    spawn,
    spawn_link,
    spawn_monitor,
    stop,
    trap_exits,
    whereis,
)


async def echo() -> None:
    while True:
        sender, msg = await receive()
        send(sender, ("echo", msg))


class Counter(GenServer):
    async def init(self, start: int) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "pid":
            return self_pid()
        return self.n

    async def handle_cast(self, request: int) -> None:
        self.n += request


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


# -- the Via value -----------------------------------------------------------------------------


def test_via_is_a_frozen_value_named_by_registry_and_key() -> None:
    via = Registry.via("workers", ("job", 1), {"meta": 1})
    assert isinstance(via, Via)
    assert (via.registry, via.key, via.value) == ("workers", ("job", 1), {"meta": 1})
    assert via == Registry.via("workers", ("job", 1))  # the value is not part of the name
    assert hash(via) == hash(Via("workers", ("job", 1)))
    assert via != Registry.via("workers", ("job", 2))
    assert via != Registry.via("other", ("job", 1))
    assert repr(via) == "Registry.via('workers', ('job', 1))"
    with pytest.raises(AttributeError):
        via.key = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("registry", "key", "text"),
    [
        ("", "k", "a registry is named by a non-empty str, not ''"),
        (3, "k", "a registry is named by a non-empty str, not 3"),
        ("workers", ["k"], "a registry key must be hashable, not list"),
    ],
)
def test_a_bad_via_is_refused_where_it_is_made(registry: Any, key: Any, text: str) -> None:
    with pytest.raises(TypeError, match=text):
        Registry.via(registry, key)


# -- spawn ---------------------------------------------------------------------------------------


async def test_spawn_with_a_via_name_registers_before_the_process_runs(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("workers", listeners=[self_pid()])
        via = Registry.via("workers", "echo", "my value")
        pid = spawn(echo, name=via)
        # Registered at once, before the new process ran.
        assert Registry.lookup("workers", "echo") == [(pid, "my value")]
        assert await receive() == Registered("workers", "echo", pid, "my value")
        assert whereis(via) == pid
        send(via, (self_pid(), "hi"))
        assert await receive() == ("echo", "hi")
        # A via name is not a node-wide name.
        assert "echo" not in registered()
        info = process_info(pid)
        assert info is not None and info.name is None
        ref = monitor(pid)
        send_exit(pid, "kill")
        await wait_down(ref)
        assert whereis(via) is None
        assert Registry.lookup("workers", "echo") == []
        with pytest.raises(NoSuchNameError, match=r"Registry\.via\('workers', 'echo'\)"):
            send(via, "nobody")

    await node.run(body)


async def test_a_taken_via_name_starts_nothing(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("workers")
        first = spawn(echo, name=Registry.via("workers", "w"))
        before = set(node.processes())
        for spawner in [spawn, spawn_link]:
            with pytest.raises(AlreadyRegisteredError) as info:
                spawner(echo, name=Registry.via("workers", "w"))
            assert info.value.pid == first
            assert isinstance(info.value, NameTakenError)
        with pytest.raises(AlreadyRegisteredError):
            spawn_monitor(echo, name=Registry.via("workers", "w"))
        assert set(node.processes()) == before
        assert Registry.lookup("workers", "w") == [(first, None)]

    await node.run(body)


async def test_spawn_link_and_spawn_monitor_take_via_names(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        await Registry.start_link("workers")
        linked = spawn_link(echo, name=Registry.via("workers", "linked"))
        watched, ref = spawn_monitor(echo, name=Registry.via("workers", "watched"))
        assert whereis(Registry.via("workers", "linked")) == linked
        assert whereis(Registry.via("workers", "watched")) == watched
        send_exit(watched, "bye")
        assert (await wait_down(ref)).reason == "bye"
        assert Registry.lookup("workers", "watched") == []

    await node.run(body)


async def test_node_spawn_takes_a_via_name(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("workers")
        pid = node.spawn(echo, name=Registry.via("workers", "n"))
        assert whereis(Registry.via("workers", "n")) == pid

    await node.run(body)


async def test_thousands_of_via_names_leave_the_node_name_table_alone(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("workers")
        names_before = len(registered())
        pids = [spawn(echo, name=Registry.via("workers", i)) for i in range(2000)]
        assert len(registered()) == names_before
        assert Registry.count("workers") == 2000
        me = self_pid()
        for i in range(0, 2000, 97):
            send(Registry.via("workers", i), (me, i))
            assert await receive() == ("echo", i)
        assert whereis(Registry.via("workers", 1999)) == pids[1999]

    await node.run(body)


# -- GenServer ----------------------------------------------------------------------------------


async def test_a_gen_server_named_via_a_registry(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("servers")
        name = Registry.via("servers", ("counter", 1))
        pid = await Counter.start_link(5, name=name)
        assert pid is not None
        assert Registry.lookup("servers", ("counter", 1)) == [(pid, None)]
        assert await call(name, "get") == 5
        cast(name, 2)
        assert await call(name, "get") == 7
        assert await call(name, "pid") == pid
        with pytest.raises(StartError) as info:
            await Counter.start(0, name=name)
        assert info.value.reason == ("already_started", pid)
        await stop(name)
        assert whereis(name) is None
        with pytest.raises(CallExitError) as exit_info:
            await call(name, "get")
        assert exit_info.value.reason == "noproc"
        with pytest.raises(CallExitError) as exit_info:
            await stop(name)
        assert exit_info.value.reason == "noproc"
        cast(name, 1)  # dropped, as to an unregistered name
        # The name is free again.
        again = await Counter.start(1, name=name)
        assert again is not None and again != pid
        assert await call(name, "get") == 1

    await node.run(body)


async def test_a_server_that_fails_to_start_frees_its_via_name(node: Node) -> None:
    class Fails(GenServer):
        async def init(self, how: str) -> Any:
            if how == "ignore":
                return Ignore
            if how == "stop":
                return Stop("no")
            raise RuntimeError("init failed")

    async def body() -> None:
        await Registry.start_link("servers")
        name = Registry.via("servers", "s")
        assert await Fails.start("ignore", name=name) is None
        for how in ["stop", "raise"]:
            with pytest.raises(StartError):
                await Fails.start(how, name=name)
        await trio.testing.wait_all_tasks_blocked()
        assert Registry.count("servers") == 0

    await node.run(body)


async def test_monitor_a_via_name(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("servers")
        name = Registry.via("servers", "s")
        pid = await Counter.start(0, name=name)
        ref = monitor(name)
        await stop(pid, "done")
        assert await wait_down(ref) == Down(ref, name, "done")
        ref = monitor(name)  # nobody holds it now
        assert await wait_down(ref) == Down(ref, name, "noproc")

    await node.run(body)


async def test_send_after_resolves_a_via_name_when_it_fires(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        await Registry.start_link("workers")
        name = Registry.via("workers", "late")
        me = self_pid()
        send_after(5.0, name, (me, "first"))
        send_after(10.0, name, (me, "second"))
        first = spawn(echo, name=name)
        assert await receive() == ("echo", "first")
        assert trio.current_time() == 5.0
        send_exit(first, "kill")
        await trio.testing.wait_all_tasks_blocked()
        spawn(echo, name=name)  # a new holder, by the time the second fires
        assert await receive() == ("echo", "second")
        assert trio.current_time() == 10.0
        send_after(1.0, Registry.via("workers", "nobody"), "dropped")
        await trio.sleep(2.0)
        with pytest.raises(trio.TooSlowError):
            await receive(timeout=0)

    await node.run(body)


# -- unknown names, unknown registries, duplicate registries ------------------------------------


async def test_an_unknown_registry_is_a_clear_error_where_a_name_would_fail(node: Node) -> None:
    async def body() -> None:
        name = Registry.via("nope", "k")
        with pytest.raises(UnknownRegistryError, match="no registry named 'nope'"):
            send(name, "x")
        with pytest.raises(UnknownRegistryError):
            whereis(name)
        with pytest.raises(UnknownRegistryError):
            await call(name, "x")
        with pytest.raises(UnknownRegistryError):
            await stop(name)
        with pytest.raises(UnknownRegistryError):
            monitor(name)
        with pytest.raises(UnknownRegistryError):
            spawn(echo, name=name)
        with pytest.raises(UnknownRegistryError):  # a bad argument, not a failed start
            await Counter.start(0, name=name)
        cast(name, "dropped")  # cast never fails

    await node.run(body)


async def test_a_duplicate_registry_cannot_hold_via_names(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("dup", keys="duplicate")
        name = Registry.via("dup", "k")
        text = "a via name needs a registry with unique keys; 'dup' has duplicate keys"
        with pytest.raises(ValueError, match=text):
            spawn(echo, name=name)
        with pytest.raises(ValueError, match=text):
            send(name, "x")
        with pytest.raises(ValueError, match=text):
            whereis(name)
        cast(name, "dropped")
        assert Registry.count("dup") == 0

    await node.run(body)


async def test_a_bad_destination_is_still_a_type_error(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="a destination is"):
            send(3, "x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="a destination is"):
            await call(["x"], "x")  # type: ignore[arg-type]

    await node.run(body)
