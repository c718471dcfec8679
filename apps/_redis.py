"""The Redis connection layer of beamlet's apps, on coredis (private to ``beamlet.apps``).

The Redis PubSub adapter (``beamlet.apps.pubsub``) and the cache's second tier
(``beamlet.apps.cache``) talk to Redis through this module only. It needs the
``redis`` extra (``pip install beamlet[redis]``, which installs coredis; coredis
runs on Trio through anyio). Without it, ``open_redis`` raises
``RedisNotInstalledError`` saying so; importing this module does not need it,
and ``check_coredis()`` tells at once, without importing coredis. The first
``open_redis`` imports coredis in a worker thread (it takes a few hundred
milliseconds, which would stall the node's event loop).

Opening a connection::

    async with open_redis("redis://127.0.0.1:6379/0", name="cache users") as redis:
        await redis.set(b"k", b"v", ttl=30.0)
        value = await redis.get(b"k")            # b"v", or None

``open_redis(options, *, name=None)`` takes a URL (``redis://``, ``rediss://``
or ``unix://``), a mapping of ``RedisOptions`` fields, or a ``RedisOptions``.
It tries Redis once (bounded by the timeouts) and yields a ``RedisConnection``
whether Redis answered or not: a node must start and serve while Redis is
down. The connection is usable from any task or beamlet process of the node
while the ``async with`` block runs (the process that opened it owns it; when
it leaves the block, calls in other tasks fail with ``RedisUnavailableError``).

Health and reconnection. The connection is *up* or *down*. Any call that fails
to reach Redis (refused, reset, timed out) marks it down; a background task
then tries Redis (``PING``) with exponential backoff and jitter
(``reconnect_initial`` to ``reconnect_max`` seconds, see ``_backoff.Backoff``)
until it answers, and marks it up. Logs (logger ``beamlet.apps.redis``): one
WARNING when it goes down, one INFO when it comes back (with how long it was
down and how many attempts it took), and while it stays down at most one
WARNING every ``log_period`` seconds; never a line per failed attempt.
``redis.health`` is a ``RedisHealth`` snapshot for stats: ``up``, ``state``
(``"up"``, ``"down"``), ``address``, ``last_error``, ``down_since``,
``reconnects`` (times it came back), ``outages``, ``failed_attempts`` (in the
current outage). ``await redis.wait_up()`` waits until it is up.

While down, every command raises ``RedisUnavailableError`` at once, without
touching the network, so that a caller that can do without Redis (the cache
serving from memory) does so at memory speed. The error says which Redis,
what was asked and why (``.address``, ``.command``, ``.reason``).

Commands (``key`` and ``channel`` are ``str`` or ``bytes``; values are ``bytes``,
encoded by the caller with the project's codec; ``ttl`` is seconds > 0, or
None for no expiry; every command is bounded by ``connect_timeout +
command_timeout`` seconds):

- ``await get(key) -> bytes | None``
- ``await get_with_ttl(key) -> (bytes, ttl seconds or None) | None`` (one
  round trip: GET and PTTL pipelined), to fill a local tier with what is left
  of the entry's life.
- ``await get_many(keys) -> list[bytes | None]`` (MGET)
- ``await set(key, value, ttl=None)``
- ``await set_many(items, ttl=None)`` (a mapping or pairs; SETs pipelined)
- ``await delete(*keys) -> int`` (how many existed)
- ``await delete_matching(pattern) -> int`` (SCAN MATCH and UNLINK, in batches;
  for clearing a namespace such as ``"cache:users:*"``)
- ``await ping()``
- ``await publish(channel, data) -> int`` (how many subscribers got it)
- ``await publish_many([(channel, data), ...]) -> list[int]`` (pipelined, in order)

Errors: ``RedisUnavailableError`` (a ``ConnectionError``) when Redis cannot be
reached now: the command did not run or its outcome is unknown;
``RedisCommandError`` (a ``RuntimeError``) when Redis answered with an error
(a wrong type, an ACL refusal); ``TypeError`` / ``ValueError`` for bad
arguments, before anything is sent.

Subscriptions::

    async with redis.subscribe(b"beamlet:chat", b"beamlet:chat:node-a") as sub:
        async for message in sub:               # RedisMessage(channel, data)
            handle(message.channel, message.data)

A subscription holds a connection of its own. When it is lost, the connection
is marked down, and once it is up again the subscription subscribes to all
its channels again by itself; ``sub.subscribed`` says whether it is subscribed
now, ``await sub.wait_subscribed()`` waits until it is, ``sub.resubscriptions``
counts the times it subscribed again. Messages published while it was not
subscribed are not delivered (Redis pub/sub is at-most-once). Messages wait in
a buffer of ``max_buffer`` (default 10,000) between the socket and the
iterator; past it they are dropped, counted in ``sub.dropped`` and logged
(rate-limited), so a slow consumer cannot grow memory without bound.

Cancellation: every ``await`` here is a Trio checkpoint and may be cancelled;
a cancelled command may or may not have run in Redis.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

import trio
from beamlet.actors.lowlevel import check_number, raise_single, short_repr

from ._backoff import Backoff
from ._redis_health import HealthState, RateLimited, RedisHealth
from ._redis_options import (
    INSTALL_HINT,
    RedisCommandError,
    RedisNotInstalledError,
    RedisOptions,
    RedisUnavailableError,
    check_coredis,
    import_coredis,
    require_coredis,
)

__all__ = [
    "INSTALL_HINT",
    "HealthState",
    "RedisCommandError",
    "RedisConnection",
    "RedisHealth",
    "RedisMessage",
    "RedisNotInstalledError",
    "RedisOptions",
    "RedisUnavailableError",
    "Subscription",
    "check_coredis",
    "import_coredis",
    "open_redis",
    "require_coredis",
]

logger = logging.getLogger("beamlet.apps.redis")

T = TypeVar("T")


# -- classifying coredis's exceptions -----------------------------------------------------------


def _leaves(error: BaseException) -> list[BaseException]:
    """Every exception inside nested exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Kinds:
    """The exception classes that mean "Redis is unreachable" and "Redis said no"."""

    def __init__(self, coredis: ModuleType) -> None:
        import anyio

        exceptions = coredis.exceptions
        self.unreachable: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError,
            TimeoutError,
            OSError,
            trio.TooSlowError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
        )
        self.refused: type[BaseException] = exceptions.RedisError

    def classify(self, error: BaseException) -> tuple[str, BaseException] | None:
        """``("unreachable" | "refused" | "other", leaf)``, or None for a cancellation.

        A group is judged by its leaves: any cancellation makes it a
        cancellation (to be re-raised as it is), else any unreachable leaf
        makes it unreachable.
        """
        leaves = _leaves(error)
        if any(isinstance(leaf, (trio.Cancelled, KeyboardInterrupt)) for leaf in leaves):
            return None
        for leaf in leaves:
            if isinstance(leaf, self.unreachable):
                return "unreachable", leaf
        for leaf in leaves:
            if isinstance(leaf, self.refused):
                return "refused", leaf
        return "other", leaves[0]


def _key(value: object, what: str = "key") -> str | bytes:
    if isinstance(value, (str, bytes)):
        return value
    raise TypeError(f"a Redis {what} must be a str or bytes, not {short_repr(value)}")


def _value(value: object, what: str = "value") -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(
        f"a Redis {what} must be bytes (encode it with the codec first), not {short_repr(value)}"
    )


def _ttl_ms(ttl: object) -> int | None:
    """Seconds to whole milliseconds (rounded up, at least 1); None stays None."""
    if ttl is None:
        return None
    check_number(ttl, "ttl", strict=True, finite=True, unit="seconds")
    return max(1, math.ceil(ttl * 1000))  # type: ignore[operator]


# -- the connection -----------------------------------------------------------------------------


def _unlink(keys: list[Any]) -> Callable[[Any], Awaitable[int]]:
    async def operation(client: Any) -> int:
        count: int = await client.unlink(keys)
        return count

    return operation


class RedisMessage(NamedTuple):
    """A message received on a subscription."""

    channel: bytes
    data: bytes


class RedisConnection:
    """A connection (pool) to one Redis, with health tracking and reconnection.

    Made by ``open_redis``; see the module's documentation for the API.
    """

    def __init__(self, coredis: ModuleType, options: RedisOptions, name: str | None = None) -> None:
        self.options = options
        self.name = name or "redis"
        self.address = options.address
        self._coredis = coredis
        self._kinds = _Kinds(coredis)
        self._state = HealthState(options.address, log_period=options.log_period)
        self._backoff = Backoff(options.reconnect_initial, options.reconnect_max)
        self._random = random.Random()
        self._client: Any = None
        self._closed = False
        self._up_event = trio.Event()
        self._down_event = trio.Event()

    # -- health --------------------------------------------------------------------------------

    @property
    def health(self) -> RedisHealth:
        """A snapshot of the connection's health (see ``RedisHealth``)."""
        return self._state.snapshot()

    @property
    def up(self) -> bool:
        """True while Redis answers."""
        return self._state.up and not self._closed

    async def wait_up(self) -> None:
        """Wait until Redis answers (at once if it does).

        Raises:
            RedisUnavailableError: the connection was closed.

        Cancellation: cancellable.
        """
        while not self.up:
            if self._closed:
                raise self._unavailable(None, "the connection is closed")
            await self._up_event.wait()

    def _unavailable(self, command: str | None, reason: str | None = None) -> RedisUnavailableError:
        if reason is None:
            reason = (
                "the connection is closed"
                if self._closed
                else (self._state.last_error or "not connected yet")
            )
        return RedisUnavailableError(self.address, reason, command)

    def _mark_down(self, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else _describe(error)
        if self._state.fail(text, trio.current_time()):
            logger.warning(
                "Redis at %s (%s) is down: %s; reconnecting with backoff",
                self.address,
                self.name,
                text,
                extra={"beamlet_redis": self.address},
            )
        if not self._state.up and not self._down_event.is_set():
            self._up_event = trio.Event()
            self._down_event.set()

    def _mark_up(self) -> None:
        outage = self._state.recover(trio.current_time())
        if outage is not None:
            logger.info(
                "Redis at %s (%s) is back after %.1f s (%d failed attempts)",
                self.address,
                self.name,
                outage,
                self._state.failed_attempts,
                extra={"beamlet_redis": self.address},
            )
        self._down_event = trio.Event()
        self._up_event.set()

    def _attempt_failed(self, error: BaseException) -> None:
        text = _describe(error)
        self._mark_down(text)
        if self._state.attempt_failed(text, trio.current_time()):
            since = self._state.down_since
            down_for = trio.current_time() - since if since is not None else 0.0
            logger.warning(
                "Redis at %s (%s) still down after %.0f s and %d attempts: %s",
                self.address,
                self.name,
                down_for,
                self._state.failed_attempts,
                text,
                extra={"beamlet_redis": self.address},
            )

    # -- running ---------------------------------------------------------------------------------

    def _new_client(self) -> Any:
        from coredis.retry import NoRetryPolicy

        options = self.options
        extra: dict[str, Any] = {}
        if options.client_name is not None:
            extra["client_name"] = options.client_name
        return self._coredis.Redis.from_url(
            options.url,
            decode_responses=False,
            retry_policy=NoRetryPolicy(),
            connect_timeout=options.connect_timeout,
            stream_timeout=options.command_timeout,
            max_connections=options.max_connections,
            pool_timeout=options.deadline,
            **extra,
        )

    async def _run_clients(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Own the coredis client; make a new one if it ever fails as a whole.

        The client's pool runs its connections' tasks in a task group of its
        own: if one of them fails in a way coredis does not handle, the pool
        is gone, so a new client replaces it (after a backoff delay) and the
        connection stays down until the reconnection loop finds Redis again.
        """
        attempt = 0
        started = False
        while True:
            client = self._new_client()
            try:
                async with client:
                    self._client = client
                    if not started:
                        started = True
                        task_status.started()
                    await trio.sleep_forever()
            except Exception as error:
                self._client = None
                self._mark_down(error)
                logger.debug("Redis client for %s failed", self.address, exc_info=True)
                if not started:
                    started = True
                    task_status.started()
                attempt += 1
                await trio.sleep(self._backoff.delay(attempt, self._random.random()))

    async def _probe(self) -> None:
        """One PING, bounded; raises what went wrong."""
        client = self._client
        if client is None:
            raise ConnectionError("no Redis client (it is being rebuilt)")
        with trio.fail_after(self.options.deadline):
            await client.ping()

    async def _try_once(self) -> bool:
        try:
            await self._probe()
        except BaseException as error:
            kind = self._kinds.classify(error)
            if kind is None:
                raise
            self._attempt_failed(kind[1])
            return False
        self._mark_up()
        return True

    async def _reconnect(self) -> None:
        """Whenever the connection is down, try Redis with backoff until it answers."""
        while True:
            await self._down_event.wait()
            attempt = 0
            while not self._state.up:
                attempt += 1
                await trio.sleep(self._backoff.delay(attempt, self._random.random()))
                if self._state.up:
                    break
                if await self._try_once():
                    break
                if attempt % 4 == 0 and self._client is not None:
                    # A stale pool (a half-open socket) answers nothing: start afresh.
                    self._client.connection_pool.disconnect()

    async def _first_contact(self) -> None:
        try:
            await self._probe()
        except BaseException as error:
            kind = self._kinds.classify(error)
            if kind is None:
                raise
            self._mark_down(kind[1])
        else:
            self._mark_up()

    # -- commands --------------------------------------------------------------------------------

    async def _call(self, command: str, operation: Callable[[Any], Awaitable[T]]) -> T:
        client = self._client
        if client is None or not self.up:
            raise self._unavailable(command)
        try:
            with trio.fail_after(self.options.deadline):
                return await operation(client)
        except BaseException as error:
            kind = self._kinds.classify(error)
            if kind is None:
                raise
            what, leaf = kind
            if what == "unreachable":
                self._mark_down(leaf)
                raise RedisUnavailableError(self.address, _describe(leaf), command) from leaf
            if what == "refused":
                raise RedisCommandError(self.address, command, str(leaf)) from leaf
            if isinstance(error, BaseExceptionGroup):
                raise_single(error)
            raise

    async def ping(self) -> None:
        """PING Redis (a round trip)."""
        await self._call("PING", lambda client: client.ping())

    async def get(self, key: str | bytes) -> bytes | None:
        """The value of ``key``, or None if there is none."""
        key = _key(key)
        result: bytes | None = await self._call("GET", lambda client: client.get(key))
        return result

    async def get_with_ttl(self, key: str | bytes) -> tuple[bytes, float | None] | None:
        """``(value, seconds left or None for no expiry)``, or None if there is none."""
        key = _key(key)

        async def operation(client: Any) -> tuple[Any, Any]:
            async with client.pipeline(transaction=False) as pipe:
                value = pipe.get(key)
                ttl = pipe.pttl(key)
            return await value, await ttl

        value, ttl_ms = await self._call("GET", operation)
        if value is None:
            return None
        return value, (ttl_ms / 1000 if ttl_ms is not None and ttl_ms >= 0 else None)

    async def get_many(self, keys: Iterable[str | bytes]) -> list[bytes | None]:
        """The values of ``keys`` in order (None for each missing one), in one MGET."""
        keys = [_key(key) for key in keys]
        if not keys:
            return []
        result = await self._call("MGET", lambda client: client.mget(keys))
        return list(result)

    async def set(self, key: str | bytes, value: bytes, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (None: never)."""
        key, data, px = _key(key), _value(value), _ttl_ms(ttl)
        await self._call("SET", lambda client: client.set(key, data, px=px))

    async def set_many(
        self,
        items: Mapping[str | bytes, bytes] | Iterable[tuple[str | bytes, bytes]],
        ttl: float | None = None,
    ) -> None:
        """Set every ``(key, value)``, each expiring after ``ttl`` seconds; SETs pipelined."""
        pairs = items.items() if isinstance(items, Mapping) else items
        checked = [(_key(key), _value(value)) for key, value in pairs]
        px = _ttl_ms(ttl)
        if not checked:
            return

        async def operation(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                replies = [pipe.set(key, value, px=px) for key, value in checked]
            for reply in replies:
                await reply

        await self._call("SET", operation)

    async def delete(self, *keys: str | bytes) -> int:
        """Delete ``keys``; how many of them existed."""
        checked = [_key(key) for key in keys]
        if not checked:
            return 0
        count: int = await self._call("DEL", lambda client: client.delete(checked))
        return count

    async def delete_matching(self, pattern: str | bytes, *, batch: int = 500) -> int:
        """Delete every key matching the glob ``pattern`` (SCAN + UNLINK); how many.

        Not atomic: keys written meanwhile may or may not be deleted. Each
        batch is one bounded command.
        """
        pattern = _key(pattern, "pattern")
        check_number(batch, "batch", minimum=1, integer=True)
        total = 0
        cursor: int | None = None
        while cursor != 0:

            async def scan(client: Any, cursor: int | None = cursor) -> tuple[int, Any]:
                result: tuple[int, Any] = await client.scan(
                    cursor=cursor or 0, match=pattern, count=batch
                )
                return result

            cursor, keys = await self._call("SCAN", scan)
            if keys:
                total += await self._call("UNLINK", _unlink(list(keys)))
        return total

    async def publish(self, channel: str | bytes, data: bytes) -> int:
        """PUBLISH ``data`` on ``channel``; how many subscribers (of any client) got it."""
        channel, data = _key(channel, "channel"), _value(data, "message")
        count: int = await self._call("PUBLISH", lambda client: client.publish(channel, data))
        return count

    async def publish_many(self, messages: Sequence[tuple[str | bytes, bytes]]) -> list[int]:
        """PUBLISH each ``(channel, data)`` in order, pipelined; the receiver counts."""
        checked = [
            (_key(channel, "channel"), _value(data, "message")) for channel, data in messages
        ]
        if not checked:
            return []

        async def operation(client: Any) -> list[int]:
            async with client.pipeline(transaction=False) as pipe:
                replies = [pipe.publish(channel, data) for channel, data in checked]
            return [await reply for reply in replies]

        return await self._call("PUBLISH", operation)

    # -- subscriptions ---------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, *channels: str | bytes, max_buffer: int = 10_000
    ) -> AsyncIterator[Subscription]:
        """Subscribe to ``channels`` for the duration of the block; see the module's docs.

        The block starts at once, subscribed or not (``await
        sub.wait_subscribed()`` to wait); the subscription is kept up across
        reconnections until the block ends.

        Raises:
            TypeError / ValueError: no channels, a channel that is not str or
                bytes, or a bad ``max_buffer``.
        """
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        names = tuple(
            dict.fromkeys(
                c.encode() if isinstance(c, str) else c
                for c in (_key(c, "channel") for c in channels)
            )
        )
        check_number(max_buffer, "max_buffer", minimum=1, integer=True)
        sub = Subscription(names, max_buffer, self)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_subscribed, sub)
            try:
                yield sub
            finally:
                nursery.cancel_scope.cancel()
                sub._close()

    async def _keep_subscribed(self, sub: Subscription) -> None:
        failures = 0
        while True:
            await self.wait_up()
            client = self._client
            if client is None:
                await trio.sleep(self._backoff.delay(1, self._random.random()))
                continue
            try:
                await self._subscribe_once(client, sub)
            except BaseException as error:
                failures = 1 if sub.subscribed else failures + 1
                sub._set_subscribed(False)
                kind = self._kinds.classify(error)
                if kind is None:
                    raise
                what, leaf = kind
                if what == "unreachable":
                    self._mark_down(leaf)
                else:
                    sub._report_failure(leaf)
                await trio.sleep(self._backoff.delay(failures, self._random.random()))

    async def _subscribe_once(self, client: Any, sub: Subscription) -> None:
        """Subscribe on a connection of the pool and feed ``sub`` until the connection fails.

        This reads the connection's RESP3 push messages itself rather than
        through coredis's ``PubSub`` (about twice as fast: no per-message
        cancel scope, stream or parsing into dicts). A PING goes out after
        ``keepalive`` seconds of silence, so that a server that vanished
        without closing the socket is noticed. The connection is never given
        back to the pool for other commands.
        """
        deadline = self.options.deadline
        async with client.connection_pool.acquire() as connection:
            try:
                connection.send_command(b"SUBSCRIBE", *sub.channels)
                messages = connection.push_messages
                last = [trio.current_time()]
                pending = set(sub.channels)
                push = sub._push
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._keepalive, connection, last)
                    with trio.fail_after(deadline):
                        while pending:
                            reply = await messages.__anext__()
                            if reply[0] == b"subscribe":
                                pending.discard(reply[1])
                            elif reply[0] == b"message":
                                push(reply[1], reply[2])
                    sub._set_subscribed(True)
                    async for reply in messages:
                        last[0] = trio.current_time()
                        if reply[0] == b"message":
                            push(reply[1], reply[2])
                    raise ConnectionError("the subscription's connection ended")
            finally:
                connection.invalidate()

    async def _keepalive(self, connection: Any, last: list[float]) -> None:
        keepalive = self.options.keepalive
        while True:
            await trio.sleep_until(last[0] + keepalive)
            if trio.current_time() - last[0] >= keepalive:
                with trio.fail_after(self.options.deadline):
                    await connection.create_request(b"PING", decode=False)
                last[0] = trio.current_time()


class Subscription:
    """Messages of a set of channels, kept subscribed across reconnections.

    Made by ``RedisConnection.subscribe``; iterate it for ``RedisMessage``s.

    Attributes:
        channels: the channels (bytes).
        max_buffer: how many messages may wait for the iterator.
        dropped: messages dropped because the buffer was full.
        resubscriptions: how many times it subscribed again after a loss.
    """

    def __init__(self, channels: tuple[bytes, ...], max_buffer: int, owner: RedisConnection):
        self.channels = channels
        self.max_buffer = max_buffer
        self.dropped = 0
        self.resubscriptions = 0
        self._subscriptions = 0
        self._owner = owner
        self._subscribed = False
        self._subscribed_event = trio.Event()
        self._send, self._receive = trio.open_memory_channel[RedisMessage](max_buffer)
        self._drop_log = RateLimited(owner.options.log_period)
        self._failure_log = RateLimited(owner.options.log_period)

    @property
    def subscribed(self) -> bool:
        """True while Redis has this subscription."""
        return self._subscribed

    async def wait_subscribed(self) -> None:
        """Wait until subscribed (at once if it is).

        Cancellation: cancellable.
        """
        while not self._subscribed:
            await self._subscribed_event.wait()

    def _set_subscribed(self, flag: bool) -> None:
        if flag == self._subscribed:
            return
        self._subscribed = flag
        if flag:
            self._subscriptions += 1
            if self._subscriptions > 1:
                self.resubscriptions += 1
                logger.debug(
                    "subscribed again to %d channel(s) on Redis at %s",
                    len(self.channels),
                    self._owner.address,
                )
            self._subscribed_event.set()
        else:
            self._subscribed_event = trio.Event()

    def _push(self, channel: bytes, data: bytes) -> None:
        try:
            self._send.send_nowait(RedisMessage(channel, data))
        except trio.WouldBlock:
            self.dropped += 1
            held = self._drop_log.due(trio.current_time())
            if held is not None:
                logger.warning(
                    "subscription to %s on Redis at %s: buffer of %d full, "
                    "message dropped (%d dropped in all)",
                    b", ".join(self.channels).decode(errors="replace"),
                    self._owner.address,
                    self.max_buffer,
                    self.dropped,
                )
        except trio.ClosedResourceError:
            pass

    def _report_failure(self, error: BaseException) -> None:
        held = self._failure_log.due(trio.current_time())
        if held is not None:
            logger.error(
                "subscription to %s on Redis at %s failed: %s%s; retrying",
                b", ".join(self.channels).decode(errors="replace"),
                self._owner.address,
                _describe(error),
                f" ({held} more failures since the last report)" if held else "",
            )

    def _close(self) -> None:
        self._subscribed = False
        self._send.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RedisMessage:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def receive_nowait(self) -> RedisMessage:
        """The next waiting message, without waiting.

        Raises:
            trio.WouldBlock: none is waiting.
        """
        return self._receive.receive_nowait()


@asynccontextmanager
async def open_redis(
    options: RedisOptions | str | Mapping[str, Any] | None = None, *, name: str | None = None
) -> AsyncIterator[RedisConnection]:
    """Open a connection (pool) to Redis for the duration of the block.

    Tries Redis once (bounded by ``connect_timeout + command_timeout``) and
    yields whether it answered or not; reconnects in the background while the
    block runs. See the module's documentation.

    Args:
        options: a URL, a mapping of ``RedisOptions`` fields, or ``RedisOptions``.
        name: who uses it (``"pubsub chat"``, ``"cache users"``), for the logs.

    Raises:
        RedisNotInstalledError: the ``redis`` extra is not installed.
        TypeError / ValueError: bad options.

    Cancellation: cancellable; leaving the block closes every connection.
    """
    coredis = await import_coredis()
    opts = RedisOptions.coerce(options)
    connection = RedisConnection(coredis, opts, name)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(connection._run_clients)
            await connection._first_contact()
            nursery.start_soon(connection._reconnect)
            try:
                yield connection
            finally:
                connection._closed = True
                connection._up_event.set()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single(group)
        raise
