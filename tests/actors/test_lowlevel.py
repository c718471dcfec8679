"""beamlet.actors.lowlevel: exit hooks, NodeVar, reply aliases, adopt_task, routers, checks."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    NoProcError,
    NotInProcessError,
    Pid,
    ReceiveTimeoutError,
    TaskExitError,
    link,
    monitor,
    open_node,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    trap_exits,
    whereis,
)
from beamlet.actors.lowlevel import (
    LocalRouter,
    NodeVar,
    Reply,
    Router,
    add_exit_hook,
    adopt_task,
    alias,
    check_number,
    check_timeout,
    current_node,
    current_node_or_none,
    current_process,
    current_process_or_none,
    install_router,
    is_clean_exit,
    remove_exit_hook,
    send_reply,
    unalias,
)
from hypothesis import given, strategies as st


async def idle() -> None:
    await receive()


async def nothing_left() -> bool:
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        return True
    return False


# -- current process and node ---------------------------------------------------------


async def test_current_process_and_node(node: Node) -> None:
    assert current_process_or_none() is None
    assert current_node() is node
    assert current_node_or_none() is node
    with pytest.raises(NotInProcessError):
        current_process()

    async def body() -> None:
        proc = current_process()
        assert current_process_or_none() is proc
        assert proc.pid == self_pid()
        assert proc.node is node is current_node()
        assert node.lookup(proc.pid) is proc

    await node.run(body)


async def test_no_current_node_outside_open_node() -> None:
    assert current_node_or_none() is None
    with pytest.raises(NotInProcessError):
        current_node()


# -- exit hooks -------------------------------------------------------------------------


async def test_exit_hook_runs_with_the_reason(node: Node) -> None:
    seen: list[tuple[Pid, Any]] = []

    async def body() -> None:
        for reason in ["normal", "boom", ("shutdown", 1)]:

            async def worker(reason: Any = reason) -> None:
                await receive()
                if reason != "normal":
                    send_exit(self_pid(), reason)
                    await trio.sleep_forever()

            pid = spawn(worker)
            add_exit_hook(pid, lambda p, r: seen.append((p, r)))
            ref = monitor(pid)
            send(pid, "go")
            await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
            assert seen[-1] == (pid, reason)

    await node.run(body)
    assert len(seen) == 3


async def test_exit_hook_runs_after_the_name_is_released_and_before_any_signal(
    node: Node,
) -> None:
    order: list[str] = []

    async def body() -> None:
        trap_exits(True)
        pid = spawn(idle, name="worker")
        link(pid)
        ref = monitor(pid)

        def hook(p: Pid, reason: Any) -> None:
            # The name is free, the process gone from the table, and no
            # signal has reached the watcher yet.
            order.append(f"hook name={whereis('worker')} alive={node.lookup(p) is not None}")
            watcher = current_node().lookup(me)
            assert watcher is not None
            order.append(f"queued={len(watcher.mailbox or ())}")

        me = self_pid()
        add_exit_hook(pid, hook)
        send_exit(pid, "kill")
        first = await receive()
        second = await receive()
        assert {type(first), type(second)} == {ExitSignal, Down}
        assert first == ExitSignal(pid, "killed")  # the link signal goes first
        assert second == Down(ref, pid, "killed")

    await node.run(body)
    assert order == ["hook name=None alive=False", "queued=0"]


async def test_exit_hooks_run_in_order_and_a_raising_hook_is_logged(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def bad(pid: Pid, reason: Any) -> None:
        calls.append("bad")
        raise RuntimeError("hook failure")

    async def body() -> None:
        pid = spawn(idle)
        add_exit_hook(pid, lambda p, r: calls.append("first"))
        add_exit_hook(pid, bad)
        add_exit_hook(pid, lambda p, r: calls.append("third"))
        ref = monitor(pid)
        send_exit(pid, "kill")
        # The exit completed: the monitor fired despite the raising hook.
        assert await receive() == Down(ref, pid, "killed")

    with caplog.at_level(logging.ERROR, logger="beamlet"):
        await node.run(body)
    assert calls == ["first", "bad", "third"]
    [record] = [r for r in caplog.records if "exit hook" in r.getMessage()]
    assert "hook failure" in record.getMessage()
    assert record.exc_info is not None


async def test_remove_exit_hook(node: Node) -> None:
    calls: list[Pid] = []

    async def body() -> None:
        pid = spawn(idle)
        hook = add_exit_hook(pid, lambda p, r: calls.append(p))
        kept = add_exit_hook(pid, lambda p, r: calls.append(p))
        assert remove_exit_hook(hook) is True
        assert remove_exit_hook(hook) is False
        ref = monitor(pid)
        send_exit(pid, "kill")
        assert await receive() == Down(ref, pid, "killed")
        assert calls == [pid]
        assert remove_exit_hook(kept) is False  # it has run

    await node.run(body)


async def test_exit_hook_for_a_dead_or_remote_process_is_refused(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        proc = node.lookup(pid)
        assert proc is not None
        ref = monitor(pid)
        send_exit(pid, "kill")
        await receive(lambda m: m == Down(ref, pid, "killed"))
        with pytest.raises(NoProcError):
            add_exit_hook(pid, lambda p, r: None)
        with pytest.raises(NoProcError):
            add_exit_hook(proc, lambda p, r: None)
        with pytest.raises(ValueError, match="another node"):
            add_exit_hook(Pid("other@host", 1, 1), lambda p, r: None)
        with pytest.raises(TypeError):
            add_exit_hook("name", lambda p, r: None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            add_exit_hook(self_pid(), None)  # type: ignore[arg-type]

    await node.run(body)


async def test_exit_hooks_run_when_the_node_shuts_down() -> None:
    seen: list[Any] = []
    async with open_node() as node:
        pid = node.spawn(idle)
        add_exit_hook(pid, lambda p, r: seen.append(r))
        await trio.testing.wait_all_tasks_blocked()
    assert seen == ["shutdown"]


# -- NodeVar ----------------------------------------------------------------------------

TABLE: NodeVar[dict[str, int]] = NodeVar("tests.table")


async def test_nodevar_is_released_when_its_owner_exits_even_killed(node: Node) -> None:
    async def owner(key: Any) -> None:
        TABLE.set({"n": 1}, key=key)
        await receive()

    async def body() -> None:
        assert TABLE.get(default=None) is None
        with pytest.raises(LookupError, match=r"tests\.table"):
            TABLE.get()
        for key, reason in [(None, "normal"), ("a", "kill"), (("b", 2), "boom")]:
            pid = spawn(owner, key)
            ref = monitor(pid)
            await trio.testing.wait_all_tasks_blocked()
            assert TABLE.get(key=key) == {"n": 1}
            assert TABLE.owner(key=key) == pid
            assert TABLE.keys() == [key]
            if reason == "normal":
                send(pid, "stop")
            else:
                send_exit(pid, reason)
            # Released before the Down goes out.
            await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
            assert TABLE.get(key=key, default="gone") == "gone"
            assert TABLE.owner(key=key) is None
        assert TABLE.keys() == []

    await node.run(body)


async def test_nodevar_keys_are_independent_and_replaceable(node: Node) -> None:
    async def body() -> None:
        first = spawn(idle)
        second = spawn(idle)
        TABLE.set({"x": 1}, key="x", owner=first)
        TABLE.set({"y": 1}, key="y", owner=second)
        assert sorted(TABLE.keys()) == ["x", "y"]
        # Replacing gives the entry a new owner: the old owner's exit leaves it.
        TABLE.set({"x": 2}, key="x", owner=second)
        ref = monitor(first)
        send_exit(first, "kill")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        assert TABLE.get(key="x") == {"x": 2}
        assert TABLE.owner(key="x") == second
        assert TABLE.delete(key="x") is True
        assert TABLE.delete(key="x") is False
        ref = monitor(second)
        send_exit(second, "kill")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        assert TABLE.keys() == []

    await node.run(body)


async def test_nodevar_is_per_node() -> None:
    async with open_node() as a, open_node() as b:
        pid_a = a.spawn(idle)
        pid_b = b.spawn(idle)
        TABLE.set({"node": 1}, owner=pid_a, node=a)
        assert TABLE.get(node=a) == {"node": 1}
        assert TABLE.get(node=b, default=None) is None
        TABLE.set({"node": 2}, owner=pid_b, node=b)
        assert TABLE.get(node=a) == {"node": 1}
        assert TABLE.get(node=b) == {"node": 2}
        with pytest.raises(ValueError, match="must be a process of"):
            TABLE.set({}, owner=pid_b, node=a)


async def test_nodevar_owner_follows_a_node_rename(node: Node) -> None:
    # start_distribution renames the node: its processes get pids with the
    # new name, and the owner of an entry is the process, under its new pid.
    async def body() -> None:
        pid = spawn(idle)
        TABLE.set({"x": 1}, key="renamed", owner=pid)
        assert TABLE.owner(key="renamed") == pid
        node.rename("renamed@127.0.0.1")
        owner = TABLE.owner(key="renamed")
        assert owner is not None and owner.node == "renamed@127.0.0.1"
        assert owner.id == pid.id
        assert node.lookup(owner) is not None
        # ... and it is still released when that process exits.
        ref = monitor(owner)
        send_exit(owner, "kill")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        assert TABLE.owner(key="renamed") is None

    await node.run(body)


async def test_nodevar_set_checks_its_owner(node: Node) -> None:
    with pytest.raises(NotInProcessError):
        TABLE.set({})  # no owner, no calling process

    async def body() -> None:
        pid = spawn(idle)
        ref = monitor(pid)
        send_exit(pid, "kill")
        await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        with pytest.raises(NoProcError):
            TABLE.set({}, owner=pid)
        with pytest.raises(TypeError):
            TABLE.set({}, owner="me")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            TABLE.set({}, key=["unhashable"])
        with pytest.raises(TypeError):
            NodeVar("")

    await node.run(body)
    assert repr(TABLE) == "<NodeVar tests.table>"


# -- reply aliases and adopted tasks ----------------------------------------------------


async def test_a_reply_reaches_only_an_active_alias(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        ref = alias()
        send_reply(me, ref, 1)
        msg = await receive(lambda m: isinstance(m, Reply))
        assert (msg.ref, msg.value) == (ref, 1)
        assert unalias(ref) is True
        assert unalias(ref) is False
        send_reply(me, ref, 2)  # dropped on arrival
        assert await nothing_left()
        other = node.make_ref()
        send_reply(me, other, 3)  # never an alias: dropped
        assert await nothing_left()

    await node.run(body)


async def test_send_reply_from_another_process_and_outside_any(node: Node) -> None:
    async def answer(to: Pid, ref: Any) -> None:
        send_reply(to, ref, "from a process")

    async def body() -> None:
        ref = alias()
        spawn(answer, self_pid(), ref)
        assert (await receive()).value == "from a process"
        send_reply(self_pid(), ref, "again")
        assert (await receive()).value == "again"
        with pytest.raises(TypeError):
            send_reply("me", ref, 1)  # type: ignore[arg-type]

    await node.run(body)


async def test_adopt_task_joins_an_existing_process(node: Node) -> None:
    async def worker() -> None:
        owner, ref = await receive()
        send_reply(owner, ref, 42)

    async def crasher() -> None:
        await receive()
        raise RuntimeError("no result")

    async def body() -> None:
        pid = spawn(worker)
        task = adopt_task(pid)
        send(pid, (self_pid(), task.ref))
        assert await task.join() == 42
        assert await nothing_left()

        dead = spawn(crasher)
        task = adopt_task(dead)
        send(dead, "go")
        with pytest.raises(TaskExitError) as info:
            await task.join()
        assert isinstance(info.value.reason, RuntimeError)

        task = adopt_task(Pid(node.name, 10**9, node.creation))
        with pytest.raises(TaskExitError, match="noproc"):
            await task.join()
        with pytest.raises(TypeError):
            adopt_task("pid")  # type: ignore[arg-type]

    await node.run(body)


# -- routers ----------------------------------------------------------------------------


class RecordingRouter(LocalRouter):
    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.sent: list[tuple[Pid | None, Pid, Any]] = []

    def send(self, sender: Pid | None, dest: Pid, msg: Any) -> None:
        self.sent.append((sender, dest, msg))


async def test_install_router_routes_other_nodes_signals(node: Node) -> None:
    router = RecordingRouter(node)
    previous = install_router(router)
    assert isinstance(previous, LocalRouter)
    assert node.router is router
    remote = Pid("other@host", 7, 1)

    async def body() -> None:
        send(remote, "hello")
        # A message arriving from the router reaches the local process.
        node.remote_send(self_pid(), "from afar")
        assert await receive() == "from afar"

    await node.run(body)
    assert [(dest, msg) for _sender, dest, msg in router.sent] == [(remote, "hello")]
    with pytest.raises(TypeError):
        install_router(object())  # type: ignore[arg-type]
    assert issubclass(LocalRouter, Router)


async def test_install_router_on_a_closed_node() -> None:
    async with open_node() as node:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        install_router(LocalRouter(node))


# -- checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "options", "error"),
    [
        (True, {}, TypeError),
        ("1", {}, TypeError),
        (None, {}, TypeError),
        (1.5, {"integer": True}, TypeError),
        (-1, {}, ValueError),
        (math.nan, {}, ValueError),
        (0, {"strict": True}, ValueError),
        (math.inf, {"finite": True}, ValueError),
        (0, {"minimum": 1, "integer": True}, ValueError),
        (math.nan, {"minimum": None}, ValueError),
        (1, {"maximum": 1, "below": True}, ValueError),
        (10, {"maximum": 9, "integer": True}, ValueError),
        ("1", {"minimum": None, "maximum": 1}, TypeError),
    ],
)
def test_check_number_refuses(value: object, options: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=r"^size must be"):
        check_number(value, "size", **options)


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (-1, {}, "x must be a number >= 0, not -1"),
        (math.nan, {"minimum": None}, "x must be a number, not nan"),
        (1, {"maximum": 1, "below": True}, "x must be a number in [0, 1), not 1"),
        (1, {"minimum": 1, "strict": True, "maximum": 2}, "x must be a number in (1, 2], not 1"),
        (-2, {"minimum": None, "maximum": -2, "below": True}, "x must be a number < -2, not -2"),
        (
            -1,
            {"unit": "seconds", "optional": True, "note": "math.inf: never"},
            "x must be a number of seconds >= 0 or None (math.inf: never), not -1",
        ),
        (10, {"integer": True, "maximum": 9}, "x must be an int in [0, 9], not 10"),
    ],
)
def test_check_number_says_what_which_and_why(
    value: object, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        check_number(value, "x", **options)
    assert str(caught.value) == message


bounds = st.one_of(st.none(), st.integers(-3, 3))


@given(
    value=st.one_of(
        st.integers(-5, 5), st.floats(allow_nan=True), st.booleans(), st.none(), st.text()
    ),
    minimum=bounds,
    strict=st.booleans(),
    maximum=bounds,
    below=st.booleans(),
    integer=st.booleans(),
    finite=st.booleans(),
    optional=st.booleans(),
)
def test_check_number_against_a_model(
    value: object,
    minimum: int | None,
    strict: bool,
    maximum: int | None,
    below: bool,
    integer: bool,
    finite: bool,
    optional: bool,
) -> None:
    right_type = not isinstance(value, bool) and isinstance(value, int if integer else int | float)
    if value is None:
        ok = optional
    elif not right_type:
        ok = False
    else:
        assert isinstance(value, int | float)
        ok = (
            not math.isnan(value)
            and (minimum is None or (value > minimum if strict else value >= minimum))
            and (maximum is None or (value < maximum if below else value <= maximum))
            and (not finite or math.isfinite(value))
        )
    try:
        check_number(
            value,
            "x",
            minimum=minimum,
            strict=strict,
            maximum=maximum,
            below=below,
            integer=integer,
            finite=finite,
            optional=optional,
        )
    except (TypeError, ValueError) as exc:
        assert not ok
        assert repr(value) in str(exc)
        assert isinstance(exc, ValueError) == right_type
    else:
        assert ok


def test_check_timeout_and_is_clean_exit() -> None:
    for good in [None, 0, 0.0, 1.5, math.inf]:
        check_timeout(good)
    for bad, error in [(-0.1, ValueError), (math.nan, ValueError), (True, TypeError)]:
        with pytest.raises(error, match=r"^timeout must be a number of seconds >= 0 or None"):
            check_timeout(bad)
    assert all(is_clean_exit(r) for r in ["normal", "shutdown", ("shutdown", "x")])
    assert not any(
        is_clean_exit(r) for r in ["killed", "kill", ("shutdown",), ["shutdown", 1], "noproc"]
    )


#: A hand-written "a number, not a bool" check: ``isinstance(x, bool) or not
#: isinstance(x, int)`` (or ``float``, ``int | float``, ``(int, float)``).
#: A check that also takes other types (a seed: ``int | float | str | bytes``)
#: is no number check and does not match.
_NUMBER_CHECK = re.compile(
    r"isinstance\((\w+), bool\) or not isinstance\("
    r"\1, \(?(?:int|float)(?:\s*[|,]\s*(?:int|float))?\)?\)"
)


@pytest.mark.parametrize(
    "line",
    [
        "if isinstance(value, bool) or not isinstance(value, int):",
        "if isinstance(ttl, bool) or not isinstance(ttl, int | float):",
        "if isinstance(r, bool) or not isinstance(r, (int, float)) or r < 0:",
        "if isinstance(x, bool) or not isinstance(x, float):",
    ],
)
def test_the_number_check_pattern_finds_a_copy(line: str) -> None:
    assert _NUMBER_CHECK.search(line)
    assert not _NUMBER_CHECK.search(
        "isinstance(seed, bool) or not isinstance(seed, int | float | str | bytes)"
    )


def test_numeric_options_are_checked_in_one_place() -> None:
    """The runtime, supervision, distribution and every app check numbers with ``check_number``.

    A new hand-written copy of its "a number, not a bool" check anywhere in the
    four packages (``actors/_util.py``, its home, aside) fails this test.
    """
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "src" / "beamlet"
    scanned: set[str] = set()
    found = []
    for package in ("actors", "supervisors", "cluster", "apps"):
        for path in sorted((root / package).rglob("*.py")):
            if path.relative_to(root).as_posix() == "actors/_util.py":
                continue
            scanned.add(path.relative_to(root).parts[0])
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if _NUMBER_CHECK.search(line):
                    found.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert scanned == {"actors", "supervisors", "cluster", "apps"}
    assert found == []


async def test_message_queue_len_counts_the_waiting_messages() -> None:
    from beamlet.actors import open_node as _open_node, receive as _receive
    from beamlet.actors.lowlevel import current_process as _current_process

    async with _open_node() as node:

        async def main() -> None:
            me = _current_process()
            assert me.message_queue_len == 0
            for i in range(3):
                me.deliver(i)
            assert me.message_queue_len == 3
            await _receive()
            assert me.message_queue_len == 2

        await node.run(main)
