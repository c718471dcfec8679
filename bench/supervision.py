"""Supervision benchmark: restarts per second and DynamicSupervisor.start_child rate.

Run: ``python bench/supervision.py [--runs N] [--scale X]``

Measured in the same run, each as the median of several runs:

- baseline: raw ``spawn`` + exit of a process that returns at once;
- restarts/s of a permanent child that crashes as soon as it starts, under a
  one_for_one ``Supervisor`` (intensity high enough never to escalate), for a
  plain function child (``worker``) and for a ``GenServer`` child;
- ``DynamicSupervisor.start_child`` calls/s from one client (each a call to the
  supervisor, which spawns and links the child).

Ratios are given against the spawn baseline. Supervisor reports are switched
off (logger level CRITICAL): with a log handler attached, every crash writes a
``child_terminated`` report, which then dominates the cost.
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
from beamlet.actors import Exit, GenServer, receive, run, self_pid, send, spawn, trap_exits
from beamlet.supervisors import DynamicSupervisor, Supervisor, worker


async def returns_at_once() -> None:
    return None


async def spawn_rate(n: int) -> float:
    """Spawns per second, each process running to its exit."""
    done = trio.Event()
    left = [n]

    async def child() -> None:
        left[0] -= 1
        if not left[0]:
            done.set()

    start = time.perf_counter()
    for _ in range(n):
        spawn(child)
    await done.wait()
    return n / (time.perf_counter() - start)


async def crashing_worker(parent: Any, counter: list[int], n: int) -> None:
    counter[0] += 1
    if counter[0] == n:
        send(parent, "done")
        await receive()
    raise Exit("crash")


class CrashingServer(GenServer):
    async def init(self, parent: Any, counter: list[int], n: int) -> None:
        counter[0] += 1
        if counter[0] == n:
            send(parent, "done")
        else:
            send(self_pid(), "crash")

    async def handle_info(self, msg: Any) -> Any:
        raise Exit("crash")


async def restart_rate(n: int, kind: str) -> float:
    """Restarts per second of a child that crashes at once."""
    trap_exits(True)
    counter = [0]
    if kind == "worker":
        spec: Any = worker(crashing_worker, self_pid(), counter, n, id="c")
    else:
        spec = CrashingServer.child_spec(self_pid(), counter, n, id="c")
    start = time.perf_counter()
    sup = await Supervisor.start_link([spec], max_restarts=10**9, max_seconds=5.0)
    await receive(lambda m: m == "done")
    elapsed = time.perf_counter() - start
    await Supervisor.stop(sup)
    return (n - 1) / elapsed


async def idle() -> None:
    await receive()


async def start_child_rate(n: int) -> float:
    """DynamicSupervisor.start_child calls per second (one client)."""
    trap_exits(True)
    sup = await DynamicSupervisor.start_link()
    spec = worker(idle)
    start = time.perf_counter()
    for _ in range(n):
        await DynamicSupervisor.start_child(sup, spec)
    elapsed = time.perf_counter() - start
    await DynamicSupervisor.stop(sup)
    return n / elapsed


def median_of(runs: int, fn: Callable[..., Awaitable[float]], *args: Any) -> float:
    return statistics.median(run(fn, *args, watchdog_threshold=None) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes")
    args = parser.parse_args()
    logging.getLogger("beamlet").setLevel(logging.CRITICAL)
    size = int(20_000 * args.scale)
    print(
        f"python {platform.python_version()}, trio {trio.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; median of {args.runs} runs"
    )
    baseline = median_of(args.runs, spawn_rate, size)
    figures = {
        "spawn + exit (baseline)": baseline,
        "Supervisor restarts/s, worker child": median_of(
            args.runs, restart_rate, size // 2, "worker"
        ),
        "Supervisor restarts/s, GenServer child": median_of(
            args.runs, restart_rate, size // 4, "gen_server"
        ),
        "DynamicSupervisor.start_child/s": median_of(args.runs, start_child_rate, size // 2),
    }
    width = max(map(len, figures))
    for label, value in figures.items():
        print(f"{label:<{width}}  {value:>10,.0f} /s  {value / baseline:5.2f}x spawn")


if __name__ == "__main__":
    main()
