"""Local runtime benchmarks, each against a raw Trio baseline measured in the same run.

Run: ``python bench/local.py [--quick] [--rounds N] [--only NAME ...]``. Prints
the median of several rounds for each figure and the ratio to its baseline
(machines are noisy; ratios hold). Each round runs the beamlet figure, then its
baselines, in the same process.

Ping-pong and ``call`` are given against two raw Trio baselines: ping-pong over
two unbounded memory channels with ``send_nowait`` and an awaited ``receive``
(DESIGN.md's baseline, the faster one), and over two unbuffered channels with
awaited sends. Spawning is measured one at a time (a checkpoint every 100
spawns) and as a burst of 30,000 spawns in a row; for the burst the longest
stall of the event loop is reported too (the longest gap between two runs of
a task that does nothing but checkpoint). ``mailbox`` gives one-way to a
receiver with a mailbox bound (``max_mailbox``, never reached) against one-way
to a receiver without one: what the check costs (its "raw trio" column is
beamlet without the bound).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import GenServer, call, open_node, processes, receive, self_pid, send, spawn

BATCH = 1024


# -- raw Trio baselines -------------------------------------------------------------------


async def raw_one_way(n: int) -> float:
    sender, receiver = trio.open_memory_channel[int](BATCH)

    async def consume() -> None:
        for _ in range(n):
            await receiver.receive()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        for i in range(n):
            await sender.send(i)
    return n / (time.perf_counter() - start)


async def raw_ping_pong(n: int) -> float:
    ping_s, ping_r = trio.open_memory_channel[None](0)
    pong_s, pong_r = trio.open_memory_channel[None](0)

    async def ponger() -> None:
        for _ in range(n):
            await ping_r.receive()
            await pong_s.send(None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ponger)
        start = time.perf_counter()
        for _ in range(n):
            await ping_s.send(None)
            await pong_r.receive()
        elapsed = time.perf_counter() - start
    return n / elapsed


async def raw_ping_pong_nowait(n: int) -> float:
    """DESIGN.md's baseline: two unbounded channels, ``send_nowait``, awaited ``receive``."""
    ping_s, ping_r = trio.open_memory_channel[None](math.inf)
    pong_s, pong_r = trio.open_memory_channel[None](math.inf)

    async def ponger() -> None:
        for _ in range(n):
            await ping_r.receive()
            pong_s.send_nowait(None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ponger)
        start = time.perf_counter()
        for _ in range(n):
            ping_s.send_nowait(None)
            await pong_r.receive()
        elapsed = time.perf_counter() - start
    return n / elapsed


class StallMeter:
    """A task that only checkpoints; the longest gap between its runs is the longest stall."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = False

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        last = time.perf_counter()
        task_status.started()
        while not self._stop:
            await trio.lowlevel.checkpoint()
            now = time.perf_counter()
            if now - last > self.longest:
                self.longest = now - last
            last = now

    def stop(self) -> None:
        self._stop = True


#: The longest loop stall of the last burst round, for beamlet and for raw Trio.
stalls: dict[str, list[float]] = {"beamlet": [], "raw": []}


async def raw_spawn_burst(n: int) -> float:
    """``n`` ``nursery.start_soon`` in a row, then all the tasks run and exit."""

    async def nothing() -> None:
        pass

    meter = StallMeter()
    async with trio.open_nursery() as outer:
        await outer.start(meter.run)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(nothing)
        elapsed = time.perf_counter() - start
        meter.stop()
    stalls["raw"].append(meter.longest)
    return n / elapsed


async def raw_spawn(n: int) -> float:
    async def nothing() -> None:
        pass

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(nothing)
            if i % 100 == 99:
                await trio.lowlevel.checkpoint()
    return n / (time.perf_counter() - start)


async def raw_memory(n: int) -> float:
    async with trio.open_nursery() as nursery:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            nursery.start_soon(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        nursery.cancel_scope.cancel()
    return (after - before) / n


# -- beamlet ------------------------------------------------------------------------------


async def one_way(n: int) -> float:
    me = self_pid()

    async def counter() -> None:
        for _ in range(n):
            await receive()
        send(me, "done")

    pid = spawn(counter)
    start = time.perf_counter()
    for i in range(n):
        send(pid, i)
        if i % BATCH == BATCH - 1:
            await trio.lowlevel.checkpoint()
    await receive()
    return n / (time.perf_counter() - start)


async def one_way_bounded(n: int) -> float:
    """``one_way`` to a receiver with a mailbox bound (``max_mailbox``) it never reaches."""
    me = self_pid()

    async def counter() -> None:
        for _ in range(n):
            await receive()
        send(me, "done")

    pid = spawn(counter, max_mailbox=n + 1)
    start = time.perf_counter()
    for i in range(n):
        send(pid, i)
        if i % BATCH == BATCH - 1:
            await trio.lowlevel.checkpoint()
    await receive()
    return n / (time.perf_counter() - start)


async def ping_pong(n: int) -> float:
    me = self_pid()

    async def ponger() -> None:
        for _ in range(n):
            await receive()
            send(me, None)

    pid = spawn(ponger)
    start = time.perf_counter()
    for _ in range(n):
        send(pid, None)
        await receive()
    return n / (time.perf_counter() - start)


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


async def gen_server_call(n: int) -> float:
    pid = await Echo.start()
    assert pid is not None
    start = time.perf_counter()
    for i in range(n):
        await call(pid, i)
    return n / (time.perf_counter() - start)


async def spawn_exit(n: int) -> float:
    async def nothing() -> None:
        pass

    base = len(processes())
    start = time.perf_counter()
    for i in range(n):
        spawn(nothing)
        if i % 100 == 99:
            await trio.lowlevel.checkpoint()
    while len(processes()) > base:
        await trio.lowlevel.checkpoint()
    return n / (time.perf_counter() - start)


async def spawn_burst(n: int) -> float:
    """``n`` ``spawn`` calls in a row, then all the processes run and exit."""
    me = self_pid()
    left = [n]

    async def nothing() -> None:
        left[0] -= 1
        if not left[0]:
            send(me, "done")

    meter = StallMeter()
    async with trio.open_nursery() as outer:
        await outer.start(meter.run)
        start = time.perf_counter()
        for _ in range(n):
            spawn(nothing)
        await receive()
        elapsed = time.perf_counter() - start
        meter.stop()
    stalls["beamlet"].append(meter.longest)
    return n / elapsed


async def memory(n: int) -> float:
    async def idle() -> None:
        await receive()

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pids = [spawn(idle) for _ in range(n)]
    await trio.testing.wait_all_tasks_blocked()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for pid in pids:
        send(pid, "stop")
    return (after - before) / n


# -- driver --------------------------------------------------------------------------------


Row = tuple[str, float, float, float, str, float]

FIGURES = ("one-way", "ping-pong", "call", "spawn", "burst", "memory", "mailbox")


async def main(
    quick: bool, rounds: int | None = None, only: tuple[str, ...] = FIGURES
) -> list[Row]:
    """Run each figure as ``rounds`` rounds: a beamlet run, then each of its baselines.

    Alternating keeps slow drift on a shared machine (another job starting,
    the CPU clock changing) out of the ratios; each printed ratio is the median
    of the per-round ratios, and each rate the median of its rounds.
    """
    if rounds is None:
        rounds = 3 if quick else 9
    scale = 10 if quick else 1
    rows: list[Row] = []
    async with open_node() as node:

        async def rounds_of(
            ours: Callable[[int], Awaitable[float]],
            raws: list[Callable[[int], Awaitable[float]]],
            n: int,
        ) -> list[tuple[float, float, float]]:
            """For each baseline: (median ours, median baseline, median of per-round ratios)."""
            mine: list[float] = []
            theirs: list[list[float]] = [[] for _ in raws]
            for _ in range(rounds):
                mine.append(await node.run(ours, n))
                for rates, raw in zip(theirs, raws, strict=True):
                    rates.append(await raw(n))
                await trio.lowlevel.checkpoint()
            out = []
            for rates in theirs:
                ratios = [a / b for a, b in zip(mine, rates, strict=True)]
                out.append(
                    (statistics.median(mine), statistics.median(rates), statistics.median(ratios))
                )
            return out

        if "one-way" in only:
            [(ow, raw_ow, ratio)] = await rounds_of(one_way, [raw_one_way], 200_000 // scale)
            rows.append(("one-way send -> receive (msgs/s)", ow, raw_ow, ratio, ">= 7x", 7.0))

        if "ping-pong" in only:
            nowait, unbuffered = await rounds_of(
                ping_pong, [raw_ping_pong_nowait, raw_ping_pong], 50_000 // scale
            )
            rows.append(("ping-pong vs send_nowait (round trips/s)", *nowait, ">= 1x", 1.0))
            rows.append(
                ("ping-pong vs unbuffered (round trips/s)", *unbuffered, "(reference)", 0.0)
            )

        if "call" in only:
            nowait, unbuffered = await rounds_of(
                gen_server_call, [raw_ping_pong_nowait, raw_ping_pong], 30_000 // scale
            )
            rows.append(("GenServer call vs send_nowait (calls/s)", *nowait, ">= 0.8x", 0.8))
            rows.append(("GenServer call vs unbuffered (calls/s)", *unbuffered, "(reference)", 0.0))

        if "spawn" in only:
            [(sp, raw_sp, ratio)] = await rounds_of(spawn_exit, [raw_spawn], 30_000 // scale)
            rows.append(
                ("spawn + exit, one at a time (procs/s)", sp, raw_sp, ratio, ">= 0.5x", 0.5)
            )

        if "burst" in only:
            stalls["beamlet"].clear()
            stalls["raw"].clear()
            [(sp, raw_sp, ratio)] = await rounds_of(spawn_burst, [raw_spawn_burst], 30_000 // scale)
            rows.append(
                ("spawn + exit, burst of 30,000 (procs/s)", sp, raw_sp, ratio, ">= 0.5x", 0.5)
            )
            rows.append(
                (
                    "longest loop stall in the burst (ms)",
                    1000 * statistics.median(stalls["beamlet"]),
                    1000 * statistics.median(stalls["raw"]),
                    statistics.median(
                        [a / b for a, b in zip(stalls["beamlet"], stalls["raw"], strict=True)]
                    ),
                    "(reported)",
                    0.0,
                )
            )

        if "mailbox" in only:
            # What the mailbox bound costs: one-way to a bounded receiver,
            # against one-way to an unbounded one (which pays nothing for it).
            async def unbounded(n: int) -> float:
                return await node.run(one_way, n)

            [(bounded, plain, ratio)] = await rounds_of(
                one_way_bounded, [unbounded], 200_000 // scale
            )
            rows.append(
                ("one-way, max_mailbox vs none (msgs/s)", bounded, plain, ratio, "(reported)", 0.0)
            )

        if "memory" in only:
            [(mem, raw_mem, ratio)] = await rounds_of(memory, [raw_memory], 20_000 // scale)
            rows.append(
                ("memory per idle process (bytes)", mem, raw_mem, ratio, "<= 3500 B", -3500)
            )
    return rows


def report(rows: list[Row], quick: bool) -> None:
    print(
        f"python {platform.python_version()}, trio {trio.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
        + (" (--quick: sizes divided by 10; the burst is of 3,000)" if quick else "")
    )
    print(f"{'benchmark':42} {'beamlet':>12} {'raw trio':>12} {'ratio':>7}  target")
    for name, ours, raw, ratio, target, goal in rows:
        if goal == 0:
            verdict = ""
        elif goal < 0:
            verdict = "ok" if ours <= -goal else "MISSED"
        else:
            verdict = "ok" if ratio >= goal else "MISSED"
        print(f"{name:42} {ours:12,.0f} {raw:12,.0f} {ratio:6.2f}x  {target} {verdict}".rstrip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, fewer rounds (smoke run)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure")
    parser.add_argument(
        "--only", nargs="+", choices=FIGURES, default=list(FIGURES), help="run only these figures"
    )
    options = parser.parse_args()
    report(trio.run(main, options.quick, options.rounds, tuple(options.only)), options.quick)
    sys.exit(0)
