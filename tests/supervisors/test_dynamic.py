"""DynamicSupervisor (S21-S24; scenarios 23 and 26)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.lowlevel
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    GenServer,
    Node,
    Pid,
    StartError,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    spawn_link,
    trap_exits,
)
from beamlet.supervisors import (
    ChildCounts,
    ChildInfo,
    ChildSpec,
    DynamicSupervisor,
    Supervisor,
    SupervisorError,
    worker,
)
from beamlet.supervisors._dynamic import _Child


async def idle(*args: Any) -> None:
    await receive()


async def reporter(parent: Pid, *args: Any) -> None:
    send(parent, ("started", self_pid(), args))
    msg = await receive()
    raise Exit(msg)


async def stubborn(seconds: float) -> None:
    """Traps exits; after the shutdown signal, takes ``seconds`` to exit (or forever)."""
    trap_exits(True)
    await receive(lambda m: type(m) is ExitSignal)
    await trio.sleep(seconds)
    raise Exit("shutdown")


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


async def stop(pid: Pid, reason: Any = "shutdown") -> Down:
    ref = monitor(pid)
    send_exit(pid, reason)
    return await wait_down(ref)


def reports(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "beamlet_report", None) == kind]


async def test_S21_ids_are_ignored_and_extra_arguments_prepended(node: Node) -> None:
    async def body() -> None:
        sup = await DynamicSupervisor.start_link(extra_arguments=(self_pid(), "extra"))
        first = await DynamicSupervisor.start_child(sup, worker(reporter, 1, id="same"))
        second = await DynamicSupervisor.start_child(sup, worker(reporter, 2, id="same"))
        assert first != second
        assert await receive() == ("started", first, ("extra", 1))
        assert await receive() == ("started", second, ("extra", 2))
        assert await DynamicSupervisor.which_children(sup) == [
            ChildInfo(None, first, "worker"),
            ChildInfo(None, second, "worker"),
        ]

    await node.run(body)


async def test_S21_results_of_start_child(node: Node) -> None:
    async def ignore() -> None:
        return None

    async def with_info() -> tuple[Pid, str]:
        return spawn_link(idle), "info"

    async def failing() -> Any:
        raise StartError("nope")

    async def body() -> None:
        sup = await DynamicSupervisor.start_link()
        assert await DynamicSupervisor.start_child(sup, ChildSpec("i", ignore)) is None
        assert (await DynamicSupervisor.count_children(sup)).specs == 0  # nothing stored
        result = await DynamicSupervisor.start_child(sup, ChildSpec("x", with_info))
        assert isinstance(result, tuple) and result[1] == "info"
        with pytest.raises(StartError) as info:
            await DynamicSupervisor.start_child(sup, ChildSpec("f", failing))
        assert info.value.reason == "nope"
        named = worker(idle, id="n", name="only-one")
        pid = await DynamicSupervisor.start_child(sup, named)
        with pytest.raises(StartError) as info:
            await DynamicSupervisor.start_child(sup, named)
        assert info.value.reason == ("already_started", pid)
        with pytest.raises(TypeError):
            await DynamicSupervisor.start_child(sup, "not a spec")  # type: ignore[arg-type]

    await node.run(body)


async def test_S21_max_children(node: Node) -> None:
    async def body() -> None:
        sup = await DynamicSupervisor.start_link(max_children=2)
        for _ in range(2):
            await DynamicSupervisor.start_child(sup, worker(idle))
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.start_child(sup, worker(idle))
        assert info.value.reason == "max_children"
        with pytest.raises(ValueError, match="-1"):
            await DynamicSupervisor.start_link(max_children=-1)
        with pytest.raises(TypeError, match="'x'"):
            await DynamicSupervisor.start_link(extra_arguments="x")  # type: ignore[arg-type]

    await node.run(body)


async def test_S22_terminate_child_by_pid(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        sup = await DynamicSupervisor.start_link()
        pid = await DynamicSupervisor.start_child(sup, worker(idle, restart="permanent"))
        assert isinstance(pid, Pid)
        ref = monitor(pid)
        await DynamicSupervisor.terminate_child(sup, pid)
        assert (await wait_down(ref)).reason == "shutdown"
        assert await DynamicSupervisor.which_children(sup) == []
        for target in (pid, self_pid(), "not a pid"):
            with pytest.raises(SupervisorError) as info:
                await DynamicSupervisor.terminate_child(sup, target)  # type: ignore[arg-type]
            assert info.value.reason == "not_found"

    await node.run(body)
    assert reports(caplog, "child_terminated") == []  # terminated, not crashed


@pytest.mark.parametrize(
    ("restart", "reason", "restarted"),
    [
        ("permanent", "normal", True),
        ("transient", "normal", False),
        ("transient", "boom", True),
        ("temporary", "boom", False),
    ],
)
async def test_restart_types(node: Node, restart: str, reason: str, restarted: bool) -> None:
    async def body() -> None:
        sup = await DynamicSupervisor.start_link()
        spec = worker(reporter, self_pid(), "arg", restart=restart)
        pid = await DynamicSupervisor.start_child(sup, spec)
        await receive(lambda m: m[0] == "started")
        assert isinstance(pid, Pid)
        ref = monitor(pid)
        send(pid, reason)
        await wait_down(ref)
        children = await DynamicSupervisor.which_children(sup)
        if restarted:
            _, new, args = await receive(lambda m: m[0] == "started")
            assert args == ("arg",) and new != pid  # restarted with the same args
            assert children == [ChildInfo(None, new, "worker")]
        else:
            assert children == []

    await node.run(body)


async def test_S23_parallel_shutdown_takes_the_longest_not_the_sum(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # simple_one_for_one_shutdown
    async def body() -> None:
        trap_exits(True)
        sup = await DynamicSupervisor.start_link()
        specs = [
            worker(stubborn, 100.0, shutdown=1.0),
            worker(stubborn, 100.0, shutdown=2.0),
            worker(stubborn, 100.0, shutdown=2.0),
            worker(stubborn, 0.5, shutdown=3.0),  # exits on its own within its time
            worker(stubborn, 100.0, shutdown="brutal_kill"),
            worker(stubborn, 2.5, shutdown="infinity"),
            worker(idle, shutdown=3.0),
        ]
        children = [await DynamicSupervisor.start_child(sup, spec) for spec in specs]
        refs = [monitor(pid) for pid in children if isinstance(pid, Pid)]
        start = trio.current_time()
        await stop(sup)
        assert trio.current_time() == start + 2.5  # not 1 + 2 + 2 + 0.5 + 2.5
        reasons = [(await wait_down(ref)).reason for ref in refs]
        assert reasons == [
            "killed",
            "killed",
            "killed",
            "shutdown",
            "killed",
            "shutdown",
            "shutdown",
        ]

    await node.run(body)
    errors = sorted(r.beamlet_reason for r in reports(caplog, "shutdown_error"))
    assert errors == ["killed", "killed", "killed"]  # brutal_kill's "killed" is clean


async def test_S24_failed_restart_is_retried_and_escalates(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = [True]

    async def start() -> Any:
        if healthy[0]:
            return spawn_link(idle)
        raise StartError("down")

    async def body() -> None:
        trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=3)
        ref = monitor(sup)
        pid = await DynamicSupervisor.start_child(sup, ChildSpec("c", start))
        await DynamicSupervisor.start_child(sup, worker(idle))
        assert isinstance(pid, Pid)
        healthy[0] = False
        await stop(pid, "boom")
        # The first call after the exit is served between two attempts.
        children = await DynamicSupervisor.which_children(sup)
        assert children[-1] == ChildInfo(None, "restarting", "worker")
        assert (await wait_down(ref)).reason == "shutdown"

    await node.run(body)
    errors = reports(caplog, "start_error")
    assert len(errors) == 3
    first = errors[0]
    assert first.getMessage() == (
        f"supervisor {first.beamlet_supervisor!r}: child None (was {first.beamlet_pid!r}) "
        f"failed to start again: {first.beamlet_reason!r}"
    )
    assert len(reports(caplog, "reached_max_restart_intensity")) == 1


async def test_terminate_a_restarting_child_ends_its_retries(node: Node) -> None:
    healthy = [True]
    attempts = [0]

    async def start() -> Any:
        if healthy[0]:
            return spawn_link(idle)
        attempts[0] += 1
        await trio.lowlevel.checkpoint()
        raise StartError("down")

    async def body() -> None:
        sup = await DynamicSupervisor.start_link(max_restarts=1000)
        pid = await DynamicSupervisor.start_child(sup, ChildSpec("c", start))
        assert isinstance(pid, Pid)
        healthy[0] = False
        await stop(pid, "boom")
        assert (await DynamicSupervisor.which_children(sup))[0].pid == "restarting"
        counts = await DynamicSupervisor.count_children(sup)
        assert counts == ChildCounts(specs=1, active=0, supervisors=0, workers=1)
        await DynamicSupervisor.terminate_child(sup, pid)  # keyed by its last pid
        seen = attempts[0]
        assert await DynamicSupervisor.which_children(sup) == []
        assert attempts[0] == seen

    await node.run(body)


async def test_count_children_2000_dynamic(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        trap_exits(True)
        sup = await DynamicSupervisor.start_link()
        children = []
        for i in range(2000):
            kind = "supervisor" if i % 4 == 0 else "worker"
            children.append(await DynamicSupervisor.start_child(sup, worker(idle, type=kind)))
        assert await DynamicSupervisor.count_children(sup) == ChildCounts(2000, 2000, 500, 1500)
        for pid in children[:500]:
            await DynamicSupervisor.terminate_child(sup, pid)  # type: ignore[arg-type]
        assert await DynamicSupervisor.count_children(sup) == ChildCounts(1500, 1500, 375, 1125)
        assert len(await DynamicSupervisor.which_children(sup)) == 1500
        start = trio.current_time()
        await stop(sup)
        assert trio.current_time() == start

    await node.run(body)


async def test_dynamic_supervisor_in_a_tree(node: Node) -> None:
    class Counter(GenServer):
        async def init(self) -> None:
            self.n = 0

    async def body() -> None:
        top = await Supervisor.start_link(
            [DynamicSupervisor.child_spec(name="pool", max_children=5)]
        )
        [info] = await Supervisor.which_children(top)
        assert (info.id, info.type) == (DynamicSupervisor, "supervisor")
        await DynamicSupervisor.start_child("pool", Counter.child_spec())
        await DynamicSupervisor.start_child("pool", Counter)
        assert (await DynamicSupervisor.count_children("pool")).active == 2
        with pytest.raises(SupervisorError) as err:
            await DynamicSupervisor.count_children("missing")
        assert err.value.reason == "noproc"

    await node.run(body)


def test_S5_dynamic_temporary_args_are_not_kept() -> None:
    async def start(*args: Any) -> None:
        return None

    assert _Child(ChildSpec("t", start, ("big",), restart="temporary")).args == ()
    assert _Child(ChildSpec("p", start, ("big",))).args == ("big",)
