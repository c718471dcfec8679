"""PubSub: local fan-out and cross-node broadcasts, against raw Trio and Redis.

Run: ``python bench/pubsub.py [--quick] [--rounds R]
[--only local|remote|redis|coredis|redis-adapter]``.

Measured, with the baselines in the same run:

- *local fan-out*: one node, ``SUBS`` (10,000) subscriber processes; one
  ``broadcast`` to all of them, timed until every subscriber has received it
  (messages delivered per second). Baseline: raw Trio, one unbounded memory
  channel per subscriber task, the publisher calling ``send_nowait`` on each.
- *cross-node*: node A (this process) broadcasts; node B (a child OS process
  running this file with ``--serve beamlet``) runs the subscribers: 1, then
  100. Throughput: N broadcasts in bursts of ``BURST`` between checkpoints,
  timed until B has delivered N x subscribers; the publisher keeps at most
  ``WINDOW`` broadcasts unacknowledged by B (flow control of the
  application's own: PubSub is at most once and drops, counted, what a
  connection over its ``busy_limit`` cannot take). Latency: broadcasts paced one
  every millisecond, each carrying ``time.perf_counter()`` (CLOCK_MONOTONIC,
  shared by the processes of one machine); the first subscriber on B records
  when it got it. Median and p99.
- the same against Redis PUBLISH/SUBSCRIBE on a ``redis-server`` this bench
  starts on a free port: the subscribers in a child process (one connection
  each, as a subscriber needs), the publisher here; with redis-py (publisher
  synchronous; subscribers ``redis.asyncio``) and with coredis (on Trio, both
  sides). Throughput publishes pipelined in bursts of ``BURST`` (the closest
  to a broadcast that does not wait for the network); latency publishes one
  at a time, paced as above.

- the Redis adapter (``--only redis-adapter``): the same cross-node
  measurement through ``PubSub(adapter="redis")`` on that ``redis-server``,
  with nodes A and B not distributed at all (only Redis joins them), next to
  the raw redis-py and coredis pub/sub above. The adapter's queue and buffer
  are set large enough that nothing is dropped (the run fails otherwise).

Every child reports on stdout: ``READY ...``, then ``DONE {json}`` once it has
counted what the parent told it to expect on stdin (``expect N LATENCY``).
Prints medians of the rounds and the ratios against DESIGN.md's targets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio.lowlevel
from _child import child
from beamlet.actors import open_node, receive, register, run as run_local, send, spawn
from beamlet.apps.pubsub import PubSub, broadcast, stats, subscribe
from beamlet.cluster import connect, listen_address, pg, run as run_node

HOST = "127.0.0.1"
NODE_A = f"a@{HOST}"
NODE_B = f"b@{HOST}"
COOKIE = "pubsub-bench-cookie-0123456789abcdef"
BURST = 1000
TIMEOUT = 120.0
LATENCY_INTERVAL = 0.001
#: The subscriber side of beamlet acknowledges every ACK_EVERY deliveries; the
#: publisher keeps at most WINDOW broadcasts unacknowledged. Without it a
#: publisher faster than the other node fills the connection past its
#: ``busy_limit`` and the broadcasts beyond are dropped (counted): at most once.
ACK_EVERY = 1000
WINDOW = 10_000


# -- local fan-out ------------------------------------------------------------------------


class Countdown:
    """Counts deliveries in one OS process; ``done`` is set at zero."""

    def __init__(self) -> None:
        self.left = 0
        self.done = trio.Event()

    def arm(self, n: int) -> None:
        self.left = n
        self.done = trio.Event()

    def hit(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


async def _fanout_subscriber(box: Countdown, subscribed: Countdown) -> None:
    subscribe("bench", "t")
    subscribed.hit()
    while True:
        await receive()
        box.hit()


async def beamlet_fanout(subs: int, rounds: int) -> list[float]:
    results = []
    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("bench")
            box, subscribed = Countdown(), Countdown()
            subscribed.arm(subs)
            for _ in range(subs):
                spawn(_fanout_subscriber, box, subscribed)
            await subscribed.done.wait()
            for i in range(rounds + 1):
                box.arm(subs)
                start = time.perf_counter()
                broadcast("bench", "t", ("msg", i))
                await box.done.wait()
                if i:  # the first round warms up
                    results.append(subs / (time.perf_counter() - start))

        await node.run(main)
    return results


async def trio_fanout(subs: int, rounds: int) -> list[float]:
    results = []
    box = Countdown()

    async def subscriber(channel: trio.MemoryReceiveChannel[Any]) -> None:
        async for _ in channel:
            box.hit()

    async with trio.open_nursery() as nursery:
        senders = []
        for _ in range(subs):
            send, recv = trio.open_memory_channel[Any](math.inf)
            senders.append(send)
            nursery.start_soon(subscriber, recv)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(rounds + 1):
            box.arm(subs)
            start = time.perf_counter()
            msg = ("msg", i)
            for s in senders:
                s.send_nowait(msg)
            await box.done.wait()
            if i:
                results.append(subs / (time.perf_counter() - start))
        nursery.cancel_scope.cancel()
    return results


# -- children: the subscriber side ----------------------------------------------------------


class Tally:
    """The subscriber side's count and latencies, and the ``expect`` protocol."""

    def __init__(self) -> None:
        self.count = 0
        self.expected: int | None = None
        self.latency = False
        self.latencies: list[float] = []
        self.started = 0.0
        #: Called with the count every ``ACK_EVERY`` deliveries (beamlet's flow control).
        self.ack: Any = None

    def expect(self, line: str) -> None:
        _, n, latency = line.split()
        self.count, self.expected, self.latency = 0, int(n), latency == "1"
        self.latencies = []
        self.started = time.process_time()
        print("EXPECTING", flush=True)  # the parent publishes only after this

    def hit(self, first: bool, sent_at: float | None) -> None:
        if first and self.latency and sent_at is not None:
            self.latencies.append(time.perf_counter() - sent_at)
        self.count += 1
        if self.ack is not None and self.count % ACK_EVERY == 0:
            self.ack(self.count)
        if self.count == self.expected:
            cpu = time.process_time() - self.started
            print("DONE", json.dumps({"latencies": self.latencies, "cpu": cpu}), flush=True)
            self.expected = None


async def _read_commands(tally: Tally, cancel: trio.CancelScope) -> None:
    """Apply the ``expect`` lines of stdin; stop at its end."""
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            cancel.cancel()
            return
        tally.expect(line)


async def _bench_subscriber(tally: Tally, first: bool, subscribed: Countdown) -> None:
    subscribe("bench", "t")
    subscribed.hit()
    while True:
        _i, sent_at = await receive()
        tally.hit(first, sent_at)


async def serve_beamlet(subs: int) -> None:
    await PubSub.start_link("bench")
    tally, subscribed = Tally(), Countdown()
    tally.ack = lambda count: send(("bench_acks", NODE_A), count)
    subscribed.arm(subs)
    for k in range(subs):
        spawn(_bench_subscriber, tally, k == 0, subscribed)
    await subscribed.done.wait()
    print("READY", listen_address(), flush=True)
    with trio.CancelScope() as scope:
        await _read_commands(tally, scope)


async def serve_coredis(subs: int, port: int) -> None:
    import coredis

    tally = Tally()
    # A subscriber holds a connection: the pool must have one for each.
    async with coredis.Redis(host=HOST, port=port, max_connections=subs + 8) as client:

        async def subscriber(first: bool, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            async with client.pubsub(channels=["bench"], ignore_subscribe_messages=True) as sub:
                task_status.started()
                async for message in sub:
                    if message["type"] == "message":
                        _, sent_at = message["data"].split(b" ")
                        tally.hit(first, float(sent_at))

        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                for k in range(subs):
                    await nursery.start(subscriber, k == 0)
                print("READY", flush=True)
                await _read_commands(tally, scope)
                nursery.cancel_scope.cancel()


def serve_redis_py(subs: int, port: int) -> None:
    import asyncio

    import redis.asyncio as aioredis

    tally = Tally()

    async def main() -> None:
        client = aioredis.Redis(host=HOST, port=port)
        ready = 0

        async def subscriber(first: bool) -> None:
            nonlocal ready
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe("bench")
            ready += 1
            if ready == subs:
                print("READY", flush=True)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    _, sent_at = message["data"].split(b" ")
                    tally.hit(first, float(sent_at))

        tasks = [asyncio.create_task(subscriber(k == 0)) for k in range(subs)]
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            tally.expect(line)
        for task in tasks:
            task.cancel()
        await client.aclose()

    asyncio.run(main())


#: The Redis adapter's nodes are not distributed: these are their node_names.
REDIS_NODE_A, REDIS_NODE_B = "bench-a", "bench-b"
#: The Redis adapter's queue and buffer, large enough that nothing is dropped.
REDIS_ADAPTER_BOUNDS = {"max_queue": 10_000_000, "max_buffer": 10_000_000}


async def serve_beamlet_redis(subs: int, port: int) -> None:
    """Node B with the Redis adapter: not distributed, reached through Redis only."""
    await PubSub.start_link(
        "bench",
        adapter="redis",
        redis=f"redis://{HOST}:{port}/0",
        node_name=REDIS_NODE_B,
        **REDIS_ADAPTER_BOUNDS,
    )
    tally, subscribed = Tally(), Countdown()
    subscribed.arm(subs)
    for k in range(subs):
        spawn(_bench_subscriber, tally, k == 0, subscribed)
    await subscribed.done.wait()
    print("READY", flush=True)
    with trio.CancelScope() as scope:
        await _read_commands(tally, scope)


def tell(proc: subprocess.Popen[str], n: int, latency: bool) -> None:
    assert proc.stdin is not None
    proc.stdin.write(f"expect {n} {int(latency)}\n")
    proc.stdin.flush()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("EXPECTING"):
        raise RuntimeError(f"the subscriber side did not take the count: {line!r}")


def wait_done(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("DONE"):
        raise RuntimeError(f"the subscriber side did not finish: {line!r}")
    result: dict[str, Any] = json.loads(line.partition(" ")[2])
    return result


# -- the publisher side -----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _until_shards() -> None:
    with trio.fail_after(30):
        group = ("beamlet.pubsub", "bench", 0)
        while {p.node for p in pg.members(group)} != {NODE_A, NODE_B}:  # noqa: ASYNC110
            await trio.sleep(0.01)


def print_ratios(
    results: dict[str, dict[int, dict[str, Any]]],
    ours: dict[int, dict[str, Any]],
    others: tuple[str, ...],
    line: str,
) -> None:
    """For each of ``others`` measured in ``results``, print ``line`` formatted with
    ``other`` (its name) and ours over its: ``to1`` and ``to100`` (median rates to
    1 and to 100 subscribers) and ``latency`` (median latency to 1)."""
    for other in others:
        if other in results:
            theirs = results[other]
            print(
                line.format(
                    other=other,
                    to1=statistics.median(ours[1]["rate"]) / statistics.median(theirs[1]["rate"]),
                    to100=statistics.median(ours[100]["rate"])
                    / statistics.median(theirs[100]["rate"]),
                    latency=statistics.median(ours[1]["latency"])
                    / statistics.median(theirs[1]["latency"]),
                )
            )


def beamlet_remote(subs: int, n: int, n_latency: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rate": [], "latency": [], "drops": 0, "cpu_a": [], "cpu_b": []}
    with child(__file__, "--serve", "beamlet", "--subs", str(subs)) as (proc, address):

        async def main() -> None:
            register("bench_acks")
            await PubSub.start_link("bench")
            assert await connect(address)
            await _until_shards()
            for r in range(rounds + 1):
                count = n if r else n // 10
                before = stats("bench")["remote_busy_drops"]
                tell(proc, count * subs, False)
                start = time.perf_counter()
                cpu = time.process_time()
                acked = 0
                for base in range(0, count, BURST):
                    for i in range(base, min(base + BURST, count)):
                        broadcast("bench", "t", (i, None))
                    await trio.lowlevel.checkpoint()
                    while (base + BURST) * subs - acked > WINDOW * subs:
                        acked = max(acked, await receive())
                drops = stats("bench")["remote_busy_drops"] - before
                if drops:
                    raise RuntimeError(f"{drops} broadcasts refused by a busy connection")
                done = await trio.to_thread.run_sync(wait_done, proc)
                if r:
                    out["rate"].append(count * subs / (time.perf_counter() - start))
                    # CPU seconds per message delivered, on each side (less
                    # sensitive to the machine's other load than the rate).
                    out["cpu_a"].append((time.process_time() - cpu) / (count * subs))
                    out["cpu_b"].append(done["cpu"] / (count * subs))
                while True:  # the acknowledgements left of this round
                    try:
                        await receive(timeout=0)
                    except trio.TooSlowError:
                        break
            tell(proc, n_latency * subs, True)
            for i in range(n_latency):
                broadcast("bench", "t", (i, time.perf_counter()))
                await trio.sleep(LATENCY_INTERVAL)
            out["latency"] = (await trio.to_thread.run_sync(wait_done, proc))["latencies"]

        run_node(main, name=NODE_A, cookie=COOKIE, watchdog_threshold=None)
    return out


@contextmanager
def redis_server() -> Iterator[int]:
    server = shutil.which("redis-server")
    if server is None:
        raise FileNotFoundError("redis-server")
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            server,
            *("--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"),
            *("--client-output-buffer-limit", "pubsub 0 0 0"),  # never drop a slow subscriber
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def until_subscribed(port: int, subs: int, channel: str = "bench") -> None:
    """Wait until Redis counts ``subs`` subscribers of the channel."""
    import redis

    client = redis.Redis(host=HOST, port=port)
    deadline = time.monotonic() + TIMEOUT
    while client.pubsub_numsub(channel)[0][1] < subs:
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis subscribers did not subscribe")
        time.sleep(0.01)
    client.close()


def redis_py_remote(port: int, subs: int, n: int, n_latency: int, rounds: int) -> dict[str, Any]:
    import redis

    out: dict[str, Any] = {"rate": [], "latency": []}
    client = redis.Redis(host=HOST, port=port)
    with child(__file__, "--serve", "redis-py", "--subs", str(subs), "--redis-port", str(port)) as (
        proc,
        _,
    ):
        until_subscribed(port, subs)
        for r in range(rounds + 1):
            count = n if r else n // 10
            tell(proc, count * subs, False)
            start = time.perf_counter()
            for base in range(0, count, BURST):
                pipe = client.pipeline(transaction=False)
                for i in range(base, min(base + BURST, count)):
                    pipe.publish("bench", f"{i} nan")
                pipe.execute()
            wait_done(proc)
            if r:
                out["rate"].append(count * subs / (time.perf_counter() - start))
        tell(proc, n_latency * subs, True)
        for i in range(n_latency):
            client.publish("bench", f"{i} {time.perf_counter()!r}")
            time.sleep(LATENCY_INTERVAL)
        out["latency"] = wait_done(proc)["latencies"]
    client.close()
    return out


def coredis_remote(port: int, subs: int, n: int, n_latency: int, rounds: int) -> dict[str, Any]:
    import coredis

    out: dict[str, Any] = {"rate": [], "latency": []}
    with child(__file__, "--serve", "coredis", "--subs", str(subs), "--redis-port", str(port)) as (
        proc,
        _,
    ):
        until_subscribed(port, subs)

        async def main() -> None:
            async with coredis.Redis(host=HOST, port=port) as client:
                for r in range(rounds + 1):
                    count = n if r else n // 10
                    tell(proc, count * subs, False)
                    start = time.perf_counter()
                    for base in range(0, count, BURST):
                        async with client.pipeline(transaction=False) as pipe:
                            for i in range(base, min(base + BURST, count)):
                                pipe.publish("bench", f"{i} nan")
                    await trio.to_thread.run_sync(wait_done, proc)
                    if r:
                        out["rate"].append(count * subs / (time.perf_counter() - start))
                tell(proc, n_latency * subs, True)
                for i in range(n_latency):
                    await client.publish("bench", f"{i} {time.perf_counter()!r}")
                    await trio.sleep(LATENCY_INTERVAL)
                out["latency"] = (await trio.to_thread.run_sync(wait_done, proc))["latencies"]

        trio.run(main)
    return out


def beamlet_redis_remote(
    port: int, subs: int, n: int, n_latency: int, rounds: int
) -> dict[str, Any]:
    """Node A (here) broadcasts through the Redis adapter to node B; neither is distributed."""
    out: dict[str, Any] = {"rate": [], "latency": []}
    args = ("--serve", "beamlet-redis", "--subs", str(subs), "--redis-port", str(port))
    with child(__file__, *args) as (proc, _):

        async def main() -> None:
            await PubSub.start_link(
                "bench",
                adapter="redis",
                redis=f"redis://{HOST}:{port}/0",
                node_name=REDIS_NODE_A,
                **REDIS_ADAPTER_BOUNDS,
            )
            # Both adapters on the channel (A hears its own broadcasts back, and drops them).
            await trio.to_thread.run_sync(until_subscribed, port, 2, "beamlet:bench")
            for r in range(rounds + 1):
                count = n if r else n // 10
                tell(proc, count * subs, False)
                start = time.perf_counter()
                for base in range(0, count, BURST):
                    for i in range(base, min(base + BURST, count)):
                        broadcast("bench", "t", (i, None))
                    await trio.lowlevel.checkpoint()
                await trio.to_thread.run_sync(wait_done, proc)
                if r:
                    out["rate"].append(count * subs / (time.perf_counter() - start))
            tell(proc, n_latency * subs, True)
            for i in range(n_latency):
                broadcast("bench", "t", (i, time.perf_counter()))
                await trio.sleep(LATENCY_INTERVAL)
            out["latency"] = (await trio.to_thread.run_sync(wait_done, proc))["latencies"]
            drops = stats("bench")["redis_send_drops"]
            if drops:
                raise RuntimeError(f"{drops} broadcasts not published to Redis")

        run_local(main, watchdog_threshold=None)
    return out


# -- the report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only",
        action="append",
        choices=["local", "remote", "redis", "coredis", "redis-adapter"],
    )
    parser.add_argument(
        "--serve",
        choices=["beamlet", "redis-py", "coredis", "beamlet-redis"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--subs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--redis-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve == "beamlet":
        run_node(serve_beamlet, args.subs, name=NODE_B, cookie=COOKIE, watchdog_threshold=None)
        return
    if args.serve == "redis-py":
        serve_redis_py(args.subs, args.redis_port)
        return
    if args.serve == "coredis":
        trio.run(serve_coredis, args.subs, args.redis_port)
        return
    if args.serve == "beamlet-redis":
        run_local(serve_beamlet_redis, args.subs, args.redis_port, watchdog_threshold=None)
        return

    only = set(args.only or ["local", "remote", "redis", "coredis", "redis-adapter"])
    on_redis = {"redis", "coredis", "redis-adapter"} & only
    subs_local = 500 if args.quick else 10_000
    n = 2_000 if args.quick else 100_000
    n_latency = 50 if args.quick else 2_000
    rounds = 1 if args.quick else args.rounds
    print(
        f"PubSub benchmark: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {rounds} rounds, medians"
    )
    median = statistics.median

    if "local" in only:
        raw: list[float] = []
        ours: list[float] = []
        for _ in range(rounds):  # alternate, so that both see the same machine
            raw += trio.run(trio_fanout, subs_local, 3)
            ours += trio.run(beamlet_fanout, subs_local, 3)
        print(f"\nlocal fan-out, one broadcast to {subs_local:,} subscribers (msgs delivered/s)")
        print(f"  raw Trio, a memory channel per subscriber {median(raw):14,.0f}")
        print(f"  beamlet broadcast                         {median(ours):14,.0f}")
        print(f"local fan-out / raw Trio: {median(ours) / median(raw):.2f}x")

    results: dict[str, dict[int, dict[str, Any]]] = {}
    for subs in (1, 100):
        count = n if subs == 1 else max(n // 100, 200)
        if "remote" in only:
            results.setdefault("beamlet", {})[subs] = beamlet_remote(subs, count, n_latency, rounds)
        if on_redis and shutil.which("redis-server"):
            with redis_server() as port:
                if "redis-adapter" in only:
                    results.setdefault("beamlet Redis adapter", {})[subs] = beamlet_redis_remote(
                        port, subs, count, n_latency, rounds
                    )
                if "redis" in only:
                    results.setdefault("redis-py", {})[subs] = redis_py_remote(
                        port, subs, count, n_latency, rounds
                    )
                if "coredis" in only:
                    results.setdefault("coredis", {})[subs] = coredis_remote(
                        port, subs, count, n_latency, rounds
                    )
    if on_redis and not shutil.which("redis-server"):
        print("\nRedis baselines skipped: redis-server is not installed")

    if results:
        print("\ncross-node, two OS processes (msgs delivered/s; latency publish -> receive, us)")
        print(f"  {'':22} {'1 subscriber':>14} {'100 subscribers':>16} {'median':>8} {'p99':>8}")
        for system, by_subs in results.items():
            one, hundred = by_subs.get(1), by_subs.get(100)
            lat = one["latency"] if one else []
            print(
                f"  {system:22} {median(one['rate']) if one else 0:14,.0f} "
                f"{median(hundred['rate']) if hundred else 0:16,.0f} "
                f"{median(lat) * 1e6 if lat else 0:8.0f} {percentile(lat, 0.99) * 1e6 if lat else 0:8.0f}"
            )
        ours = results.get("beamlet")
        if ours:
            rate1 = median(ours[1]["rate"])
            print(
                f"cross-node to 1 subscriber: {rate1:,.0f} msgs/s (target >= 100,000): "
                f"{rate1 / 100_000:.2f}x the target"
            )
            rate100 = median(ours[100]["rate"])
            print(
                f"cross-node to 100 subscribers: {rate100:,.0f} msgs/s: "
                f"{rate100 / 100_000:.2f}x the target"
            )
            for subs in (1, 100):
                print(
                    f"beamlet CPU per message delivered, to {subs}: publisher node "
                    f"{median(ours[subs]['cpu_a']) * 1e6:.2f} us, subscriber node "
                    f"{median(ours[subs]['cpu_b']) * 1e6:.2f} us"
                )
            print_ratios(
                results,
                ours,
                ("redis-py", "coredis"),
                "latency median, beamlet / {other}: {latency:.2f}x (target < 1); "
                "throughput to 1 / {other}: {to1:.2f}x, to 100: {to100:.2f}x",
            )

        adapter = results.get("beamlet Redis adapter")
        if adapter:
            print_ratios(
                results,
                adapter,
                ("coredis", "redis-py"),
                "Redis adapter / {other} pub/sub: throughput to 1 {to1:.2f}x, "
                "to 100 {to100:.2f}x, latency median {latency:.2f}x",
            )


if __name__ == "__main__":
    main()
