"""Mailboxes under floods: ``max_mailbox`` and the node-wide mailbox warning.

A process that is sent messages faster than it reads them grows its mailbox
without bound (5 million unread messages took 510 MB). With ``max_mailbox``
it is killed with ``"mailbox_overflow"`` instead, and an error is logged; the
node warns (rate-limited) about any mailbox past ``mailbox_warning``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    GenServer,
    Node,
    Pid,
    _mailbox_watch,
    monitor,
    open_node,
    process_info,
    receive,
    self_pid,
    send,
    set_max_mailbox,
    spawn,
    spawn_monitor,
)
from beamlet.actors._mailbox_watch import MAX_LINES, MailboxWarnings
from beamlet.actors._process import BoundedProcess, Process


async def never_reads() -> None:
    await trio.sleep_forever()


async def _down(ref: Any) -> Down:
    msg = await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
    assert isinstance(msg, Down)
    return msg


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "beamlet" and r.levelno == logging.ERROR]


async def test_a_flood_kills_a_bounded_process_with_mailbox_overflow(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        pid, ref = spawn_monitor(never_reads, name="slow", max_mailbox=1000)
        info = process_info(pid)
        assert info is not None and info.max_mailbox == 1000
        for i in range(1000):
            send(pid, i)
        info = process_info(pid)
        assert info is not None and info.message_queue_len == 1000 and info.status != "exiting"
        for i in range(5000):  # the first of these overflows it; the others are dropped
            send(pid, i)
        info = process_info(pid)
        assert info is not None and info.status == "exiting" and info.message_queue_len == 0
        assert (await _down(ref)).reason == "mailbox_overflow"
        assert process_info(pid) is None

    with caplog.at_level(logging.ERROR, logger="beamlet"):
        await node.run(body)
    [record] = _errors(caplog)
    message = record.getMessage()
    assert "(slow)" in message and "never_reads" in message
    assert "1001 messages in its mailbox, over max_mailbox=1000" in message
    assert record.beamlet_reason == "mailbox_overflow"  # type: ignore[attr-defined]
    assert record.beamlet_message_queue_len == 1001  # type: ignore[attr-defined]
    assert isinstance(record.beamlet_pid, Pid)  # type: ignore[attr-defined]


async def test_messages_taken_by_a_waiting_receive_do_not_count(node: Node) -> None:
    """The bound is on what waits in the mailbox: a consumer that keeps up is never killed."""

    async def consumer(n: int, parent: Pid) -> None:
        for _ in range(n):
            await receive()
        send(parent, "done")

    async def body() -> None:
        pid, ref = spawn_monitor(consumer, 2000, self_pid(), max_mailbox=1)
        for i in range(2000):
            await trio.testing.wait_all_tasks_blocked()  # the consumer waits in receive
            send(pid, i)  # taken at once by the waiting receive, never queued
        assert await receive(lambda m: m == "done", timeout=5) == "done"
        assert (await _down(ref)).reason == "normal"

    await node.run(body)


async def test_selective_receive_waiting_for_one_message_while_others_pile_up(node: Node) -> None:
    async def waits_for_go() -> None:
        await receive(lambda m: m == "go")

    async def body() -> None:
        pid, ref = spawn_monitor(waits_for_go, max_mailbox=10)
        for i in range(11):
            send(pid, i)
        assert (await _down(ref)).reason == "mailbox_overflow"

    await node.run(body)


async def test_the_flag_set_at_run_time(node: Node) -> None:
    async def flags(parent: Pid) -> None:
        assert set_max_mailbox(100) is None
        send(parent, ("bounded", process_info(self_pid())))
        assert set_max_mailbox(5) == 100
        await receive(lambda m: m == "go")
        assert set_max_mailbox(None) == 5
        send(parent, ("unbounded", process_info(self_pid())))
        await receive(lambda m: m == "stop")
        # Already over the new bound: it overflows at once.
        set_max_mailbox(3)
        await trio.sleep_forever()

    async def body() -> None:
        pid, ref = spawn_monitor(flags, self_pid())
        _, info = await receive(lambda m: m[0] == "bounded", timeout=5)
        assert info.max_mailbox == 100
        assert type(node.lookup(pid)) is BoundedProcess
        send(pid, "go")
        _, info = await receive(lambda m: m[0] == "unbounded", timeout=5)
        assert info.max_mailbox is None
        assert type(node.lookup(pid)) is Process
        for i in range(10):
            send(pid, i)  # no bound now: they wait
        send(pid, "stop")
        assert (await _down(ref)).reason == "mailbox_overflow"

    await node.run(body)


async def test_bad_bounds_are_refused(node: Node) -> None:
    async def body() -> None:
        for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(error, match="max_mailbox"):
                spawn(never_reads, max_mailbox=bad)
            with pytest.raises(error, match="max_mailbox"):
                set_max_mailbox(bad)

    await node.run(body)
    assert len(node.processes()) == 0


class Slow(GenServer):
    async def handle_info(self, msg: Any) -> None:
        await trio.sleep(1)


async def test_gen_server_start_takes_the_bound(node: Node) -> None:
    async def body() -> None:
        pid = await Slow.start(max_mailbox=50)
        info = process_info(pid)
        assert info is not None and info.max_mailbox == 50
        ref = monitor(pid)
        for i in range(100):
            send(pid, i)
        assert (await _down(ref)).reason == "mailbox_overflow"
        spec = Slow.child_spec(max_mailbox=7)
        assert spec["start"].__qualname__ == "Slow.start_link"

    await node.run(body)


# -- the node-wide warning -------------------------------------------------------------------


async def test_the_node_warns_about_long_mailboxes_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node looks at its mailboxes every INTERVAL seconds of real time
    (shortened here), and warns about a process at most once a minute."""
    monkeypatch.setattr(_mailbox_watch, "INTERVAL", 0.02)

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "beamlet" and r.levelno == logging.WARNING
        ]

    async with open_node(mailbox_warning=100) as node:

        async def body() -> None:
            pid = spawn(never_reads, name="backlog")
            for i in range(100):
                send(pid, i)
            await trio.sleep(0.2)
            assert warnings() == []  # 100 is not over 100
            send(pid, "one more")
            with trio.fail_after(5):
                while not warnings():  # noqa: ASYNC110 - polling the log from outside
                    await trio.sleep(0.01)
            [line] = warnings()
            assert "(backlog)" in line and "101 messages in its mailbox" in line
            assert "mailbox_warning=100" in line
            for i in range(1000):
                send(pid, i)
            await trio.sleep(0.2)
            assert len(warnings()) == 1  # not again within a minute

        with caplog.at_level(logging.WARNING, logger="beamlet"):
            await node.run(body)


async def test_a_long_virtual_sleep_is_not_woken_every_second(autojump_clock: Any) -> None:
    """The watch waits in real time: under a clock that jumps, a node that
    sleeps a billion virtual seconds is not woken a billion times."""
    async with open_node() as node:

        async def body() -> None:
            await trio.sleep(10**9)

        await node.run(body)


async def test_the_warning_can_be_turned_off(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # No watchdog: sending 100,001 messages at once may block the loop past its
    # threshold on a loaded machine, and its warning would show the mailbox code.
    async with open_node(mailbox_warning=None, watchdog_threshold=None) as node:

        async def body() -> None:
            pid = spawn(never_reads)
            for i in range(100_001):
                send(pid, i)
            await trio.sleep(5)

        with caplog.at_level(logging.WARNING, logger="beamlet"):
            await node.run(body)
    assert not [r for r in caplog.records if "mailbox" in r.getMessage()]
    with pytest.raises(ValueError, match="mailbox_warning"):
        async with open_node(mailbox_warning=0):
            pass


class _Proc:
    def __init__(self, id_: int) -> None:
        self.pid = Pid("n@h", id_, 1)


def test_warnings_are_rate_limited() -> None:
    warnings = MailboxWarnings(threshold=10)
    procs = [_Proc(i) for i in range(MAX_LINES + 5)]
    found = [(p, 100 + i) for i, p in enumerate(procs)]
    lines, more = warnings.look(found, now=0.0)  # type: ignore[arg-type]
    assert len(lines) == MAX_LINES and more == 5
    assert [long.length for long in lines] == sorted((n for _, n in found), reverse=True)[
        :MAX_LINES
    ]
    # The five not logged come next; the others wait a minute.
    lines, more = warnings.look(found, now=1.0)  # type: ignore[arg-type]
    assert sorted(long.length for long in lines) == [100, 101, 102, 103, 104] and more == 0
    assert warnings.look(found, now=59.0) == ([], 0)  # type: ignore[arg-type]
    lines, _ = warnings.look(found, now=60.0)  # type: ignore[arg-type]
    assert len(lines) == MAX_LINES
    # A process back under the threshold is forgotten: warned again if it returns.
    assert warnings.look([], now=61.0) == ([], 0)
    lines, _ = warnings.look(found[:1], now=62.0)  # type: ignore[arg-type]
    assert len(lines) == 1
