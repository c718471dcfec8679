"""Registry: each function and its return shapes, errors, listeners, cleanup on exit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import (
    AlreadyRegisteredError,
    Down,
    Exit,
    ExitSignal,
    NameTakenError,
    Node,
    NoProcError,
    NoSuchNameError,
    NotInProcessError,
    Pid,
    Registered,
    Registry,
    StartError,
    UnknownRegistryError,
    Unregistered,
    call,
    cast,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_monitor,
    stop,
    trap_exits,
    whereis,
)
from beamlet.actors._context import current_process
from beamlet.actors._process import Process
from beamlet.actors.lowlevel import add_exit_hook


async def idle() -> None:
    await receive()


async def registered(registry: str, key: Any, value: Any, parent: Pid) -> None:
    """Register ``key``, tell the parent, then wait for orders."""
    Registry.register(registry, key, value)
    send(parent, ("registered", self_pid()))
    while True:
        order = await receive()
        if order == "return":
            return
        if order == "crash":
            raise RuntimeError("boom")
        if isinstance(order, tuple) and order[0] == "exit":
            raise Exit(order[1])
        if isinstance(order, tuple) and order[0] == "register":
            Registry.register(registry, order[1], order[2])
            send(parent, "done")
        if isinstance(order, tuple) and order[0] == "unregister":
            Registry.unregister(registry, order[1])
            send(parent, "done")


async def start_registered(registry: str, key: Any, value: Any = None) -> Pid:
    pid = spawn(registered, registry, key, value, self_pid())
    await receive(lambda m: m == ("registered", pid))
    return pid


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


# -- start_link, child_spec ----------------------------------------------------------------


async def test_start_link_starts_a_process_registered_under_the_name(node: Node) -> None:
    async def body() -> None:
        pid = await Registry.start_link("reg")
        assert isinstance(pid, Pid)
        assert whereis("reg") == pid
        assert Registry.count("reg") == 0
        with pytest.raises(StartError) as info:
            await Registry.start_link("reg", keys="duplicate")
        assert info.value.reason == ("already_started", pid)
        # Another registry under another name is another table.
        await Registry.start_link("other", keys="duplicate")
        Registry.register("reg", "k", 1)
        assert Registry.lookup("other", "k") == []

    await node.run(body)


async def test_the_registry_is_linked_to_its_starter(node: Node) -> None:
    async def starter() -> None:
        await Registry.start_link("reg")
        await receive()

    async def body() -> None:
        pid, ref = spawn_monitor(starter)
        await trio.testing.wait_all_tasks_blocked()
        owner = whereis("reg")
        assert owner is not None
        owner_ref = monitor(owner)
        send_exit(pid, "kill")
        await wait_down(ref)
        assert (await wait_down(owner_ref)).reason == "killed"
        with pytest.raises(UnknownRegistryError):
            Registry.count("reg")

    await node.run(body)


async def test_start_link_needs_a_process() -> None:
    from beamlet.actors import open_node

    async with open_node():
        with pytest.raises(NotInProcessError):
            await Registry.start_link("reg")


def test_child_spec_is_a_mapping_that_names_the_registry() -> None:
    spec = Registry.child_spec("reg", keys="duplicate", partitions=2, listeners=["l"])
    assert spec["id"] == "reg"
    assert spec["args"] == ()
    assert spec["restart"] == "permanent"
    assert spec["type"] == "worker"
    assert spec["start"].__qualname__ == "Registry.start_link"
    assert Registry.child_spec("reg", id="mine")["id"] == "mine"
    with pytest.raises(ValueError, match="keys"):
        Registry.child_spec("reg", keys="many")  # type: ignore[arg-type]


async def test_the_child_spec_starts_the_registry(node: Node) -> None:
    async def body() -> None:
        spec = Registry.child_spec("reg", keys="duplicate", meta={"m": 1})
        pid = await spec["start"](*spec["args"])
        assert whereis("reg") == pid
        Registry.register("reg", "k", 1)
        Registry.register("reg", "k", 2)  # duplicate keys
        assert Registry.meta("reg", "m") == 1

    await node.run(body)


def test_the_registry_is_not_instantiated() -> None:
    with pytest.raises(TypeError, match=r"Registry\.start_link"):
        Registry()


# -- bad options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"keys": "many"}, ValueError, "keys must be 'unique' or 'duplicate', not 'many'"),
        ({"keys": 1}, ValueError, "keys must be 'unique' or 'duplicate', not 1"),
        ({"partitions": 0}, ValueError, "partitions must be an int >= 1, not 0"),
        ({"partitions": -3}, ValueError, "partitions must be an int >= 1, not -3"),
        ({"partitions": True}, TypeError, "partitions must be an int >= 1, not True"),
        ({"partitions": 1.5}, TypeError, "partitions must be an int >= 1, not 1.5"),
        ({"listeners": "log"}, TypeError, "listeners must be a list"),
        ({"listeners": [3]}, TypeError, "listener is a process name"),
        ({"listeners": [""]}, TypeError, "listener is a process name"),
        ({"meta": [1]}, TypeError, "meta must be a mapping"),
    ],
)
async def test_bad_options_are_refused_before_anything_starts(
    node: Node, options: dict[str, Any], error: type[Exception], text: str
) -> None:
    async def body() -> None:
        before = len(node.processes())
        with pytest.raises(error, match=text):
            await Registry.start_link("reg", **options)
        with pytest.raises(error, match=text):
            Registry.child_spec("reg", **options)
        assert len(node.processes()) == before
        assert whereis("reg") is None

    await node.run(body)


@pytest.mark.parametrize("name", ["", 3, None, ("a", "b")])
async def test_a_bad_registry_name_is_refused(node: Node, name: Any) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="a registry is named by a non-empty str"):
            await Registry.start_link(name)
        if name == "":  # a str, so a name no registry can have
            with pytest.raises(UnknownRegistryError):
                Registry.lookup(name, "k")
        else:
            with pytest.raises(TypeError, match="a registry is named by a str, not"):
                Registry.lookup(name, "k")
            with pytest.raises(TypeError, match="a registry is named by a str, not"):
                Registry.register(name, "k", 1)

    await node.run(body)


async def test_partitions_are_accepted_and_change_nothing(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate", partitions=8)
        pids = [await start_registered("reg", "k", i) for i in range(5)]
        calls: list[list[tuple[Pid, Any]]] = []
        Registry.dispatch("reg", "k", calls.append)
        assert calls == [[(pid, i) for i, pid in enumerate(pids)]]  # one call, in order
        assert Registry.lookup("reg", "k") == calls[0]

    await node.run(body)


# -- register, lookup and their errors ---------------------------------------------------------


async def test_register_returns_the_registry_process_and_lookup_gives_pid_value_pairs(
    node: Node,
) -> None:
    async def body() -> None:
        owner = await Registry.start_link("reg")
        assert Registry.register("reg", "k", {"v": 1}) == owner
        assert Registry.lookup("reg", "k") == [(self_pid(), {"v": 1})]
        assert Registry.lookup("reg", "missing") == []
        assert Registry.count("reg") == 1

    await node.run(body)


async def test_a_unique_key_held_is_an_error_naming_the_holder(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        holder = await start_registered("reg", "k", "first")
        with pytest.raises(AlreadyRegisteredError) as info:
            Registry.register("reg", "k", "second")
        error = info.value
        assert isinstance(error, NameTakenError) and isinstance(error, ValueError)
        assert error.pid == holder
        assert error.registry == "reg" and error.key == "k"
        assert error.reason == ("already_registered", holder)
        assert str(error) == f"key 'k' of registry 'reg' is already registered by {holder!r}"
        assert Registry.lookup("reg", "k") == [(holder, "first")]  # nothing changed
        assert Registry.keys("reg", self_pid()) == []
        # The holder itself may not register the key twice either.
        Registry.register("reg", "mine", 1)
        with pytest.raises(AlreadyRegisteredError) as info:
            Registry.register("reg", "mine", 2)
        assert info.value.pid == self_pid()
        assert Registry.lookup("reg", "mine") == [(self_pid(), 1)]

    await node.run(body)


async def test_duplicate_keys_take_several_entries_even_from_one_process(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        me = self_pid()
        other = await start_registered("reg", "k", "other")
        Registry.register("reg", "k", 1)
        Registry.register("reg", "k", 2)
        Registry.register("reg", "j", 3)
        assert Registry.lookup("reg", "k") == [(other, "other"), (me, 1), (me, 2)]
        assert Registry.keys("reg", me) == ["k", "k", "j"]
        assert Registry.values("reg", "k", me) == [1, 2]
        assert Registry.values("reg", "k", other) == ["other"]
        assert Registry.count("reg") == 4
        Registry.unregister("reg", "k")  # every entry of mine under k
        assert Registry.lookup("reg", "k") == [(other, "other")]
        assert Registry.keys("reg", me) == ["j"]

    await node.run(body)


async def test_unregister_removes_only_the_callers_entries(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        other = await start_registered("reg", "theirs")
        Registry.register("reg", "mine", 1)
        assert Registry.unregister("reg", "theirs") is None  # not mine: nothing happens
        assert Registry.lookup("reg", "theirs") == [(other, None)]
        Registry.unregister("reg", "mine")
        assert Registry.lookup("reg", "mine") == []
        Registry.unregister("reg", "mine")  # again: a no-op
        Registry.register("reg", "mine", 2)  # and free to take again
        assert Registry.lookup("reg", "mine") == [(self_pid(), 2)]

    await node.run(body)


async def test_keys_and_values(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        me = self_pid()
        Registry.register("reg", "a", 1)
        Registry.register("reg", ("b", 2), 2)
        assert Registry.keys("reg", me) == ["a", ("b", 2)]
        assert Registry.values("reg", "a", me) == [1]
        assert Registry.values("reg", "a", Pid(me.node, 999_999, me.creation)) == []
        assert Registry.values("reg", "zz", me) == []
        assert Registry.keys("reg", Pid("other@host", 1, 1)) == []
        with pytest.raises(TypeError, match=r"Registry.keys\(\) needs a Pid, not 'me'"):
            Registry.keys("reg", "me")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"Registry.values\(\) needs a Pid"):
            Registry.values("reg", "a", None)  # type: ignore[arg-type]

    await node.run(body)


async def test_match_and_count_match_take_a_predicate_on_the_value(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        me = self_pid()
        for value in [1, 5, 2, 8]:
            Registry.register("reg", "k", {"n": value})
        big = Registry.match("reg", "k", lambda v: v["n"] > 2)
        assert big == [(me, {"n": 5}), (me, {"n": 8})]
        assert Registry.match("reg", "nothing", lambda v: True) == []
        assert Registry.count_match("reg", "k", lambda v: v["n"] > 2) == 2
        assert Registry.count_match("reg", "nothing", lambda v: True) == 0
        with pytest.raises(TypeError, match=r"match\(\)'s predicate must be a callable"):
            Registry.match("reg", "k", 3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"count_match\(\)'s predicate"):
            Registry.count_match("reg", "k", None)  # type: ignore[arg-type]
        with pytest.raises(KeyError):  # the predicate's own error propagates
            Registry.match("reg", "k", lambda v: v["missing"])

    await node.run(body)


async def test_select_and_count_select(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        me = self_pid()
        other = await start_registered("reg", "b", 2)
        Registry.register("reg", "a", 1)
        assert sorted(Registry.select("reg"), key=repr) == [("a", me, 1), ("b", other, 2)]
        assert Registry.select("reg", lambda k, p, v: p == other) == [("b", other, 2)]
        assert Registry.count_select("reg", lambda k, p, v: v > 0) == 2
        assert Registry.count_select("reg", lambda k, p, v: k == "zz") == 0
        with pytest.raises(TypeError, match="select"):
            Registry.select("reg", "all")  # type: ignore[arg-type]

    await node.run(body)


async def test_count_counts_entries(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        assert Registry.count("reg") == 0
        for _ in range(3):
            Registry.register("reg", "k", None)
        pid = await start_registered("reg", "j")
        assert Registry.count("reg") == 4
        ref = monitor(pid)
        send(pid, "return")
        await wait_down(ref)
        assert Registry.count("reg") == 3

    await node.run(body)


# -- dispatch ---------------------------------------------------------------------------------


async def test_dispatch_calls_fn_with_the_entries_in_the_caller(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        subscribers = [await start_registered("reg", "topic", i) for i in range(3)]
        seen: list[Any] = []

        def fn(entries: list[tuple[Pid, Any]]) -> None:
            seen.append((current_process().pid, entries))
            for pid, value in entries:
                send(pid, ("register", "got", value))

        assert Registry.dispatch("reg", "topic", fn) is None
        assert seen == [(self_pid(), [(pid, i) for i, pid in enumerate(subscribers)])]
        for _ in subscribers:
            await receive(lambda m: m == "done")
        assert sorted(v for _, v in Registry.lookup("reg", "got")) == [0, 1, 2]

    await node.run(body)


async def test_dispatch_does_not_call_fn_without_entries(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        called: list[Any] = []
        Registry.dispatch("reg", "nobody", called.append)
        assert called == []

    await node.run(body)


async def test_dispatch_hands_out_a_list_fn_may_change_the_registry_under(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate")
        Registry.register("reg", "k", 1)
        Registry.register("reg", "k", 2)
        got: list[Any] = []

        def fn(entries: list[tuple[Pid, Any]]) -> None:
            Registry.unregister("reg", "k")
            Registry.register("reg", "k", 3)
            got.extend(entries)
            entries.clear()

        Registry.dispatch("reg", "k", fn)
        assert got == [(self_pid(), 1), (self_pid(), 2)]
        assert Registry.lookup("reg", "k") == [(self_pid(), 3)]

    await node.run(body)


async def test_dispatch_errors(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        Registry.register("reg", "k", 1)

        def fails(entries: list[Any]) -> None:
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            Registry.dispatch("reg", "k", fails)

        async def is_async(entries: list[Any]) -> None:
            pass

        with pytest.raises(TypeError, match=r"dispatch\(\) calls a plain function"):
            Registry.dispatch("reg", "k", is_async)
        with pytest.raises(TypeError, match=r"dispatch\(\) needs a function"):
            Registry.dispatch("reg", "k", None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"dispatch\(\) needs a function"):
            Registry.dispatch("reg", "empty", "not callable")  # type: ignore[arg-type]
        assert Registry.lookup("reg", "k") == [(self_pid(), 1)]

    await node.run(body)


# -- update_value, unregister_match ------------------------------------------------------------


async def test_update_value(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        Registry.register("reg", "k", 1)
        assert Registry.update_value("reg", "k", lambda v: v + 10) == (11, 1)
        assert Registry.lookup("reg", "k") == [(self_pid(), 11)]
        assert Registry.update_value("reg", "missing", lambda v: v) is None
        other = await start_registered("reg", "theirs", 5)
        called: list[Any] = []
        assert Registry.update_value("reg", "theirs", called.append) is None  # not mine
        assert called == []
        assert Registry.lookup("reg", "theirs") == [(other, 5)]

        def fails(value: int) -> int:
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            Registry.update_value("reg", "k", fails)
        assert Registry.lookup("reg", "k") == [(self_pid(), 11)]
        with pytest.raises(TypeError, match="update_value"):
            Registry.update_value("reg", "k", 3)  # type: ignore[arg-type]

    await node.run(body)


async def test_update_value_needs_unique_keys(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("dup", keys="duplicate")
        Registry.register("dup", "k", 1)
        with pytest.raises(ValueError, match=r"update_value\(\) needs a registry with unique keys"):
            Registry.update_value("dup", "k", lambda v: v)
        assert Registry.lookup("dup", "k") == [(self_pid(), 1)]

    await node.run(body)


async def test_unregister_match(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("dup", keys="duplicate", listeners=[self_pid()])
        me = self_pid()
        for value in ["a", "b", "c"]:
            Registry.register("dup", "k", value)
        for _ in range(3):
            await receive(lambda m: type(m) is Registered)
        assert Registry.unregister_match("dup", "k", lambda v: v == "b") is None
        assert Registry.lookup("dup", "k") == [(me, "a"), (me, "c")]
        Registry.unregister_match("dup", "k", lambda v: v == "zz")
        assert Registry.count("dup") == 2
        Registry.unregister_match("dup", "k", lambda v: True)
        assert Registry.lookup("dup", "k") == []
        # Only the last one, which left the process without the key, was told.
        assert await receive(timeout=0) == Unregistered("dup", "k", me)
        with pytest.raises(trio.TooSlowError):
            await receive(timeout=0)
        with pytest.raises(TypeError, match="unregister_match"):
            Registry.unregister_match("dup", "k", "v")  # type: ignore[arg-type]

    await node.run(body)


async def test_unregister_match_leaves_other_processes_alone(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        other = await start_registered("reg", "k", 1)
        Registry.unregister_match("reg", "k", lambda v: True)
        assert Registry.lookup("reg", "k") == [(other, 1)]

    await node.run(body)


# -- meta ---------------------------------------------------------------------------------------


async def test_meta(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", meta={"from": "start"})
        assert Registry.meta("reg", "from") == "start"
        assert Registry.put_meta("reg", ("t", 1), [1]) is None
        assert Registry.meta("reg", ("t", 1)) == [1]
        with pytest.raises(KeyError, match="registry 'reg' has no metadata 'nope'"):
            Registry.meta("reg", "nope")
        assert Registry.meta("reg", "nope", None) is None
        assert Registry.meta("reg", "nope", 0) == 0
        Registry.delete_meta("reg", "from")
        Registry.delete_meta("reg", "from")  # absent: a no-op
        assert Registry.meta("reg", "from", "gone") == "gone"
        with pytest.raises(TypeError, match="hashable"):
            Registry.put_meta("reg", [], 1)
        with pytest.raises(TypeError, match="hashable"):
            Registry.meta("reg", {})
        with pytest.raises(TypeError, match="hashable"):
            Registry.delete_meta("reg", [])

    await node.run(body)


# -- reads outside processes, writes only in them --------------------------------------------


async def test_reads_work_outside_processes_writes_need_one(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        Registry.register("reg", "k", 1)
        await receive()

    pid = spawn(body)
    await trio.testing.wait_all_tasks_blocked()
    assert Registry.lookup("reg", "k") == [(pid, 1)]
    assert Registry.keys("reg", pid) == ["k"]
    assert Registry.count("reg") == 1
    got: list[Any] = []
    Registry.dispatch("reg", "k", got.extend)
    assert got == [(pid, 1)]
    for write in [
        lambda: Registry.register("reg", "j", 1),
        lambda: Registry.unregister("reg", "k"),
        lambda: Registry.update_value("reg", "k", lambda v: v),
        lambda: Registry.unregister_match("reg", "k", bool),
    ]:
        with pytest.raises(NotInProcessError):
            write()
    assert Registry.lookup("reg", "k") == [(pid, 1)]


async def test_reads_never_message_anyone(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads and dispatch work while the registry's own process is stuck in a callback."""
    from beamlet.actors._registry_state import RegistryServer

    stuck = trio.Event()

    async def handle_info(self: Any, msg: Any) -> None:
        stuck.set()
        await trio.sleep_forever()

    monkeypatch.setattr(RegistryServer, "handle_info", handle_info)
    delivered: list[Any] = []
    original = Process.deliver

    def spy(self: Process, msg: Any) -> None:
        delivered.append(msg)
        original(self, msg)

    async def body() -> None:
        owner = await Registry.start_link("reg", keys="duplicate")
        sub = await start_registered("reg", "k", 1)
        send(owner, "get stuck")
        await stuck.wait()
        monkeypatch.setattr(Process, "deliver", spy)
        try:
            assert Registry.lookup("reg", "k") == [(sub, 1)]
            assert Registry.keys("reg", sub) == ["k"]
            assert Registry.values("reg", "k", sub) == [1]
            assert Registry.match("reg", "k", bool) == [(sub, 1)]
            assert Registry.count("reg") == 1
            assert Registry.count_match("reg", "k", bool) == 1
            assert Registry.select("reg") == [("k", sub, 1)]
            assert Registry.meta("reg", "x", None) is None
            Registry.dispatch("reg", "k", lambda entries: None)
            # Writes do not message the registry either.
            Registry.register("reg", "k", 2)
            Registry.unregister("reg", "k")
            Registry.unregister_match("reg", "k", bool)
            assert delivered == []
        finally:
            monkeypatch.setattr(Process, "deliver", original)
        info = node.process_info(owner)
        assert info is not None and info.message_queue_len == 0

    await node.run(body)


# -- bad keys, unknown registries -----------------------------------------------------------


async def test_an_unhashable_key_is_a_clear_type_error(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        await Registry.start_link("dup", keys="duplicate")
        for registry in ["reg", "dup"]:
            for call_it in [
                lambda r: Registry.register(r, ["k"], 1),
                lambda r: Registry.lookup(r, ["k"]),
                lambda r: Registry.unregister(r, ["k"]),
                lambda r: Registry.values(r, ["k"], self_pid()),
                lambda r: Registry.match(r, ["k"], bool),
                lambda r: Registry.count_match(r, ["k"], bool),
                lambda r: Registry.dispatch(r, ["k"], print),
                lambda r: Registry.unregister_match(r, ["k"], bool),
            ]:
                with pytest.raises(TypeError, match=r"registry key must be hashable, not list"):
                    call_it(registry)
            assert Registry.count(registry) == 0
        with pytest.raises(TypeError, match="hashable"):
            Registry.update_value("reg", {}, lambda v: v)
        with pytest.raises(TypeError, match="hashable"):
            Registry.via("reg", {"a": 1})

    await node.run(body)


async def test_an_unknown_registry_is_a_clear_error_naming_it(node: Node) -> None:
    async def body() -> None:
        spawn(idle, name="plain")  # a process name that is not a registry
        for name in ["nope", "plain"]:
            for call_it in [
                lambda name: Registry.register(name, "k", 1),
                lambda name: Registry.unregister(name, "k"),
                lambda name: Registry.lookup(name, "k"),
                lambda name: Registry.keys(name, self_pid()),
                lambda name: Registry.values(name, "k", self_pid()),
                lambda name: Registry.match(name, "k", bool),
                lambda name: Registry.count(name),
                lambda name: Registry.count_match(name, "k", bool),
                lambda name: Registry.dispatch(name, "k", print),
                lambda name: Registry.update_value(name, "k", bool),
                lambda name: Registry.unregister_match(name, "k", bool),
                lambda name: Registry.select(name),
                lambda name: Registry.meta(name, "k"),
                lambda name: Registry.put_meta(name, "k", 1),
            ]:
                with pytest.raises(UnknownRegistryError) as info:
                    call_it(name)
                assert info.value.registry == name
                assert isinstance(info.value, NoSuchNameError)
                assert isinstance(info.value, LookupError)
                assert f"no registry named {name!r} is running on node" in str(info.value)

    await node.run(body)


# -- listeners ----------------------------------------------------------------------------------


async def test_listeners_are_told_of_registrations_and_unregistrations(node: Node) -> None:
    async def listener(parent: Pid) -> None:
        while True:
            send(parent, ("heard", await receive()))

    async def body() -> None:
        me = self_pid()
        spawn(listener, me, name="ears")
        second = spawn(listener, me)
        await Registry.start_link("reg", listeners=["ears", second, "not-running"])
        Registry.register("reg", "k", {"v": 1})
        for _ in range(2):
            assert await receive() == ("heard", Registered("reg", "k", me, {"v": 1}))
        Registry.unregister("reg", "k")
        for _ in range(2):
            assert await receive() == ("heard", Unregistered("reg", "k", me))
        Registry.unregister("reg", "k")  # nothing to remove: nobody is told
        Registry.update_value("reg", "k", bool)  # not held
        # A process that exits sends no Unregistered (as in Elixir): monitor it.
        pid = await start_registered("reg", "j", 2)
        for _ in range(2):
            assert await receive(lambda m: m[0] == "heard") == (
                "heard",
                Registered("reg", "j", pid, 2),
            )
        ref = monitor(pid)
        send(pid, "crash")
        await wait_down(ref)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.TooSlowError):
            await receive(timeout=0)

    await node.run(body)


async def test_listener_messages_come_from_the_registering_process(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys="duplicate", listeners=[self_pid()])
        pid = await start_registered("reg", "k", 1)
        msg = await receive(lambda m: type(m) is Registered)
        assert msg == Registered("reg", "k", pid, 1)
        assert (msg.registry, msg.key, msg.pid, msg.value) == ("reg", "k", pid, 1)

    await node.run(body)


# -- cleanup on exit -------------------------------------------------------------------------


async def exits_returning(pid: Pid) -> None:
    send(pid, "return")


async def exits_crashing(pid: Pid) -> None:
    send(pid, "crash")


async def exits_with_exit(pid: Pid) -> None:
    send(pid, ("exit", "bye"))


async def exits_killed(pid: Pid) -> None:
    send_exit(pid, "kill")


async def exits_by_signal(pid: Pid) -> None:
    send_exit(pid, "some reason")


async def exits_normally_on_its_own_signal(pid: Pid) -> None:
    send(pid, ("exit", "normal"))


EXIT_KINDS: dict[str, Callable[[Pid], Awaitable[None]]] = {
    "returned": exits_returning,
    "crashed": exits_crashing,
    "raised Exit": exits_with_exit,
    "killed": exits_killed,
    "exit signal": exits_by_signal,
    "Exit normal": exits_normally_on_its_own_signal,
}


@pytest.mark.parametrize("keys", ["unique", "duplicate"])
@pytest.mark.parametrize("kind", list(EXIT_KINDS))
async def test_entries_vanish_when_the_process_exits(node: Node, kind: str, keys: str) -> None:
    async def body() -> None:
        await Registry.start_link("reg", keys=keys)  # type: ignore[arg-type]
        pid = await start_registered("reg", "a", 1)
        for key in ["b", "c"]:
            send(pid, ("register", key, 2))
            await receive(lambda m: m == "done")
        Registry.register("reg", "mine", 0)
        assert Registry.count("reg") == 4
        ref = monitor(pid)
        await EXIT_KINDS[kind](pid)
        down = await wait_down(ref)
        # Gone by the time anyone can see the Down.
        assert Registry.keys("reg", pid) == []
        for key in "abc":
            assert Registry.lookup("reg", key) == []
        assert Registry.lookup("reg", "mine") == [(self_pid(), 0)]
        assert Registry.count("reg") == 1
        assert down.reason != "noproc"

    await node.run(body)


async def test_entries_vanish_when_a_linked_process_takes_the_process_down(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        pid = await start_registered("reg", "k")
        ref = monitor(pid)

        async def linker() -> None:
            from beamlet.actors import link

            link(pid)
            raise Exit("linked death")

        spawn(linker)
        assert (await wait_down(ref)).reason == "linked death"
        assert Registry.lookup("reg", "k") == []

    await node.run(body)


async def test_entries_vanish_when_the_node_shuts_down_a_process(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        Registry.register("reg", "k", 1)
        pid = await start_registered("reg", "j")
        proc = node.lookup(pid)
        assert proc is not None
        proc.kill("shutdown")
        await trio.testing.wait_all_tasks_blocked()
        assert Registry.lookup("reg", "j") == []
        assert Registry.lookup("reg", "k") == [(self_pid(), 1)]

    await node.run(body)


async def test_a_process_that_is_exiting_leaves_no_entry(node: Node) -> None:
    """Killed, but still running to its next checkpoint: what it registers goes with it."""

    async def doomed(parent: Pid) -> None:
        send_exit(self_pid(), "kill")  # the kill is decided; the process has not ended yet
        Registry.register("reg", "late", 1)
        Registry.register("dup", "late", 1)
        send(parent, ("seen", Registry.lookup("reg", "late")))
        await trio.lowlevel.checkpoint()  # where it ends
        raise AssertionError("not reached")

    async def body() -> None:
        await Registry.start_link("reg")
        await Registry.start_link("dup", keys="duplicate")
        pid, ref = spawn_monitor(doomed, self_pid())
        assert (await wait_down(ref)).reason == "killed"
        assert await receive() == ("seen", [(pid, 1)])  # it was alive when it registered
        assert Registry.lookup("reg", "late") == []
        assert Registry.lookup("dup", "late") == []
        assert Registry.count("reg") == Registry.count("dup") == 0
        Registry.register("reg", "late", 2)  # the key is free again

    await node.run(body)


@pytest.mark.parametrize("first", [True, False])
async def test_a_process_that_has_exited_cannot_register(node: Node, first: bool) -> None:
    """From its exit hooks (run after the process left the node), register is refused,
    whether the hook runs before or after the registry's own."""
    errors: list[BaseException] = []

    def hook(pid: Pid, reason: Any) -> None:
        try:
            Registry.register("reg", "from-the-grave", 1)
        except NoProcError as exc:
            errors.append(exc)

    async def dies() -> None:
        if first:
            add_exit_hook(self_pid(), hook)
        Registry.register("reg", "alive", 1)
        if not first:
            add_exit_hook(self_pid(), hook)

    async def body() -> None:
        await Registry.start_link("reg")
        pid, ref = spawn_monitor(dies)
        await wait_down(ref)
        assert Registry.count("reg") == 0
        [error] = errors
        assert "has exited: it cannot register 'from-the-grave' in registry 'reg'" in str(error)
        assert repr(pid) in str(error)

    await node.run(body)


async def test_the_exit_hook_goes_when_the_last_entry_does(node: Node) -> None:
    async def body() -> None:
        await Registry.start_link("reg")
        await Registry.start_link("dup", keys="duplicate")
        proc = current_process()
        before = list(proc.hooks or [])
        Registry.register("reg", "a", 1)
        Registry.register("reg", "b", 1)
        Registry.register("dup", "a", 1)
        Registry.register("dup", "a", 2)
        assert len(proc.hooks or []) == len(before) + 2  # one per registry
        Registry.unregister("reg", "a")
        Registry.unregister("reg", "b")
        Registry.unregister_match("dup", "a", lambda v: v == 1)
        assert len(proc.hooks or []) == len(before) + 1
        Registry.unregister_match("dup", "a", lambda v: True)
        assert list(proc.hooks or []) == before

    await node.run(body)


async def test_an_exit_hook_that_unregisters_does_not_disturb_the_others(node: Node) -> None:
    ran: list[str] = []

    def unregisters(pid: Pid, reason: Any) -> None:
        Registry.unregister("reg", "k")
        ran.append("unregisters")

    def last(pid: Pid, reason: Any) -> None:
        ran.append("last")

    async def dies() -> None:
        add_exit_hook(self_pid(), unregisters)
        Registry.register("reg", "k", 1)
        add_exit_hook(self_pid(), last)

    async def body() -> None:
        await Registry.start_link("reg")
        _pid, ref = spawn_monitor(dies)
        await wait_down(ref)
        assert ran == ["unregisters", "last"]
        assert Registry.count("reg") == 0

    await node.run(body)


# -- when the registry's process exits -----------------------------------------------------------


async def test_when_the_registry_exits_its_table_goes_and_calls_name_it(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        owner = await Registry.start_link("reg", meta={"m": 1})
        Registry.register("reg", "k", 1)
        ref = monitor(owner)
        send_exit(owner, "kill")
        await wait_down(ref)
        # The caller was linked and registered: two signals, both trapped.
        signals = [await receive(lambda m: type(m) is ExitSignal) for _ in range(2)]
        assert signals == [ExitSignal(owner, "killed")] * 2
        with pytest.raises(UnknownRegistryError, match="no registry named 'reg'"):
            Registry.lookup("reg", "k")
        with pytest.raises(UnknownRegistryError, match="'reg'"):
            Registry.register("reg", "k", 1)
        with pytest.raises(UnknownRegistryError, match="'reg'"):
            Registry.meta("reg", "m")
        # A new registry of the same name starts empty.
        await Registry.start_link("reg", keys="duplicate")
        assert Registry.count("reg") == 0
        assert Registry.keys("reg", self_pid()) == []
        Registry.register("reg", "k", 2)
        Registry.register("reg", "k", 3)
        assert Registry.count("reg") == 2

    await node.run(body)


async def test_registered_processes_get_the_registrys_exit_signal(node: Node) -> None:
    """As Elixir's link between a registered process and its registry."""

    async def trapping(parent: Pid) -> None:
        trap_exits(True)
        Registry.register("reg", "trapping", None)
        send(parent, "ready")
        send(parent, ("trapped", await receive()))
        await receive()

    async def body() -> None:
        owner = await spawn_registry("reg")
        plain = await start_registered("reg", "plain")
        unregistered = await start_registered("reg", "gone-before")
        send(unregistered, ("unregister", "gone-before"))
        await receive(lambda m: m == "done")
        trapper = spawn(trapping, self_pid())
        await receive(lambda m: m == "ready")
        refs = {pid: monitor(pid) for pid in [plain, unregistered, trapper]}
        send_exit(owner, "shutdown")
        assert (await wait_down(refs[plain])).reason == "shutdown"
        assert await receive(lambda m: m[0] == "trapped") == (
            "trapped",
            ExitSignal(owner, "shutdown"),
        )
        await trio.testing.wait_all_tasks_blocked()
        # Those without entries, and those trapping exits, live on.
        assert node.lookup(unregistered) is not None
        trapper_proc = node.lookup(trapper)
        assert trapper_proc is not None
        assert not trapper_proc.hooks  # the dead registry's hook is gone too

    await node.run(body)


async def spawn_registry(name: str, **options: Any) -> Pid:
    """Start a registry in a process of its own, unlinked from the caller."""
    parent = self_pid()

    async def holder() -> None:
        send(parent, ("registry", await Registry.start_link(name, **options)))
        await receive()

    spawn(holder)
    msg = await receive(lambda m: isinstance(m, tuple) and m[0] == "registry")
    pid: Pid = msg[1]
    return pid


async def test_a_normal_exit_of_the_registry_kills_no_one(node: Node) -> None:
    async def body() -> None:
        owner = await Registry.start_link("reg2")
        pid = await start_registered("reg2", "k")
        ref = monitor(owner)
        await stop(owner)
        assert (await wait_down(ref)).reason == "normal"
        await trio.testing.wait_all_tasks_blocked()
        assert node.lookup(pid) is not None
        with pytest.raises(UnknownRegistryError):
            Registry.count("reg2")

    await node.run(body)


async def test_the_registry_process_answers_stray_requests_and_keeps_going(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        owner = await Registry.start_link("reg")
        Registry.register("reg", "k", 1)
        assert await call(owner, "what?") == ("error", ("unknown_call", "what?"))
        cast(owner, "hm")
        send(owner, "stray")
        await trio.testing.wait_all_tasks_blocked()
        assert whereis("reg") == owner
        assert Registry.lookup("reg", "k") == [(self_pid(), 1)]

    with caplog.at_level(logging.WARNING, logger="beamlet"):
        await node.run(body)
    text = caplog.text
    assert "registry 'reg' received an unexpected call" in text
    assert "registry 'reg' received an unexpected cast" in text
    assert "'stray'" in text


async def test_when_the_node_is_renamed_the_registry_follows(node: Node) -> None:
    """``start_distribution`` renames the node: pids in the tables get the new name."""

    async def body() -> None:
        trap_exits(True)
        owner = await Registry.start_link("reg", keys="duplicate")
        await Registry.start_link("uniq")
        Registry.register("reg", "k", 1)
        Registry.register("uniq", "u", 1)
        other = await start_registered("reg", "j", 2)
        node.rename("renamed@host")
        me = self_pid()
        assert me.node == "renamed@host"
        renamed = Pid("renamed@host", other.id, other.creation)
        assert Registry.lookup("reg", "k") == [(me, 1)]
        assert Registry.lookup("uniq", "u") == [(me, 1)]
        assert Registry.lookup("reg", "j") == [(renamed, 2)]
        assert Registry.keys("reg", me) == ["k"]
        assert Registry.keys("uniq", me) == ["u"]
        assert Registry.values("reg", "j", renamed) == [2]
        # Exits still clean up, and writes still find the caller's entries.
        ref = monitor(renamed)
        send(renamed, "return")
        await wait_down(ref)
        assert Registry.lookup("reg", "j") == []
        Registry.unregister("reg", "k")
        assert Registry.count("reg") == 0
        assert Registry.update_value("uniq", "u", lambda v: v + 1) == (2, 1)
        # The registry's exit signal comes from its renamed pid.
        new_owner = whereis("reg")
        assert new_owner == Pid("renamed@host", owner.id, owner.creation)
        Registry.register("reg", "k", 1)
        send_exit(new_owner, "kill")
        signals = {await receive(lambda m: type(m) is ExitSignal) for _ in range(2)}
        assert signals == {ExitSignal(new_owner, "killed")}

    await node.run(body)
