"""GenServer (otp-semantics G1-G14 and the gen_server_SUITE scenarios 28-36)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    Down,
    Exit,
    ExitSignal,
    From,
    GenServer,
    Ignore,
    Node,
    NoReply,
    NotInProcessError,
    Pid,
    ReceiveTimeoutError,
    StartError,
    Stop,
    call,
    cast,
    link,
    monitor,
    process_info,
    receive,
    reply,
    self_pid,
    send,
    send_after,
    send_exit,
    spawn,
    spawn_monitor,
    stop,
    trap_exits,
    whereis,
)


class Counter(GenServer):
    async def init(self, start: int = 0) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: From) -> Any:
        if request == "get":
            return self.n
        if request == "pid":
            return self_pid()
        raise ValueError(f"unknown call {request!r}")

    async def handle_cast(self, request: Any) -> None:
        self.n += request


class Recorder(GenServer):
    """Records every callback in a list it is given."""

    async def init(self, log: list[Any], after: Any = None) -> Any:
        self.log = log
        log.append(("init",))
        return after

    async def handle_call(self, request: Any, caller: From) -> Any:
        self.log.append(("call", request))
        if isinstance(request, tuple) and request[0] == "return":
            return request[1]
        return ("ok", request)

    async def handle_cast(self, request: Any) -> Any:
        self.log.append(("cast", request))
        if isinstance(request, tuple) and request[0] == "return":
            return request[1]
        if request == "raise":
            raise RuntimeError("cast failed")
        return None

    async def handle_info(self, msg: Any) -> Any:
        self.log.append(("info", msg))
        if isinstance(msg, tuple) and msg[0] == "return":
            return msg[1]
        return None

    async def handle_continue(self, arg: Any) -> Any:
        self.log.append(("continue", arg))
        if isinstance(arg, tuple) and arg[0] == "then":
            return NoReply(continue_=arg[1])
        return None

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))


class Silent(GenServer):
    """Never replies."""

    async def handle_call(self, request: Any, caller: From) -> Any:
        return NoReply


async def nothing_left() -> bool:
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        return True
    return False


async def exit_reason(pid: Pid) -> Any:
    ref = monitor(pid)
    down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    return down.reason


# -- G1: start -------------------------------------------------------------------------


async def test_G1_start_returns_after_init(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start(5)
        assert isinstance(pid, Pid)
        assert await call(pid, "get") == 5
        info = process_info(pid)
        assert info is not None
        assert info.links == ()

    await node.run(body)


async def test_G1_start_link_links_the_caller(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start_link()
        assert pid is not None
        info = process_info(pid)
        assert info is not None
        assert info.links == (self_pid(),)

    await node.run(body)


async def test_G1_init_ignore(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        trap_exits()
        assert await Recorder.start_link(log, Ignore, name="ignored") is None
        sig = await receive()
        assert isinstance(sig, ExitSignal)
        assert sig.reason == "normal"
        assert whereis("ignored") is None
        assert log == [("init",)]  # terminate not called

    await node.run(body)


async def test_G1_init_stop_gives_start_error_without_terminate(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        with pytest.raises(StartError) as info:
            await Recorder.start(log, Stop("stopped"))
        assert info.value.reason == "stopped"
        assert log == [("init",)]

    await node.run(body)


async def test_G1_init_stop_also_signals_a_linked_caller(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []

        async def trapping_caller() -> Any:
            trap_exits()
            try:
                await Recorder.start_link(log, Stop("no way"))
            except StartError as exc:
                return (exc.reason, await receive())

        assert await node.run(trapping_caller) == ("no way", ExitSignal(ANY_PID, "no way"))

        async def plain_caller() -> None:
            with pytest.raises(StartError):
                await Recorder.start_link(log, Stop("no way"))
            await trio.sleep_forever()

        pid, ref = spawn_monitor(plain_caller)
        assert await receive() == Down(ref, pid, "no way")

    await node.run(body)


class _AnyPid:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pid)


ANY_PID: Any = _AnyPid()


async def test_G1_init_raising_gives_start_error_with_the_exception(node: Node) -> None:
    class Broken(GenServer):
        async def init(self) -> None:
            raise LookupError("no config")

    async def body() -> None:
        with pytest.raises(StartError) as info:
            await Broken.start()
        assert isinstance(info.value.reason, LookupError)

    await node.run(body)


async def test_G1_init_bad_return_value(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(StartError) as info:
            await Recorder.start([], 42)
        assert info.value.reason == ("bad_return_value", 42)

    await node.run(body)


async def test_G1_slow_init_times_out_and_the_server_is_killed(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    class Slow(GenServer):
        async def init(self) -> None:
            await trio.sleep(100)

    async def body() -> None:
        start = trio.current_time()
        with pytest.raises(StartError) as info:
            await Slow.start_link(name="slow", timeout=2)
        assert info.value.reason == "timeout"
        assert trio.current_time() == start + 2
        await trio.testing.wait_all_tasks_blocked()
        assert whereis("slow") is None
        assert len(node.processes()) == 1  # only us: the server is gone, we live
        assert await nothing_left()

    await node.run(body)


async def test_G1_start_from_outside_a_process(node: Node) -> None:
    pid = await Counter.start(3, name="outside")
    assert pid is not None
    assert node.whereis("outside") == pid
    cast("outside", 4)

    async def get() -> int:
        return await call("outside", "get")

    assert await node.run(get) == 7
    with pytest.raises(NotInProcessError):
        await Counter.start_link()


# -- G2: naming ------------------------------------------------------------------------


async def test_G2_name_registered_before_init(node: Node) -> None:
    class WhoAmI(GenServer):
        async def init(self) -> None:
            self.seen = whereis("me") == self_pid()

        async def handle_call(self, request: Any, caller: From) -> Any:
            return self.seen

    async def body() -> None:
        await WhoAmI.start(name="me")
        assert await call("me", "?") is True

    await node.run(body)


async def test_G2_taken_name_gives_already_started(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start(name="counter")
        with pytest.raises(StartError) as info:
            await Counter.start(name="counter")
        assert info.value.reason == ("already_started", pid)

    await node.run(body)


async def test_G2_name_removed_on_termination(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start(name="counter")
        await stop("counter")
        assert whereis("counter") is None
        again = await Counter.start(name="counter")
        assert again != pid

    await node.run(body)


async def test_G2_address_by_pid_name_and_pair(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start(1, name="c")
        assert pid is not None
        here = self_pid().node
        assert await call(pid, "get") == 1
        assert await call("c", "get") == 1
        assert await call(("c", here), "get") == 1
        cast(("c", here), 1)
        assert await call("c", "get") == 2

    await node.run(body)


# -- G3: call mechanism ---------------------------------------------------------------------


async def test_G3_call_default_timeout_is_5_seconds(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        pid = await Silent.start()
        start = trio.current_time()
        with pytest.raises(CallTimeoutError):
            await call(pid, "hello?")
        assert trio.current_time() == start + 5
        with pytest.raises(CallTimeoutError) as info:
            await call(pid, "hello?", timeout=0.25)
        assert isinstance(info.value, trio.TooSlowError)
        assert trio.current_time() == start + 5.25

    await node.run(body)


async def test_G3_the_caller_monitors_and_does_not_link(node: Node) -> None:
    class Inspect(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            info = process_info(caller.pid)
            mine = process_info(self_pid())
            assert info is not None
            assert mine is not None
            return (info.links, len(info.monitors), mine.monitored_by)

    async def body() -> None:
        pid = await Inspect.start()
        assert await call(pid, "?") == ((), 1, (self_pid(),))
        info = process_info(self_pid())
        assert info is not None
        assert info.monitors == ()  # and the monitor is gone after the call

    await node.run(body)


async def test_G3_late_reply_dropped(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    class Late(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            send_after(2, self_pid(), ("answer", caller))
            return NoReply

        async def handle_info(self, msg: Any) -> None:
            reply(msg[1], "too late")

    async def body() -> None:
        pid = await Late.start()
        start = trio.current_time()
        with pytest.raises(CallTimeoutError):
            await call(pid, "q", timeout=1)
        assert trio.current_time() == start + 1
        await trio.sleep(5)  # the reply was sent at start + 2
        assert await nothing_left()
        await stop(pid)
        assert await nothing_left()  # no Down of the abandoned call either

    await node.run(body)


async def test_G3_a_timed_out_call_leaves_no_monitor_behind(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        pid = await Silent.start()
        with pytest.raises(CallTimeoutError):
            await call(pid, "q", timeout=1)
        info = process_info(self_pid())
        assert info is not None
        assert info.monitors == ()
        server = process_info(pid)
        assert server is not None
        assert server.monitored_by == ()
        send_exit(pid, "bye")
        await trio.testing.wait_all_tasks_blocked()
        assert await nothing_left()

    await node.run(body)


async def test_G3_a_cancelled_call_leaves_nothing_behind(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    class Late(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            await trio.sleep(2)
            return "late"

    async def body() -> None:
        pid = await Late.start()
        with trio.move_on_after(1):
            await call(pid, "q")
        await trio.sleep(5)
        send_exit(pid, "bye")
        await trio.testing.wait_all_tasks_blocked()
        assert await nothing_left()
        info = process_info(self_pid())
        assert info is not None
        assert info.monitors == ()

    await node.run(body)


# -- G4: call failures ----------------------------------------------------------------------


async def test_G4_the_server_dies_during_the_call(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start()
        with pytest.raises(CallExitError) as info:
            await call(pid, "unknown")
        assert isinstance(info.value.reason, ValueError)

        victim = await Silent.start()
        assert victim is not None

        async def killer() -> None:
            await trio.testing.wait_all_tasks_blocked()
            send_exit(victim, "kill")

        spawn(killer)
        with pytest.raises(CallExitError) as info:
            await call(victim, "q")
        assert info.value.reason == "killed"

    await node.run(body)


async def test_G4_stop_without_reply_gives_the_stop_reason(node: Node) -> None:
    async def body() -> None:
        pid = await Recorder.start([])
        with pytest.raises(CallExitError) as info:
            await call(pid, ("return", Stop(("shutdown", "x"))))
        assert info.value.reason == ("shutdown", "x")

    await node.run(body)


async def test_G4_noproc_for_a_dead_pid_or_unregistered_name(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start()
        assert pid is not None
        await stop(pid)
        for dest in [pid, "nobody", ("nobody", self_pid().node)]:
            with pytest.raises(CallExitError) as info:
                await call(dest, "get")
            assert info.value.reason == "noproc"
        assert await nothing_left()

    await node.run(body)


async def test_G4_unreachable_node_gives_nodedown(node: Node) -> None:
    async def body() -> None:
        for dest in [("server", "elsewhere@host"), Pid("elsewhere@host", 1, 1)]:
            with pytest.raises(CallExitError) as info:
                await call(dest, "get")
            assert info.value.reason == ("nodedown", "elsewhere@host")
        with pytest.raises(CallExitError) as info:
            await stop(("server", "elsewhere@host"))
        assert info.value.reason == ("nodedown", "elsewhere@host")

    await node.run(body)


async def test_calling_self(node: Node) -> None:
    class Selfish(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            results = []
            for dest in [self_pid(), "selfish", ("selfish", self_pid().node)]:
                for timeout in [1.0, None]:
                    try:
                        await call(dest, "again", timeout=timeout)
                    except CallExitError as exc:
                        results.append(exc.reason)
            try:
                await stop(self_pid())
            except CallExitError as exc:
                results.append(exc.reason)
            return results

    async def body() -> None:
        await Selfish.start(name="selfish")
        assert await call("selfish", "go") == ["calling_self"] * 7

    await node.run(body)


# -- G5: replies -------------------------------------------------------------------------


async def test_G5_noreply_then_reply_from_another_process(node: Node) -> None:
    class Delegating(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            async def helper() -> None:
                reply(caller, ("done by helper", request))

            spawn(helper)
            return NoReply

    async def body() -> None:
        pid = await Delegating.start()
        assert await call(pid, 7) == ("done by helper", 7)
        assert await nothing_left()

    await node.run(body)


async def test_G5_stop_with_reply_runs_terminate_first(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    events: list[Any] = []

    class Closing(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            return Stop("normal", reply="bye")

        async def terminate(self, reason: Any) -> None:
            await trio.sleep(1)
            events.append(("terminate", reason))

    async def body() -> None:
        pid = await Closing.start()
        assert pid is not None
        ref = monitor(pid)
        start = trio.current_time()
        assert await call(pid, "close") == "bye"
        events.append("reply")
        assert trio.current_time() == start + 1
        assert await receive() == Down(ref, pid, "normal")
        assert events == [("terminate", "normal"), "reply"]

    await node.run(body)


async def test_G5_reply_to_a_caller_that_is_gone_is_fine(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        reply(From(pid, node.make_ref()), "nobody listens")
        reply(From(self_pid(), node.make_ref()), "no such call")
        assert await nothing_left()

    await node.run(body)


# -- G6: invalid returns and missing callbacks ---------------------------------------------------


async def test_G6_bad_return_value_stops_the_server(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        assert pid is not None
        cast(pid, ("return", 42))
        with pytest.raises(CallExitError) as info:
            await call(pid, "after")
        assert info.value.reason == ("bad_return_value", 42)
        assert log[-1] == ("terminate", ("bad_return_value", 42))

    await node.run(body)


async def test_G6_missing_handle_call_and_handle_cast(node: Node) -> None:
    class Bare(GenServer):
        pass

    async def body() -> None:
        pid = await Bare.start()
        with pytest.raises(CallExitError) as info:
            await call(pid, "req")
        assert info.value.reason == ("bad_call", "req")
        pid = await Bare.start()
        assert pid is not None
        ref = monitor(pid)
        cast(pid, "msg")
        assert await receive() == Down(ref, pid, ("bad_cast", "msg"))

    await node.run(body)


# -- G7: cast --------------------------------------------------------------------------------


async def test_G7_cast_always_returns_none(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        assert cast("nobody", 1) is None
        assert cast(("nobody", self_pid().node), 1) is None
        assert cast(("server", "elsewhere@host"), 1) is None  # does not block either
        assert cast(Pid("elsewhere@host", 1, 1), 1) is None
        pid = await Counter.start()
        assert pid is not None
        await stop(pid)
        assert cast(pid, 1) is None
        assert trio.current_time() == start

    await node.run(body)


async def test_cast_delivered_in_order(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        for i in range(100):
            cast(pid, i)
        await call(pid, "sync")
        assert [entry[1] for entry in log if entry[0] == "cast"] == list(range(100))

    await node.run(body)


# -- G8: info -----------------------------------------------------------------------------


async def test_G8_handle_info_gets_every_other_message(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    class Trapping(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            trap_exits()
            return await super().init(log, after)

    async def body() -> None:
        log: list[Any] = []
        pid = await Trapping.start(log)
        assert pid is not None

        async def linked_then_gone(server: Pid) -> None:
            link(server)

        send(pid, "plain")
        send_after(1, pid, "timer")
        other = spawn(linked_then_gone, pid)
        await trio.sleep(2)
        await call(pid, "sync")
        infos = [entry[1] for entry in log if entry[0] == "info"]
        assert infos == ["plain", ExitSignal(other, "normal"), "timer"]

    await node.run(body)


async def test_info_and_continue(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        then_continue = ("return", NoReply(continue_="after info"))
        send(pid, then_continue)
        send(pid, "next")
        await call(pid, "sync")
        assert log[1:] == [
            ("info", then_continue),
            ("continue", "after info"),
            ("info", "next"),
            ("call", "sync"),
        ]

    await node.run(body)


# -- G9: continue ---------------------------------------------------------------------------


async def test_G9_continue_before_next_message(node: Node) -> None:
    class Early(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            send(self_pid(), "queued during init")
            return await super().init(log, after)

    async def body() -> None:
        log: list[Any] = []
        pid = await Early.start(log, NoReply(continue_=("then", "c2")))
        cast(pid, "cast")
        await call(pid, "call")
        assert log == [
            ("init",),
            ("continue", ("then", "c2")),
            ("continue", "c2"),
            ("info", "queued during init"),
            ("cast", "cast"),
            ("call", "call"),
        ]

    await node.run(body)


async def test_G9_continue_from_call_and_cast(node: Node) -> None:
    class Both(GenServer):
        async def init(self, log: list[Any]) -> None:
            self.log = log

        async def handle_call(self, request: Any, caller: From) -> Any:
            reply(caller, "early reply")
            return NoReply(continue_="from call")

        async def handle_continue(self, arg: Any) -> None:
            self.log.append(arg)

        async def handle_cast(self, request: Any) -> Any:
            self.log.append(request)
            return NoReply(continue_="from cast")

    async def body() -> None:
        log: list[Any] = []
        pid = await Both.start(log)
        assert await call(pid, "q") == "early reply"
        cast(pid, "cast 1")
        cast(pid, "cast 2")
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["from call", "cast 1", "from cast", "cast 2", "from cast"]

    await node.run(body)


# -- G10: timeouts in return values ------------------------------------------------------------


async def test_G10_timeout_runs_handle_info_timeout(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        log: list[Any] = []
        start = trio.current_time()
        times: list[float] = []

        class Timed(Recorder):
            async def handle_info(self, msg: Any) -> Any:
                times.append(trio.current_time() - start)
                return await super().handle_info(msg)

        await Timed.start(log, NoReply(timeout=2))
        await trio.sleep(10)
        assert log == [("init",), ("info", "timeout")]
        assert times == [2]

    await node.run(body)


async def test_G10_any_message_cancels_the_timeout(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log, NoReply(timeout=2))
        await trio.sleep(1)
        cast(pid, "in time")
        await trio.sleep(10)
        assert log == [("init",), ("cast", "in time")]

    await node.run(body)


async def test_G10_a_zero_timeout_loses_to_queued_messages(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        assert pid is not None
        zero = ("return", NoReply(timeout=0))
        send(pid, zero)
        send(pid, "already queued")
        send(pid, zero)
        await trio.sleep(1)
        assert log[1:] == [
            ("info", zero),
            ("info", "already queued"),
            ("info", zero),
            ("info", "timeout"),
        ]

    await node.run(body)


# -- G12/G13: terminate ---------------------------------------------------------------------------


async def test_G12_terminate_on_stop_return_and_on_raise(node: Node) -> None:
    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        assert pid is not None
        cast(pid, ("return", Stop("done")))
        assert await exit_reason(pid) == "done"
        assert log[-1] == ("terminate", "done")

        log = []
        pid = await Recorder.start(log)
        assert pid is not None
        cast(pid, "raise")
        reason = await exit_reason(pid)
        assert isinstance(reason, RuntimeError)
        assert log[-1] == ("terminate", reason)

    await node.run(body)


async def test_G12_terminate_on_parent_exit_when_trapping(node: Node) -> None:
    class TrappingRecorder(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            trap_exits()
            return await super().init(log, after)

    async def body() -> None:
        me = self_pid()
        for parent_reason in ["normal", "shutdown", "boom"]:
            log: list[Any] = []

            async def parent(log: list[Any] = log, parent_reason: str = parent_reason) -> None:
                pid = await TrappingRecorder.start_link(log)
                send(me, pid)
                await receive()
                raise Exit(parent_reason)

            p = spawn(parent)
            server = await receive()
            ref = monitor(server)
            send(p, "exit now")
            assert await receive() == Down(ref, server, parent_reason)
            assert log == [("init",), ("terminate", parent_reason)]

    await node.run(body)


async def test_G12_no_terminate_without_trapping_or_on_kill(node: Node) -> None:
    class TrappingRecorder(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            trap_exits()
            return await super().init(log, after)

    async def body() -> None:
        log: list[Any] = []
        pid = await Recorder.start(log)
        assert pid is not None
        ref = monitor(pid)
        send_exit(pid, "boom")  # not trapping: dies at once
        assert await receive() == Down(ref, pid, "boom")

        pid = await TrappingRecorder.start(log)
        assert pid is not None
        ref = monitor(pid)
        send_exit(pid, "kill")  # untrappable
        assert await receive() == Down(ref, pid, "killed")
        assert log == [("init",), ("init",)]

    await node.run(body)


async def test_G13_parent_exit_is_handled_after_earlier_messages(node: Node) -> None:
    class TrappingRecorder(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            trap_exits()
            return await super().init(log, after)

    async def body() -> None:
        log: list[Any] = []
        me = self_pid()

        async def parent() -> None:
            pid = await TrappingRecorder.start_link(log)
            send(me, pid)
            await receive()
            cast(pid, 1)
            cast(pid, 2)
            # and exits normally right away

        p = spawn(parent)
        server = await receive()
        ref = monitor(server)
        send(p, "go")
        assert await receive() == Down(ref, server, "normal")
        assert log == [("init",), ("cast", 1), ("cast", 2), ("terminate", "normal")]

    await node.run(body)


async def test_G13_exits_of_other_linked_processes_go_to_handle_info(node: Node) -> None:
    class TrappingRecorder(Recorder):
        async def init(self, log: list[Any], after: Any = None) -> Any:
            trap_exits()
            return await super().init(log, after)

    async def body() -> None:
        log: list[Any] = []
        pid = await TrappingRecorder.start_link(log)
        assert pid is not None

        async def neighbour() -> None:
            link(pid)
            raise Exit("neighbour gone")

        other = spawn(neighbour)
        await trio.testing.wait_all_tasks_blocked()
        await call(pid, "sync")
        assert log[1] == ("info", ExitSignal(other, "neighbour gone"))
        assert process_info(pid) is not None

    await node.run(body)


# -- G14: stop --------------------------------------------------------------------------------


async def test_G14_stop_runs_terminate_and_returns(node: Node) -> None:
    async def body() -> None:
        here = self_pid().node
        for dest_kind in ["pid", "name", "pair"]:
            log: list[Any] = []
            pid = await Recorder.start(log, name="r")
            assert pid is not None
            dest: Any = {"pid": pid, "name": "r", "pair": ("r", here)}[dest_kind]
            assert await stop(dest, ("shutdown", dest_kind)) is None
            assert log[-1] == ("terminate", ("shutdown", dest_kind))
            assert process_info(pid) is None
        assert await nothing_left()

    await node.run(body)


async def test_G14_stop_of_a_dead_server_is_noproc(node: Node) -> None:
    async def body() -> None:
        pid = await Counter.start()
        assert pid is not None
        await stop(pid)
        for dest in [pid, "nobody"]:
            with pytest.raises(CallExitError) as info:
                await stop(dest)
            assert info.value.reason == "noproc"

    await node.run(body)


async def test_G14_stop_raises_when_the_server_exits_otherwise(node: Node) -> None:
    class BadTerminate(GenServer):
        async def terminate(self, reason: Any) -> None:
            raise RuntimeError("cannot stop cleanly")

    async def body() -> None:
        pid = await BadTerminate.start()
        assert pid is not None
        with pytest.raises(CallExitError) as info:
            await stop(pid)
        assert isinstance(info.value.reason, RuntimeError)

    await node.run(body)


async def test_G14_stop_timeout(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    class Stubborn(GenServer):
        async def terminate(self, reason: Any) -> None:
            await trio.sleep(100)

    async def body() -> None:
        pid = await Stubborn.start()
        assert pid is not None
        start = trio.current_time()
        with pytest.raises(CallTimeoutError):
            await stop(pid, timeout=3)
        assert trio.current_time() == start + 3
        assert await nothing_left()

    await node.run(body)


# -- gen_server_SUITE scenarios ------------------------------------------------------------------


async def test_start(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    """Scenario 28: anonymous and named starts, already_started, timeout, ignore, stopped."""

    class Slow(GenServer):
        async def init(self) -> None:
            await trio.sleep(10)

    async def body() -> None:
        anonymous = await Counter.start()
        named = await Counter.start(name="named")
        assert anonymous is not None and named is not None
        assert whereis("named") == named
        with pytest.raises(StartError) as info:
            await Counter.start_link(name="named")
        assert info.value.reason == ("already_started", named)
        with pytest.raises(StartError) as info:
            await Slow.start(timeout=1)
        assert info.value.reason == "timeout"
        assert await Recorder.start([], Ignore) is None
        with pytest.raises(StartError) as info:
            await Recorder.start([], Stop("stopped"))
        assert info.value.reason == "stopped"

    await node.run(body)


async def test_call(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    """Scenario 29: a delayed reply, a timeout, a bad return."""

    class Delayed(GenServer):
        async def handle_call(self, request: Any, caller: From) -> Any:
            send_after(request, self_pid(), caller)
            return NoReply

        async def handle_info(self, caller: Any) -> None:
            reply(caller, "delayed")

        async def handle_cast(self, request: Any) -> Any:
            return request

    async def body() -> None:
        pid = await Delayed.start()
        start = trio.current_time()
        assert await call(pid, 2) == "delayed"
        assert trio.current_time() == start + 2
        with pytest.raises(CallTimeoutError):
            await call(pid, 10, timeout=1)
        cast(pid, "not a valid return")
        with pytest.raises(CallExitError) as info:
            await call(pid, 1)
        assert info.value.reason == ("bad_return_value", "not a valid return")

    await node.run(body)


async def test_crash(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    """Scenario 31: shutdown reasons reach caller and parent without a report; others are."""

    async def body() -> None:
        trap_exits()
        for reason in ["shutdown", ("shutdown", "reason"), "other"]:
            caplog.clear()
            pid = await Recorder.start_link([])
            with pytest.raises(CallExitError) as info:
                await call(pid, ("return", Stop(reason)))
            assert info.value.reason == reason
            assert await receive() == ExitSignal(ANY_PID, reason)
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            if reason == "other":
                assert len(errors) == 1
                assert "other" in errors[0].getMessage()
            else:
                assert errors == []

    with caplog.at_level(logging.INFO, logger="beamlet"):
        await node.run(body)


async def test_call_with_huge_message_queue(node: Node) -> None:
    """Scenario 36: an unrelated backlog neither breaks a call nor gets reordered."""

    async def body() -> None:
        me = self_pid()
        pid = await Counter.start(0)
        for i in range(50_000):
            send(me, ("backlog", i))
        for k in range(1, 101):
            cast(pid, 1)
            assert await call(pid, "get") == k
        info = process_info(me)
        assert info is not None
        assert info.message_queue_len == 50_000
        assert info.monitors == ()
        for i in range(50_000):
            assert await receive() == ("backlog", i)

    await node.run(body)


async def test_child_spec(node: Node) -> None:
    spec = Counter.child_spec(3, name="c", restart="transient", shutdown=1.0)
    assert spec["id"] is Counter
    assert spec["args"] == (3,)
    assert spec["restart"] == "transient"
    assert spec["shutdown"] == 1.0
    assert spec["type"] == "worker"

    async def body() -> int:
        pid = await spec["start"](*spec["args"])
        assert whereis("c") == pid
        assert process_info(pid).links == (self_pid(),)  # type: ignore[union-attr]
        return await call("c", "get")

    assert await node.run(body) == 3
    assert Counter.child_spec()["shutdown"] == GenServer.shutdown
