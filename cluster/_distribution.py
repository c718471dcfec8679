"""Distribution: the router that carries signals between nodes over connections.

One ``Distribution`` per distributed node. It owns the listener, one ``Peer``
per connected node, and the membership tasks (seeds, gossip, discovery).

Per connection there are three Trio tasks: a reader that feeds the sans-IO
protocol and dispatches the control messages to the node, a writer that sends
everything queued since its last write in one ``send_all`` (frames are
batched per connection; nothing awaits per message), and a ticker that keeps
idle connections alive and declares a silent peer down after ``ticktime``.

Failure semantics (otp-semantics P29, D14, D15): when a connection is lost,
every link across it delivers ``"noconnection"``, every monitor
``Down(..., "noconnection")``, ``monitor_nodes`` subscribers get
``NodeDown`` after every signal that came over the connection, and the next
send to the node connects again. A node restarted under the same name has a
new creation; pids of the old incarnation never reach it.

Backpressure: each connection's outgoing buffer is bounded by
``busy_limit`` bytes. Past it, ``send`` to that node raises
``DistributionBusyError`` in the sender: nothing is dropped silently and
memory stays bounded. Exit, link and monitor signals are never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from beamlet.actors import Pid, Ref
from beamlet.actors._node import Node
from beamlet.actors._router import Router

from . import _wire as wire
from ._cookie import Cookie
from ._messages import NodeDown, NodeUp
from ._transport import Transport, split_address

__all__ = ["Distribution", "DistributionBusyError", "Peer"]

logger = logging.getLogger("beamlet.cluster")


class DistributionBusyError(RuntimeError):
    """The connection to a node has too much unsent data; the message was not sent."""


class Peer:
    """A live, authenticated connection to one node."""

    def __init__(
        self,
        dist: Distribution,
        session: wire.Session,
        stream: trio.abc.Stream,
        name: str,
        creation: int,
        initiated: bool,
    ) -> None:
        self.dist = dist
        self.session = session
        self.stream = stream
        self.name = name
        self.creation = creation
        self.initiated = initiated
        self.address: str | None = None
        self._out: list[bytes] = []
        self.out_bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._drained = trio.lowlevel.ParkingLot()
        self._scope = trio.CancelScope()
        self.last_sent = trio.current_time()
        self.last_received = self.last_sent
        self.close_reason: Any = "connection_closed"

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def emit(self, event: Any, *, control: bool = False) -> None:
        """Queue one event. Raises ``TypeError`` if its message cannot be encoded."""
        if not control and self.out_bytes > self.dist.busy_limit:
            raise DistributionBusyError(
                f"the connection to {self.name} has {self.out_bytes} bytes unsent "
                f"(busy_limit {self.dist.busy_limit}); retry later"
            )
        data = self.session.encode(event)
        self._out.append(data)
        self.out_bytes += len(data)
        if len(self._out) == 1:
            self._lot.unpark()

    def close(self, reason: Any) -> None:
        self.close_reason = reason
        self._scope.cancel()

    async def run(self) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                nursery.start_soon(self._ticker)
                await self._reader()
                nursery.cancel_scope.cancel()

    async def _reader(self) -> None:
        dist = self.dist
        stream = self.stream
        session = self.session
        try:
            for event in session.pending():
                dist.dispatch(self, event)
        except wire.ProtocolError as exc:
            self.close_reason = ("protocol_error", str(exc))
            logger.warning("closing the connection to %s: %s", self.name, exc)
            return
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.close_reason = "connection_closed"
                logger.info("connection to %s lost: %r", self.name, exc)
                return
            if not data:
                self.close_reason = "connection_closed"
                return
            self.last_received = trio.current_time()
            try:
                events = session.feed(data)
            except wire.ProtocolError as exc:
                self.close_reason = ("protocol_error", str(exc))
                logger.warning("closing the connection to %s: %s", self.name, exc)
                return
            for event in events:
                dist.dispatch(self, event)

    async def _writer(self) -> None:
        stream = self.stream
        while True:
            if not self._out:
                await self._lot.park()
                continue
            batch = self._out
            self._out = []
            self.out_bytes = 0
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close("connection_closed")
                return
            self.last_sent = trio.current_time()
            self._drained.unpark_all()

    async def _ticker(self) -> None:
        ticktime = self.dist.ticktime
        interval = ticktime / 4
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            if now - self.last_received >= ticktime:
                logger.warning("node %s was silent for %s s: declaring it down", self.name, ticktime)
                self.close("net_tick_timeout")
                return
            if now - self.last_sent >= interval and not self._out:
                self.emit(wire.tick(), control=True)

    async def wait_drained(self) -> None:
        """Wait until the outgoing buffer has been written."""
        while self._out:
            await self._drained.park()


class _Connecting:
    """A connection being set up: the signals sent meanwhile, and who waits."""

    __slots__ = ("done", "queue")

    def __init__(self) -> None:
        self.queue: list[tuple[Any, bool]] = []
        self.done = trio.Event()


class Distribution(Router):
    """The network router of one distributed node."""

    def __init__(
        self,
        node: Node,
        *,
        cookie: Cookie,
        transport: Transport,
        host: str,
        port: int,
        seeds: tuple[str, ...] = (),
        ticktime: float = 15.0,
        handshake_timeout: float = 7.0,
        max_frame_size: int = 64 * 1024 * 1024,
        busy_limit: int = 1024 * 1024,
        seed_interval: float = 2.0,
        connect_all: bool = True,
        discovery: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(node)
        self.cookie = cookie
        self.transport = transport
        self.host = host
        self.port = port
        self.seeds = tuple(seeds)
        self.ticktime = ticktime
        self.handshake_timeout = handshake_timeout
        self.max_frame_size = max_frame_size
        self.busy_limit = busy_limit
        self.seed_interval = seed_interval
        self.connect_all = connect_all
        self.discovery = tuple(discovery)
        self._dialing: set[str] = set()  # addresses being dialled without a known name
        self.listen_address: str | None = None
        self.peers: dict[str, Peer] = {}
        self.addresses: dict[str, str] = {}  # node name -> listen address
        self._connecting: dict[str, _Connecting] = {}  # node -> signals queued meanwhile
        self._subscribers: dict[Pid, bool] = {}  # monitor_nodes
        self._node_watchers: dict[str, list[Pid]] = {}  # monitor_node
        self._nursery: trio.Nursery | None = None
        self.closed = False

    # -- running -------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, connect to seeds, and serve connections until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.listen_address = await nursery.start(
                self.transport.serve, self.host, self.port, self._accept
            )
            if self.seeds:
                nursery.start_soon(self._seed_loop)
            for strategy in self.discovery:
                nursery.start_soon(strategy.run, self)
            task_status.started(self.listen_address)

    def spawn_system_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    async def _seed_loop(self) -> None:
        while True:
            for address in self.seeds:
                if address != self.listen_address and not any(
                    peer.address == address for peer in self.peers.values()
                ):
                    self.connect_soon(address)
            await trio.sleep(self.seed_interval)

    def connect_soon(self, address: str) -> None:
        """Dial ``address`` in the background, unless a dial to it is under way."""
        if address in self._dialing or self._nursery is None or self.closed:
            return
        self._dialing.add(address)

        async def dial() -> None:
            try:
                await self._connect(None, address)
            finally:
                self._dialing.discard(address)

        self._nursery.start_soon(dial)

    # -- connection setup ------------------------------------------------------------

    def _session(self, initiator: bool, expected_peer: str | None = None) -> wire.Session:
        return wire.Session(
            initiator=initiator,
            name=self.node.name,
            creation=self.node.creation,
            cookie=self.cookie,
            max_frame_size=self.max_frame_size,
            expected_peer=expected_peer,
        )

    async def _accept(self, stream: trio.abc.Stream) -> None:
        session = self._session(initiator=False)
        try:
            with trio.fail_after(self.handshake_timeout):
                peer_name, peer_creation = await session.handshake(stream)
        except trio.TooSlowError:
            logger.warning("handshake timed out on an incoming connection")
            return
        except wire.ProtocolError as exc:
            logger.warning("refused an incoming connection: %s", exc)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            logger.info("incoming connection failed during the handshake: %r", exc)
            return
        await self._run_peer(session, stream, peer_name, peer_creation, False, None)

    def _start_connect(self, name: str | None, address: str) -> None:
        if self._nursery is None or self.closed:
            return
        if name is not None:
            if name in self.peers or name in self._connecting:
                return
            self._connecting[name] = _Connecting()
        self._nursery.start_soon(self._connect, name, address)

    async def _connect(self, name: str | None, address: str) -> str | None:
        """Connect to ``address``; return the peer's name once it is up, or None."""
        session = self._session(initiator=True, expected_peer=name)
        peer_host = name.partition("@")[2] if name else None
        try:
            with trio.fail_after(self.handshake_timeout):
                stream = await self.transport.connect(address, peer_host)
                try:
                    peer_name, peer_creation = await session.handshake(stream)
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, wire.ProtocolError) as exc:
            logger.info("could not connect to %s (%s): %s", name or address, address, exc)
            if name is not None:
                self._connect_failed(name)
            return None
        if name is not None and peer_name != name:
            logger.warning("%s answered as %s, not %s", address, peer_name, name)
            await trio.aclose_forcefully(stream)
            self._connect_failed(name)
            return None
        assert self._nursery is not None
        up: str | None = await self._nursery.start(
            self._run_peer, session, stream, peer_name, peer_creation, True, address
        )
        return up

    def _connect_failed(self, name: str) -> None:
        connecting = self._connecting.pop(name, None)
        if connecting is None:
            return
        for event, _control in connecting.queue:
            self._undeliverable(name, event)
        connecting.done.set()
        self._notify_watchers(name, "connection_setup_failed")

    async def _run_peer(
        self,
        session: wire.Session,
        stream: trio.abc.Stream,
        name: str,
        creation: int,
        initiated: bool,
        address: str | None,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if name == self.node.name:
            logger.warning("refusing a connection to this node itself (%s)", address or "incoming")
            await trio.aclose_forcefully(stream)
            task_status.started(None)
            return
        existing = self.peers.get(name)
        replacing = existing is not None and existing.creation == creation
        if replacing and initiated != (self.node.name < name):
            # Simultaneous connections: both sides keep the one initiated by
            # the node whose name sorts first; this one is the other.
            await trio.aclose_forcefully(stream)
            task_status.started(name)
            return
        peer = Peer(self, session, stream, name, creation, initiated)
        peer.address = address or self.addresses.get(name)
        if address is not None:
            self.addresses[name] = address
        self.peers[name] = peer
        if existing is not None:
            if replacing:
                existing.close("replaced")
            else:  # the node restarted: its old incarnation is gone
                self._node_down(existing, "connection_closed")
                existing.close("connection_closed")
        if not replacing:
            self._node_up(peer)
        connecting = self._connecting.pop(name, None)
        if connecting is not None:
            for event, control in connecting.queue:
                try:
                    peer.emit(event, control=control)
                except (TypeError, DistributionBusyError):
                    pass
            connecting.done.set()
        task_status.started(name)
        try:
            await peer.run()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            if self.peers.get(name) is peer:
                del self.peers[name]
                self._node_down(peer, peer.close_reason)

    # -- membership -------------------------------------------------------------------

    def _node_up(self, peer: Peer) -> None:
        logger.info("node %s up", peer.name)
        gossip = [(self.node.name, self.listen_address)]
        gossip += [(n, a) for n, a in self.addresses.items() if n != peer.name and n in self.peers]
        peer.emit(wire.gossip(gossip), control=True)
        for other in self.peers.values():
            if other is not peer and peer.address is not None:
                other.emit(wire.gossip([(peer.name, peer.address)]), control=True)
        for pid in list(self._subscribers):
            self.node.remote_send(pid, NodeUp(peer.name))

    def _node_down(self, peer: Peer, reason: Any) -> None:
        logger.info("node %s down: %r", peer.name, reason)
        self.node.node_down(peer.name)
        for pid in list(self._subscribers):
            self.node.remote_send(pid, NodeDown(peer.name, reason))
        self._notify_watchers(peer.name, reason)

    def _notify_watchers(self, name: str, reason: Any) -> None:
        for pid in self._node_watchers.pop(name, []):
            self.node.remote_send(pid, NodeDown(name, reason))

    def learn(self, entries: list[tuple[str, str]]) -> None:
        """Gossip: remember node addresses and connect to the nodes not yet connected."""
        for name, address in entries:
            if name == self.node.name or not isinstance(address, str):
                continue
            self.addresses[name] = address
            if self.connect_all and name not in self.peers:
                self._start_connect(name, address)

    # -- the API behind beamlet.cluster ------------------------------------------------

    def nodes(self) -> list[str]:
        return sorted(self.peers)

    async def connect(self, target: str) -> bool:
        """Connect to a node name (whose address is known) or a ``host:port`` address."""
        if "@" not in target:
            split_address(target)
            if any(peer.address == target for peer in self.peers.values()):
                return True
            return await self._connect(None, target) is not None
        if target == self.node.name or target in self.peers:
            return True
        connecting = self._connecting.get(target)
        if connecting is not None:
            await connecting.done.wait()
            return target in self.peers
        address = self.addresses.get(target)
        if address is None or self.closed:
            return False
        self._connecting[target] = _Connecting()
        return await self._connect(target, address) is not None

    def disconnect(self, name: str) -> bool:
        peer = self.peers.get(name)
        if peer is None:
            return False
        peer.close("disconnect")
        return True

    def monitor_nodes(self, pid: Pid, flag: bool) -> bool:
        previous = pid in self._subscribers
        if flag:
            self._subscribers[pid] = True
        else:
            self._subscribers.pop(pid, None)
        return previous

    def monitor_node(self, pid: Pid, name: str) -> None:
        if name in self.peers:
            self._node_watchers.setdefault(name, []).append(pid)
            return
        address = self.addresses.get(name)
        if address is None or self.closed:
            self.node.remote_send(pid, NodeDown(name, "connection_setup_failed"))
            return
        self._node_watchers.setdefault(name, []).append(pid)
        self._start_connect(name, address)

    def shutdown(self) -> None:
        self.closed = True
        for peer in list(self.peers.values()):
            peer.close("shutdown")

    # -- Router: outgoing signals ------------------------------------------------------

    def _emit(self, node: str, event: Any, *, control: bool) -> bool:
        peer = self.peers.get(node)
        if peer is not None:
            peer.emit(event, control=control)
            return True
        connecting = self._connecting.get(node)
        if connecting is None:
            address = self.addresses.get(node)
            if address is None or self.closed:
                return False
            self._start_connect(node, address)
            connecting = self._connecting.get(node)
            if connecting is None:
                return False
        if not control and len(connecting.queue) >= 10_000:
            raise DistributionBusyError(f"too many messages queued while connecting to {node}")
        wire.check_encodable(event)
        connecting.queue.append((event, control))
        return True

    def _undeliverable(self, node: str, event: Any) -> None:
        """Answer a control event that could not reach ``node`` as Erlang does."""
        kind = wire.kind(event)
        if kind == "link":
            self.node.remote_exit(event.to_pid, event.from_pid, "noconnection", link=True)
        elif kind == "monitor":
            target = event.target
            if isinstance(target, str):
                target = (target, node)
            self.node.remote_down(event.from_pid, event.ref, target, "noconnection")

    def send(self, sender: Pid | None, dest: Pid, msg: Any) -> None:
        self._emit(dest.node, wire.send(dest, msg), control=False)

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        self._emit(node, wire.send_named(sender, name, msg), control=False)

    def link(self, local: Pid, remote: Pid) -> None:
        event = wire.link(local, remote)
        if not self._emit(remote.node, event, control=True):
            self.node.remote_exit(remote, local, "noconnection", link=True)

    def unlink(self, local: Pid, remote: Pid) -> None:
        self._emit(remote.node, wire.unlink(local, remote), control=True)

    def exit(self, sender: Pid, dest: Pid, reason: Any, *, link: bool) -> None:
        try:
            self._emit(dest.node, wire.exit(sender, dest, reason, link=link), control=True)
        except (TypeError, ValueError):  # a reason the codec cannot carry
            self._emit(dest.node, wire.exit(sender, dest, repr(reason), link=link), control=True)

    def monitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        node = target.node if isinstance(target, Pid) else target[1]
        event = wire.monitor(watcher, target, ref)
        if not self._emit(node, event, control=True):
            self.node.remote_down(watcher, ref, target, "noconnection")

    def demonitor(self, watcher: Pid, target: Pid | tuple[str, str], ref: Ref) -> None:
        node = target.node if isinstance(target, Pid) else target[1]
        self._emit(node, wire.demonitor(watcher, target, ref), control=True)

    def down(self, watcher: Pid, ref: Ref, target: Any, reason: Any) -> None:
        try:
            self._emit(watcher.node, wire.down(target, watcher, ref, reason), control=True)
        except (TypeError, ValueError):  # a reason the codec cannot carry
            self._emit(watcher.node, wire.down(target, watcher, ref, repr(reason)), control=True)

    # -- incoming signals ---------------------------------------------------------------

    def dispatch(self, peer: Peer, event: Any) -> None:
        """Apply one control event that arrived from ``peer``."""
        node = self.node
        kind = wire.kind(event)
        if kind == "send":
            node.remote_send(event.to_pid, event.msg)
        elif kind == "send_named":
            node.remote_send_named(event.to_name, event.msg)
        elif kind == "link":
            node.remote_link(event.from_pid, event.to_pid)
        elif kind == "unlink":
            node.remote_unlink(event.from_pid, event.to_pid)
        elif kind == "exit":
            node.remote_exit(event.from_pid, event.to_pid, event.reason, link=True)
        elif kind == "exit2":
            node.remote_exit(event.from_pid, event.to_pid, event.reason, link=False)
        elif kind == "monitor":
            node.remote_monitor(event.from_pid, event.target, event.ref)
        elif kind == "demonitor":
            node.remote_demonitor(event.target, event.ref)
        elif kind == "down":
            target = event.target
            if isinstance(target, str):
                target = (target, peer.name)
            node.remote_down(event.watcher, event.ref, target, event.reason)
        elif kind == "gossip":
            self.learn(event.nodes)
        elif kind == "tick":
            pass
        else:  # pragma: no cover - the wire layer only yields known kinds
            logger.warning("ignoring an unknown event from %s: %r", peer.name, event)
