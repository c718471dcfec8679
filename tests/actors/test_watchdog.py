"""The watchdog names the process that blocks the event loop.

This is the one test that takes real time: a process really blocks the loop.
"""

from __future__ import annotations

import logging
import time

import pytest
from beamlet.actors import Pid, monitor, open_node, receive, spawn


async def hog() -> None:
    time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point of this test


async def test_watchdog_names_the_blocking_process(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> Pid:
        pid = spawn(hog, name="the-hog")
        monitor(pid)
        await receive()
        return pid

    with caplog.at_level(logging.WARNING, logger="beamlet.watchdog"):
        async with open_node(watchdog_threshold=0.05) as node:
            pid = await node.run(body)
    records = [r for r in caplog.records if r.name == "beamlet.watchdog"]
    assert records, "the watchdog said nothing"
    first = records[0]
    assert first.levelno == logging.WARNING
    assert first.beamlet_pid == pid  # type: ignore[attr-defined]
    assert first.beamlet_name == "the-hog"  # type: ignore[attr-defined]
    assert first.beamlet_function == hog.__qualname__  # type: ignore[attr-defined]
    message = first.getMessage()
    assert repr(pid) in message
    assert "the-hog" in message
    assert "hog" in message
    assert "time.sleep(0.3)" in message  # the stack shows where it blocks


def test_the_watchdog_does_what_its_documentation_says() -> None:
    from beamlet.actors import _watchdog

    doc = _watchdog.__doc__ or ""
    divisor = _watchdog.PING_DIVISOR
    assert f"every ``threshold / {divisor}`` seconds" in doc
    assert f"the loop thread's stack every\n``threshold / {divisor}`` seconds" in doc
    assert f"``{1 + 1 / divisor:g} * threshold``" in doc
