"""The Redis adapter: other nodes are reached through Redis PUBLISH/SUBSCRIBE.

For clusters whose nodes cannot connect to each other (no beamlet
distribution between them): every node connects to one Redis instead.
Phoenix.PubSub.Redis in beamlet's terms; it replaces only the node-to-node
hop: subscriptions, local dispatch and their guarantees are the PubSub's own.

On each node the adapter runs one process (registered as the PubSub's
``adapter_name``) that owns a Redis connection (``beamlet.apps._redis``),
subscribes to two channels and publishes what this node's publishers queue:

- ``"{prefix}:{pubsub}"``: every broadcast, received by every node; a node
  drops its own (the envelope carries the origin's ``node_name``), so local
  subscribers get a broadcast once, from the publisher itself;
- ``"{prefix}:{pubsub}:node:{node_name}"``: the ``direct_broadcast``\\s to
  this node.

A Redis message is an *envelope* ``encode((VERSION, kind, origin,
compressed, payload))``: ``kind`` ``"b"`` (broadcast) or ``"d"`` (direct),
``origin`` the sender's ``node_name``, and ``payload`` ``encode([body, ...])``
(zlib-compressed if ``compressed``), each ``body`` one broadcast,
``encode((topic, message, dispatcher, from_pid))``. beamlet's codec (msgpack,
no pickle) throughout, so a node drops its own broadcasts after decoding only
the small envelope. The publishing task puts consecutive broadcasts of one
channel into one envelope (as many as are waiting, up to ``MAX_BATCH``):
under load, Redis and every receiver handle one message for hundreds.
``compression_level`` 1-9 compresses payloads with zlib (0, the default,
does not).

Sending never blocks: ``broadcast`` encodes the message in the caller (an
unencodable one raises ``TypeError`` there, nothing sent) and queues it on the
shard chosen by the publisher's pid (``pool_size`` shards, each a queue of
``max_queue`` messages and a task that publishes them in order, pipelined, in
envelopes), so per-publisher order holds. What cannot go out is counted in
``stats(pubsub)["redis_send_drops"]`` and logged (at most one line per
``log_period``), never lost silently: a broadcast while Redis is down (the
connection knows it is down, so this costs nothing), while the adapter process
is restarting, when the shard's queue is full, or in a batch whose PUBLISH
failed. It does not raise: at-most-once, as the cluster adapter (whose node
may be partitioned away just as silently, except for its count).

What arrives is checked: an envelope that does not decode or has the wrong
shape is dropped, counted in ``stats(pubsub)["bad_input"]`` and reported
(rate-limited); the process keeps serving.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

import trio
import trio.lowlevel
from beamlet.actors import Pid, receive, spawn_link
from beamlet.actors.lowlevel import (
    BadInputLog,
    check_number,
    current_node,
    current_process_or_none,
    short_repr,
)
from beamlet.cluster import Codec, DecodeError
from beamlet.supervisors import ChildSpec

from .._redis import (
    RedisCommandError,
    RedisConnection,
    RedisMessage,
    RedisOptions,
    RedisUnavailableError,
    Subscription,
    check_coredis,
    open_redis,
)
from .._redis_health import RateLimited
from ._adapter import RUNTIME_SIGNALS, Adapter, AdapterConfig
from ._dispatch import shard_for
from ._pubsub import local_broadcast_from

__all__ = ["RedisAdapter"]

logger = logging.getLogger("beamlet.apps.pubsub")

#: The envelope's format version.
VERSION = 1
#: Kinds of envelope: a broadcast to every other node, a direct one to one node.
BROADCAST, DIRECT = "b", "d"
#: Bodies over this many bytes are decoded in steps, yielding in between.
STEP_DECODE_ABOVE = 64 * 1024
#: The most broadcasts one Redis message (envelope) carries.
MAX_BATCH = 512
#: Bytes an envelope may take beyond the bodies it carries (headers, list framing).
ENVELOPE_OVERHEAD = 16 * 1024
#: The name a node has before it is distributed: not unique, so not a Redis node_name.
LOCAL_NODE_NAME = "nonode@nohost"


def _check_node_name(value: Any) -> None:
    if value is not None and (type(value) is not str or not value):
        raise TypeError(f"PubSub: node_name must be a non-empty str or None, not {value!r}")


class _Live:
    """What the adapter process has running, for the publishers on this node."""

    __slots__ = ("channel", "node_channel_prefix", "queues", "redis")

    def __init__(
        self,
        redis: RedisConnection,
        queues: list[trio.MemorySendChannel[tuple[bytes, str, bytes]]],
        channel: bytes,
        node_channel_prefix: str,
    ) -> None:
        self.redis = redis
        self.queues = queues
        self.channel = channel
        self.node_channel_prefix = node_channel_prefix


class RedisAdapter(Adapter):
    """Other nodes are reached through Redis (``adapter="redis"``).

    Options (keyword arguments of ``PubSub.start_link``/``child_spec``):

    Args:
        config: given by the PubSub.
        redis: how to reach Redis: a URL (``"redis://host:6379/0"``), a
            mapping of ``RedisOptions`` fields (``url``, ``connect_timeout``,
            ``command_timeout``, ``reconnect_initial``, ``reconnect_max``,
            ...) or ``RedisOptions``. Default ``redis://127.0.0.1:6379/0``.
        node_name: this node's identity on Redis (``node_name(pubsub)``, what
            ``direct_broadcast`` takes); unique across the nodes sharing the
            Redis. Default: the beamlet node's name, which must then not be
            ``"nonode@nohost"`` (a node that is not distributed: give one).
        channel_prefix: the first part of the channel names (default
            ``"beamlet"``), to share one Redis between deployments.
        compression_level: 0 (no compression, the default) to 9: zlib on
            message bodies, for large messages on a slow link.
        max_queue: messages queued per shard for publishing (default
            10,000); past it, broadcasts are dropped and counted.
        max_buffer: received messages waiting for the adapter process
            (default 10,000); past it, dropped and counted.
        max_message_size: the largest encoded message, in bytes (default
            the codec's 8 MiB); a larger one raises ``ValueError`` in the
            publisher, and a received one is refused.
        log_period: seconds between two log lines about drops.

    Raises:
        RedisNotInstalledError: the ``redis`` extra is not installed.
        TypeError / ValueError: a bad option.
    """

    def __init__(
        self,
        config: AdapterConfig,
        *,
        redis: RedisOptions | str | Mapping[str, Any] | None = None,
        node_name: str | None = None,
        channel_prefix: str = "beamlet",
        compression_level: int = 0,
        max_queue: int = 10_000,
        max_buffer: int = 10_000,
        max_message_size: int = 8 * 1024 * 1024,
        log_period: float = 10.0,
    ) -> None:
        check_coredis("the Redis adapter of beamlet.apps.pubsub")
        self.config = config
        self.redis_options = RedisOptions.coerce(redis)
        _check_node_name(node_name)
        if type(channel_prefix) is not str or not channel_prefix:
            raise TypeError(
                f"PubSub: channel_prefix must be a non-empty str, not {channel_prefix!r}"
            )
        check_number(compression_level, "PubSub: compression_level", maximum=9, integer=True)
        check_number(max_queue, "max_queue", minimum=1, integer=True)
        check_number(max_buffer, "max_buffer", minimum=1, integer=True)
        check_number(max_message_size, "max_message_size", minimum=64, integer=True)
        check_number(log_period, "log_period", strict=True, finite=True, unit="seconds")
        self._node_name = node_name
        self.channel_prefix = channel_prefix
        self.compression_level = compression_level
        self.max_queue = max_queue
        self.max_buffer = max_buffer
        self.max_message_size = max_message_size
        #: Encodes each broadcast (its size limit is max_message_size) ...
        self.body_codec = Codec(max_size=max_message_size)
        #: ... and the envelopes, which hold bodies worth up to max_message_size in all.
        self.codec = Codec(max_size=max_message_size + ENVELOPE_OVERHEAD)
        self.channel = f"{channel_prefix}:{config.pubsub}"
        self._channel_bytes = self.channel.encode()
        self._live: _Live | None = None
        self._subscription: Subscription | None = None
        self.send_drops = 0
        self.bad_input = 0
        self._drop_log = RateLimited(log_period)
        self._bad_log: BadInputLog | None = None
        self._log_period = log_period

    # -- identity and stats ------------------------------------------------------------

    def node_name(self) -> str:
        if self._node_name is not None:
            return self._node_name
        return current_node().name

    def node_channel(self, node: str) -> str:
        """The channel of ``node``'s direct broadcasts."""
        return f"{self.channel}:node:{node}"

    def stats(self) -> dict[str, int]:
        live, sub = self._live, self._subscription
        health = live.redis.health if live is not None else None
        return {
            "redis_up": int(health is not None and health.up),
            "redis_reconnects": health.reconnects if health is not None else 0,
            "redis_resubscriptions": sub.resubscriptions if sub is not None else 0,
            "redis_send_drops": self.send_drops,
            "redis_receive_drops": sub.dropped if sub is not None else 0,
            "bad_input": self.bad_input,
        }

    # -- sending (in the publisher) ----------------------------------------------------

    def _body(self, topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> bytes:
        """The encoded broadcast; raises what the codec raises, before anything is queued."""
        return self.body_codec.encode((topic, message, dispatcher, from_pid))

    def _queue(self, channel: bytes, kind: str, body: bytes) -> None:
        live = self._live
        if live is None:
            self._dropped(1, "the adapter process is not running")
            return
        if not live.redis.up:
            reason = live.redis.health.last_error or "not connected"
            self._dropped(1, f"Redis at {live.redis.address} is unavailable ({reason})")
            return
        shard = shard_for(_caller_pid(), len(live.queues))
        try:
            live.queues[shard].send_nowait((channel, kind, body))
        except trio.WouldBlock:
            self._dropped(1, f"the queue of shard {shard} is full ({self.max_queue} messages)")
        except trio.ClosedResourceError:
            self._dropped(1, "the adapter process is stopping")

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> None:
        self._queue(
            self._channel_bytes, BROADCAST, self._body(topic, message, dispatcher, from_pid)
        )

    def direct_broadcast(
        self, node: str, topic: str, message: Any, dispatcher: str, from_pid: Pid | None
    ) -> None:
        body = self._body(topic, message, dispatcher, from_pid)
        self._queue(self.node_channel(node).encode(), DIRECT, body)

    def envelope(self, kind: str, bodies: list[bytes]) -> bytes:
        """One Redis message carrying ``bodies`` (encoded broadcasts) from this node."""
        payload = self.codec.encode(bodies)
        compressed = self.compression_level > 0
        if compressed:
            payload = zlib.compress(payload, self.compression_level)
        return self.codec.encode((VERSION, kind, self.node_name(), compressed, payload))

    def _dropped(self, count: int, why: str) -> None:
        self.send_drops += count
        held = self._drop_log.due(trio.current_time())
        if held is not None:
            logger.warning(
                "PubSub %s: %d broadcast(s) not published to Redis: %s (%d not published in all)",
                self.config.pubsub,
                count + held,
                why,
                self.send_drops,
            )

    # -- the adapter process -----------------------------------------------------------

    def child_spec(self) -> ChildSpec:
        return ChildSpec(id="redis", start=self._start_link, shutdown=5.0)

    async def _start_link(self) -> Pid:
        """Start the adapter process; return once it has tried Redis (and subscribed if up)."""
        me = self.node_name()
        if me == LOCAL_NODE_NAME:
            raise ValueError(
                f"PubSub {self.config.pubsub!r}: the Redis adapter needs a node_name unique "
                f"across the nodes, and this node is not distributed (its name is "
                f"{LOCAL_NODE_NAME!r}): pass node_name=... (or start the distribution first)"
            )
        ready = trio.Event()
        pid = spawn_link(self._run, me, ready, name=self.config.adapter_name)
        with trio.move_on_after(self.redis_options.deadline + 1.0):
            await ready.wait()
        return pid

    async def _run(self, me: str, ready: trio.Event) -> None:
        self._bad_log = BadInputLog(self.config.adapter_name, logger, period=self._log_period)
        channel = self.channel.encode()
        node_channel = self.node_channel(me).encode()
        async with (
            open_redis(self.redis_options, name=f"pubsub {self.config.pubsub}") as redis,
            redis.subscribe(channel, node_channel, max_buffer=self.max_buffer) as sub,
            trio.open_nursery() as nursery,
        ):
            self._subscription = sub
            queues = []
            for _ in range(self.config.pool_size):
                send, receive_ = trio.open_memory_channel[tuple[bytes, str, bytes]](self.max_queue)
                queues.append(send)
                nursery.start_soon(self._publish_loop, redis, receive_)
            nursery.start_soon(self._refuse_mail)
            self._live = _Live(redis, queues, channel, self.node_channel(""))
            try:
                if redis.up:
                    with trio.move_on_after(self.redis_options.deadline):
                        await sub.wait_subscribed()
                ready.set()
                async for message in sub:
                    await self._arrived(me, node_channel, message)
                    # What else is waiting, without a checkpoint each (bounded by max_buffer).
                    while True:
                        try:
                            message = sub.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        await self._arrived(me, node_channel, message)
            finally:
                self._live = None
                for queue in queues:
                    queue.close()
                nursery.cancel_scope.cancel()

    async def _publish_loop(
        self, redis: RedisConnection, queue: trio.MemoryReceiveChannel[tuple[bytes, str, bytes]]
    ) -> None:
        """Publish one shard's queue in order, as many at a time as are waiting.

        Consecutive broadcasts to the same channel travel in one envelope (up
        to ``MAX_BATCH`` of them and ``max_message_size`` bytes of bodies), so
        that Redis and every receiver handle one message for many; the
        envelopes go out pipelined, in the order of their broadcasts.
        """
        limit = self.max_message_size
        async for first in queue:
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(queue.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            messages: list[tuple[bytes, bytes]] = []
            counts: list[int] = []
            channel, kind, bodies, size = batch[0][0], batch[0][1], [batch[0][2]], len(batch[0][2])
            for next_channel, next_kind, body in batch[1:]:
                if next_channel == channel and size + len(body) <= limit:
                    bodies.append(body)
                    size += len(body)
                    continue
                messages.append((channel, self.envelope(kind, bodies)))
                counts.append(len(bodies))
                channel, kind, bodies, size = next_channel, next_kind, [body], len(body)
            messages.append((channel, self.envelope(kind, bodies)))
            counts.append(len(bodies))
            try:
                if len(messages) == 1:  # a lone envelope: no pipeline to set up
                    await redis.publish(*messages[0])
                else:
                    await redis.publish_many(messages)
            except RedisUnavailableError as error:
                self._dropped(sum(counts), f"{error} (their outcome is unknown)")
            except RedisCommandError as error:
                self._dropped(sum(counts), str(error))

    async def _refuse_mail(self) -> None:
        """Nothing is sent to this process: report (rate-limited) what is."""
        while True:
            msg = await receive()
            self._refuse("message", msg, "unexpected")

    def _refuse(self, kind: str, value: Any, why: str) -> None:
        self.bad_input += 1
        if self._bad_log is not None:
            self._bad_log.report(kind, value, why)

    async def _decode(self, codec: Codec, data: bytes) -> Any:
        """``codec.decode(data)``; a large input in steps, letting others run in between."""
        if len(data) <= STEP_DECODE_ABOVE:
            return codec.decode(data)
        decoding = codec.decode_steps(data)
        while not decoding.step():
            await trio.lowlevel.checkpoint()
        return decoding.value

    async def _arrived(self, me: str, node_channel: bytes, message: RedisMessage) -> None:
        """Check an envelope from Redis and hand its broadcasts to local dispatch."""
        data = message.data
        try:
            envelope = await self._decode(self.codec, data)
        except DecodeError as exc:
            self._refuse(f"envelope ({exc})", data, "undecodable")
            return
        if (
            type(envelope) is not tuple
            or len(envelope) != 5
            or envelope[0] != VERSION
            or envelope[1] not in (BROADCAST, DIRECT)
            or type(envelope[2]) is not str
            or type(envelope[3]) is not bool
            or type(envelope[4]) is not bytes
        ):
            self._refuse("envelope", envelope, "malformed")
            return
        _, kind, origin, compressed, payload = envelope
        if kind == BROADCAST and origin == me:
            return  # our own broadcasts: local subscribers had them from the publisher
        if (kind == DIRECT) != (message.channel == node_channel):
            self._refuse("envelope", envelope, "misdirected")
            return
        if compressed:
            try:
                inflater = zlib.decompressobj()
                payload = inflater.decompress(payload, self.codec.max_size + 1)
                if len(payload) > self.codec.max_size or not inflater.eof:
                    raise zlib.error("over max_message_size, or truncated")
            except zlib.error as exc:
                self._refuse(f"envelope ({exc})", envelope, "undecompressable")
                return
        try:
            bodies = await self._decode(self.codec, payload)
        except DecodeError as exc:
            self._refuse(f"envelope ({exc})", payload, "undecodable")
            return
        if type(bodies) is not list or any(type(body) is not bytes for body in bodies):
            self._refuse("envelope", bodies, "malformed")
            return
        for body in bodies:
            await self._deliver(body)

    async def _deliver(self, body: bytes) -> None:
        """Decode one broadcast and dispatch it on this node; refuse it if malformed."""
        try:
            value = await self._decode(self.body_codec, body)
        except DecodeError as exc:
            self._refuse(f"broadcast ({exc})", body, "undecodable")
            return
        if type(value) is not tuple or len(value) != 4 or type(value[2]) is not str:
            self._refuse("broadcast", value, "malformed")
            return
        topic, payload, dispatcher, from_pid = value
        if type(payload) in RUNTIME_SIGNALS:
            self._refuse("broadcast (only the runtime delivers that message)", value, "forged")
            return
        try:
            local_broadcast_from(self.config.pubsub, from_pid, topic, payload, dispatcher)
        except (TypeError, LookupError) as exc:
            self._refuse(f"broadcast ({exc})", value, "malformed")
        except Exception as exc:  # a custom dispatcher that raised
            self._refuse(f"broadcast (its dispatcher raised {short_repr(exc)})", value, "failed")


def _caller_pid() -> Pid | None:
    proc = current_process_or_none()
    return proc.pid if proc is not None else None
