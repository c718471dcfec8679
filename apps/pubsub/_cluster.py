"""The cluster adapter: beamlet distribution and ``pg`` (Phoenix.PubSub.PG2).

Each node runs ``pool_size`` shard processes, registered as
``f"{pubsub}.Adapter.{i}"`` and joined to the pg group
``("beamlet.pubsub", pubsub, i)`` of the default scope. A publisher picks a
shard by its own pid (``shard_for``) and sends to that shard's member on
every other node, which fans out to its node's subscribers. Per-publisher
order holds because a publisher always goes through the same shard, the
broadcasts of a shard leave in the order they were made, and a connection
keeps the order of what is sent on it.

Batches: a broadcast travels in a *batch* (``_batch``), one wire message for
the broadcasts a shard's publishers make in one scheduling round. The first
broadcast of a round is sent at once, by its publisher (a lone message waits
for nothing); it opens a round and wakes the shard's *flusher*, a process of
its own that does nothing else. The broadcasts that follow wait in the
shard's ``_Outbox``, encoded; the flusher sends them as one batch per node in
the next scheduling round, that is as soon as the publishers yield (no timer,
and no wait behind the shard's mailbox, however much other nodes sent it). A
batch that is full (``MAX_BATCH_ENTRIES``, ``MAX_BATCH_BYTES``, or half the
node's ``max_frame_size`` if less, read when a round opens) is sent at once by
the publisher that fills it; a broadcast larger than a batch goes alone. Each
broadcast is encoded once, whatever the number of nodes. A shard refuses,
before decoding it, a batch far over those bounds (``check_batch``): what one
wire message costs the receiving node stays bounded.

At most once: nothing is buffered for a node that is down or partitioned,
and nothing is replayed when it comes back. A node whose connection is over
its ``busy_limit`` misses the batch (its broadcasts counted in ``stats``,
logged).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from beamlet.actors import From, Pid, receive, register, reply, send
from beamlet.actors.lowlevel import BadInputLog, Call, current_node, current_process_or_none
from beamlet.cluster import (
    DistributionBusyError,
    NotDistributedError,
    distribution,
    pg,
    validate_node_name,
)
from beamlet.supervisors import Supervisor, worker

from ._adapter import RUNTIME_SIGNALS, Adapter, AdapterConfig
from ._batch import (
    MAX_BATCH_BYTES,
    Batch,
    check_batch,
    encode_entry,
    pack_batch,
    unpack_batch,
)
from ._dispatch import default_dispatch, dispatchers_by_name, shard_for
from ._pubsub import _dispatch_local, _state, _targets

__all__ = ["ClusterAdapter"]

logger = logging.getLogger("beamlet.apps.pubsub")

#: The dispatchers by name (the registry of ``_dispatch``, read on every message).
_DISPATCHERS = dispatchers_by_name()


class _Outbox:
    """The broadcasts of one shard's publishers waiting to leave this node."""

    __slots__ = ("batch", "group", "lot", "open")

    def __init__(self, group: Any) -> None:
        self.group = group
        self.batch = Batch()
        #: A round is open: the flusher is woken, and what is broadcast
        #: meanwhile waits in ``batch``.
        self.open = False
        #: Where the shard's flusher waits while it runs (None: no rounds,
        #: every broadcast leaves at once).
        self.lot: trio.lowlevel.ParkingLot | None = None


def _batch_bytes() -> int:
    """The bytes of a batch's entries: ``MAX_BATCH_BYTES``, or half this node's
    ``max_frame_size`` if less (a batch, its list header and its frame's own
    stay within it)."""
    try:
        limit = distribution().max_frame_size
    except NotDistributedError:
        return MAX_BATCH_BYTES
    return min(MAX_BATCH_BYTES, limit // 2)


#: Seconds between two log lines about broadcasts a busy connection refused.
BUSY_LOG_PERIOD = 10.0


class ClusterAdapter(Adapter):
    """The default adapter: other nodes are reached over beamlet distribution.

    Options: none besides the PubSub's ``pool_size`` and ``broadcast_pool_size``.
    """

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        n = config.pool_size
        self.names = [f"{config.adapter_name}.{i}" for i in range(n)]
        self.groups = [("beamlet.pubsub", config.pubsub, i) for i in range(n)]
        self.outboxes = [_Outbox(group) for group in self.groups]
        self._one_shard = config.broadcast_pool_size == 1
        self.busy_drops = 0
        self.bad_input = 0
        self.sent = 0  # broadcasts sent to other nodes (one per node per broadcast)
        self.batches = 0  # wire messages sent to other nodes (one per node per batch)
        self.received = 0  # broadcasts received from other nodes
        self._busy_logged_at = -float("inf")
        self._busy_unlogged = 0

    def child_spec(self) -> Any:
        n = self.config.pool_size
        shards = [worker(_shard, self, i, id=("shard", i)) for i in range(n)]
        shards += [worker(_flusher, self, i, id=("flusher", i)) for i in range(n)]
        return Supervisor.child_spec(
            shards, strategy="one_for_one", id="adapter", name=self.config.adapter_name
        )

    def node_name(self) -> str:
        return current_node().name

    def stats(self) -> dict[str, int]:
        return {
            "remote_sent": self.sent,
            "remote_batches": self.batches,
            "remote_received": self.received,
            "remote_busy_drops": self.busy_drops,
            "bad_input": self.bad_input,
        }

    def _shard(self) -> int:
        """The shard of the calling publisher (``shard_for``)."""
        proc = current_process_or_none()
        return shard_for(proc.pid if proc is not None else None, self.config.broadcast_pool_size)

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> None:
        # Encoded once, before anything is sent: an unencodable message raises
        # here, with nothing sent, whether other nodes are connected or not.
        entry = encode_entry(topic, message, dispatcher, from_pid)
        box = self.outboxes[0] if self._one_shard else self.outboxes[self._shard()]
        if box.open:  # a round is open: wait for the shard, or a full batch
            batch = box.batch
            if batch.add(entry):
                return
            self.flush(box)
            if batch.add(entry):
                return
            # Too large for any batch: alone, now.
        if self._send_group(box, [entry]) and not box.open:
            # Another node heard this one: what follows in this round waits for
            # the flusher, which runs in the next scheduling round.
            lot = box.lot
            if lot is not None:
                lot.unpark()
                box.open = True
                box.batch.max_bytes = _batch_bytes()  # empty: its limit may change

    def direct_broadcast(
        self, node: str, topic: str, message: Any, dispatcher: str, from_pid: Pid | None
    ) -> None:
        entry = encode_entry(topic, message, dispatcher, from_pid)
        try:
            validate_node_name(node)
        except ValueError:
            return  # no node has that name: nothing to deliver
        i = self._shard()
        box = self.outboxes[i]
        if box.open:
            self.flush(box)  # the publisher's earlier broadcasts go first
        try:
            send((self.names[i], node), pack_batch([entry]))
        except DistributionBusyError as exc:
            self._busy(node, exc, 1)
            return
        self.sent += 1
        self.batches += 1

    def _send_group(self, box: _Outbox, entries: list[bytes]) -> bool:
        """Send ``entries`` as one batch to the shard's member on every other node.

        Returns:
            Whether any other node has a member (busy or not).

        Raises:
            ValueError: the batch is over the connections' ``max_frame_size``;
                nothing was sent.
        """
        try:
            members = pg.members(box.group)
        except pg.ScopeNotStartedError:  # not distributed: no other node
            return False
        here = current_node().name
        others = False
        blob: bytes | None = None
        for pid in members:
            if pid.node != here:
                others = True
                if blob is None:
                    blob = pack_batch(entries)
                try:
                    send(pid, blob)
                except DistributionBusyError as exc:
                    self._busy(pid.node, exc, len(entries))
                    continue
                self.sent += len(entries)
                self.batches += 1
        return others

    def flush(self, box: _Outbox) -> None:
        """Send the broadcasts waiting in ``box``, as one batch per other node.

        Never raises for the batch's size: a batch over ``max_frame_size``
        (the limit lowered by a distribution started after the round opened)
        is sent an entry at a time, and an entry over it is dropped, counted
        in ``bad_input`` and logged.
        """
        entries = box.batch.take()
        if not entries:
            return
        try:
            self._send_group(box, entries)
        except ValueError:
            for entry in entries:
                try:
                    self._send_group(box, [entry])
                except ValueError as exc:
                    self.bad_input += 1
                    logger.warning(
                        "PubSub %s: a waiting broadcast not sent: %s", self.config.pubsub, exc
                    )

    def _busy(self, node: str, exc: Exception, count: int) -> None:
        self.busy_drops += count
        self._busy_unlogged += count
        now = trio.current_time()
        if now - self._busy_logged_at >= BUSY_LOG_PERIOD:
            logger.warning(
                "PubSub %s: %d broadcast(s) not sent to %s: %s",
                self.config.pubsub,
                self._busy_unlogged,
                node,
                exc,
            )
            self._busy_logged_at = now
            self._busy_unlogged = 0


async def _shard(adapter: ClusterAdapter, index: int) -> None:
    """One shard: joins its pg group, sends its publishers' batches, fans out
    what other nodes send it.

    A plain process rather than a GenServer: it does one thing per message,
    on the path of every broadcast. It checks everything it receives: a
    malformed broadcast or batch entry, a call (answered with an error), a
    cast or any other message is refused, counted and logged (rate-limited),
    and the shard keeps serving; the other entries of a batch are delivered.
    """
    name = adapter.names[index]
    register(name)
    try:
        await pg.join(adapter.groups[index])
    except pg.ScopeNotStartedError:
        pass  # a node that is not distributed has no other node to hear from
    state = _state(adapter.config.pubsub)  # the Registry starts first
    log = BadInputLog(name, logger)

    def refuse(kind: str, value: Any, why: str) -> None:
        adapter.bad_input += 1
        log.report(kind, value, why)

    def deliver(head: Any, message: Any, raw: Any) -> None:
        if type(head) is str:
            topic: Any = head
            fn: Any = default_dispatch
            from_pid = None
        elif type(head) is list and len(head) == 3:
            topic, dispatcher, from_pid = head
            fn = _DISPATCHERS.get(dispatcher) if type(dispatcher) is str else None
            if type(topic) is not str or fn is None:
                refuse("broadcast", raw, "malformed")
                return
            if from_pid is not None and type(from_pid) is not Pid:
                refuse("broadcast", raw, "malformed")
                return
        else:
            refuse("broadcast", raw, "malformed")
            return
        if type(message) in RUNTIME_SIGNALS:
            refuse("broadcast (only the runtime delivers that message)", raw, "forged")
            return
        adapter.received += 1
        try:
            _dispatch_local(state, topic, message, fn, from_pid)
        except Exception as exc:  # a custom dispatcher that raised
            refuse(f"broadcast (its dispatcher raised {exc!r})", raw, "failed")

    while True:
        msg = await receive()
        t = type(msg)
        if t is bytes:  # a batch: [head, message, head, message, ...]
            why = check_batch(msg)
            if why is not None:  # far over what an honest node sends: not decoded
                refuse("batch", msg[:64], why)
                continue
            items, bad = unpack_batch(msg)
            for value, why in bad:
                refuse("batch", value, why)
            # The subscribers of each topic are looked up once per batch.
            cache: dict[str, list[tuple[Any, int]]] = {}
            for k in range(0, len(items), 2):
                head = items[k]
                message = items[k + 1]
                if type(head) is str and type(message) not in RUNTIME_SIGNALS:
                    # The default dispatcher: inline.
                    targets = cache.get(head)
                    if targets is None:
                        targets = cache[head] = _targets(state, head)
                    for proc, bound in targets:
                        if bound and proc.message_queue_len >= bound:
                            state.slow_drops += 1
                        else:
                            proc.deliver(message)
                    adapter.received += 1
                else:  # a dispatcher may do anything: look up again after it
                    deliver(head, message, [head, message])
                    cache.clear()
        elif t is list:  # a single broadcast: [topic, message] or with its dispatcher
            n = len(msg)
            if n == 2:
                deliver(msg[0], msg[1], msg)
            elif n == 4:
                deliver(msg[0:1] + msg[2:4], msg[1], msg)
            else:
                refuse("broadcast", msg, "malformed")
        elif t is Call and type(msg.caller) is From:
            refuse("call", msg.request, "unexpected")
            reply(msg.caller, ("error", "bad_request"))
        else:
            refuse("message", msg, "unexpected")


async def _flusher(adapter: ClusterAdapter, index: int) -> None:
    """The flusher of one shard: sends the batch of a round when woken.

    A publisher whose broadcast opens a round wakes it (``_Outbox.lot``); it
    runs in the next scheduling round, after the publishers that were
    runnable, whatever waits in the shard's mailbox. It sends what waits and
    closes the round, with no ``await`` in between, so that a broadcast either
    joins the batch or opens the next round: each shard's broadcasts leave in
    the order they were made.
    """
    box = adapter.outboxes[index]
    lot = trio.lowlevel.ParkingLot()
    box.lot = lot
    try:
        while True:
            await lot.park()
            adapter.flush(box)
            box.open = False
    finally:
        # What waits leaves now (a restarted flusher starts with no round open).
        box.lot = None
        box.open = False
        try:
            adapter.flush(box)
        except Exception:  # the node going down under it: what waited is lost
            logger.warning(
                "%s: broadcasts not sent as it stopped", adapter.names[index], exc_info=True
            )
