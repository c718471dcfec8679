"""Supervisor: OTP's supervisor semantics (S3-S19) and the supervisor_SUITE scenarios (§6)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Hashable
from typing import Any

import pytest
import trio
import trio.lowlevel
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    GenServer,
    Ignore,
    Node,
    Pid,
    StartError,
    call,
    cast,
    link,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    spawn_link,
    trap_exits,
    unlink,
    whereis,
)
from beamlet.supervisors import (
    ChildCounts,
    ChildInfo,
    ChildSpec,
    Supervisor,
    SupervisorError,
    SupervisorSpec,
    _supervisor,
    worker,
)

Events = list[tuple[Any, ...]]


class Member(GenServer):
    """A child that records its life in ``events`` and traps exits (so terminate runs)."""

    async def init(self, events: Events, key: Hashable, trap: bool = True) -> None:
        if trap:
            trap_exits(True)
        self.events, self.key = events, key
        events.append(("start", key))

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return self.key

    async def handle_cast(self, request: Any) -> Any:
        _, reason = request
        raise Exit(reason)

    async def terminate(self, reason: Any) -> None:
        self.events.append(("terminate", self.key, reason))


def member(events: Events, key: Hashable, trap: bool = True, **options: Any) -> ChildSpec:
    return ChildSpec.coerce(Member.child_spec(events, key, trap, id=key, **options))


async def flaky_start(events: Events, key: Hashable, failures: list[int]) -> Pid | None:
    """Start a Member, but fail while ``failures[0]`` is positive (-1: always)."""
    if failures[0]:
        failures[0] -= 1
        events.append(("fail", key))
        raise StartError("flaky")
    return await Member.start_link(events, key)


def flaky(events: Events, key: Hashable, failures: list[int], **options: Any) -> ChildSpec:
    return ChildSpec(key, flaky_start, args=(events, key, failures), **options)


async def pids(sup: Any) -> dict[Hashable, Any]:
    return {info.id: info.pid for info in await Supervisor.which_children(sup)}


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


async def crash(pid: Pid, reason: Any = "boom") -> None:
    """Make a Member exit with ``reason`` and wait until it is gone."""
    ref = monitor(pid)
    cast(pid, ("exit", reason))
    await wait_down(ref)


async def kill(pid: Pid, reason: Any = "kill") -> Down:
    ref = monitor(pid)
    send_exit(pid, reason)
    return await wait_down(ref)


def reports(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "beamlet.supervisor" and getattr(r, "beamlet_report", None) == kind
    ]


async def idle() -> None:
    await receive()


# -- start (S15, S16; scenarios 1-5) -----------------------------------------------------


async def test_sup_start_normal(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([])
        assert await Supervisor.which_children(sup) == []
        down = await kill(sup, "shutdown")
        assert down.reason == "shutdown"

    await node.run(body)


class IgnoringTree(Supervisor):
    async def init(self, *args: Any) -> Any:
        return Ignore


class CrashingTree(Supervisor):
    async def init(self, *args: Any) -> Any:
        raise RuntimeError("no configuration")


class BadTree(Supervisor):
    async def init(self, *args: Any) -> Any:
        return 42


class Tree(Supervisor):
    async def init(self, events: Events, strategy: str) -> Any:
        return SupervisorSpec([member(events, "x"), member(events, "y")], strategy)


async def test_sup_start_ignore_init(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        assert await IgnoringTree.start_link() is None
        msg = await receive(lambda m: type(m) is ExitSignal)
        assert msg.reason == "normal"

    await node.run(body)


async def test_sup_start_fail(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        trap_exits(True)
        with pytest.raises(StartError) as info:
            await CrashingTree.start_link()
        assert isinstance(info.value.reason, RuntimeError)
        msg = await receive(lambda m: type(m) is ExitSignal)
        assert msg.reason is info.value.reason  # the supervisor exits with Term
        with pytest.raises(StartError) as info:
            await BadTree.start_link()
        assert info.value.reason == ("bad_return", (BadTree, "init", 42))
        with pytest.raises(TypeError, match="flags"):
            await BadTree.start_link(strategy="one_for_all")

    await node.run(body)


async def test_module_based_supervisor(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Tree.start_link(events, "one_for_all", name="tree")
        assert sup == whereis("tree")
        assert list(await pids("tree")) == ["x", "y"]
        spec = Tree.child_spec(events, "one_for_one", id="t2")
        assert (spec.id, spec.type, spec.shutdown) == ("t2", "supervisor", "infinity")

    await node.run(body)


async def test_sup_start_ignore_child(node: Node) -> None:
    events: Events = []

    async def ignore() -> None:
        return None

    async def body() -> None:
        sup = await Supervisor.start_link([member(events, "a"), ChildSpec("ignored", ignore)])
        children = await Supervisor.which_children(sup)
        assert [(c.id, c.pid is None) for c in children] == [("a", False), ("ignored", True)]
        assert await Supervisor.count_children(sup) == ChildCounts(2, 1, 0, 2)

    await node.run(body)


async def test_sup_start_ignore_temporary_child(node: Node) -> None:
    events: Events = []

    async def ignore() -> None:
        return None

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "a"), ChildSpec("ignored", ignore, restart="temporary")]
        )
        assert list(await pids(sup)) == ["a"]
        assert await Supervisor.count_children(sup) == ChildCounts(1, 1, 0, 1)

    await node.run(body)


async def test_S15_children_start_in_order_before_start_link_returns(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        children = [member(events, key) for key in ("c1", "c2", "c3")]
        sup = await Supervisor.start_link(children)
        assert events == [("start", "c1"), ("start", "c2"), ("start", "c3")]
        assert [c.id for c in await Supervisor.which_children(sup)] == ["c1", "c2", "c3"]
        info = process_info(sup)
        assert info is not None and info.trap_exits

    await node.run(body)


async def test_S16_failed_child_start_stops_the_started_ones_in_reverse(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        children = [
            member(events, "a"),
            member(events, "b"),
            flaky(events, "bad", [-1]),
            member(events, "c"),
        ]
        with pytest.raises(StartError) as info:
            await Supervisor.start_link(children)
        assert info.value.reason == ("shutdown", ("failed_to_start_child", "bad", "flaky"))
        msg = await receive(lambda m: type(m) is ExitSignal)
        assert msg.reason == info.value.reason

    await node.run(body)
    assert events == [
        ("start", "a"),
        ("start", "b"),
        ("fail", "bad"),
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]
    [error] = reports(caplog, "start_error")
    assert error.beamlet_child_id == "bad" and error.beamlet_pid is None
    # No "(was None)": it had no pid before.
    assert error.getMessage() == (
        f"supervisor {error.beamlet_supervisor!r}: child 'bad' failed to start: 'flaky'"
    )


async def test_S16_bad_start_return_and_crashing_start(node: Node) -> None:
    async def bad_return() -> Any:
        return "not a pid"

    async def crashing() -> Any:
        raise ValueError("oops")

    async def body() -> None:
        trap_exits(True)
        with pytest.raises(StartError) as info:
            await Supervisor.start_link([ChildSpec("x", bad_return)])
        assert info.value.reason == (
            "shutdown",
            ("failed_to_start_child", "x", ("bad_return", "not a pid")),
        )
        with pytest.raises(StartError) as info:
            await Supervisor.start_link([ChildSpec("y", crashing)])
        _, (_, _, why) = info.value.reason
        assert isinstance(why, ValueError)

    await node.run(body)


# -- shutdown (S17, S18; scenarios 9-11) ---------------------------------------------------


class Slow(Member):
    """Takes ``seconds`` to terminate."""

    async def init(self, events: Events, key: Hashable, seconds: float) -> None:  # type: ignore[override]
        await super().init(events, key)
        self.seconds = seconds

    async def terminate(self, reason: Any) -> None:
        await trio.sleep(self.seconds)
        await super().terminate(reason)


async def stubborn() -> None:
    """Traps exits and ignores the shutdown signal."""
    trap_exits(True)
    await trio.sleep_forever()


async def test_S17_children_stop_in_reverse_start_order(node: Node, autojump_clock: Any) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        slow = ChildSpec.coerce(Slow.child_spec(events, "slow", 3.0, id="slow"))
        children = [member(events, "c1"), member(events, "c2"), slow, member(events, "c4")]
        sup = await Supervisor.start_link(children)
        events.clear()
        start = trio.current_time()
        down = await kill(sup, "shutdown")
        assert down.reason == "shutdown"
        assert trio.current_time() - start == 3.0  # one after the other

    await node.run(body)
    assert events == [
        ("terminate", "c4", "shutdown"),
        ("terminate", "slow", "shutdown"),
        ("terminate", "c2", "shutdown"),
        ("terminate", "c1", "shutdown"),
    ]


async def test_sup_stop_infinity(node: Node, autojump_clock: Any) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        slow = ChildSpec.coerce(Slow.child_spec(events, "slow", 100.0, shutdown="infinity"))
        sup = await Supervisor.start_link([slow])
        start = trio.current_time()
        assert (await kill(sup, "shutdown")).reason == "shutdown"
        assert trio.current_time() == start + 100.0

    await node.run(body)
    assert events[-1] == ("terminate", "slow", "shutdown")


async def test_sup_stop_timeout(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link(
            [member(events, "polite", shutdown=2.0), worker(stubborn, id="stubborn", shutdown=2.0)]
        )
        children = await pids(sup)
        refs = {key: monitor(pid) for key, pid in children.items()}
        start = trio.current_time()
        await kill(sup, "shutdown")
        assert trio.current_time() == start + 2.0
        assert (await wait_down(refs["stubborn"])).reason == "killed"
        assert (await wait_down(refs["polite"])).reason == "shutdown"

    await node.run(body)
    [error] = reports(caplog, "shutdown_error")
    assert (error.beamlet_child_id, error.beamlet_reason) == ("stubborn", "killed")


async def test_sup_stop_brutal_kill(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([member(events, "b", shutdown="brutal_kill")])
        ref = monitor((await pids(sup))["b"])
        await kill(sup, "shutdown")
        assert (await wait_down(ref)).reason == "killed"

    await node.run(body)
    assert ("terminate", "b", "shutdown") not in events  # killed: no terminate
    assert reports(caplog, "shutdown_error") == []


async def quitter(reason: Any) -> None:
    """Traps exits; on the shutdown signal, exits with ``reason`` instead."""
    trap_exits(True)
    await receive(lambda m: type(m) is ExitSignal)
    raise Exit(reason)


@pytest.mark.parametrize(
    ("restart", "reason", "clean"),
    [
        ("permanent", "normal", False),
        ("permanent", ("shutdown", "x"), False),
        ("permanent", "oops", False),
        ("transient", "normal", True),
        ("transient", ("shutdown", "x"), True),
        ("temporary", "normal", True),
        ("temporary", "oops", False),
    ],
)
async def test_S18_clean_shutdown_reasons(
    node: Node, caplog: pytest.LogCaptureFixture, restart: str, reason: Any, clean: bool
) -> None:
    async def body() -> None:
        sup = await Supervisor.start_link([worker(quitter, reason, id="q", restart=restart)])
        await Supervisor.terminate_child(sup, "q")

    await node.run(body)
    errors = reports(caplog, "shutdown_error")
    assert (errors == []) == clean
    if not clean:
        assert errors[0].beamlet_reason == reason


async def test_child_unlink(node: Node, autojump_clock: Any) -> None:
    async def unlinker() -> None:
        trap_exits(True)
        info = process_info(self_pid())
        assert info is not None
        for pid in info.links:
            unlink(pid)
        await trio.sleep_forever()

    async def body() -> None:
        sup = await Supervisor.start_link([worker(unlinker, id="u", shutdown=1.0)])
        start = trio.current_time()
        await Supervisor.terminate_child(sup, "u")
        assert trio.current_time() == start + 1.0
        assert (await Supervisor.which_children(sup))[0].pid is None

    await node.run(body)


async def test_parent_exit_stops_children_in_reverse_then_the_supervisor(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([member(events, "a"), member(events, "b")])
        down = await kill(sup, ("shutdown", "bye"))
        assert down.reason == ("shutdown", "bye")

    await node.run(body)
    assert events[-2:] == [
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]


async def test_stop_and_kill(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([member(events, "a")], name="top")
        await Supervisor.stop("top")
        assert events[-1] == ("terminate", "a", "shutdown")
        sup = await Supervisor.start_link([member(events, "b", trap=False)])
        child = (await pids(sup))["b"]
        ref = monitor(child)
        assert (await kill(sup, "kill")).reason == "killed"
        assert (await wait_down(ref)).reason == "killed"  # through the link

    await node.run(body)


# -- restart types and logging (S3-S7; scenarios 14-16) ---------------------------------


def _restart_case(restart: str, reason: Any, restarted: bool, kept: bool) -> Any:
    label = {"normal": "normal", "shutdown": "shutdown", "boom": "abnormal"}.get(
        reason if isinstance(reason, str) else "", "shutdown_tuple"
    )
    return pytest.param(restart, reason, restarted, kept, id=f"{restart}_{label}")


@pytest.mark.parametrize(
    ("restart", "reason", "restarted", "kept"),
    [
        _restart_case("permanent", "normal", True, True),
        _restart_case("transient", "normal", False, True),
        _restart_case("temporary", "normal", False, False),
        _restart_case("permanent", "shutdown", True, True),
        _restart_case("transient", "shutdown", False, True),
        _restart_case("temporary", "shutdown", False, False),
        _restart_case("permanent", ("shutdown", "bye"), True, True),
        _restart_case("transient", ("shutdown", "bye"), False, True),
        _restart_case("temporary", ("shutdown", "bye"), False, False),
        _restart_case("permanent", "boom", True, True),
        _restart_case("transient", "boom", True, True),
        _restart_case("temporary", "boom", False, False),
    ],
)
async def test_S3_S4_S5_S7_restart_types(
    node: Node,
    caplog: pytest.LogCaptureFixture,
    restart: str,
    reason: Any,
    restarted: bool,
    kept: bool,
) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link([member(events, "c", restart=restart)])
        old = (await pids(sup))["c"]
        await crash(old, reason)
        children = await pids(sup)
        assert ("c" in children) == kept
        if restarted:
            assert isinstance(children["c"], Pid) and children["c"] != old
        elif kept:
            assert children["c"] is None

    await node.run(body)
    logged = reports(caplog, "child_terminated")
    clean = reason in ("normal", "shutdown") or isinstance(reason, tuple)
    assert bool(logged) == (restart == "permanent" or not clean)
    if logged:
        assert logged[0].beamlet_reason == reason
        assert logged[0].beamlet_child_id == "c"


async def test_S5_temporary_args_are_not_kept(node: Node) -> None:
    async def holder(arg: object) -> None:
        await receive()

    async def body() -> None:
        spec = worker(holder, "big", id="t", restart="temporary")
        sup = await Supervisor.start_link([spec, worker(holder, "kept", id="p")])
        assert [c.id for c in await Supervisor.which_children(sup)] == ["t", "p"]
        [server] = [o for o in gc.get_objects() if isinstance(o, _supervisor._Server)]
        assert server.children["t"].spec.args == ()
        assert server.children["p"].spec.args == ("kept",)

    await node.run(body)


async def test_S6_exit_without_restart_leaves_siblings_alone(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "a"), member(events, "t", restart="transient"), member(events, "b")],
            strategy="one_for_all",
        )
        before = await pids(sup)
        await crash(before["t"], "normal")
        after = await pids(sup)
        assert after == {**before, "t": None}

    await node.run(body)


async def test_reports_carry_structured_fields(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beamlet.supervisor")
    events: Events = []

    async def body() -> tuple[Pid, Pid, Pid]:
        sup = await Supervisor.start_link([member(events, "c")], name="reporting")
        old = (await pids(sup))["c"]
        await crash(old, "boom")
        return sup, old, (await pids(sup))["c"]

    sup, old, new = await node.run(body)
    started = reports(caplog, "progress")[0]
    assert (started.beamlet_supervisor, started.beamlet_supervisor_name) == (sup, "reporting")
    assert (started.beamlet_child_id, started.beamlet_pid) == ("c", old)
    terminated = reports(caplog, "child_terminated")[0]
    assert (terminated.beamlet_pid, terminated.beamlet_reason) == (old, "boom")
    assert terminated.levelno == logging.ERROR
    assert "reporting" in terminated.getMessage() and "'boom'" in terminated.getMessage()
    restarted = reports(caplog, "restarted")[0]
    assert restarted.beamlet_pid == new


# -- strategies (S8-S11; scenarios 17, 19-22) ---------------------------------------------


async def test_one_for_one(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link([member(events, k) for k in "abc"])
        before = await pids(sup)
        await crash(before["b"])
        after = await pids(sup)
        assert after["a"] == before["a"] and after["c"] == before["c"]
        assert after["b"] != before["b"]

    await node.run(body)
    assert events[-2:] == [("terminate", "b", "boom"), ("start", "b")]


async def test_S9_one_for_all_stops_in_reverse_and_restarts_in_order(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, k) for k in ("o1", "o2", "o3")], strategy="one_for_all"
        )
        before = await pids(sup)
        events.clear()
        await crash(before["o1"])
        after = await pids(sup)
        assert not set(after.values()) & set(before.values())  # no old pid survives
        assert all(process_info(pid) is None for pid in before.values())

    await node.run(body)
    assert events == [
        ("terminate", "o1", "boom"),
        ("terminate", "o3", "shutdown"),
        ("terminate", "o2", "shutdown"),
        ("start", "o1"),
        ("start", "o2"),
        ("start", "o3"),
    ]


async def test_S10_rest_for_one(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, k) for k in ("r1", "r2", "r3")], strategy="rest_for_one"
        )
        before = await pids(sup)
        events.clear()
        await crash(before["r2"])
        after = await pids(sup)
        assert after["r1"] == before["r1"]
        assert after["r2"] != before["r2"] and after["r3"] != before["r3"]

    await node.run(body)
    assert events == [
        ("terminate", "r2", "boom"),
        ("terminate", "r3", "shutdown"),
        ("start", "r2"),
        ("start", "r3"),
    ]


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_temporary_bystander(node: Node, strategy: str) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "p"), member(events, "t", restart="temporary")], strategy=strategy
        )
        before = await pids(sup)
        await crash(before["p"])
        after = await pids(sup)
        assert list(after) == ["p"] and after["p"] != before["p"]
        assert process_info(before["t"]) is None

    await node.run(body)
    assert ("start", "t") not in events[2:]


async def test_group_restart_starts_stopped_members_too(node: Node) -> None:
    # OTP's start_children starts the whole group, including a child stopped
    # with terminate_child.
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "a"), member(events, "b")], strategy="one_for_all"
        )
        await Supervisor.terminate_child(sup, "b")
        await crash((await pids(sup))["a"])
        assert all(isinstance(pid, Pid) for pid in (await pids(sup)).values())

    await node.run(body)


async def test_S11_failed_restart_is_retried_and_counts(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []
    failures = [0]

    async def body() -> None:
        sup = await Supervisor.start_link([flaky(events, "f", failures)], max_restarts=3)
        failures[0] = 2
        await crash((await pids(sup))["f"])
        # Each retry is a message the supervisor sends itself, so the first
        # call after the crash may still see the child restarting.
        while (await pids(sup))["f"] == "restarting":
            pass
        assert isinstance((await pids(sup))["f"], Pid)

    await node.run(body)
    assert events[-4:] == [("terminate", "f", "boom"), ("fail", "f"), ("fail", "f"), ("start", "f")]
    assert len(reports(caplog, "start_error")) == 2


async def test_S12_operations_on_a_restarting_child(node: Node) -> None:
    events: Events = []
    failures = [0]

    async def body() -> None:
        sup = await Supervisor.start_link([flaky(events, "f", failures)], max_restarts=100)
        failures[0] = -1
        await crash((await pids(sup))["f"])
        for operation in (Supervisor.restart_child, Supervisor.delete_child):
            with pytest.raises(SupervisorError) as info:
                await operation(sup, "f")
            assert info.value.reason == "restarting"
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(sup, flaky(events, "f", failures))
        assert info.value.reason == "already_present"
        assert (await Supervisor.count_children(sup)).active == 0
        await Supervisor.terminate_child(sup, "f")

    await node.run(body)


async def test_S11_supervisor_answers_between_immediate_retries(node: Node) -> None:
    # A start that fails at once still lets requests in between retries.
    events: Events = []
    failures = [0]

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "a"), flaky(events, "f", failures)], max_restarts=50
        )
        failures[0] = -1
        await crash((await pids(sup))["f"])
        assert (await pids(sup))["f"] == "restarting"
        await Supervisor.terminate_child(sup, "f")
        tries = events.count(("fail", "f"))
        assert tries < 50
        assert await pids(sup) == {"a": (await pids(sup))["a"], "f": None}
        assert events.count(("fail", "f")) == tries

    await node.run(body)


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
async def test_escalation_when_a_child_fails_to_restart(
    node: Node, caplog: pytest.LogCaptureFixture, strategy: str
) -> None:
    # one_for_one_escalation, one_for_all_escalation, rest_for_one_escalation
    events: Events = []
    failures = [0]

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link(
            [member(events, "a"), flaky(events, "f", failures), member(events, "b")],
            strategy=strategy,
            max_restarts=3,
        )
        ref = monitor(sup)
        failures[0] = -1
        events.clear()
        await crash((await pids(sup))["f"])
        assert (await wait_down(ref)).reason == "shutdown"

    await node.run(body)
    assert events.count(("fail", "f")) == 3  # the crash and two retries; the 4th escalates
    if strategy == "one_for_one":
        assert events[-2:] == [("terminate", "b", "shutdown"), ("terminate", "a", "shutdown")]
    else:  # b, after f, was not started again: only the restarted a is left to stop
        assert events[-1] == ("terminate", "a", "shutdown")
        assert ("start", "b") not in events
    [escalation] = reports(caplog, "reached_max_restart_intensity")
    assert escalation.beamlet_child_id == "f"
    assert (escalation.beamlet_max_restarts, escalation.beamlet_max_seconds) == (3, 5.0)
    assert escalation.getMessage() == (
        f"supervisor {escalation.beamlet_supervisor!r} gave up "
        "(reached_max_restart_intensity: more than 3 restarts in 5 s); the last failure: "
        f"child 'f' ({escalation.beamlet_pid!r}) exited with reason "
        f"{escalation.beamlet_reason!r}; shutting its children down and exiting with "
        "reason 'shutdown'"
    )


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_other_child_fails_restart(node: Node, strategy: str) -> None:
    # one_for_all_other_child_fails_restart / rest_for_one_other_child_fails_restart
    events: Events = []
    failures = [0]

    async def body() -> None:
        sup = await Supervisor.start_link(
            [member(events, "o1"), flaky(events, "o2", failures), member(events, "o3")],
            strategy=strategy,
        )
        failures[0] = 1
        events.clear()
        await crash((await pids(sup))["o1"])
        while "restarting" in (await pids(sup)).values():
            pass
        assert all(isinstance(pid, Pid) for pid in (await pids(sup)).values())

    await node.run(body)
    if strategy == "one_for_all":
        # o1 restarted, o2 failed: o1 is stopped again and the group starts over.
        assert events == [
            ("terminate", "o1", "boom"),
            ("terminate", "o3", "shutdown"),
            ("terminate", "o2", "shutdown"),
            ("start", "o1"),
            ("fail", "o2"),
            ("terminate", "o1", "shutdown"),
            ("start", "o1"),
            ("start", "o2"),
            ("start", "o3"),
        ]
    else:
        assert events == [
            ("terminate", "o1", "boom"),
            ("terminate", "o3", "shutdown"),
            ("terminate", "o2", "shutdown"),
            ("start", "o1"),
            ("fail", "o2"),
            ("start", "o2"),
            ("start", "o3"),
        ]


async def test_linked_siblings_restart_without_name_clashes(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    # r2 links itself to r1: when r1 crashes, r2 is killed through the link,
    # possibly after the supervisor has begun restarting. The restart must
    # wait for r2's real exit (and its name's release).
    async def linked_to(name: str) -> None:
        pid = whereis(name)
        assert pid is not None
        link(pid)
        await receive()

    async def body() -> None:
        sup = await Supervisor.start_link(
            [worker(idle, id="r1", name="r1"), worker(linked_to, "r1", id="r2", name="r2")],
            strategy="rest_for_one",
            max_restarts=1000,
        )
        for _ in range(30):
            await trio.lowlevel.checkpoint()
            await kill((await pids(sup))["r1"], "boom")
            children = await pids(sup)
            assert children == {"r1": whereis("r1"), "r2": whereis("r2")}

    await node.run(body)
    assert reports(caplog, "start_error") == []


# -- intensity (S13, S14; scenarios 18, 25) ----------------------------------------------


async def test_S13_fourth_crash_in_window_escalates(node: Node, autojump_clock: Any) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([member(events, "c")], max_restarts=3, max_seconds=5.0)
        ref = monitor(sup)
        for _ in range(3):
            await crash((await pids(sup))["c"])
            await trio.sleep(1.0)
        start = trio.current_time()
        await crash((await pids(sup))["c"])
        assert (await wait_down(ref)).reason == "shutdown"
        assert trio.current_time() == start

    await node.run(body)


async def test_S13_window_is_exactly_max_seconds(node: Node, autojump_clock: Any) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link([member(events, "c")], max_restarts=1, max_seconds=5.0)
        await crash((await pids(sup))["c"])
        await trio.sleep(5.25)  # the first restart has left the window
        await crash((await pids(sup))["c"])
        await trio.sleep(5.0)  # exactly max_seconds: the second restart still counts
        ref = monitor(sup)
        await crash((await pids(sup))["c"])
        assert (await wait_down(ref)).reason == "shutdown"

    await node.run(body)


async def test_multiple_restarts(node: Node, autojump_clock: Any) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link([member(events, "c")], max_restarts=1, max_seconds=1.0)
        for _ in range(10):
            await crash((await pids(sup))["c"])
            await trio.sleep(1.01)
        assert process_info(sup) is not None

    await node.run(body)


async def test_S14_escalation_stops_children_in_reverse_and_exits_shutdown(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    async def body() -> None:
        trap_exits(True)
        sup = await Supervisor.start_link(
            [member(events, k) for k in "abc"], max_restarts=0, name="fragile"
        )
        ref = monitor(sup)
        events.clear()
        await crash((await pids(sup))["b"])
        assert (await wait_down(ref)).reason == "shutdown"

    await node.run(body)
    assert events == [
        ("terminate", "b", "boom"),
        ("terminate", "c", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]
    [record] = reports(caplog, "reached_max_restart_intensity")
    assert record.beamlet_supervisor_name == "fragile"


@pytest.mark.parametrize(("restart", "restored"), [("permanent", True), ("transient", False)])
async def test_tree_nested_escalation(node: Node, restart: str, restored: bool) -> None:
    events: Events = []

    async def body() -> None:
        sub = Supervisor.child_spec(
            [member(events, "x")], id="sub", name="sub", max_restarts=0, restart=restart
        )
        top = await Supervisor.start_link([member(events, "w"), sub], max_restarts=5)
        await Supervisor.start_child("sub", member(events, "dyn"))
        assert list(await pids("sub")) == ["x", "dyn"]
        old_sub = (await pids(top))["sub"]
        ref = monitor(old_sub)
        await crash((await pids("sub"))["x"])
        assert (await wait_down(ref)).reason == "shutdown"
        children = await pids(top)
        if restored:
            assert isinstance(children["sub"], Pid) and children["sub"] != old_sub
            assert list(await pids("sub")) == ["x"]  # the dynamic child is not restored
        else:
            assert children["sub"] is None
        assert isinstance(children["w"], Pid)

    await node.run(body)


# -- administration (S12, S19; scenarios 12, 13, 24, 27) ---------------------------------


async def test_child_adm(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sup = await Supervisor.start_link([member(events, "a")])
        a = (await pids(sup))["a"]
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(sup, member(events, "a"))
        assert info.value.reason == ("already_started", a)
        await Supervisor.terminate_child(sup, "a")
        await Supervisor.terminate_child(sup, "a")  # already stopped: fine
        assert await pids(sup) == {"a": None}
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(sup, member(events, "a"))
        assert info.value.reason == "already_present"
        a2 = await Supervisor.restart_child(sup, "a")
        assert isinstance(a2, Pid) and a2 != a
        for operation in (Supervisor.restart_child, Supervisor.delete_child):
            with pytest.raises(SupervisorError) as info:
                await operation(sup, "a")
            assert info.value.reason == "running"
        await Supervisor.terminate_child(sup, "a")
        await Supervisor.delete_child(sup, "a")
        for operation in (
            Supervisor.delete_child,
            Supervisor.restart_child,
            Supervisor.terminate_child,
        ):
            with pytest.raises(SupervisorError) as info:
                await operation(sup, "a")
            assert info.value.reason == "not_found"
        b = await Supervisor.start_child(sup, member(events, "b"))
        c = await Supervisor.start_child(sup, member(events, "c", restart="temporary"))
        assert await pids(sup) == {"b": b, "c": c}  # appended in order
        await Supervisor.terminate_child(sup, "c")  # a temporary spec goes with it
        assert await pids(sup) == {"b": b}
        with pytest.raises(StartError):
            await Supervisor.start_child(sup, flaky(events, "f", [-1]))
        assert "f" not in await pids(sup)

    async def noproc() -> None:
        dead = spawn_link(idle)
        await kill(dead)
        for target in (dead, "nobody"):
            with pytest.raises(SupervisorError) as info:
                await Supervisor.which_children(target)
            assert info.value.reason == "noproc"

    await node.run(body)
    await node.run(noproc, trap_exits=True)


async def test_extra_return(node: Node) -> None:
    async def start_with_info(tag: str) -> tuple[Pid, str]:
        return spawn_link(idle), tag

    async def body() -> None:
        sup = await Supervisor.start_link([])
        result = await Supervisor.start_child(sup, ChildSpec("x", start_with_info, ("info",)))
        assert isinstance(result, tuple) and result[1] == "info"
        await Supervisor.terminate_child(sup, "x")
        again = await Supervisor.restart_child(sup, "x")
        assert isinstance(again, tuple) and again[1] == "info" and again[0] != result[0]
        assert (await pids(sup))["x"] == again[0]

    await node.run(body)


async def test_count_children(node: Node) -> None:
    events: Events = []

    async def body() -> None:
        sub = Supervisor.child_spec([], id="sub")
        sup = await Supervisor.start_link([member(events, "a"), sub, member(events, "b")])
        assert await Supervisor.count_children(sup) == ChildCounts(3, 3, 1, 2)
        await Supervisor.terminate_child(sup, "sub")
        assert await Supervisor.count_children(sup) == ChildCounts(3, 2, 1, 2)
        for i in range(1000):
            await Supervisor.start_child(sup, worker(idle, id=i))
        assert await Supervisor.count_children(sup) == ChildCounts(1003, 1002, 1, 1002)
        which = await Supervisor.which_children(sup)
        assert which[1] == ChildInfo("sub", None, "supervisor")

    await node.run(body)


async def test_hanging_restart_loop(node: Node, autojump_clock: Any) -> None:
    attempts: list[float] = []

    async def slow_failure() -> Any:
        await trio.sleep(1.0)
        attempts.append(trio.current_time())
        raise StartError("not today")

    async def body() -> None:
        trap_exits(True)
        # Start it healthy, then make every restart fail (slowly).
        healthy = [True]

        async def start() -> Any:
            if healthy[0]:
                return spawn_link(idle)
            return await slow_failure()

        sup = await Supervisor.start_link(
            [worker(idle, id="a"), ChildSpec("h", start)], max_restarts=100, max_seconds=1000.0
        )
        healthy[0] = False
        await kill((await pids(sup))["h"], "boom")
        await trio.sleep(2.5)
        # The supervisor answers between attempts, and shows the child restarting.
        assert (await pids(sup))["h"] == "restarting"
        for operation in (Supervisor.restart_child, Supervisor.delete_child):
            with pytest.raises(SupervisorError) as info:
                await operation(sup, "h")
            assert info.value.reason == "restarting"
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(sup, ChildSpec("h", start))
        assert info.value.reason == "already_present"
        await Supervisor.terminate_child(sup, "h")  # ends the loop
        count = len(attempts)
        await trio.sleep(10.0)
        assert len(attempts) == count
        assert (await pids(sup))["h"] is None
        # Stopping the supervisor ends a loop too.
        await Supervisor.delete_child(sup, "h")
        healthy[0] = True
        await Supervisor.start_child(sup, ChildSpec("h2", start))
        healthy[0] = False
        await kill((await pids(sup))["h2"], "boom")
        await trio.sleep(1.5)
        start_time = trio.current_time()
        assert (await kill(sup, "shutdown")).reason == "shutdown"
        assert trio.current_time() <= start_time + 1.0  # after the current attempt
        count = len(attempts)
        await trio.sleep(10.0)
        assert len(attempts) == count

    await node.run(body)


# -- names ----------------------------------------------------------------------------


async def test_restarted_child_is_reachable_by_name(node: Node) -> None:
    async def echo() -> None:
        while True:
            sender, msg = await receive()
            send(sender, ("echo", self_pid(), msg))

    async def body() -> None:
        sup = await Supervisor.start_link(
            [worker(echo, id="echo", name="echo"), member([], "srv", trap=False, name="srv")]
        )
        for name in ("echo", "srv"):
            old = whereis(name)
            assert old is not None
            down = await kill(old, "boom")
            assert down.reason == "boom"
            # The first request to the supervisor after the Down is served after
            # the restart: no polling, and the name already reaches the new child.
            new = (await pids(sup))[name]
            assert isinstance(new, Pid) and new != old
            assert whereis(name) == new
        send("echo", (self_pid(), "hi"))
        assert await receive() == ("echo", whereis("echo"), "hi")
        assert await call("srv", "who") == "srv"

    await node.run(body)


async def test_unexpected_messages_are_logged(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        sup = await Supervisor.start_link([])
        send(sup, "hello?")
        assert await Supervisor.which_children(sup) == []
        await call(sup, "nonsense")  # refused, and the supervisor carries on
        assert await Supervisor.which_children(sup) == []

    await node.run(body)
    assert any("hello?" in r.getMessage() for r in caplog.records)
