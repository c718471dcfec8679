"""Remote messaging between two OS processes on loopback, against raw baselines.

Run: ``python bench/remote.py [--quick]``. Node A (this process) and node B (a
child process running this file with ``--serve beamlet``) are started with
``beamlet.cluster.run`` on 127.0.0.1 and connect over TCP. Measured:

- *one-way*: a process on A sends N ints to a process on B, in bursts of
  ``BURST`` sends between checkpoints, retrying (after a short sleep) any
  send refused with ``DistributionBusyError``; B counts them and tells A
  when all N arrived.
- *ping-pong*: a process on A sends an int to a process on B, which sends it
  back; N round trips.
- *call*: a process on A calls a GenServer on B (``call(("bench_echo", B), i)``),
  which returns the int; N round trips. Each ``call`` monitors the server and
  waits for its ``Reply``, which node A checks comes from node B.

Baselines, measured in the same run against child processes too; the raw
Trio rounds alternate with beamlet's, so that both see the same machine:

- raw Trio TCP, length-prefixed msgpack frames (``[kind, int]``): one-way with
  ``BURST`` frames packed per ``send_all`` and the reader decoding every frame;
  request/response with one frame each way, in one task per side.
- raw Trio TCP request/response again, with a hand-off on each side: a reader
  task passes every frame to another task, which answers (no target; it is
  the shape of a connection with a process behind it, and so the floor of
  beamlet's ping-pong).
- Redis PUBLISH -> subscriber with redis-py (a ``redis-server`` child, when
  installed), a subscriber in a child process counting: PUBLISH with one round
  trip per message, as an application publishing as it goes does (the
  baseline of the target); and, for reference, ``BURST`` PUBLISHes pipelined
  per round trip.

Prints the median of several rounds of each figure, the CPU time each side
spent per message (user + system, from ``time.process_time``), and the ratios
against the targets of DESIGN.md (machines are noisy; ratios hold better).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any

import msgpack  # type: ignore[import-untyped]
import trio
import trio.lowlevel
from _child import child
from beamlet.actors import GenServer, call, receive, register, self_pid, send
from beamlet.cluster import DistributionBusyError, connect, listen_address, run as run_node

BURST = 1000
HOST = "127.0.0.1"
NODE_A = f"a@{HOST}"
NODE_B = f"b@{HOST}"
HEADER = struct.Struct(">I")
COOKIE_ENV = "BEAMLET_BENCH_COOKIE"
TIMEOUT = 120.0  # seconds: a lost message or a dead child fails the run instead of hanging

#: One round's result: (per second, CPU seconds of side A, CPU seconds of side B).
Round = tuple[float, float, float]


# -- children -------------------------------------------------------------------------------


async def _exit_on_stdin_eof(cancel: trio.CancelScope) -> None:
    await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
    cancel.cancel()


# -- beamlet --------------------------------------------------------------------------------


#: What ``Echo`` answers with its CPU time, not the request.
CPU = "cpu"


class Echo(GenServer):
    """Node B's call server: returns each request (its CPU time for ``CPU``)."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return time.process_time() if request == CPU else request


async def serve_beamlet() -> None:
    """Node B's first process: counts or echoes what node A sends, on request."""
    register("bench", self_pid())
    await Echo.start_link(name="bench_echo")
    print("READY", listen_address(), flush=True)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_exit_on_stdin_eof, scope)
            while True:
                kind, peer, n = await receive()
                send(peer, ("ready", self_pid()))
                cpu = time.process_time()
                if kind == "one_way":
                    for _ in range(n):
                        await receive()
                elif kind == "ping_pong":
                    for _ in range(n):
                        send(peer, await receive())
                send(peer, ("done", n, time.process_time() - cpu))


class Retries:
    """Counts the sends refused with ``DistributionBusyError``, per round."""

    def __init__(self) -> None:
        self.rounds: list[int] = []


async def beamlet_one_way(n: int, retries: Retries) -> Round:
    send(("bench", NODE_B), ("one_way", self_pid(), n))
    _, counter = await receive(timeout=TIMEOUT)
    busy = 0
    checkpoint = trio.lowlevel.checkpoint
    cpu = time.process_time()
    start = time.perf_counter()
    i = 0
    while i < n:
        try:
            send(counter, i)
        except DistributionBusyError:
            busy += 1
            await trio.sleep(0.0002)
            continue
        i += 1
        if i % BURST == 0:
            await checkpoint()
    _, count, cpu_b = await receive(timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    assert count == n, count
    retries.rounds.append(busy)
    return n / elapsed, time.process_time() - cpu, cpu_b


async def beamlet_ping_pong(n: int) -> Round:
    send(("bench", NODE_B), ("ping_pong", self_pid(), n))
    _, echo = await receive(timeout=TIMEOUT)
    cpu = time.process_time()
    start = time.perf_counter()
    with trio.fail_after(TIMEOUT):  # one deadline for the round, none per receive
        for i in range(n):
            send(echo, i)
            await receive()
    elapsed = time.perf_counter() - start
    cpu_a = time.process_time() - cpu
    _, _, cpu_b = await receive(timeout=TIMEOUT)
    return n / elapsed, cpu_a, cpu_b


async def beamlet_call(n: int) -> Round:
    server = ("bench_echo", NODE_B)
    cpu_b = await call(server, CPU, TIMEOUT)
    cpu = time.process_time()
    start = time.perf_counter()
    with trio.fail_after(TIMEOUT):  # one deadline for the round, none per call
        for i in range(n):
            await call(server, i, None)
    elapsed = time.perf_counter() - start
    cpu_a = time.process_time() - cpu
    cpu_b = await call(server, CPU, TIMEOUT) - cpu_b
    return n / elapsed, cpu_a, cpu_b


# -- raw Trio TCP ---------------------------------------------------------------------------


def frame(value: Any) -> bytes:
    body = msgpack.packb(value)
    return HEADER.pack(len(body)) + body


class FrameStream:
    """Length-prefixed msgpack frames over a Trio stream, decoded one by one."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.pos = 0

    def _parse(self, limit: int) -> list[Any]:
        """Decode up to ``limit`` complete frames from the buffer."""
        buf, pos, size = self.buf, self.pos, len(self.buf)
        out = []
        unpackb, unpack_from = msgpack.unpackb, HEADER.unpack_from
        while len(out) < limit and size - pos >= 4:
            (length,) = unpack_from(buf, pos)
            end = pos + 4 + length
            if end > size:
                break
            out.append(unpackb(buf[pos + 4 : end]))
            pos = end
        if pos == size:
            buf.clear()
            pos = 0
        self.pos = pos
        return out

    async def receive(self, limit: int = 1 << 30) -> list[Any]:
        """Return the next complete frames (at least one, at most ``limit``)."""
        while True:
            values = self._parse(limit)
            if values:
                return values
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buf += data


class Handoff:
    """Values passed from one task to another: ``put`` never blocks, ``get`` parks."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.lot = trio.lowlevel.ParkingLot()

    def put(self, value: Any) -> None:
        self.items.append(value)
        self.lot.unpark()

    async def get(self) -> Any:
        while not self.items:
            await self.lot.park()
        return self.items.popleft()


async def read_into(frames: FrameStream, box: Handoff, n: int) -> None:
    """Read ``n`` frames and pass each on to ``box``."""
    got = 0
    while got < n:
        for value in await frames.receive(n - got):
            box.put(value)
            got += 1


async def serve_raw_connection(stream: trio.SocketStream) -> None:
    frames = FrameStream(stream)
    (kind, n) = (await frames.receive(1))[0]
    cpu = time.process_time()
    if kind == "one_way":
        count = 0
        while count < n:
            count += len(await frames.receive(n - count))
    elif kind == "ping_pong":
        for _ in range(n):
            (value,) = await frames.receive(1)
            await stream.send_all(frame(value))
    elif kind == "ping_pong_handoff":
        box = Handoff()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_into, frames, box, n)
            for _ in range(n):
                await stream.send_all(frame(await box.get()))
    await stream.send_all(frame(["done", n, time.process_time() - cpu]))


async def serve_raw() -> None:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    print("READY", listeners[0].socket.getsockname()[1], flush=True)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_exit_on_stdin_eof, scope)
            await trio.serve_listeners(serve_raw_connection, listeners)


async def raw_one_way(port: int, n: int) -> Round:
    async with await trio.open_tcp_stream(HOST, port) as stream:
        frames = FrameStream(stream)
        await stream.send_all(frame(["one_way", n]))
        cpu = time.process_time()
        start = time.perf_counter()
        for base in range(0, n, BURST):
            batch = [frame([16, i]) for i in range(base, min(base + BURST, n))]
            await stream.send_all(b"".join(batch))
        cpu_a = time.process_time() - cpu
        ((_, count, cpu_b),) = await frames.receive(1)
        elapsed = time.perf_counter() - start
    assert count == n, count
    return n / elapsed, cpu_a, cpu_b


async def raw_ping_pong(port: int, n: int) -> Round:
    async with await trio.open_tcp_stream(HOST, port) as stream:
        frames = FrameStream(stream)
        await stream.send_all(frame(["ping_pong", n]))
        cpu = time.process_time()
        start = time.perf_counter()
        for i in range(n):
            await stream.send_all(frame([16, i]))
            await frames.receive(1)
        elapsed = time.perf_counter() - start
        cpu_a = time.process_time() - cpu
        ((_, _, cpu_b),) = await frames.receive(1)
    return n / elapsed, cpu_a, cpu_b


async def raw_ping_pong_handoff(port: int, n: int) -> Round:
    async with await trio.open_tcp_stream(HOST, port) as stream:
        frames = FrameStream(stream)
        await stream.send_all(frame(["ping_pong_handoff", n]))
        box = Handoff()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_into, frames, box, n)
            cpu = time.process_time()
            start = time.perf_counter()
            for i in range(n):
                await stream.send_all(frame([16, i]))
                await box.get()
            elapsed = time.perf_counter() - start
            cpu_a = time.process_time() - cpu
        ((_, _, cpu_b),) = await frames.receive(1)
    return n / elapsed, cpu_a, cpu_b


# -- the rounds on node A -----------------------------------------------------------------


async def rounds_on_a(
    beamlet_address: str | None, raw_port: int | None, args: Any
) -> dict[str, list[Round]]:
    """Run every round, alternating the kinds, in node A's first process."""
    n_one_way, n_ping = args.one_way, args.ping_pong
    retries = Retries()
    kinds: dict[str, tuple[Callable[[int], Awaitable[Round]], int]] = {}
    if raw_port is not None:
        kinds["raw_one_way"] = (lambda n: raw_one_way(raw_port, n), n_one_way)
    if beamlet_address is not None:
        if not await connect(beamlet_address):
            raise RuntimeError(f"could not connect to node B at {beamlet_address}")
        kinds["one_way"] = (lambda n: beamlet_one_way(n, retries), n_one_way)
    if raw_port is not None:
        kinds["raw_ping_pong"] = (lambda n: raw_ping_pong(raw_port, n), n_ping)
        kinds["raw_ping_pong_handoff"] = (lambda n: raw_ping_pong_handoff(raw_port, n), n_ping)
    if beamlet_address is not None:
        kinds["ping_pong"] = (beamlet_ping_pong, n_ping)
        kinds["call"] = (beamlet_call, n_ping)
    for fn, n in kinds.values():  # warm up both sides
        await fn(max(n // 4, 1))
    retries.rounds.clear()
    results: dict[str, list[Round]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, (fn, n) in kinds.items():
            rate, cpu_a, cpu_b = await fn(n)
            results[kind].append((rate, cpu_a / n, cpu_b / n))
    args.retries = retries.rounds
    return results


def measure_trio(args: Any, beamlet: bool, raw: bool) -> dict[str, list[Round]]:
    cookie = secrets.token_hex(16)
    with ExitStack() as children:
        address = port = None
        if beamlet:
            _, address = children.enter_context(
                child(__file__, "--serve", "beamlet", env={COOKIE_ENV: cookie})
            )
        if raw:
            _, port = children.enter_context(child(__file__, "--serve", "raw"))
        result: dict[str, list[Round]] = run_node(
            rounds_on_a,
            address,
            None if port is None else int(port),
            args,
            name=NODE_A,
            cookie=cookie,
        )
    return result


# -- Redis ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_redis_subscriber(port: int) -> None:
    """Count the messages published on ``bench``; publish the count on ``bench-done``."""
    import redis

    client = redis.Redis(host=HOST, port=port)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench")
    print("READY", flush=True)
    expected: int | None = None
    count = 0
    for message in pubsub.listen():
        value = msgpack.unpackb(message["data"])
        if expected is None:
            if value is None:  # stop
                return
            expected, count = value, 0
            continue
        count += 1
        if count == expected:
            client.publish("bench-done", count)
            expected = None


def redis_one_way(client: Any, done: Any, n: int, pipelined: bool) -> float:
    client.publish("bench", msgpack.packb(n))
    start = time.perf_counter()
    if pipelined:
        for base in range(0, n, BURST):
            pipe = client.pipeline(transaction=False)
            for i in range(base, min(base + BURST, n)):
                pipe.publish("bench", msgpack.packb(i))
            pipe.execute()
    else:
        publish = client.publish
        for i in range(n):
            publish("bench", msgpack.packb(i))
    deadline = time.monotonic() + TIMEOUT
    message = None
    while message is None and time.monotonic() < deadline:
        message = done.get_message(timeout=1.0)  # None also for the subscription's own reply
    elapsed = time.perf_counter() - start
    if message is None or int(message["data"]) != n:
        raise RuntimeError(f"the subscriber did not count {n} messages: {message!r}")
    return n / elapsed


def measure_redis(rounds: int, n_one_way: int) -> dict[str, Any] | None:
    server = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        return None
    if server is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            *("--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"),
            *("--client-output-buffer-limit", "pubsub 0 0 0"),  # never drop a slow subscriber
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host=HOST, port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        version = client.info("server")["redis_version"]
        done = client.pubsub(ignore_subscribe_messages=True)
        done.subscribe("bench-done")
        with child(__file__, "--serve", "redis-sub", "--redis-port", str(port)):
            while client.pubsub_numsub("bench")[0][1] < 1:
                time.sleep(0.01)
            redis_one_way(client, done, n_one_way // 4, pipelined=True)
            pipelined, unpipelined = [], []
            for _ in range(rounds):
                pipelined.append(redis_one_way(client, done, n_one_way, True))
                unpipelined.append(redis_one_way(client, done, n_one_way // 10, False))
            client.publish("bench", msgpack.packb(None))
        done.close()
        client.close()
    finally:
        proc.terminate()
        proc.wait()
    return {"version": version, "pipelined": pipelined, "unpipelined": unpipelined}


# -- driver ---------------------------------------------------------------------------------

NAMES = {
    "one_way": "beamlet one-way (msgs/s)",
    "ping_pong": "beamlet ping-pong (round trips/s)",
    "call": "beamlet call to a GenServer on B (round trips/s)",
    "raw_one_way": "raw Trio TCP one-way, batched frames (msgs/s)",
    "raw_ping_pong": "raw Trio TCP request/response (round trips/s)",
    "raw_ping_pong_handoff": "  the same with a task hand-off per side (round trips/s)",
}


def report(trio_results: dict[str, list[Round]], redis_: dict[str, Any] | None, args: Any) -> None:
    median = statistics.median
    print(
        f"python {platform.python_version()}, trio {trio.__version__}, msgpack "
        f"{'.'.join(map(str, msgpack.version))}, {os.cpu_count()} CPUs, {platform.machine()}"
        + (f", redis-server {redis_['version']}" if redis_ else "")
    )
    print(
        f"median of {args.rounds} rounds; one-way {args.one_way:,} msgs per round, "
        f"ping-pong and call {args.ping_pong:,} round trips per round"
    )
    print(f"  {'figure':58} {'per second':>11}   CPU us/msg on A, B")
    rate: dict[str, float] = {}
    for kind, name in NAMES.items():
        if kind in trio_results:
            results = trio_results[kind]
            rate[kind] = median(r[0] for r in results)
            cpu_a = median(r[1] for r in results) * 1e6
            cpu_b = median(r[2] for r in results) * 1e6
            print(f"  {name:58} {rate[kind]:11,.0f}   {cpu_a:6.1f}, {cpu_b:6.1f}")
    if redis_ is not None:
        rate["redis"] = median(redis_["pipelined"])
        rate["redis_unpipelined"] = median(redis_["unpipelined"])
        print(f"  {'Redis PUBLISH -> subscriber, pipelined (msgs/s)':58} {rate['redis']:11,.0f}")
        name = "Redis PUBLISH -> subscriber, not pipelined (msgs/s)"
        print(f"  {name:58} {rate['redis_unpipelined']:11,.0f}")
    elif args.redis:
        print("  Redis baseline skipped: redis-server or redis-py is not installed")
    if "one_way" in trio_results:
        print(f"  sends refused as busy (then retried), per beamlet one-way round: {args.retries}")
    if "ping_pong" in rate and "raw_ping_pong" in rate:
        rtts = ", ".join(
            f"{label} {1e6 / rate[kind]:,.0f} us"
            for label, kind in (
                ("beamlet", "ping_pong"),
                ("raw", "raw_ping_pong"),
                ("raw with hand-offs", "raw_ping_pong_handoff"),
            )
        )
        print(f"  round trip: {rtts}")
    if "call" in rate:
        print(f"  call round trip: {1e6 / rate['call']:,.0f} us")
    # The Redis target is against PUBLISH with one round trip per message: the
    # baseline DESIGN.md's own figures describe (a redis-py round trip of about
    # 130 us, so 30x is Erlang distribution's ~265k msgs/s). Pipelined PUBLISH
    # is shown too, without a target: 30x of it would be faster than raw
    # batched Trio TCP on the same machine.
    checks = [
        ("one_way", "raw_one_way", "remote one-way / raw batched msgpack over Trio TCP", 0.2),
        ("one_way", "redis_unpipelined", "remote one-way / Redis PUBLISH->subscriber", 30.0),
        ("one_way", "redis", "  ... / Redis PUBLISH->subscriber, pipelined", None),
        ("ping_pong", "raw_ping_pong", "remote ping-pong / raw Trio TCP request/response", 0.8),
        ("ping_pong", "raw_ping_pong_handoff", "  ... / raw request/response with hand-offs", None),
        ("call", "ping_pong", "remote call / remote ping-pong", None),
        ("call", "raw_ping_pong", "remote call / raw Trio TCP request/response", None),
    ]
    for ours, theirs, name, goal in checks:
        if ours in rate and theirs in rate:
            if theirs in trio_results:
                # Measured in the same rounds: the median of the per-round
                # ratios, which keeps slow drift of the machine out.
                ratio = median(
                    a[0] / b[0]
                    for a, b in zip(trio_results[ours], trio_results[theirs], strict=True)
                )
            else:
                ratio = rate[ours] / rate[theirs]
            verdict = (
                "" if goal is None else f"  target >= {goal}x {'ok' if ratio >= goal else 'MISSED'}"
            )
            print(f"  {name:58} {ratio:7.2f}x{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, fewer rounds (smoke run)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure")
    parser.add_argument("--one-way", type=int, default=None, help="messages per one-way round")
    parser.add_argument("--ping-pong", type=int, default=None, help="round trips per round")
    parser.add_argument(
        "--only", choices=["beamlet", "raw", "redis"], action="append", help="run only these"
    )
    parser.add_argument("--serve", choices=["beamlet", "raw", "redis-sub"], help=argparse.SUPPRESS)
    parser.add_argument("--redis-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "beamlet":
        run_node(serve_beamlet, name=NODE_B, cookie=os.environ[COOKIE_ENV])
        return
    if args.serve == "raw":
        trio.run(serve_raw)
        return
    if args.serve == "redis-sub":
        serve_redis_subscriber(args.redis_port)
        return
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.one_way = args.one_way or (20_000 if args.quick else 200_000)
    args.ping_pong = args.ping_pong or (2_000 if args.quick else 10_000)
    only = set(args.only or ["beamlet", "raw", "redis"])
    args.redis = "redis" in only
    trio_results: dict[str, list[Round]] = {}
    if "beamlet" in only or "raw" in only:
        trio_results = measure_trio(args, "beamlet" in only, "raw" in only)
    redis_ = measure_redis(args.rounds, args.one_way) if args.redis else None
    report(trio_results, redis_, args)


if __name__ == "__main__":
    main()
