"""Pool benchmark: checkouts, jobs, run_cpu, and the node's responsiveness meanwhile.

Run: ``python bench/pool.py [--rounds N] [--quick]``

Each figure is measured ``--rounds`` times (default 5), the beamlet side
and its baseline one after the other in the same process; the figures
printed are medians, and each ratio is the median of the per-round ratios.

- checkout + checkin: ``async with checkout(pool)`` in a loop (one caller,
  then 8 callers sharing a pool of 4), against a ``trio.Semaphore`` guarding
  a list of workers, the smallest pool one can write in Trio;
- jobs: no-op jobs through ``enqueue`` (queue limit 10) until drained,
  against the same tasks through ``TaskSupervisor.start_child`` (what a job
  attempt is built on, without queue, retry or bookkeeping);
- run_cpu: a batch of CPU-bound calls (``sum(range(n))``, about 30 ms each)
  on 2 worker processes, against ``trio_parallel.run_sync`` called directly
  (target: run_cpu takes at most 1.2x the time); and tiny calls, where the
  per-call overhead shows;
- responsiveness: how late the answers come to a process that sleeps 1 ms
  and calls another process, in a loop, while the batch runs through
  run_cpu (slowest and median lateness, against the same loop on an idle
  node); for contrast, the slowest with the same work done inline in a
  process (the stall that run_cpu prevents).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio_parallel
from beamlet.actors import GenServer, Task, async_task, call, run
from beamlet.apps.pool import Jobs, Pool, checkout, enqueue, run_cpu
from beamlet.supervisors import TaskSupervisor


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


# -- checkout + checkin ------------------------------------------------------------------


async def pool_checkouts(pool: str, n: int, clients: int) -> float:
    """Checkouts + checkins per second, ``clients`` callers sharing the work."""
    per = n // clients

    async def client() -> None:
        for _ in range(per):
            async with checkout(pool):
                pass

    start = time.perf_counter()
    tasks = [async_task(client) for _ in range(clients)]
    for task in tasks:
        await task.join(None)
    return per * clients / (time.perf_counter() - start)


async def semaphore_checkouts(size: int, n: int, clients: int) -> float:
    """The baseline: a Semaphore guarding a list of workers."""
    sem = trio.Semaphore(size)
    workers = list(range(size))
    per = n // clients

    async def client() -> None:
        for _ in range(per):
            async with sem:
                worker = workers.pop()
                await trio.lowlevel.checkpoint()  # as a checkout's call does
                workers.append(worker)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client)
    return per * clients / (time.perf_counter() - start)


# -- jobs --------------------------------------------------------------------------------


async def noop() -> None:
    return None


async def jobs_rate(jobs: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await enqueue(jobs, "q", noop)
    await Jobs.drain(jobs)
    return n / (time.perf_counter() - start)


async def start_child_rate(sup: str, n: int) -> float:
    """The baseline: the same no-op tasks through ``TaskSupervisor.start_child``
    (fire and forget, no queue, no retry), until all have run."""
    done = trio.Event()
    left = [n]

    async def child() -> None:
        left[0] -= 1
        if not left[0]:
            done.set()

    start = time.perf_counter()
    for _ in range(n):
        await TaskSupervisor.start_child(sup, child)
    await done.wait()
    return n / (time.perf_counter() - start)


# -- run_cpu -----------------------------------------------------------------------------


async def batch(runner: Callable[..., Awaitable[Any]], calls: int, work: int) -> float:
    """Seconds to run ``calls`` x ``sum(range(work))``, all submitted at once."""
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(calls):
            nursery.start_soon(runner, sum, range(work))
    return time.perf_counter() - start


async def direct(fn: Callable[..., Any], *args: Any) -> Any:
    return await trio_parallel.run_sync(fn, *args, kill_on_cancel=True)


async def idle() -> float:
    await trio.sleep(0.3)
    return 0.3


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


async def worst_call_latency(
    work: Callable[..., Awaitable[Any]], *args: Any
) -> tuple[float, float]:
    """How late a process that calls another one every millisecond gets its
    answers while ``work(*args)`` runs: the slowest and the median of (time
    for a 1 ms sleep and a ``call``) - 1 ms. A stall of the loop anywhere in
    that iteration counts. ``work`` returns something other than None."""
    server = await Worker.start_link()
    task: Task = async_task(work, *args)
    latencies: list[float] = []
    while await task.poll(0) is None:
        before = time.perf_counter()
        await trio.sleep(0.001)
        await call(server, "ping")
        latencies.append(time.perf_counter() - before - 0.001)
    if not latencies:
        return 0.0, 0.0
    return max(latencies), statistics.median(latencies)


# -- driver ------------------------------------------------------------------------------


def ratio_line(label: str, ours: list[float], base: list[float], unit: str) -> None:
    """Print medians and the median per-round ratio (ours / base); ``unit`` "ms"
    takes seconds and prints milliseconds."""
    ratios = [o / b for o, b in zip(ours, base, strict=True)]
    scale, digits = (1e3, 3) if unit == "ms" else (1, 0)
    print(
        f"{label}: {statistics.median(ours) * scale:,.{digits}f} vs "
        f"{statistics.median(base) * scale:,.{digits}f} {unit} -> "
        f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"
    )


async def main(rounds: int, quick: bool) -> None:
    n = 2_000 if quick else 40_000
    n_jobs = 500 if quick else 20_000
    calls, work = (4, 200_000) if quick else (40, 1_500_000)
    tiny = 20 if quick else 400

    await Pool.start_link("one", worker=Worker, size=1)
    await Pool.start_link("four", worker=Worker, size=4)
    await Jobs.start_link("jobs", queues={"q": 10}, max_pending=n_jobs)
    await TaskSupervisor.start_link(name="tasks")
    limiter = trio.CapacityLimiter(2)
    async with trio.open_nursery() as nursery:  # start both worker processes
        for _ in range(2):
            nursery.start_soon(direct, time.sleep, 0.2)

    figures: dict[str, tuple[list[float], list[float]]] = {
        key: ([], [])
        for key in ("one", "eight", "jobs", "cpu", "tiny", "latency", "median", "inline")
    }
    for _ in range(rounds):
        figures["one"][0].append(await pool_checkouts("one", n, 1))
        figures["one"][1].append(await semaphore_checkouts(1, n, 1))
        figures["eight"][0].append(await pool_checkouts("four", n, 8))
        figures["eight"][1].append(await semaphore_checkouts(4, n, 8))
        figures["jobs"][0].append(await jobs_rate("jobs", n_jobs))
        figures["jobs"][1].append(await start_child_rate("tasks", n_jobs))

        async def ours(fn: Any, *args: Any) -> Any:
            return await run_cpu(fn, *args, limiter=limiter)

        async def theirs(fn: Any, *args: Any) -> Any:
            return await trio_parallel.run_sync(fn, *args, kill_on_cancel=True, limiter=limiter)

        figures["cpu"][0].append(await batch(ours, calls, work))
        figures["cpu"][1].append(await batch(theirs, calls, work))
        figures["tiny"][0].append(await batch(ours, tiny, 10) / tiny)
        figures["tiny"][1].append(await batch(theirs, tiny, 10) / tiny)
        worst, middle = await worst_call_latency(batch, ours, calls, work)
        idle_worst, idle_middle = await worst_call_latency(idle)
        figures["latency"][0].append(worst)
        figures["latency"][1].append(idle_worst)
        figures["median"][0].append(middle)
        figures["median"][1].append(idle_middle)
        inline_worst, _ = await worst_call_latency(batch, inline, 4, work)
        figures["inline"][0].append(inline_worst)
        figures["inline"][1].append(worst)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, trio {trio.__version__}, load {load:.2f}; "
        f"{rounds} rounds; medians"
    )
    ratio_line("checkout + checkin, 1 caller / Semaphore", *figures["one"], "per s")
    ratio_line("checkout + checkin, 8 callers, pool of 4 / Semaphore", *figures["eight"], "per s")
    ratio_line("jobs through enqueue / TaskSupervisor.start_child", *figures["jobs"], "per s")
    ratio_line(
        f"run_cpu batch ({calls} x sum(range({work:,})), 2 workers) / trio_parallel.run_sync",
        *figures["cpu"],
        "ms",
    )
    ratio_line("run_cpu tiny call / trio_parallel.run_sync", *figures["tiny"], "ms")
    ratio_line("slowest call while run_cpu runs / idle", *figures["latency"], "ms")
    ratio_line("median call while run_cpu runs / idle", *figures["median"], "ms")
    ratio_line("slowest call, same work inline / via run_cpu", *figures["inline"], "ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    options = parser.parse_args()
    logging.getLogger("beamlet").setLevel(logging.CRITICAL)
    run(main, options.rounds, options.quick)
