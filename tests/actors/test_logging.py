"""Crash reports and other log records go through stdlib logging, logger "beamlet"."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio.testing
from beamlet.actors import (
    CallExitError,
    Exit,
    From,
    GenServer,
    Node,
    call,
    monitor,
    receive,
    send,
    send_exit,
    spawn,
    spawn_monitor,
    stop,
)


def beamlet_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("beamlet") and r.levelno >= level]


async def test_a_crash_is_reported_with_pid_name_reason_and_traceback(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    error = ZeroDivisionError("division by zero, on purpose")

    async def doomed() -> None:
        await receive()
        raise error

    async def body() -> Any:
        pid = spawn(doomed, name="doomed")
        ref = monitor(pid)
        send(pid, "go")
        await receive(lambda m: getattr(m, "ref", None) == ref)
        return pid

    with caplog.at_level(logging.INFO, logger="beamlet"):
        pid = await node.run(body)
    [record] = beamlet_records(caplog, logging.ERROR)
    assert record.name == "beamlet"
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert repr(pid) in message
    assert "doomed" in message
    assert "division by zero, on purpose" in message
    assert record.exc_info is not None
    assert record.exc_info[1] is error
    assert record.exc_info[2] is not None  # the traceback
    assert "raise error" in caplog.text  # formatted with the traceback
    assert record.beamlet_pid == pid  # type: ignore[attr-defined]
    assert record.beamlet_name == "doomed"  # type: ignore[attr-defined]
    assert record.beamlet_reason is error  # type: ignore[attr-defined]
    assert record.beamlet_function == doomed.__qualname__  # type: ignore[attr-defined]


async def test_no_report_for_normal_exits_and_exit_signals(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async def returns() -> None:
            pass

        async def exits(reason: Any) -> None:
            raise Exit(reason)

        async def waits() -> None:
            try:
                await receive()
            except Exception:  # pragma: no cover - never reached
                raise

        for fn, args in [
            (returns, ()),
            (exits, ("normal",)),
            (exits, ("shutdown",)),
            (exits, (("shutdown", 1),)),
            (exits, ("custom reason",)),
        ]:
            spawn_monitor(fn, *args)
            await receive()
        for reason in ["boom", "kill"]:
            pid, _ref = spawn_monitor(waits)
            await trio.testing.wait_all_tasks_blocked()
            send_exit(pid, reason)
            await receive()

    with caplog.at_level(logging.INFO, logger="beamlet"):
        await node.run(body)
    assert beamlet_records(caplog, logging.ERROR) == []


class Server(GenServer):
    async def handle_call(self, request: Any, caller: From) -> Any:
        if request == "crash":
            raise RuntimeError("callback crashed")
        return request


async def test_gen_server_stop_reasons_other_than_shutdown_are_logged(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        for reason in ["normal", "shutdown", ("shutdown", "x")]:
            await stop(await Server.start(), reason)
        assert beamlet_records(caplog, logging.ERROR) == []
        pid = await Server.start(name="server")
        await stop(pid, "unusual")

    with caplog.at_level(logging.INFO, logger="beamlet"):
        await node.run(body)
    [record] = beamlet_records(caplog, logging.ERROR)
    message = record.getMessage()
    assert "unusual" in message
    assert "server" in message
    assert "Server" in message


async def test_gen_server_crash_is_reported_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        pid = await Server.start()
        with pytest.raises(CallExitError) as info:
            await call(pid, "crash")
        assert isinstance(info.value.reason, RuntimeError)

    with caplog.at_level(logging.INFO, logger="beamlet"):
        await node.run(body)
    [record] = beamlet_records(caplog, logging.ERROR)
    assert record.exc_info is not None
    assert "callback crashed" in record.getMessage()


async def test_gen_server_unexpected_message_is_logged_not_dropped_silently(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        pid = await Server.start()
        send(pid, ("unexpected", 42))
        assert await call(pid, "still alive") == "still alive"

    with caplog.at_level(logging.INFO, logger="beamlet"):
        await node.run(body)
    [record] = beamlet_records(caplog, logging.WARNING)
    assert record.levelno == logging.WARNING
    assert "('unexpected', 42)" in record.getMessage()
    assert "Server" in record.getMessage()
