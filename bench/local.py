"""Local runtime benchmarks, each against a raw Trio baseline measured in the same run.

Run: ``python bench/local.py [--quick]``. Prints the median of several rounds
for each figure and the ratio to its baseline (machines are noisy; ratios hold).
"""

from __future__ import annotations

import argparse
import gc
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
        await trio.sleep(0.05)
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


async def memory(n: int) -> float:
    async def idle() -> None:
        await receive()

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pids = [spawn(idle) for _ in range(n)]
    await trio.sleep(0.05)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for pid in pids:
        send(pid, "stop")
    return (after - before) / n


# -- driver --------------------------------------------------------------------------------


Row = tuple[str, float, float, float, str, float]


async def main(quick: bool) -> list[Row]:
    """Run each figure as ``rounds`` pairs: a beamlet round, then its baseline.

    Alternating the two keeps slow drift on a shared machine (another job
    starting, the CPU clock changing) out of the ratio; each printed ratio is
    the median of the per-pair ratios, and each rate the median of its rounds.
    """
    rounds = 3 if quick else 9
    scale = 10 if quick else 1
    rows: list[Row] = []
    async with open_node() as node:

        async def pairs(
            ours: Callable[[int], Awaitable[float]],
            raw: Callable[[int], Awaitable[float]],
            n: int,
        ) -> tuple[float, float, float]:
            mine, theirs = [], []
            for _ in range(rounds):
                mine.append(await node.run(ours, n))
                theirs.append(await raw(n))
                await trio.lowlevel.checkpoint()
            ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
            return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)

        ow, raw_ow, ratio = await pairs(one_way, raw_one_way, 200_000 // scale)
        rows.append(("one-way send -> receive (msgs/s)", ow, raw_ow, ratio, ">= 7x", 7.0))

        pp, raw_pp, ratio = await pairs(ping_pong, raw_ping_pong, 50_000 // scale)
        rows.append(("ping-pong (round trips/s)", pp, raw_pp, ratio, ">= 1x", 1.0))

        gc_, raw_pp2, ratio = await pairs(gen_server_call, raw_ping_pong, 30_000 // scale)
        rows.append(("GenServer call (calls/s)", gc_, raw_pp2, ratio, ">= 0.8x raw ping-pong", 0.8))

        sp, raw_sp, ratio = await pairs(spawn_exit, raw_spawn, 30_000 // scale)
        rows.append(("spawn + exit (processes/s)", sp, raw_sp, ratio, ">= 0.5x", 0.5))

        mem, raw_mem, ratio = await pairs(memory, raw_memory, 20_000 // scale)
        rows.append(("memory per idle process (bytes)", mem, raw_mem, ratio, "<= 3500 B", -3500))
    return rows


def report(rows: list[Row]) -> None:
    print(
        f"python {platform.python_version()}, trio {trio.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(f"{'benchmark':36} {'beamlet':>12} {'raw trio':>12} {'ratio':>7}  target")
    for name, ours, raw, ratio, target, goal in rows:
        met = (ours <= -goal) if goal < 0 else (ratio >= goal)
        print(
            f"{name:36} {ours:12,.0f} {raw:12,.0f} {ratio:6.2f}x  {target} {'ok' if met else 'MISSED'}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, fewer rounds (smoke run)"
    )
    options = parser.parse_args()
    report(trio.run(main, options.quick))
    sys.exit(0)
