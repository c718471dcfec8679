"""Pool processes: checkout and checkin, waiting, overflow, deaths, races, bad input."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    CallExitError,
    Down,
    GenServer,
    Node,
    Pid,
    StartError,
    call,
    cast,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    trap_exits,
    whereis,
)
from beamlet.apps.pool import (
    Pool,
    PoolFullError,
    PoolStatus,
    PoolTimeoutError,
    UnknownPoolError,
    checkout,
    status,
    transaction,
)
from beamlet.supervisors import Supervisor


class Echo(GenServer):
    """A worker: answers ``(tag, request)``; ``"crash"`` crashes it."""

    async def init(self, tag: str = "w") -> None:
        self.tag = tag

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "crash":
            raise RuntimeError("worker crash")
        return (self.tag, request)


class Flaky(GenServer):
    """A worker whose starts succeed or fail as a shared plan says (``"ok"``/``"fail"``)."""

    async def init(self, plan: list[str]) -> None:
        if plan and plan.pop(0) == "fail":
            raise ConnectionError("database unreachable")


class Recorder(GenServer):
    """A worker that reports its start and its stop to ``parent``."""

    async def init(self, parent: Pid) -> None:
        trap_exits(True)
        self.report = parent
        send(parent, ("started", self_pid()))

    async def terminate(self, reason: Any) -> None:
        send(self.report, ("stopped", self_pid(), reason))


async def settle(pool: Any = "pool") -> PoolStatus:
    """Let every process run until all wait, then read the pool's counts."""
    await trio.testing.wait_all_tasks_blocked()
    return await status(pool)


async def tagged(tag: str) -> Any:
    """The oldest ``(tag, ...)`` message."""
    return await receive(lambda m: type(m) is tuple and m[0] == tag)


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


# -- checkout and checkin -----------------------------------------------------


async def test_checkout_checkin_and_status(node: Node) -> None:
    async def body() -> None:
        pool = await Pool.start_link("pool", worker=Echo, worker_args=("db",), size=2)
        assert whereis("pool") == pool
        assert await status("pool") == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)
        async with checkout("pool") as a:
            assert await call(a, "hi") == ("db", "hi")
            async with checkout(pool) as b:
                assert a != b
                assert await status(pool) == PoolStatus(ready=0, busy=2, overflow=0, waiting=0)
        assert await status("pool") == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)
        assert await transaction("pool", call, "x") == ("db", "x")

    await node.run(body)


async def test_lifo_reuses_the_hot_worker_and_fifo_rotates(node: Node) -> None:
    async def body() -> None:
        for strategy, expect_same in (("lifo", True), ("fifo", False)):
            await Pool.start_link(strategy, worker=Echo, size=3, strategy=strategy)
            async with checkout(strategy) as first:
                pass
            async with checkout(strategy) as second:
                pass
            assert (first == second) is expect_same, strategy

    await node.run(body)


async def test_an_exception_in_the_block_returns_the_worker(node: Node) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        with pytest.raises(ZeroDivisionError):
            async with checkout("pool"):
                1 / 0  # noqa: B018
        with pytest.raises(KeyError):
            await transaction("pool", lambda worker: {}.__getitem__("missing"))  # type: ignore[arg-type, return-value]

        async def fails(worker: Pid) -> None:
            raise KeyError("missing")

        with pytest.raises(KeyError):
            await transaction("pool", fails)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_waiters_are_served_in_order(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        served: list[tuple[str, float]] = []

        async def client(label: str, start: float, hold: float) -> None:
            await trio.sleep(start)
            async with checkout("pool", timeout=None):
                served.append((label, trio.current_time()))
                await trio.sleep(hold)

        t0 = trio.current_time()
        for label, start in (("a", 0.0), ("b", 0.1), ("c", 0.2), ("d", 0.3)):
            spawn(client, label, t0 + start - trio.current_time(), 1.0)
        await trio.sleep(0.5)
        assert await status("pool") == PoolStatus(ready=0, busy=1, overflow=0, waiting=3)
        await trio.sleep(4.0)
        assert [(label, round(t - t0, 6)) for label, t in served] == [
            ("a", 0.0),
            ("b", 1.0),
            ("c", 2.0),
            ("d", 3.0),
        ]
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_checkout_timeout_at_the_exact_time(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        async with checkout("pool"):
            start = trio.current_time()
            with pytest.raises(PoolTimeoutError) as info:
                async with checkout("pool", timeout=2.5):
                    pytest.fail("got a worker")
            assert trio.current_time() - start == 2.5
            assert info.value.timeout == 2.5 and info.value.pool == "pool"
            assert isinstance(info.value, trio.TooSlowError)
            assert "no worker of pool 'pool' was free within 2.5 s" in str(info.value)
            assert await settle() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_non_blocking_checkout_of_a_full_pool(node: Node) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1, max_overflow=1)
        async with checkout("pool", block=False), checkout("pool", block=False):
            with pytest.raises(PoolFullError, match="pool 'pool' is full") as info:
                async with checkout("pool", block=False):
                    pytest.fail("got a worker")
            assert isinstance(info.value, trio.WouldBlock)
            assert await status("pool") == PoolStatus(ready=0, busy=2, overflow=1, waiting=0)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


# -- overflow -----------------------------------------------------------------


async def test_overflow_workers_start_under_load_and_retire_when_returned(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        await Pool.start_link("pool", worker=Recorder, worker_args=(me,), size=1, max_overflow=2)
        base = (await tagged("started"))[1]
        async with checkout("pool") as a:
            assert a == base
            async with checkout("pool") as b, checkout("pool") as c:
                assert {(await tagged("started"))[1], (await tagged("started"))[1]} == {b, c}
                assert await status("pool") == PoolStatus(ready=0, busy=3, overflow=2, waiting=0)
                ref_b, ref_c = monitor(b), monitor(c)
            # Both returned with no one waiting: both overflow workers are stopped,
            # each by its supervisor's shutdown protocol (terminate runs).
            stopped = {(await tagged("stopped"))[1], (await tagged("stopped"))[1]}
            assert stopped == {b, c}
            assert (await wait_down(ref_b)).reason == "shutdown"
            assert (await wait_down(ref_c)).reason == "shutdown"
            assert await settle() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
        assert process_info(base) is not None

    await node.run(body)


async def test_an_overflow_worker_goes_to_a_waiter_rather_than_retiring(
    node: Node, autojump_clock: Any
) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1, max_overflow=1)
        got: list[Pid] = []

        async def waiter() -> None:
            async with checkout("pool") as pid:
                got.append(pid)

        async with checkout("pool"):
            async with checkout("pool") as overflow:
                spawn(waiter)
                assert (await settle()).waiting == 1
            assert await settle() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
        assert got == [overflow]
        assert process_info(overflow) is None  # retired after the waiter's checkin
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


# -- deaths -------------------------------------------------------------------


async def test_a_dead_caller_returns_its_worker(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)

        async def holder() -> None:
            async with checkout("pool"):
                await trio.sleep_forever()

        pid = spawn(holder)
        assert (await settle()).busy == 1
        ref = monitor(pid)
        send_exit(pid, "kill")
        await wait_down(ref)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_a_dead_waiter_is_dropped_from_the_queue(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)

        async def waiter() -> None:
            async with checkout("pool", timeout=None):
                pass

        async with checkout("pool"):
            pid = spawn(waiter)
            assert (await settle()).waiting == 1
            send_exit(pid, "kill")
            assert (await settle()).waiting == 0
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_a_crashed_worker_is_replaced(node: Node) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=2)
        async with checkout("pool") as worker:
            ref = monitor(worker)
            with pytest.raises(CallExitError):
                await call(worker, "crash")
            assert isinstance((await wait_down(ref)).reason, RuntimeError)
            # The checkout is released with the crash: the pool has 2 workers again.
            assert await settle() == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)
        async with checkout("pool") as a, checkout("pool") as b:
            assert worker not in (a, b)
            assert await call(a, 1) == ("w", 1) and await call(b, 2) == ("w", 2)
        # A ready worker killed from outside is replaced too.
        async with checkout("pool") as idle:
            pass
        send_exit(idle, "kill")
        assert await settle() == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_a_crashed_worker_is_replaced_for_the_oldest_waiter(
    node: Node, autojump_clock: Any
) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        got: list[Pid] = []

        async def waiter() -> None:
            async with checkout("pool", timeout=None) as pid:
                got.append(pid)
                await trio.sleep(1)

        async with checkout("pool") as worker:
            spawn(waiter)
            assert (await settle()).waiting == 1
            send_exit(worker, "kill")
            assert await settle() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
        assert len(got) == 1 and got[0] != worker
        await trio.sleep(1)
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


# -- hand-off races -----------------------------------------------------------


async def test_cancelled_while_the_grant_is_on_its_way(node: Node) -> None:
    """The caller is cancelled after the pool has decided to hand it a worker but
    before the reply reaches it: the reply is dropped, and the pool takes the
    worker back when it learns that the caller gave up."""

    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        scopes: list[trio.CancelScope] = []
        outcome: list[str] = []

        async def waiter() -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                async with checkout("pool", timeout=None):
                    outcome.append("got a worker")
            outcome.append("cancelled" if scope.cancelled_caught else "not cancelled")
            await trio.sleep_forever()  # alive: its death would return the worker anyway

        async with checkout("pool"):
            spawn(waiter)
            assert (await settle()).waiting == 1
            # Leaving the block sends the checkin; the cancellation follows in
            # the same step, before the pool has run.
        scopes[0].cancel()
        assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
        assert outcome == ["cancelled"]

    await node.run(body)


class _CancelWhenRescheduled(trio.abc.Instrument):
    """Cancels a scope the moment its task is rescheduled (with its worker)."""

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.scope: trio.CancelScope | None = None
        self.fired = False

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and self.scope is not None and not self.fired:
            self.fired = True
            self.scope.cancel()


async def test_cancelled_exactly_at_the_grant(node: Node) -> None:
    """The reply has reached the caller's task (it is runnable, holding the
    worker's pid) when the cancellation comes: the block is entered, cancelled at
    its first checkpoint, and the worker is checked in on the way out."""

    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        instrument = _CancelWhenRescheduled()
        outcome: list[str] = []

        async def waiter() -> None:
            with trio.CancelScope() as scope:
                instrument.scope = scope
                instrument.task = trio.lowlevel.current_task()
                async with checkout("pool", timeout=None) as pid:
                    outcome.append(f"got {pid!r}")
                    await trio.lowlevel.checkpoint()
                    outcome.append("ran on")
            outcome.append("cancelled" if scope.cancelled_caught else "not cancelled")
            await trio.sleep_forever()  # alive: its death would return the worker anyway

        async with checkout("pool") as worker:
            spawn(waiter)
            assert (await settle()).waiting == 1
            trio.lowlevel.add_instrument(instrument)
        try:
            assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
        finally:
            trio.lowlevel.remove_instrument(instrument)
        assert instrument.fired
        assert outcome == [f"got {worker!r}", "cancelled"]

    await node.run(body)


async def test_timeout_at_the_same_instant_as_a_checkin(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        for attempt in range(6):
            outcome: list[str] = []

            async def waiter(out: list[str] = outcome) -> None:
                try:
                    async with checkout("pool", timeout=1.0):
                        out.append("served")
                except PoolTimeoutError:
                    out.append("timed out")
                await trio.sleep_forever()  # alive: its death would return the worker anyway

            async def holder(delay: float) -> None:
                async with checkout("pool"):
                    await trio.sleep(delay)

            spawn(holder, 1.0)
            await trio.testing.wait_all_tasks_blocked()
            # Spawned before or after the holder's first step: the waiter's
            # deadline falls on the checkin's instant, on either side of it.
            for _ in range(attempt):
                await trio.lowlevel.checkpoint()
            spawn(waiter)
            await trio.sleep(2.0)
            assert len(outcome) == 1, outcome
            assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


async def test_a_killed_caller_waiting_for_a_worker_leaks_nothing(
    node: Node, autojump_clock: Any
) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo, size=1)
        for delay in (0.0, 0.5, 1.0):

            async def waiter() -> None:
                async with checkout("pool", timeout=None):
                    await trio.sleep_forever()

            async def holder() -> None:
                async with checkout("pool"):
                    await trio.sleep(1.0)

            spawn(holder)
            await trio.testing.wait_all_tasks_blocked()
            pid = spawn(waiter)
            await trio.sleep(delay)
            send_exit(pid, "kill")
            await trio.sleep(1.0)
            assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)

    await node.run(body)


# -- supervision --------------------------------------------------------------


async def test_a_pool_under_a_supervisor_stops_its_workers_first(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        sup = await Supervisor.start_link(
            [Pool.child_spec("pool", worker=Recorder, worker_args=(me,), size=2)]
        )
        workers = {(await tagged("started"))[1], (await tagged("started"))[1]}
        pool = whereis("pool")
        assert pool is not None
        ref = monitor(pool)
        await Supervisor.terminate_child(sup, ("Pool", "pool"))
        # Each worker's terminate ran before the pool exited.
        stops = [await tagged("stopped"), await tagged("stopped")]
        assert {s[1] for s in stops} == workers
        assert all(s[2] == "shutdown" for s in stops)
        assert (await wait_down(ref)).reason == "shutdown"

    await node.run(body)


async def test_a_replacement_that_fails_to_start_restarts_the_pool(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        plan = ["ok", "ok", "fail"]  # the first replacement fails, then all start
        sup = await Supervisor.start_link(
            [Pool.child_spec("pool", worker=Flaky, worker_args=(plan,), size=2)]
        )
        first = whereis("pool")
        assert first is not None
        ref = monitor(first)
        async with checkout("pool") as worker:
            send_exit(worker, "kill")
            down = await wait_down(ref)
        assert down.reason[0] == "worker_start_failed"
        assert down.reason[1] == "Flaky"
        assert isinstance(down.reason[2], ConnectionError)
        # The supervisor restarted the pool, with its full size.
        await Supervisor.which_children(sup)
        assert whereis("pool") not in (None, first)
        assert await status("pool") == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)

    with caplog.at_level(logging.CRITICAL):
        await node.run(body)


async def test_a_worker_given_as_a_child_spec(node: Node) -> None:
    async def body() -> None:
        await Pool.start_link("pool", worker=Echo.child_spec("spec"), size=1)
        assert await transaction("pool", call, "x") == ("spec", "x")
        await Pool.stop("pool")
        assert whereis("pool") is None

    await node.run(body)


async def test_an_anonymous_pool_is_used_by_pid(node: Node) -> None:
    async def body() -> None:
        pool = await Pool.start_link(worker=Echo, size=1)
        assert await transaction(pool, call, "x") == ("w", "x")

    await node.run(body)


# -- bad input ----------------------------------------------------------------


async def test_unknown_pools_are_refused_at_once(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(UnknownPoolError, match="unknown pool 'nope'") as info:
            checkout("nope")
        assert info.value.pool == "nope"
        with pytest.raises(UnknownPoolError):
            await status("nope")
        other = spawn(trio.sleep_forever)
        with pytest.raises(UnknownPoolError, match="not a pool"):
            await transaction(other, call)
        with pytest.raises(TypeError, match="a pool is a name, a pid or"):
            checkout(42)  # type: ignore[arg-type]
        assert process_info(other) is not None  # it was never sent anything

    await node.run(body)


async def test_bad_options_are_refused_before_anything_starts(node: Node) -> None:
    async def body() -> None:
        before = len(node.processes())
        with pytest.raises(ValueError, match="size must be an int >= 1, not 0"):
            await Pool.start_link("p", worker=Echo, size=0)
        with pytest.raises(ValueError, match="max_overflow must be an int >= 0, not -1"):
            await Pool.start_link("p", worker=Echo, max_overflow=-1)
        with pytest.raises(ValueError, match="strategy must be 'lifo' or 'fifo'"):
            await Pool.start_link("p", worker=Echo, strategy="random")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="GenServer subclass or a child spec, not <function"):
            await Pool.start_link("p", worker=lambda: None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not 'Echo'"):
            await Pool.start_link("p", worker="Echo")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="worker_args go with a GenServer class"):
            await Pool.start_link("p", worker=Echo.child_spec(), worker_args=(1,))
        with pytest.raises(TypeError, match="worker_args must be a tuple or a list"):
            await Pool.start_link("p", worker=Echo, worker_args="db")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name must be a str or None"):
            await Pool.start_link(3, worker=Echo)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="size"):
            Pool.child_spec("p", worker=Echo, size=0)
        assert len(node.processes()) == before
        await Pool.start_link("p", worker=Echo, size=1)
        with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
            checkout("p", timeout=-1)
        with pytest.raises(ValueError, match="timeout"):
            await transaction("p", call, timeout=-0.5)
        with pytest.raises(TypeError, match="block must be True or False"):
            checkout("p", block=1)  # type: ignore[arg-type]

    await node.run(body)


async def test_a_worker_whose_init_fails_fails_the_start_by_name(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        with pytest.raises(StartError) as info:
            await Pool.start_link("db", worker=Flaky, worker_args=(["ok", "fail"],), size=3)
        assert str(info.value) == (
            "cannot start worker Flaky of pool 'db': "
            "init raised ConnectionError: database unreachable"
        )
        assert isinstance(info.value.reason, ConnectionError)
        assert whereis("db") is None
        await trio.testing.wait_all_tasks_blocked()
        assert node.processes() == [self_pid()]  # the worker that had started is gone too
        with pytest.raises(StartError, match="already registered"):
            await Pool.start_link("taken", worker=Echo)
            await Pool.start_link("taken", worker=Echo)

    await node.run(body)


async def test_the_manager_survives_malformed_input(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        pool = await Pool.start_link("pool", worker=Echo, size=1)
        with caplog.at_level(logging.WARNING, logger="beamlet.apps.pool"):
            answer = await call("pool", ("checkout", "not a ref", True))
            assert answer[0] == "beamlet.pool.refused" and "malformed call" in answer[1]
            assert (await call("pool", "junk"))[0] == "beamlet.pool.refused"
            cast("pool", ("checkin", 42))
            cast("pool", "junk")
            send(pool, ("random", "message"))
            send(pool, Down(node.make_ref(), self_pid(), "forged"))
            assert await settle() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
            lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert lines == [
                "pool 'pool' refused a malformed call: ('checkout', 'not a ref', True)"
            ]
            await trio.sleep(11)
            cast("pool", "more junk")
            await settle()
            lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert lines[-1] == (
                "pool 'pool' refused a malformed cast: 'more junk' (5 more since the last report)"
            )
        assert await transaction("pool", call, "still") == ("w", "still")

    await node.run(body)


@pytest.mark.parametrize("seed", range(4))
async def test_a_storm_of_checkouts_deaths_and_timeouts_leaks_nothing(
    node: Node, autojump_clock: Any, seed: int
) -> None:
    """Random callers (some killed, some timing out, some cancelled) and random
    worker kills: once it is over, the pool has exactly ``size`` ready workers,
    its supervisor exactly ``size`` children, and no monitor is left."""
    import random

    from beamlet.supervisors import DynamicSupervisor

    async def body() -> None:
        rng = random.Random(seed)
        pool = await Pool.start_link("pool", worker=Echo, size=3, max_overflow=2)
        info = process_info(pool)
        assert info is not None
        [sup] = [pid for pid in info.links if pid != self_pid()]  # the workers' supervisor
        callers: list[Pid] = []

        async def caller(hold: float, timeout: float, cancel_after: float) -> None:
            with trio.move_on_after(cancel_after):
                try:
                    async with checkout("pool", timeout=timeout) as worker:
                        if rng.random() < 0.2:
                            send_exit(worker, "kill")
                        await trio.sleep(hold)
                except PoolTimeoutError:
                    pass
            await trio.sleep_forever()

        for _ in range(60):
            args = (rng.uniform(0, 2), rng.choice([0.5, 1.0, 3.0]), rng.uniform(0, 4))
            callers.append(spawn(caller, *args))
            await trio.sleep(rng.choice([0, 0.1, 0.25]))
            if rng.random() < 0.15:
                send_exit(rng.choice(callers), "kill")
        await trio.sleep(10)
        assert await settle() == PoolStatus(ready=3, busy=0, overflow=0, waiting=0)
        assert (await DynamicSupervisor.count_children(sup)).active == 3
        manager = process_info(pool)
        assert manager is not None
        assert len(manager.monitors) == 3  # its workers'; no caller's is left
        for pid in callers:
            send_exit(pid, "kill")

    await node.run(body)
