"""The apps' Redis connection layer against a real redis-server (the ``redis_server`` fixture).

Real sockets, so real time: every wait is on an event (health up, subscribed,
a message) bounded by a short ``fail_after``; the reconnection delays are
made small through the options.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import coredis
import pytest
import sniffio
import trio
import trio.testing
from beamlet.actors import open_node, receive, self_pid, send, spawn
from beamlet.apps._redis import (
    RedisCommandError,
    RedisConnection,
    RedisMessage,
    RedisNotInstalledError,
    RedisOptions,
    RedisUnavailableError,
    open_redis,
)
from redis_server import RedisServer

#: Bound on any one wait for an event that a real server makes happen.
WAIT = 10.0


def fast(server: RedisServer, **extra: object) -> dict[str, object]:
    """Options with short reconnection delays, for tests."""
    return {
        "url": server.url,
        "reconnect_initial": 0.01,
        "reconnect_max": 0.05,
        "connect_timeout": 1.0,
        "command_timeout": 1.0,
        **extra,
    }


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "beamlet.apps.redis" and r.levelno == level
    ]


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll a condition that no event announces (a counter in Redis itself)."""
    with trio.fail_after(WAIT):
        while not predicate():  # noqa: ASYNC110 (a state in another process: nothing to await)
            await trio.sleep(0.005)


# -- commands --------------------------------------------------------------------------------


async def test_get_set_ttl_delete(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url, name="test") as redis:
        assert redis.up and redis.health.state == "up"
        assert await redis.get("missing") is None
        await redis.set("k", b"v")
        assert await redis.get(b"k") == b"v"
        assert await redis.get_with_ttl("k") == (b"v", None)
        await redis.set("t", b"x", ttl=30.0)
        value, ttl = await redis.get_with_ttl("t")  # type: ignore[misc]
        assert value == b"x" and ttl is not None and 29.0 < ttl <= 30.0
        assert await redis.get_with_ttl("missing") is None
        assert await redis.delete("k", "t", "missing") == 2
        assert await redis.get("k") is None
        assert await redis.delete() == 0


async def test_a_short_ttl_expires_in_redis(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        await redis.set("soon", b"x", ttl=0.001)  # 1 ms, the smallest Redis keeps
        with trio.fail_after(WAIT):
            while await redis.get("soon") is not None:  # noqa: ASYNC110 (Redis's clock)
                await trio.sleep(0.002)


async def test_pipelined_many(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        await redis.set_many({"a": b"1", "b": b"2"}, ttl=60)
        await redis.set_many([("c", b"3")])
        await redis.set_many({})
        assert await redis.get_many(["a", "b", "c", "nope"]) == [b"1", b"2", b"3", None]
        assert await redis.get_many([]) == []
        assert 59 < (await redis.get_with_ttl("a"))[1] <= 60  # type: ignore[index,operator]


async def test_delete_matching_clears_a_namespace_only(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        await redis.set_many({f"cache:users:{i}": b"x" for i in range(1200)})
        await redis.set("cache:other:1", b"y")
        assert await redis.delete_matching("cache:users:*", batch=100) == 1200
        assert await redis.get_many(["cache:users:7", "cache:other:1"]) == [None, b"y"]


async def test_publish_and_subscribe(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis, redis.subscribe("ch1", b"ch2") as sub:
        assert sub.channels == (b"ch1", b"ch2")
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        assert await redis.publish("ch1", b"hello") == 1
        assert await redis.publish_many([("ch2", b"a"), ("ch1", b"b"), ("zz", b"c")]) == [1, 1, 0]
        assert await redis.publish_many([]) == []
        got = []
        with trio.fail_after(WAIT):
            async for message in sub:
                got.append(message)
                if len(got) == 3:
                    break
        assert got == [
            RedisMessage(b"ch1", b"hello"),
            RedisMessage(b"ch2", b"a"),
            RedisMessage(b"ch1", b"b"),
        ]
        with pytest.raises(trio.WouldBlock):
            sub.receive_nowait()


async def test_bad_arguments_fail_before_anything_is_sent(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        with pytest.raises(TypeError, match="must be bytes"):
            await redis.set("k", "a str")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key must be a str or bytes"):
            await redis.get(12)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ttl must be"):
            await redis.set("k", b"v", ttl=-1)
        with pytest.raises(ValueError, match="ttl must be"):
            await redis.set("k", b"v", ttl=0)
        with pytest.raises(TypeError, match="channel must be"):
            await redis.publish(None, b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="at least one channel"):
            async with redis.subscribe():
                pass
        assert await redis.get("k") is None
        assert redis.up


async def test_a_refused_command_is_a_command_error_and_keeps_it_up(
    redis_server: RedisServer,
) -> None:
    async with open_redis(redis_server.url) as redis:
        await redis.set("s", b"string")
        with pytest.raises(
            RedisCommandError, match=r"refused LPUSH: .*wrong kind of value"
        ) as info:
            await redis._call("LPUSH", lambda client: client.lpush("s", [b"x"]))
        assert info.value.address == redis_server.address and info.value.command == "LPUSH"
        assert redis.up and await redis.get("s") == b"string"


# -- health, down and back -------------------------------------------------------------------


async def test_down_at_start_then_up(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beamlet.apps.redis")
    redis_server.kill()
    async with open_redis(fast(redis_server), name="starter") as redis:
        assert not redis.up
        health = redis.health
        assert health.state == "down" and health.outages == 1 and health.last_error
        with pytest.raises(RedisUnavailableError) as info:
            await redis.get("k")
        assert info.value.address == redis_server.address and info.value.command == "GET"
        assert redis_server.address in str(info.value)
        await redis_server.restart_async()
        with trio.fail_after(WAIT):
            await redis.wait_up()
        await redis.set("k", b"v")
        assert redis.health.reconnects == 1
    downs = records(caplog, logging.WARNING)
    assert len(downs) == 1 and "is down" in downs[0] and "starter" in downs[0]
    backs = records(caplog, logging.INFO)
    assert len(backs) == 1 and "is back" in backs[0]


async def test_killed_mid_run_fails_fast_then_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beamlet.apps.redis")
    async with open_redis(fast(redis_server), name="mid-run") as redis:
        await redis.set("k", b"v")
        redis_server.kill()
        with pytest.raises(RedisUnavailableError):
            await redis.get("k")  # the dead connection is noticed here
        assert not redis.up
        # While down, commands fail at once, without touching the network.
        for _ in range(100):
            with pytest.raises(RedisUnavailableError, match="unavailable for SET"):
                await redis.set("k", b"v")
        # Let the reconnection loop fail a good many times.
        await wait_for(lambda: redis.health.failed_attempts >= 10)
        await redis_server.restart_async()
        with trio.fail_after(WAIT):
            await redis.wait_up()
        assert await redis.get("k") is None  # a new, empty server
        await redis.set("k", b"w")
        health = redis.health
        assert health.up and health.reconnects == 1 and health.outages == 1
    # One line down, one line back: none for each of the failed attempts or calls.
    assert len(records(caplog, logging.WARNING)) == 1
    assert len(records(caplog, logging.INFO)) == 1


async def test_reconnection_attempts_back_off_exponentially(
    redis_server: RedisServer, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Redis stays down, attempt n comes at least half its cap after the last one.

    The cap doubles from ``reconnect_initial`` to ``reconnect_max``. Virtual
    time: the clock jumps over the backoff's sleeps once nothing has happened
    for 50 ms of real time (an attempt at a closed port fails well before).
    """
    attempts: list[float] = []
    try_once = RedisConnection._try_once

    async def recorded(self: RedisConnection) -> bool:
        attempts.append(trio.current_time())
        return await try_once(self)

    monkeypatch.setattr(RedisConnection, "_try_once", recorded)
    redis_server.kill()
    mock_clock.autojump_threshold = 0.05
    options = fast(redis_server, reconnect_initial=0.1, reconnect_max=1.6)
    async with open_redis(options) as redis:
        down_at = trio.current_time()  # the first contact failed: the outage began
        with trio.fail_after(60):  # virtual seconds
            while len(attempts) < 8:  # noqa: ASYNC110 (attempts announce nothing)
                await trio.sleep(0.5)
        assert not redis.up and redis.health.failed_attempts >= 8
    caps = [0.1, 0.2, 0.4, 0.8, 1.6, 1.6, 1.6, 1.6]
    gaps = [t - s for s, t in zip([down_at, *attempts], attempts[:8], strict=False)]
    for n, (gap, cap) in enumerate(zip(gaps, caps, strict=True), start=1):
        assert gap >= cap / 2, f"attempt {n} came {gap:.3f} s after the last, under {cap / 2}"
    assert sum(gaps) >= sum(caps) / 2


async def test_still_down_is_logged_once_per_period(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beamlet.apps.redis")
    redis_server.kill()
    async with open_redis(fast(redis_server, log_period=0.2)) as redis:
        await wait_for(lambda: len(records(caplog, logging.WARNING)) >= 3)
        attempts = redis.health.failed_attempts
    lines = records(caplog, logging.WARNING)
    assert "is down" in lines[0] and all("still down" in line for line in lines[1:])
    assert attempts > len(lines)  # several attempts per line


async def test_several_outages_in_a_row(redis_server: RedisServer) -> None:
    async with open_redis(fast(redis_server)) as redis:
        for round_ in range(3):
            redis_server.kill()
            with pytest.raises(RedisUnavailableError):
                await redis.ping()
            await redis_server.restart_async()
            with trio.fail_after(WAIT):
                await redis.wait_up()
            await redis.set("round", str(round_).encode())
        assert redis.health.reconnects == 3 and redis.health.outages == 3


async def test_many_concurrent_callers_across_a_restart(redis_server: RedisServer) -> None:
    """Pooled connections to the dead server are not reused after it comes back."""
    async with open_redis(fast(redis_server, max_connections=8)) as redis:

        async def hammer(i: int) -> None:
            for j in range(20):
                await redis.set(f"k{i}", str(j).encode())

        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(hammer, i)
        redis_server.kill()
        with pytest.raises(RedisUnavailableError):
            await redis.get("k0")
        await redis_server.restart_async()
        with trio.fail_after(WAIT):
            await redis.wait_up()
        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(hammer, i)
        assert redis.health.outages == 1


async def test_a_hung_server_times_out_and_marks_it_down(redis_server: RedisServer) -> None:
    import os
    import signal

    assert redis_server.pid is not None
    async with open_redis(fast(redis_server, command_timeout=0.2, connect_timeout=0.2)) as redis:
        await redis.set("k", b"v")
        os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(RedisUnavailableError, match=r"timed out|TooSlow|Timeout"):
                await redis.get("k")
            assert not redis.up
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        with trio.fail_after(WAIT):
            await redis.wait_up()
        assert await redis.get("k") == b"v"


# -- subscriptions across outages ------------------------------------------------------------


async def test_subscription_resubscribes_after_restart(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beamlet.apps.redis")
    async with open_redis(fast(redis_server)) as redis, redis.subscribe("a", "b") as sub:
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        await redis.publish("a", b"before")
        with trio.fail_after(WAIT):
            assert await sub.__anext__() == RedisMessage(b"a", b"before")
        redis_server.kill()
        # The subscription notices the loss by itself (no command needed).
        await wait_for(lambda: not sub.subscribed and not redis.up)
        await redis_server.restart_async()
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        assert sub.resubscriptions == 1
        assert await redis.publish_many([("a", b"after-a"), ("b", b"after-b")]) == [1, 1]
        with trio.fail_after(WAIT):
            assert await sub.__anext__() == RedisMessage(b"a", b"after-a")
            assert await sub.__anext__() == RedisMessage(b"b", b"after-b")
    assert len(records(caplog, logging.WARNING)) == 1
    assert len(records(caplog, logging.INFO)) == 1


async def test_a_silent_server_is_noticed_by_the_keepalive(redis_server: RedisServer) -> None:
    """A server that stops answering without closing the socket: a PING after
    ``keepalive`` seconds of silence times out, and the subscription starts over."""
    import os
    import signal

    assert redis_server.pid is not None
    options = fast(redis_server, keepalive=0.2, command_timeout=0.2, connect_timeout=0.2)
    async with open_redis(options) as redis, redis.subscribe("k") as sub:
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: not sub.subscribed and not redis.up)
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        assert sub.resubscriptions == 1
        await redis.publish("k", b"again")
        with trio.fail_after(WAIT):
            assert await sub.__anext__() == RedisMessage(b"k", b"again")


async def test_a_full_buffer_drops_counts_and_logs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_redis(redis_server.url) as redis, redis.subscribe("c", max_buffer=5) as sub:
        with trio.fail_after(WAIT):
            await sub.wait_subscribed()
        await redis.publish_many([("c", str(i).encode()) for i in range(50)])
        await redis.publish("c", b"last")
        await wait_for(lambda: sub.dropped == 46)
        got = [sub.receive_nowait().data for _ in range(5)]
        assert got == [b"0", b"1", b"2", b"3", b"4"]
    warnings = records(caplog, logging.WARNING)
    assert len(warnings) == 1 and "buffer of 5 full" in warnings[0]


async def test_subscription_ends_with_the_block(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        async with redis.subscribe("x") as sub:
            with trio.fail_after(WAIT):
                await sub.wait_subscribed()
        assert not sub.subscribed
        with trio.fail_after(WAIT):
            assert [m async for m in sub] == []
        assert await redis.publish("x", b"nobody") == 0


# -- lifecycle -------------------------------------------------------------------------------


async def test_after_the_block_calls_fail_clearly(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.url) as redis:
        pass
    with pytest.raises(RedisUnavailableError, match="closed"):
        await redis.get("k")
    with pytest.raises(RedisUnavailableError, match="closed"):
        await redis.wait_up()


async def test_an_error_in_the_block_comes_out_alone(redis_server: RedisServer) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_redis(redis_server.url):
            raise KeyError("mine")


async def test_used_from_other_beamlet_processes(redis_server: RedisServer) -> None:
    """One process owns the connection; others call it directly, without message passing."""
    async with open_node() as node:

        async def owner(parent: object) -> None:
            async with open_redis(redis_server.url, name="owner") as redis:
                send(parent, ("ready", redis))  # type: ignore[arg-type]
                await receive(lambda m: m == "stop")

        async def user(parent: object, redis: RedisConnection, i: int) -> None:
            await redis.set(f"p{i}", str(i).encode())
            send(parent, ("done", await redis.get(f"p{i}")))  # type: ignore[arg-type]

        async def main() -> list[bytes]:
            me = self_pid()
            owner_pid = spawn(owner, me)
            _, redis = await receive(lambda m: m[0] == "ready", timeout=WAIT)
            for i in range(5):
                spawn(user, me, redis, i)
            values = sorted([(await receive(timeout=WAIT))[1] for _ in range(5)])
            send(owner_pid, "stop")
            return values

        assert await node.run(main) == [b"0", b"1", b"2", b"3", b"4"]


def test_runs_under_trio_run_with_this_coredis(redis_server: RedisServer) -> None:
    """coredis (through anyio) really runs on Trio: plain trio.run, no pytest-trio."""

    async def main() -> tuple[str, bytes | None]:
        async with open_redis(redis_server.url) as redis:
            await redis.set("k", b"v")
            return sniffio.current_async_library(), await redis.get("k")

    assert trio.run(main) == ("trio", b"v")
    assert tuple(int(p) for p in coredis.__version__.split(".")[:2]) >= (6, 0)


# -- options and the missing extra -----------------------------------------------------------


def test_options_coercion_and_checks() -> None:
    assert RedisOptions.coerce(None) == RedisOptions()
    assert RedisOptions.coerce("redis://h:1/2").address == "h:1"
    assert RedisOptions.coerce({"url": "unix:///tmp/r.sock"}).address == "/tmp/r.sock"
    options = RedisOptions(url="redis://u:secret@h:7/0")
    assert options.address == "h:7" and options.deadline == 3.0
    with pytest.raises(ValueError, match=r"unknown Redis option.*bogus"):
        RedisOptions.coerce({"bogus": 1})
    with pytest.raises(TypeError, match="must be a URL str"):
        RedisOptions.coerce(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must start with redis://") as info:
        RedisOptions(url="http://u:secret@h")
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="not valid"):
        RedisOptions(url="redis://h:notaport")
    with pytest.raises(ValueError, match="connect_timeout"):
        RedisOptions(connect_timeout=0)
    with pytest.raises(ValueError, match="reconnect_max must be >= reconnect_initial"):
        RedisOptions(reconnect_initial=2, reconnect_max=1)
    with pytest.raises(ValueError, match="max_connections"):
        RedisOptions(max_connections=0)


async def test_without_the_extra_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "coredis", None)  # import coredis now fails
    with pytest.raises(RedisNotInstalledError, match=r"pip install beamlet\[redis\]"):
        async with open_redis("redis://127.0.0.1:1/0"):
            pass


def test_the_first_open_does_not_block_the_node(redis_server: RedisServer) -> None:
    """Importing coredis takes a few hundred ms: it happens in a thread, so the
    watchdog of a fresh node (100 ms) has nothing to report."""
    import subprocess

    program = (
        "import sys, trio\n"
        "from beamlet.actors import open_node\n"
        "from beamlet.apps._redis import open_redis\n"
        "async def body():\n"
        "    async with open_redis(sys.argv[1]) as redis:\n"
        "        await redis.set('k', b'v')\n"
        "        assert await redis.get('k') == b'v'\n"
        "async def main():\n"
        "    async with open_node(watchdog_threshold=0.1) as node:\n"
        "        await node.run(body)\n"
        "    assert 'coredis' in sys.modules\n"
        "trio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, redis_server.url],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert "blocked the event loop" not in done.stderr, done.stderr
