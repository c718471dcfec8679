"""``beamlet top``'s live view while the node answers "busy": it keeps the last table and backs off.

The node is a simulated one whose tables each take one second of its own
steps (a node with many processes); its introspection service and the
client functions are the real ones, and so is the live view's loop.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from beamlet.apps.cli import _inspect
from beamlet.apps.cli._inspect import BUSY_WAIT_MAX, watch
from beamlet.cluster import introspect
from beamlet.cluster.simulation import simulated_cluster
from trio.testing import MockClock

B = "b@b"


async def test_top_keeps_the_last_table_and_backs_off_while_the_node_is_busy(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = autojump_clock
    real = introspect._Introspect._processes

    async def costly(self: Any, sort: str, limit: int) -> dict[str, Any]:
        clock.jump(1.0)  # each table takes 1 s of the service's own steps
        return await real(self, sort, limit)

    monkeypatch.setattr(introspect._Introspect, "_processes", costly)
    assert (introspect.NODE_TABLE_BURST, introspect.NODE_TABLE_BUDGET) == (1.0, 0.125)
    assert BUSY_WAIT_MAX == 8.0
    frames: list[tuple[float, str, list[list[str]], bool]] = []

    async with simulated_cluster(["a", "b"]) as sim:
        await sim.run("a", introspect.node_info, B)  # connected first
        begin = trio.current_time()

        async def console() -> None:
            with trio.move_on_after(40):

                def show(title: str, cells: list[list[str]], busy: bool) -> None:
                    frames.append((round(trio.current_time() - begin, 9), title, cells, busy))

                await watch(B, sort="mailbox", limit=3, timeout=5.0, interval=1.0, show=show)

        await sim.run("a", console)

    # a's budget: 1.0 s, refilled at 0.125 s a second; each table takes 1 s.
    # t=0: 1.0 -> a table (shown at 1) -> 0; t=2: 0.25 -> a table (shown at 3)
    # -> -0.75; t=4: -0.5 busy, next try in 2 s; t=6: -0.25 busy, in 4 s;
    # t=10: 0.25 -> a table (shown at 11), the interval again; t=12: -0.5 busy;
    # t=14: -0.25 busy; t=18: 0.25 -> a table (shown at 19); ... one table
    # every 8 s: NODE_TABLE_BUDGET of the node's time.
    assert [(t, busy) for t, _title, _cells, busy in frames] == [
        (1.0, False),
        (3.0, False),
        (4.0, True),
        (6.0, True),
        (11.0, False),
        (12.0, True),
        (14.0, True),
        (19.0, False),
        (20.0, True),
        (22.0, True),
        (27.0, False),
        (28.0, True),
        (30.0, True),
        (35.0, False),
        (36.0, True),
        (38.0, True),
    ]
    for (_, _, shown, _), (_, title, cells, busy) in itertools.pairwise(frames):
        if busy:
            assert cells == shown and len(cells) == 3  # the last table, shown again
            assert "busy" in title and "showing the last one" in title
            assert title.startswith("node b@b (os pid ")  # with fresh totals
        else:
            assert "busy" not in title
    assert frames[2][1].endswith("next try in 2 s]")
    assert frames[3][1].endswith("next try in 4 s]")


async def test_top_ends_on_errors_other_than_busy(autojump_clock: MockClock) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        shown: list[bool] = []

        async def console() -> None:
            await watch(
                "nowhere@x",
                sort="mailbox",
                limit=3,
                timeout=5.0,
                interval=1.0,
                show=lambda title, cells, busy: shown.append(busy),
            )

        with pytest.raises(introspect.IntrospectError) as caught:
            await sim.run("a", console)
        assert caught.value.reason == ("nodedown", "nowhere@x")
        assert shown == []
    assert _inspect.watch is watch


async def test_top_backs_off_up_to_busy_wait_max(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = autojump_clock
    real = introspect._Introspect._processes

    async def costly(self: Any, sort: str, limit: int) -> dict[str, Any]:
        clock.jump(3.0)  # each table takes 3 s of the service's own steps
        return await real(self, sort, limit)

    monkeypatch.setattr(introspect._Introspect, "_processes", costly)
    frames: list[tuple[float, bool, str]] = []
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.run("a", introspect.node_info, B)
        begin = trio.current_time()

        async def console() -> None:
            with trio.move_on_after(40):

                def show(title: str, cells: list[list[str]], busy: bool) -> None:
                    frames.append((round(trio.current_time() - begin, 9), busy, title))

                await watch(B, sort="pid", limit=3, timeout=5.0, interval=1.0, show=show)

        await sim.run("a", console)
    # t=0: 1.0 -> a table (shown at 3) -> -2.0; t=4: -1.5 busy, next try in
    # 2 s; t=6: -1.25 busy, in 4 s; t=10: -0.75 busy, in 8 s; t=18: 0.25 -> a
    # table (shown at 21) -> -2.75; t=22: busy, in 2 s; t=24: in 4 s; t=28: in
    # 8 s; t=36: -0.5 busy, in 8 s again (BUSY_WAIT_MAX).
    assert [(t, busy) for t, busy, _title in frames] == [
        (3.0, False),
        (4.0, True),
        (6.0, True),
        (10.0, True),
        (21.0, False),
        (22.0, True),
        (24.0, True),
        (28.0, True),
        (36.0, True),
    ]
    assert frames[-2][2].endswith("next try in 8 s]")
    assert frames[-1][2].endswith("next try in 8 s]")


def busy_run_console(message: str) -> Any:
    async def run_console(target: Any, cookie: Any, tls: Any, fn: Any, timeout: float) -> Any:
        raise introspect.IntrospectError("busy", message)

    return run_console


@pytest.mark.parametrize(("command", "prefix"), [(["top", "--once"], ""), (["ping"], "pang: ")])
def test_one_shot_commands_report_busy_in_one_line(
    command: list[str],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    from beamlet.apps.cli import main

    message = (
        "processes on svc@127.0.0.1 failed: its introspection service is busy (it spent "
        "its time budget for process tables); try again in a few seconds"
    )
    monkeypatch.setattr(_inspect, "run_console", busy_run_console(message))
    cookie = tmp_path / "cookie"
    cookie.write_text("a-cookie-of-enough-length-0123456789")
    cookie.chmod(0o600)
    status = main([command[0], "127.0.0.1:4370", *command[1:], "--cookie-file", str(cookie)])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err == f"beamlet: error: {prefix}{message}\n"
