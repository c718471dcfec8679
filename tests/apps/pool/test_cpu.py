"""run_cpu: results, exceptions, what cannot be sent, cancellation, and a node that keeps serving.

These tests start real worker processes (trio-parallel), so they run on the
real clock; none asserts a timing except as a generous bound.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import pytest
import trio
import trio_parallel
from beamlet.actors import GenServer, Node, async_task, call
from beamlet.apps.pool import UnpicklableError, run_cpu


class Ping(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


def _local_function() -> int:
    return 1


def divmod_after(seconds: float, a: int, b: int) -> tuple[int, int]:
    """For a worker process: wait, then compute."""
    time.sleep(seconds)
    return divmod(a, b)


async def test_the_result_comes_back(node: Node) -> None:
    async def body() -> None:
        assert await run_cpu(sum, range(1000)) == 499500
        assert await run_cpu(pow, 3, 4, 5) == 1
        assert await run_cpu(max, [3, 1, 2]) == 3

    await node.run(body)


async def test_an_exception_in_the_worker_comes_back_as_itself(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="invalid literal for int"):
            await run_cpu(int, "not a number")
        with pytest.raises(ZeroDivisionError):
            await run_cpu(divmod, 1, 0)
        assert await run_cpu(divmod, 7, 2) == (3, 1)  # the worker is still usable

    await node.run(body)


async def test_what_cannot_be_sent_is_refused_before_anything_is_sent(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    real = trio_parallel.run_sync

    async def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(trio_parallel, "run_sync", spy)

    def nested() -> int:
        return 2

    async def body() -> None:
        with pytest.raises(UnpicklableError, match="cannot send the function") as info:
            await run_cpu(lambda: 1)
        assert info.value.what == "the function" and "lambda" in info.value.value
        assert isinstance(info.value, TypeError)
        with pytest.raises(UnpicklableError, match="Can't pickle local object"):
            await run_cpu(nested)
        with pytest.raises(UnpicklableError, match=r"cannot send argument 2 \(<unlocked"):
            await run_cpu(pow, 2, threading.Lock())
        with pytest.raises(UnpicklableError, match=r"argument 1.*generator"):
            await run_cpu(sum, (x for x in range(3)))
        with pytest.raises(TypeError, match="needs a function"):
            await run_cpu(42)  # type: ignore[call-overload]
        assert sent == []
        assert await run_cpu(_local_function) == 1  # a top-level function is fine
        assert len(sent) == 1

    await node.run(body)


async def test_a_result_that_cannot_come_back_is_an_exception(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="pickle"):
            await run_cpu(threading.Lock)

    await node.run(body)


async def test_without_trio_parallel_the_error_says_what_to_install(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trio_parallel", None)

    async def body() -> None:
        with pytest.raises(ImportError, match=r"pip install 'beamlet\[cpu\]'"):
            await run_cpu(sum, [1])

    await node.run(body)


async def test_cancelling_the_caller_kills_the_work_at_once(node: Node) -> None:
    async def body() -> None:
        start = time.perf_counter()
        with trio.move_on_after(0.2) as scope:
            await run_cpu(time.sleep, 60)
        assert scope.cancelled_caught
        assert time.perf_counter() - start < 30  # not the 60 s of the work
        assert await run_cpu(sum, [1, 2]) == 3  # a fresh worker takes over

    await node.run(body)


async def test_without_kill_on_cancel_the_work_finishes_first(node: Node) -> None:
    async def body() -> None:
        await run_cpu(sum, [])  # a worker is ready
        got: list[Any] = []
        start = time.perf_counter()
        with trio.move_on_after(0.05) as scope:
            got.append(await run_cpu(divmod_after, 0.5, 7, 2, kill_on_cancel=False))
            await trio.lowlevel.checkpoint()  # the cancellation takes effect here
            got.append("not reached")
        assert scope.cancelled_caught
        assert got == [(3, 1)]  # the result came back first
        assert time.perf_counter() - start >= 0.5  # it waited for the work to end

    await node.run(body)


@pytest.mark.timeout(120)
async def test_the_node_keeps_answering_calls_while_run_cpu_crunches(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """The promise of run_cpu: a long computation does not stall the node.

    A computation of about 2 seconds runs through run_cpu while this process
    sleeps 5 ms and calls another one, in a loop; every iteration ends within
    milliseconds of its due time (the bound asserted on the lateness is a
    generous 200 ms; the measured figure is printed).
    """

    async def body() -> tuple[float, float, int]:
        await run_cpu(sum, [])  # start a worker process first
        server = await Ping.start_link()
        task = async_task(run_cpu, sum, range(70_000_000))
        start = time.perf_counter()
        worst = 0.0
        calls = 0
        while await task.poll(0) is None:
            # Any stall of the loop in this iteration makes it late.
            before = time.perf_counter()
            await trio.sleep(0.005)
            assert await call(server, calls) == calls
            worst = max(worst, time.perf_counter() - before - 0.005)
            calls += 1
        return time.perf_counter() - start, worst, calls

    with caplog.at_level(logging.WARNING, logger="beamlet"):
        crunch, worst, calls = await node.run(body)
    print(f"crunched {crunch:.2f} s; {calls} calls answered, the slowest in {worst * 1e3:.2f} ms")
    assert crunch > 0.5  # the calls really overlapped the computation
    assert calls > 20
    assert worst < 0.2
    assert not [r for r in caplog.records if "blocked" in r.getMessage()]
