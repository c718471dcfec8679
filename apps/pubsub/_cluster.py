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
for nothing); it opens a round and puts a token in the local shard's
mailbox. The broadcasts that follow, until the shard runs, wait in the
shard's ``_Outbox``, encoded; the shard sends them as one batch per node when
it reaches the token, that is as soon as the publishers let it run (no
timer). A batch that is full (``MAX_BATCH_ENTRIES``, ``MAX_BATCH_BYTES``) is
sent at once by the publisher that fills it; a broadcast larger than a batch
goes alone. Each broadcast is encoded once, whatever the number of nodes.

At most once: nothing is buffered for a node that is down or partitioned,
and nothing is replayed when it comes back. A node whose connection is over
its ``busy_limit`` misses the batch (its broadcasts counted in ``stats``,
logged).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from beamlet.actors import From, Pid, receive, register, reply, self_pid, send
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
from ._batch import MAX_BATCH_BYTES, Batch, encode_entry, pack_batch, unpack_batch
from ._dispatch import default_dispatch, dispatchers_by_name, shard_for
from ._pubsub import _dispatch_local, _state, _targets

__all__ = ["ClusterAdapter"]

logger = logging.getLogger("beamlet.apps.pubsub")

#: The dispatchers by name (the registry of ``_dispatch``, read on every message).
_DISPATCHERS = dispatchers_by_name()


class _RoundEnd:
    """The token a publisher puts in its local shard's mailbox: "send what waits"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<PubSub round end>"


#: Compared by identity: nothing that arrives from another node can be it.
_ROUND_END = _RoundEnd()


class _Outbox:
    """The broadcasts of one shard's publishers waiting to leave this node."""

    __slots__ = ("batch", "group", "open", "pid")

    def __init__(self, group: Any) -> None:
        self.group = group
        self.batch = Batch()
        #: A round is open: the shard has the token in its mailbox, and what is
        #: broadcast meanwhile waits in ``batch``.
        self.open = False
        #: The shard's pid while it runs (None: no rounds, every broadcast leaves at once).
        self.pid: Pid | None = None


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
        shards = [worker(_shard, self, i, id=("shard", i)) for i in range(self.config.pool_size)]
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
            # the shard, which runs once the publishers let it.
            pid = box.pid
            proc = current_node().lookup(pid) if pid is not None else None
            if proc is not None:
                proc.deliver(_ROUND_END)
                box.open = True

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
        """Send the broadcasts waiting in ``box``, as one batch per other node."""
        entries = box.batch.take()
        if entries:  # within its bounds, a batch is never over max_frame_size
            self._send_group(box, entries)

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
    box = adapter.outboxes[index]
    try:
        limit = distribution().max_frame_size
    except NotDistributedError:
        limit = MAX_BATCH_BYTES
    # A batch, its list header and its frame's own stay within max_frame_size.
    box.batch.max_bytes = min(MAX_BATCH_BYTES, limit // 2)
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

    box.pid = self_pid()
    try:
        while True:
            msg = await receive()
            t = type(msg)
            if msg is _ROUND_END:
                adapter.flush(box)
                box.open = False
            elif t is bytes:  # a batch: [head, message, head, message, ...]
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
    finally:
        # What waits leaves now (a restarted shard starts with no round open).
        box.pid = None
        box.open = False
        try:
            adapter.flush(box)
        except Exception:  # the node going down under it: what waited is lost
            logger.warning("%s: broadcasts not sent as it stopped", name, exc_info=True)
