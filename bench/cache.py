"""The cache against its baselines: a dict, cachetools, Redis; fetch; invalidation.

Run: ``python bench/cache.py [--quick]``. Measured, with every baseline in the
same run (rounds interleaved, so that all see the same machine), medians of
the rounds printed with their ratios:

- *get (hit)*: ``Cache.get`` of a present key, in a loop over 1,000 keys,
  against a plain ``dict.get``, ``cachetools.TTLCache.get`` (same keys and
  TTL), and a Redis ``GET`` over loopback, one round trip each, with redis-py
  (sync) and with coredis (async, on Trio), against a ``redis-server`` this
  benchmark starts on a free port (skipped if it is not installed).
- *fetch, 1,000 concurrent callers*: 1,000 tasks ``fetch`` one missing key
  (the computation yields once and returns), the time until all have the
  value; against the floor of any single-flight, 1,000 tasks waiting on one
  ``trio.Event`` that one task sets.
- *invalidation across two OS processes*: node A ``put``s a key that node B
  (a child process; both caches share a PubSub) holds; B's probe, subscribed
  to the cache's topic next to B's owner, checks that B's cache dropped the
  key and tells A. The round trip is reported next to a plain beamlet
  ping-pong between the same two processes; the invalidation's one-way
  latency is about the round trip less half a ping-pong.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio.lowlevel
from beamlet.actors import open_node, receive, register, self_pid, send
from beamlet.apps.cache import Cache, lookup

HOST = "127.0.0.1"
KEYS = [f"key:{i}" for i in range(1000)]


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- get ----------------------------------------------------------------------------------


def loop_ns(get: Callable[[Any], Any], repeat: int) -> float:
    """Nanoseconds per ``get`` over ``KEYS``, ``repeat`` times."""
    keys = KEYS
    start = time.perf_counter_ns()
    for _ in range(repeat):
        for key in keys:
            get(key)
    return (time.perf_counter_ns() - start) / (repeat * len(keys))


async def measure_gets(rounds: int, repeat: int) -> dict[str, list[float]]:
    from cachetools import TTLCache

    plain = {key: i for i, key in enumerate(KEYS)}
    ttl_cache: TTLCache[str, int] = TTLCache(maxsize=100_000, ttl=300.0)
    for key, value in plain.items():
        ttl_cache[key] = value
    results: dict[str, list[float]] = {"dict": [], "cachetools": [], "beamlet": []}
    async with open_node(watchdog_threshold=None) as node:

        async def body() -> None:
            await Cache.start_link("bench", ttl=300.0)
            cache = lookup("bench")
            cache.put_many(plain.items())
            for _ in range(rounds):
                results["dict"].append(loop_ns(plain.get, repeat))
                results["cachetools"].append(loop_ns(ttl_cache.get, repeat))
                results["beamlet"].append(loop_ns(cache.get, repeat))
                await trio.lowlevel.checkpoint()
            assert cache.stats().misses == 0

        await node.run(body)
    return results


# -- Redis ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[int | None]:
    """A ``redis-server`` on a free port (its port), or None if there is none."""
    server = shutil.which("redis-server")
    if server is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redis_py_ns(port: int, rounds: int, n: int) -> tuple[list[float], str]:
    import redis

    client = redis.Redis(host=HOST, port=port)
    for key in KEYS:
        client.set(key, b"x" * 16)
    version = client.info("server")["redis_version"]
    keys = KEYS
    results = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for i in range(n):
            client.get(keys[i % 1000])
        results.append((time.perf_counter_ns() - start) / n)
    client.close()
    return results, version


async def coredis_ns(port: int, rounds: int, n: int) -> list[float]:
    import coredis

    results = []
    async with coredis.Redis(host=HOST, port=port) as client:
        keys = KEYS
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for i in range(n):
                await client.get(keys[i % 1000])
            results.append((time.perf_counter_ns() - start) / n)
    return results


# -- fetch ---------------------------------------------------------------------------------


async def measure_fetch(rounds: int, callers: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"fetch": [], "event": [], "computations": []}

    async def compute() -> int:
        await trio.lowlevel.checkpoint()
        return 1

    async with open_node(watchdog_threshold=None) as node:

        async def body() -> None:
            await Cache.start_link("bench")
            cache = lookup("bench")
            for r in range(rounds):
                key = ("miss", r)
                before = cache.stats().computations
                start = time.perf_counter_ns()
                async with trio.open_nursery() as nursery:
                    for _ in range(callers):
                        nursery.start_soon(cache.fetch, key, compute)
                results["fetch"].append((time.perf_counter_ns() - start) / 1e3)
                results["computations"].append(cache.stats().computations - before)

                event = trio.Event()

                async def setter(event: trio.Event = event) -> None:
                    await trio.lowlevel.checkpoint()
                    event.set()

                start = time.perf_counter_ns()
                async with trio.open_nursery() as nursery:
                    for _ in range(callers):
                        nursery.start_soon(event.wait)
                    nursery.start_soon(setter)
                results["event"].append((time.perf_counter_ns() - start) / 1e3)

        await node.run(body)
    return results


# -- invalidation across two OS processes ---------------------------------------------------


def free_node_name(short: str) -> str:
    return f"{short}@{HOST}"


async def serve_b(cookie: str) -> None:
    """Node B: a cache with a PubSub, and a probe that reports B's invalidations to A."""
    from beamlet.apps.cache import Invalidate
    from beamlet.apps.pubsub import PubSub, subscribe
    from beamlet.cluster import listen_address

    await PubSub.start_link("bench_ps")
    await Cache.start_link("bench", pubsub="bench_ps")
    cache = lookup("bench")
    register("probe")
    subscribe("bench_ps", cache.topic)  # hears each invalidation as B's owner does
    print("READY", listen_address(), flush=True)
    a = ("bench_a", free_node_name("a"))

    async def value() -> str:
        return "filled"

    while True:
        msg = await receive()
        if isinstance(msg, Invalidate):
            if msg.origin != cache.pid and msg.keys is not None:
                await cache.sync()  # B's owner has applied it
                for key in msg.keys:
                    send(a, ("dropped", key, key in cache))
        elif msg[0] == "ping":
            send(msg[1], "pong")
        elif msg[0] == "fill":  # hold a key without writing it (no broadcast)
            await cache.fetch(msg[1], value)
            send(msg[2], ("filled", msg[1]))
        elif msg[0] == "stop":
            return


def run_b(cookie: str) -> None:
    from beamlet.cluster import run

    run(serve_b, cookie, name=free_node_name("b"), cookie=cookie, port=0, watchdog_threshold=None)


@contextmanager
def node_b(cookie: str) -> Iterator[str]:
    """Node B in a child process; yields its address."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-b", cookie],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"node b did not start: {line}")
        yield line[1]
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def measure_invalidation(
    rounds: int, n: int, cookie: str, address: str
) -> dict[str, list[float]]:
    from beamlet.apps.pubsub import PubSub
    from beamlet.cluster import connect, open_node as open_dist_node

    results: dict[str, list[float]] = {"invalidation": [], "ping": []}
    async with open_dist_node(
        free_node_name("a"), cookie=cookie, port=0, watchdog_threshold=None
    ) as node:

        async def body() -> None:
            await PubSub.start_link("bench_ps")
            await Cache.start_link("bench", pubsub="bench_ps")
            cache = lookup("bench")
            register("bench_a")
            assert await connect(address)
            b = ("probe", free_node_name("b"))
            me = self_pid()
            for w in range(1000):  # until the PubSub shards have met through pg
                send(b, ("fill", ("warm", w), me))
                await receive(lambda m, w=w: m == ("filled", ("warm", w)))
                cache.put(("warm", w), w)
                with trio.move_on_after(0.2):
                    await receive(lambda m, w=w: m[:2] == ("dropped", ("warm", w)))
                    break
            for r in range(rounds):
                inval, ping = [], []
                for i in range(n):
                    key = ("k", r, i)
                    send(b, ("fill", key, me))
                    await receive(lambda m, key=key: m == ("filled", key))
                    start = time.perf_counter_ns()
                    cache.put(key, i)
                    dropped = await receive(lambda m, key=key: m[:2] == ("dropped", key))
                    assert dropped[2] is False, "B still holds the key"
                    inval.append((time.perf_counter_ns() - start) / 1e3)
                    start = time.perf_counter_ns()
                    send(b, ("ping", me))
                    await receive(lambda m: m == "pong")
                    ping.append((time.perf_counter_ns() - start) / 1e3)
                results["invalidation"].append(median(inval))
                results["ping"].append(median(ping))
            send(b, ("stop",))

        await node.run(body)
    return results


# -- report --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--serve-b", metavar="COOKIE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_b:
        run_b(args.serve_b)
        return
    rounds = 3 if args.quick else 9
    repeat = 5 if args.quick else 200
    redis_n = 200 if args.quick else 5000
    callers = 1000
    print(
        f"beamlet cache benchmark: Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; medians of {rounds} rounds"
    )
    gets = trio.run(measure_gets, rounds, repeat)
    dict_ns, ttl_ns, ours = (median(gets[k]) for k in ("dict", "cachetools", "beamlet"))
    print(f"  {'get hit, dict.get (ns)':48} {dict_ns:10.1f}")
    print(f"  {'get hit, cachetools.TTLCache.get (ns)':48} {ttl_ns:10.1f}")
    print(f"  {'get hit, beamlet Cache.get (ns)':48} {ours:10.1f}")
    redis_figures: dict[str, float] = {}
    with redis_server() as port:
        if port is None:
            print("  Redis baselines skipped: redis-server is not installed")
        else:
            py, version = redis_py_ns(port, rounds, redis_n)
            redis_figures["redis-py"] = median(py)
            redis_figures["coredis"] = median(trio.run(coredis_ns, port, rounds, redis_n))
            print(
                f"  {f'Redis GET, redis-py (ns; redis-server {version})':48} {redis_figures['redis-py']:10.0f}"
            )
            print(f"  {'Redis GET, coredis on Trio (ns)':48} {redis_figures['coredis']:10.0f}")
    fetch = trio.run(measure_fetch, rounds, callers)
    assert set(fetch["computations"]) == {1}, fetch["computations"]
    fetch_us, event_us = median(fetch["fetch"]), median(fetch["event"])
    print(f"  {f'fetch, {callers} concurrent callers, one miss (us)':48} {fetch_us:10.0f}")
    print(f"  {f'  floor: {callers} tasks on one trio.Event (us)':48} {event_us:10.0f}")
    print("  computations per fetch round: 1")
    cookie = os.urandom(16).hex()
    with node_b(cookie) as address:
        inval = trio.run(measure_invalidation, rounds, 20 if args.quick else 200, cookie, address)
    if inval:
        inv_us, ping_us = median(inval["invalidation"]), median(inval["ping"])
        print(f"  {'invalidation round trip, two OS processes (us)':48} {inv_us:10.0f}")
        print(f"  {'  beamlet ping-pong, the same processes (us)':48} {ping_us:10.0f}")
        print(f"  {'  invalidation one-way, about (us)':48} {inv_us - ping_us / 2:10.0f}")
    print("ratios (target in brackets):")
    print(f"  get / dict.get: {ours / dict_ns:.1f}x slower")
    print(f"  get / cachetools.TTLCache.get: {ours / ttl_ns:.2f}x [<= 5x]")
    for name, ns in redis_figures.items():
        target = " [>= 200x]" if name == "redis-py" else ""
        print(f"  get vs Redis GET ({name}): {ns / ours:.0f}x faster{target}")
    print(f"  fetch 1,000 callers / trio.Event floor: {fetch_us / event_us:.2f}x")


if __name__ == "__main__":
    main()
