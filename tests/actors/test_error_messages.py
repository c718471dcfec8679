"""Every public error of the runtime says what failed, which, and why.

The Erlang reason stays an attribute (``reason``); the message is for people.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from beamlet.actors import (
    CallExitError,
    Exit,
    GenServer,
    NotInProcessError,
    StartError,
    Stop,
    TaskExitError,
    async_task,
    call,
    open_node,
    run,
    self_pid,
    stop,
    trap_exits,
    whereis,
)
from beamlet.actors.lowlevel import current_process, describe_reason


@pytest.fixture(autouse=True)
def quiet_crash_reports() -> Iterator[None]:
    logger = logging.getLogger("beamlet")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


class Counter(GenServer):
    async def init(self, n: int = 0) -> None:
        self.n = n

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "boom":
            raise ValueError("boom")
        if request == "quit":
            return Stop("normal")
        return self.n


class Failing(GenServer):
    async def init(self) -> None:
        raise ConnectionRefusedError("db down")


class Stopping(GenServer):
    async def init(self) -> Any:
        return Stop(("config", "missing"))


class Returning(GenServer):
    async def init(self) -> Any:
        return 5


def _in_process(fn: Any) -> Any:
    async def main() -> Any:
        try:
            await fn()
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    return run(main)


def test_call_to_an_unregistered_name_names_it() -> None:
    exc = _in_process(lambda: call("counter", "get"))
    assert type(exc) is CallExitError
    assert exc.reason == "noproc" and exc.server == "counter"
    assert str(exc) == (
        "call to 'counter' failed: no process is registered as 'counter' (reason: 'noproc')"
    )


def test_call_to_a_remote_name_on_an_unknown_node_says_the_node() -> None:
    exc = _in_process(lambda: call(("counter", "b@example"), "get"))
    assert exc.reason == ("nodedown", "b@example")
    assert "call to ('counter', 'b@example') failed" in str(exc)
    assert "node b@example is down or unreachable" in str(exc)


def test_call_to_a_server_that_crashes_says_how() -> None:
    async def go() -> None:
        await Counter.start(0, name="counter")
        await call("counter", "boom")

    exc = _in_process(go)
    assert isinstance(exc.reason, ValueError)
    assert str(exc) == (
        "call to 'counter' failed: the server exited before replying: "
        "it crashed with ValueError: boom (reason: ValueError('boom'))"
    )


def test_call_to_a_dead_pid_and_to_oneself() -> None:
    async def dead() -> None:
        pid = await Counter.start(0)
        assert pid is not None
        await stop(pid)
        await call(pid, "get")

    exc = _in_process(dead)
    assert exc.reason == "noproc" and type(exc.server).__name__ == "Pid"
    assert (
        str(exc) == f"call to {exc.server!r} failed: the process does not exist (reason: 'noproc')"
    )

    async def itself() -> None:
        await call(self_pid(), "get")

    exc = _in_process(itself)
    assert exc.reason == "calling_self"
    assert "a process cannot call itself" in str(exc)


def test_stop_of_a_missing_server_names_it() -> None:
    exc = _in_process(lambda: stop("gone"))
    assert type(exc) is CallExitError and exc.reason == "noproc"
    assert str(exc).startswith("stop of 'gone' failed: no process is registered as 'gone'")


def test_start_with_a_taken_name_says_which_name_and_holder() -> None:
    async def go() -> None:
        await Counter.start(0, name="counter")
        await Counter.start(1, name="counter")

    exc = _in_process(go)
    assert type(exc) is StartError
    holder = exc.reason[1]
    assert exc.reason == ("already_started", holder)
    assert (exc.what, exc.name) == ("Counter", "counter")
    assert str(exc) == (
        f"cannot start Counter as 'counter': its name is already registered to {holder!r} "
        f"(reason: ('already_started', {holder!r}))"
    )


def test_start_failures_say_why() -> None:
    exc = _in_process(Failing.start)
    assert isinstance(exc.reason, ConnectionRefusedError)
    assert str(exc) == "cannot start Failing: init raised ConnectionRefusedError: db down"

    exc = _in_process(Stopping.start)
    assert exc.reason == ("config", "missing")
    assert "cannot start Stopping: init failed with reason ('config', 'missing')" in str(exc)

    exc = _in_process(Returning.start)
    assert exc.reason == ("bad_return_value", 5)
    assert "init returned 5; it must return None, NoReply(...), Ignore or Stop(reason)" in str(exc)


def test_a_start_timeout_says_so() -> None:
    class Slow(GenServer):
        async def init(self) -> None:
            import trio

            await trio.sleep_forever()

    exc = _in_process(lambda: Slow.start(timeout=0.01))
    assert exc.reason == "timeout"
    assert "init did not return within the start timeout" in str(exc)


def test_a_task_that_crashes_says_which_and_how() -> None:
    async def fail() -> None:
        raise RuntimeError("broken")

    async def go() -> None:
        trap_exits(True)  # the task is linked to its caller
        await async_task(fail).join()

    exc = _in_process(go)
    assert type(exc) is TaskExitError and isinstance(exc.reason, RuntimeError)
    assert exc.pid is not None
    assert str(exc) == (
        f"task {exc.pid!r} exited without a result: it crashed with RuntimeError: broken"
    )


def test_a_task_that_exits_with_a_reason_says_it() -> None:
    async def leave() -> None:
        raise Exit(("gave", "up"))

    async def go() -> None:
        trap_exits(True)
        await async_task(leave).join()

    exc = _in_process(go)
    assert exc.reason == ("gave", "up")
    assert "exited with reason ('gave', 'up') (reason: ('gave', 'up'))" in str(exc)


def test_not_in_process_errors_name_the_call() -> None:
    with pytest.raises(NotInProcessError, match=r"self_pid\(\) must be called from inside"):
        self_pid()
    with pytest.raises(NotInProcessError, match=r"whereis\(\) needs a beamlet node"):
        whereis("x")
    with pytest.raises(NotInProcessError, match=r"current_process\(\) must be called"):
        current_process()


async def test_not_in_process_inside_a_node_but_outside_a_process() -> None:
    async with open_node():
        with pytest.raises(NotInProcessError, match=r"self_pid\(\) must be called"):
            self_pid()


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("normal", "exited normally"),
        ("shutdown", "was shut down"),
        (("shutdown", "maintenance"), "was shut down ('maintenance')"),
        ("killed", "was killed"),
        ("noproc", "does not exist"),
        ("noconnection", "lost the connection to its node"),
        (("nodedown", "b@h"), "is on node b@h, which is down or unreachable"),
        (KeyError("k"), "crashed with KeyError: 'k'"),
        (RuntimeError(), "crashed with RuntimeError"),
        (("bad_call", "x"), "got a call it has no handler for: 'x'"),
        (("bad_return_value", 3), "returned a value the behaviour does not accept: 3"),
        (
            ("shutdown", ("failed_to_start_child", Counter, "noproc")),
            "stopped because its child Counter failed to start: init failed with reason 'noproc'",
        ),
        ({"odd": 1}, "exited with reason {'odd': 1}"),
        ("x" * 500, "exited with reason '" + "x" * 196 + "..."),
    ],
)
def test_describe_reason(reason: Any, words: str) -> None:
    assert describe_reason(reason) == words


def test_errors_keep_their_reason_and_are_still_constructible_from_it() -> None:
    assert CallExitError("noproc").reason == "noproc"
    assert (
        str(CallExitError("noproc")) == "call failed: the process does not exist (reason: 'noproc')"
    )
    assert StartError("timeout").reason == "timeout"
    assert str(StartError("timeout")).startswith("cannot start the process: init did not return")
    assert TaskExitError("killed").reason == "killed"
