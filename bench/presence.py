"""Presence across three OS processes, against the database approach, in one run.

Run: ``python bench/presence.py [--quick] [--presences N] [--rounds R]``.

Three nodes (children running this file with ``--serve``) form a cluster on
127.0.0.1, each with a PubSub and a presence (Phoenix.Tracker's timings:
heartbeats every 1.5 s, down after 30 s; ``--quick`` scales them down).
Their transport counts the bytes of every connection. Measured:

- *convergence*: each node tracks a third of N presences (one process
  each); the time until every node lists all N, and, after the processes
  exit, until every node lists none (median of R rounds);
- *idle wire*: bytes per second on the wire, per node pair, while nothing
  changes (heartbeats and the distribution's ticks; DESIGN.md's target is
  <= 1 KB/s per pair);
- *crash*: one node is SIGKILLed; the time until the other two list none of
  its presences (at most ``down_period``).

The database approach, in the same run: each of N users refreshes a key
with a TTL (= ``down_period``) every TTL/3 in a real ``redis-server``
started on a free port (redis-py, pipelined SETs paced evenly over the
period). Measured: the writes per second it costs, the bytes per second it
puts on the wire (Redis's own counters), and the worst-case staleness: after
a third of the users stop refreshing at once (their node died), the time
until the last of their keys is gone.

Prints the figures and the ratios; machines are noisy, ratios hold better.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

HOST = "127.0.0.1"
TOPIC = "lobby"
TIMEOUT = 180.0  # seconds: a node that never converges fails the run instead of hanging


# -- the nodes (children) -----------------------------------------------------------------


class _CountingStream(trio.abc.Stream):
    """A stream that counts the bytes through it into a shared counter."""

    def __init__(self, inner: trio.abc.Stream, counter: list[int]) -> None:
        self.inner = inner
        self.counter = counter

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.counter[0] += len(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.counter[1] += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


def serve_node(name: str, cookie: str, seeds: list[str], options: dict[str, Any]) -> None:
    """A node: PubSub + presence; JSON commands on stdin, JSON events on stdout."""
    from beamlet.actors import receive, self_pid, send, send_exit, spawn
    from beamlet.apps.presence import Presence, PresenceDiff, track
    from beamlet.apps.pubsub import PubSub, subscribe
    from beamlet.cluster import TCPTransport, listen_address, run
    from beamlet.supervisors import Supervisor

    counter = [0, 0]  # bytes sent, received

    class CountingTransport(TCPTransport):
        async def serve(self, host: str, port: int, handler: Any, **kw: Any) -> None:
            async def counted(stream: trio.abc.Stream) -> None:
                await handler(_CountingStream(stream, counter))

            await super().serve(host, port, counted, **kw)

        async def connect(self, address: str, peer_host: str | None = None) -> trio.abc.Stream:
            return _CountingStream(await super().connect(address, peer_host), counter)

    def emit(**event: Any) -> None:
        print(json.dumps(event), flush=True)

    async def holder() -> None:
        await trio.sleep_forever()

    async def main() -> None:
        await Supervisor.start_link(
            [PubSub.child_spec("ps"), Presence.child_spec("pr", pubsub="ps", **options)],
            strategy="rest_for_one",
        )
        emit(event="ready", address=listen_address())
        holders: list[Any] = []
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buffer = b""

        # Diffs keep a count of what this node lists, with no polling.
        listed = [0]
        targets: list[int] = []

        async def count_diffs(parent: Any) -> None:
            subscribe("ps", TOPIC)
            send(parent, "subscribed")
            while True:
                diff = await receive(lambda m: type(m) is PresenceDiff)
                listed[0] += sum(map(len, diff.joins.values()))
                listed[0] -= sum(map(len, diff.leaves.values()))
                if targets and listed[0] == targets[0]:
                    targets.pop(0)
                    emit(event="count", n=listed[0], t=time.time())

        spawn(count_diffs, self_pid())
        await receive(lambda m: m == "subscribed")

        async for chunk in stdin:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                cmd = json.loads(line)
                if cmd["cmd"] == "track":
                    for i in range(cmd["n"]):
                        pid = spawn(holder)
                        holders.append(pid)
                        await track("pr", pid, TOPIC, f"{cmd['prefix']}{i}", {"i": i})
                    emit(event="tracked", t=time.time())
                elif cmd["cmd"] == "exit_all":
                    for pid in holders:
                        send_exit(pid, "kill")
                    holders.clear()
                elif cmd["cmd"] == "await_count":
                    if listed[0] == cmd["n"]:
                        emit(event="count", n=listed[0], t=time.time())
                    else:
                        targets.append(cmd["n"])
                elif cmd["cmd"] == "bytes":
                    emit(event="bytes", sent=counter[0], received=counter[1], t=time.time())

    run(
        main,
        name=name,
        cookie=cookie,
        port=0,
        seeds=seeds,
        transport=CountingTransport(),
        watchdog_threshold=None,
    )


# -- the driver ---------------------------------------------------------------------------


class Node:
    def __init__(self, name: str, proc: subprocess.Popen[str]) -> None:
        self.name = name
        self.proc = proc
        self.pending: list[dict[str, Any]] = []
        ready = self.expect("ready")
        self.address: str = ready["address"]

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str) -> dict[str, Any]:
        for i, e in enumerate(self.pending):
            if e["event"] == event:
                return self.pending.pop(i)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"node {self.name} exited (status {self.proc.poll()})")
            e = json.loads(line)
            if e["event"] == event:
                return e
            self.pending.append(e)
        raise RuntimeError(f"node {self.name}: no {event} within {TIMEOUT} s")


@contextmanager
def cluster(options: dict[str, Any]) -> Iterator[list[Node]]:
    cookie = secrets.token_hex(16)
    procs: list[subprocess.Popen[str]] = []

    def start(name: str, *seeds: str) -> Node:
        proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--serve",
                name,
                "--cookie",
                cookie,
                "--options",
                json.dumps(options),
                *(f"--seed={s}" for s in seeds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return Node(name, proc)

    try:
        a = start(f"a@{HOST}")
        b = start(f"b@{HOST}", a.address)
        c = start(f"c@{HOST}", a.address)
        yield [a, b, c]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def wire_bytes(nodes: list[Node]) -> tuple[int, float]:
    """Bytes received by all the nodes so far (every byte on the wire, once), and when."""
    total, at = 0, 0.0
    for node in nodes:
        node.send(cmd="bytes")
        e = node.expect("bytes")
        total += e["received"]
        at = max(at, e["t"])
    return total, at


def measure_presence(args: Any, options: dict[str, Any]) -> dict[str, Any]:
    n = args.presences
    shares = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    joins: list[float] = []
    leaves: list[float] = []
    with cluster(options) as nodes:
        # Connected, and every shard has heard every other.
        time.sleep(3 * options["broadcast_period"] + 1.0)
        for r in range(args.rounds):
            for node in nodes:
                node.send(cmd="await_count", n=n)
            start = time.time()
            for node, share in zip(nodes, shares, strict=True):
                node.send(cmd="track", n=share, prefix=f"r{r}{node.name[0]}")
            done = max(node.expect("count")["t"] for node in nodes)
            joins.append(done - start)
            for node in nodes:
                node.expect("tracked")
            for node in nodes:
                node.send(cmd="await_count", n=0)
            start = time.time()
            for node in nodes:
                node.send(cmd="exit_all")
            leaves.append(max(node.expect("count")["t"] for node in nodes) - start)

        # Idle, with N presences listed: only heartbeats (and ticks) on the wire.
        for node, share in zip(nodes, shares, strict=True):
            node.send(cmd="track", n=share, prefix=f"idle{node.name[0]}")
        for node in nodes:
            node.expect("tracked")
            node.send(cmd="await_count", n=n)
        for node in nodes:
            node.expect("count")
        time.sleep(2 * options["broadcast_period"])  # the join's heartbeats are out
        before, t0 = wire_bytes(nodes)
        time.sleep(args.idle)
        after, t1 = wire_bytes(nodes)
        idle_per_pair = (after - before) / (t1 - t0) / 3  # 3 node pairs, both directions

        # SIGKILL c: the time until a and b list only their own presences.
        survivors = n - shares[2]
        for node in nodes[:2]:
            node.send(cmd="await_count", n=survivors)
        killed_at = time.time()
        nodes[2].proc.send_signal(signal.SIGKILL)
        gone = max(node.expect("count")["t"] for node in nodes[:2]) - killed_at
    return {"joins": joins, "leaves": leaves, "idle_per_pair": idle_per_pair, "gone": gone}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def measure_redis(args: Any, ttl: float) -> dict[str, Any] | None:
    """Each user refreshes ``user:<i>`` with ``SET ... EX ttl`` every ttl/3, paced evenly."""
    server = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        return None
    if server is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host=HOST, port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        version = client.info("server")["redis_version"]
        n = args.presences
        refresh = ttl / 3
        px = int(ttl * 1000)
        step = 0.05  # a pipeline every 50 ms
        per_step = max(1, round(n * step / refresh))
        users = list(range(n))
        dead = set(range(0, n, 3))  # a third of the users, on the node that dies

        def refresh_for(seconds: float, skip: set[int]) -> tuple[int, float]:
            writes, start, i = 0, time.monotonic(), 0
            next_at = start
            while time.monotonic() - start < seconds:
                pipe = client.pipeline(transaction=False)
                for _ in range(per_step):
                    user = users[i % n]
                    i += 1
                    if user not in skip:
                        pipe.set(f"user:{user}", b"1", px=px)
                        writes += 1
                pipe.execute()
                next_at += step
                time.sleep(max(0.0, next_at - time.monotonic()))
            return writes, time.monotonic() - start

        refresh_for(refresh, set())  # every key written once
        stats = client.info("stats")
        in0, out0 = stats["total_net_input_bytes"], stats["total_net_output_bytes"]
        writes, elapsed = refresh_for(args.idle, set())
        stats = client.info("stats")
        wire = (
            stats["total_net_input_bytes"] - in0 + stats["total_net_output_bytes"] - out0
        ) / elapsed

        # The dead third stops refreshing; the others go on. When is the last dead key gone?
        killed_at = time.monotonic()
        dead_keys = [f"user:{u}" for u in sorted(dead)]
        staleness = None
        while staleness is None and time.monotonic() - killed_at < ttl * 3 + 10:
            refresh_for(step * 2, dead)
            pipe = client.pipeline(transaction=False)
            for key in dead_keys:
                pipe.exists(key)
            if not any(pipe.execute()):
                staleness = time.monotonic() - killed_at
        return {
            "version": version,
            "writes_per_s": writes / elapsed,
            "wire_per_s": wire,
            "staleness": staleness,
            "ttl": ttl,
            "refresh": refresh,
        }
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small, fast run (for tests)")
    parser.add_argument("--presences", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--idle", type=float, default=None, help="seconds of idle measurement")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cookie", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--options", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_node(args.serve, args.cookie, args.seed, json.loads(args.options))
        return
    if args.quick:
        options = {
            "broadcast_period": 0.2,
            "max_silent_periods": 2,
            "down_period": 1.5,
            "permdown_period": 30.0,
        }
        args.presences = args.presences or 300
        args.rounds = args.rounds or 1
        args.idle = args.idle or 2.0
    else:
        options = {"broadcast_period": 1.5, "down_period": 30.0, "permdown_period": 1200.0}
        args.presences = args.presences or 10_000
        args.rounds = args.rounds or 3
        # Two idle heartbeats per node at least (every 16.5 s with these timings).
        args.idle = args.idle or 40.0

    presence = measure_presence(args, options)
    redis_ = measure_redis(args, options["down_period"])

    median = statistics.median
    print(
        f"python {platform.python_version()}, trio {trio.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}" + (f", redis-server {redis_['version']}" if redis_ else "")
    )
    print(
        f"{args.presences:,} presences on 3 nodes (OS processes, loopback TCP); "
        f"broadcast_period {options['broadcast_period']} s, down_period "
        f"{options['down_period']} s; median of {args.rounds} rounds"
    )
    joins, leaves = median(presence["joins"]), median(presence["leaves"])
    print(f"  every node lists all {args.presences:,} after       {joins:8.2f} s")
    print(f"  every node lists none after their exit  {leaves:8.2f} s")
    idle = presence["idle_per_pair"]
    print(f"  idle wire, per node pair                {idle:8.0f} B/s  (target <= 1024 B/s)")
    gone = presence["gone"]
    print(f"  SIGKILL -> its presences gone           {gone:8.2f} s  (down_period)")
    if redis_ is None:
        print("  Redis baseline skipped: redis-server or redis-py is not installed")
        return
    print(
        f"Redis, TTL keys: {args.presences:,} users, SET EX {redis_['ttl']:g} s every "
        f"{redis_['refresh']:g} s"
    )
    print(f"  writes per second                       {redis_['writes_per_s']:8.0f}")
    print(f"  wire, client <-> redis-server           {redis_['wire_per_s']:8.0f} B/s")
    stale = redis_["staleness"]
    print(f"  worst-case staleness after a crash      {stale:8.2f} s")
    print("ratios")
    print(f"  idle wire: presence (3 pairs) / Redis     {3 * idle / redis_['wire_per_s']:8.3f}x")
    print(f"  staleness: presence / Redis               {gone / stale:8.2f}x")
    print(f"  idle wire per pair / 1 KB/s target        {idle / 1024:8.2f}x")


if __name__ == "__main__":
    main()
