"""The cluster adapter: beamlet distribution and ``pg`` (Phoenix.PubSub.PG2).

Each node runs ``pool_size`` shard processes, registered as
``f"{pubsub}.Adapter.{i}"`` and joined to the pg group
``("beamlet.pubsub", pubsub, i)`` of the default scope. A publisher picks a
shard by its own pid (``shard_for``) and sends one message to that shard's
member on every other node: one wire message per remote node per broadcast.
The shard there fans it out to its node's subscribers. Per-publisher order
holds because a publisher always goes through the same shard, and beamlet
keeps the order of messages per (sender, receiver) pair.

At most once: nothing is buffered for a node that is down or partitioned,
and nothing is replayed when it comes back. A node whose connection is over
its ``busy_limit`` misses the broadcast (counted in ``stats``, logged).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from beamlet.actors import From, Pid, receive, register, reply, send
from beamlet.actors.lowlevel import BadInputLog, Call, current_node, current_process_or_none
from beamlet.cluster import DistributionBusyError, encode, nodes, pg, validate_node_name
from beamlet.supervisors import Supervisor, worker

from ._adapter import RUNTIME_SIGNALS, Adapter, AdapterConfig
from ._dispatch import DEFAULT_DISPATCHER, default_dispatch, dispatchers_by_name, shard_for
from ._pubsub import _dispatch_local, _state

__all__ = ["ClusterAdapter"]

logger = logging.getLogger("beamlet.apps.pubsub")

#: The dispatchers by name (the registry of ``_dispatch``, read on every message).
_DISPATCHERS = dispatchers_by_name()


def _payload(topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> list[Any]:
    """A broadcast between shards: ``[topic, message]`` (the default dispatcher, no
    from_pid) or ``[topic, message, dispatcher, from_pid]``. A list is native to
    msgpack: it costs the codec no hook, unlike a tuple."""
    if from_pid is None and dispatcher == DEFAULT_DISPATCHER:
        return [topic, message]
    return [topic, message, dispatcher, from_pid]


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
        self.busy_drops = 0
        self.bad_input = 0
        self.sent = 0  # wire messages sent to other nodes
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
            "remote_received": self.received,
            "remote_busy_drops": self.busy_drops,
            "bad_input": self.bad_input,
        }

    def _shard(self) -> int:
        proc = current_process_or_none()
        return shard_for(proc.pid if proc is not None else None, self.config.broadcast_pool_size)

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> None:
        payload = _payload(topic, message, dispatcher, from_pid)
        try:
            members = pg.members(self.groups[self._shard()])
        except pg.ScopeNotStartedError:  # not distributed: no other node
            members = []
        here = current_node().name
        encoded = False
        for pid in members:
            if pid.node != here:
                # The first send encodes before it queues anything: an
                # unencodable message raises here, with nothing sent.
                try:
                    send(pid, payload)
                    encoded = True
                    self.sent += 1
                except DistributionBusyError as exc:
                    self._busy(pid.node, exc)
        if not encoded:
            encode(payload)  # the same errors with no other node (or all busy)

    def direct_broadcast(
        self, node: str, topic: str, message: Any, dispatcher: str, from_pid: Pid | None
    ) -> None:
        payload = _payload(topic, message, dispatcher, from_pid)
        try:
            validate_node_name(node)
        except ValueError:
            encode(payload)
            return  # no node has that name: nothing to deliver
        if node not in nodes():
            encode(payload)  # sending to a node not connected encodes nothing now
        try:
            send((self.names[self._shard()], node), payload)
            self.sent += 1
        except DistributionBusyError as exc:
            self._busy(node, exc)

    def _busy(self, node: str, exc: Exception) -> None:
        self.busy_drops += 1
        self._busy_unlogged += 1
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
    """One shard: joins its pg group, fans out what other nodes send it.

    A plain process rather than a GenServer: it does one thing per message,
    on the path of every broadcast from another node. It checks everything
    it receives: a malformed broadcast, a call (answered with an error), a
    cast or any other message is refused, counted and logged (rate-limited),
    and the shard keeps serving.
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

    while True:
        msg = await receive()
        if type(msg) is list:
            n = len(msg)
            if n == 2:
                topic, message = msg
                fn: Any = default_dispatch
                from_pid = None
            elif n == 4:
                topic, message, dispatcher, from_pid = msg
                fn = _DISPATCHERS.get(dispatcher) if type(dispatcher) is str else None
            else:
                refuse("broadcast", msg, "malformed")
                continue
            if type(topic) is not str or fn is None:
                refuse("broadcast", msg, "malformed")
                continue
            if from_pid is not None and type(from_pid) is not Pid:
                refuse("broadcast", msg, "malformed")
                continue
            if type(message) in RUNTIME_SIGNALS:
                refuse("broadcast (only the runtime delivers that message)", msg, "forged")
                continue
            adapter.received += 1
            try:
                _dispatch_local(state, topic, message, fn, from_pid)
            except Exception as exc:  # a custom dispatcher that raised
                refuse(f"broadcast (its dispatcher raised {exc!r})", msg, "failed")
        elif type(msg) is Call and type(msg.caller) is From:
            refuse("call", msg.request, "unexpected")
            reply(msg.caller, ("error", "bad_request"))
        else:
            refuse("message", msg, "unexpected")
