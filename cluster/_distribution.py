"""Distribution: the router that carries signals between nodes over connections.

One ``Distribution`` per distributed node. It owns the listener, one ``Peer``
per connected node, and the membership tasks (seeds, gossip, discovery).

Per connection there are three Trio tasks: a reader that feeds the sans-IO
protocol and dispatches the control messages to the node, a writer that sends
everything queued since its last write in one ``send_all`` (frames are
batched per connection; nothing awaits per message), and a ticker that keeps
idle connections alive and declares a silent peer down after ``ticktime``.
On a TCP connection (POSIX), a message sent while the connection is idle is
written at once by the sender, and the reader waits for data before reading
it: a request and its answer then cost one task switch per hop, not three
(see ``Peer._queue``).

Failure semantics (otp-semantics P29, D14, D15): when a connection is lost,
every link across it delivers ``"noconnection"``, every monitor
``Down(..., "noconnection")``, ``monitor_nodes`` subscribers get
``NodeDown`` after every signal that came over the connection, and the next
send to the node connects again. A node restarted under the same name has a
new creation; pids of the old incarnation never reach it.

Connection setup (D11, D12): two nodes that dial each other at once keep one
connection, the one dialled by the node whose name sorts first, and decide so
before either side uses it (see ``_claim``). A peer that connects while an
older connection to it is still registered here (it restarted, or it lost
the connection first) replaces it: ``NodeDown`` for the old one, then
``NodeUp``.

Backpressure: each connection's outgoing buffer is bounded by
``busy_limit`` bytes, counting what is queued and what is being written.
Past it, ``send`` to that node raises ``DistributionBusyError`` in the sender:
nothing is dropped silently and memory stays bounded. Exit, link and monitor
signals, and the replies to calls, are never refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from beamlet.actors import Pid, Ref
from beamlet.actors.lowlevel import Node, Reply, Router

from . import _wire as wire
from ._cookie import Cookie
from ._events import Capability, ConnectionClosed, Send
from ._messages import NodeDown, NodeUp
from ._ticks import TickState
from ._transport import Transport, certificate_problem, split_address

__all__ = ["Distribution", "DistributionBusyError", "Peer"]

logger = logging.getLogger("beamlet.cluster")


#: Events dispatched at a time by a connection's reader (see ``Peer._apply_pending``).
DISPATCH_BATCH = 128


#: The connection policies (Erlang's ``dist_auto_connect``): "always" connects
#: on first use and after every disconnect; "once" does not reconnect by itself
#: to a node that went down; "never" connects only when asked (``connect``,
#: seeds, discovery).
AUTO_CONNECT = ("always", "once", "never")

#: What ``nodes`` and ``monitor_nodes`` can be asked for.
NODE_TYPES = ("visible", "hidden", "all")


def check_node_type(node_type: str) -> None:
    """Raise ``ValueError`` unless ``node_type`` is one of ``NODE_TYPES``."""
    if node_type not in NODE_TYPES:
        raise ValueError(f"node_type is one of {', '.join(NODE_TYPES)}, not {node_type!r}")


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
        #: A hidden connection (either side is a hidden node): not in
        #: ``nodes()``, never gossiped, seen by ``monitor_nodes`` subscribers
        #: of hidden or all nodes only.
        self.hidden = dist.hidden or bool((session.conn.peer_flags or 0) & Capability.HIDDEN)
        self.address: str | None = None
        self._out: list[bytes] = []
        #: Bytes queued or being written: what the peer has not been sent yet.
        self.out_bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._drained = trio.lowlevel.ParkingLot()
        self._scope = trio.CancelScope()
        self.ticks = TickState.start(dist.ticktime, trio.current_time())
        self.close_reason: Any = "connection_closed"
        #: The connection is going down: what is sent now is lost, as in
        #: flight (the ``NodeDown`` that follows fires links and monitors).
        self.closing = False
        self.busy_limit = dist.busy_limit
        self._encode_message = session.encode_message
        self._remote_send = dist.node.remote_send
        self._apply_event = dist.dispatch
        # A TCP connection that is idle is written to at once, by the sender
        # (see ``_queue``); other streams, and a busy connection, by the writer.
        self._fd = -1
        if os.name == "posix" and isinstance(stream, trio.SocketStream):
            self._fd = stream.socket.fileno()
        self._direct = True  # no direct write since the last read or write
        self._unrecorded = False  # data read, not yet in ``ticks`` (see ``_reader``)
        self._writing = False  # the writer is in ``send_all``
        # Traffic moves ``ticks`` on at this precision, not at every read and
        # write (each update is checked): a peer is declared down at most this
        # much early.
        self._tick_grain = dist.ticktime / 1000

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def emit(self, event: Any, *, control: bool = False) -> None:
        """Queue one event.

        Raises:
            DistributionBusyError: a message (not a control signal) while more
                than ``busy_limit`` bytes are unsent.
            TypeError: the event holds a value the codec cannot encode.
            ValueError: the event breaks a codec limit (too large, too deep).
        """
        if self.closing:
            return
        if not control and self.out_bytes > self.dist.busy_limit:
            raise DistributionBusyError(
                f"the connection to {self.name} has {self.out_bytes} bytes unsent "
                f"(busy_limit {self.dist.busy_limit}); retry later"
            )
        self._queue(self.session.encode(event))

    def emit_message(self, dest: Pid, msg: Any, control: bool = False) -> None:
        """``emit(wire.send(dest, msg))``, without building the event: the hot path.

        Raises:
            DistributionBusyError, TypeError, ValueError: as ``emit``.
        """
        if self.closing:
            return
        if not control and self.out_bytes > self.busy_limit:
            raise DistributionBusyError(
                f"the connection to {self.name} has {self.out_bytes} bytes unsent "
                f"(busy_limit {self.busy_limit}); retry later"
            )
        self._queue(self._encode_message(dest, msg))

    def _queue(self, data: bytes) -> None:
        """Queue ``data`` for the writer, or write it now if the connection is idle.

        Writing at once spares the message a wait for the writer's turn (a
        task switch per hop). At most once per read or write: what is sent
        meanwhile is queued and goes out in the writer's next ``send_all``, as
        does whatever the socket's buffer cannot take now. Bytes keep their
        order: a direct write happens only with nothing queued or being written.
        """
        out = self._out
        if not out and self._direct and not self._writing and self._fd >= 0:
            self._direct = False
            try:
                sent = os.write(self._fd, data)
            except OSError:  # full (or broken: the writer finds out and closes)
                sent = 0
            if sent == len(data):
                now = trio.current_time()
                if now >= self.ticks.last_sent + self._tick_grain:
                    self.ticks.on_sent(now)
                return
            data = data[sent:]
        out.append(data)
        self.out_bytes += len(data)
        if len(out) == 1:
            self._lot.unpark()

    def close(self, reason: Any) -> None:
        if not self.closing:
            self.close_reason = reason
        self.closing = True
        self._scope.cancel()

    async def run(self) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                nursery.start_soon(self._ticker)
                try:
                    await self._reader()
                finally:
                    self.closing = True
                    nursery.cancel_scope.cancel()

    def _dispatch(self, events: list[Any]) -> bool:
        remote_send = self._remote_send
        dispatch = self._apply_event
        for event in events:
            try:
                if type(event) is Send:  # nearly all the traffic
                    remote_send(event.to_pid, event.msg)
                else:
                    dispatch(self, event)
            except Exception as exc:  # a bug, or a value the node cannot take
                logger.exception("closing the connection to %s: cannot apply %r", self.name, event)
                self.close_reason = ("protocol_error", repr(exc))
                return False
        return True

    def _apply_pending(self) -> bool:
        """Dispatch the events buffered, a batch at a time; False: close the connection.

        Small batches keep few events alive at once: the garbage collector,
        which runs after so many allocations of objects not yet freed, then
        rarely runs because of them (with whole 64 KiB reads, it did for
        about a sixth of the receiving node's time).
        """
        next_events = self.session.conn.next_events
        while True:
            try:
                events = next_events(DISPATCH_BATCH)
                if events and type(events[-1]) is ConnectionClosed:
                    events.pop()  # the reader sees the end of the stream itself
            except wire.ProtocolError as exc:
                self.close_reason = ("protocol_error", str(exc))
                logger.warning("closing the connection to %s: %s", self.name, exc)
                return False
            if not self._dispatch(events) or self._failed():
                return False
            if len(events) < DISPATCH_BATCH:
                return True  # that was all

    async def _reader(self) -> None:
        stream = self.stream
        session = self.session
        ticks = self.ticks
        if not self._apply_pending():
            return
        fd = self._fd
        grain = self._tick_grain
        wait_readable = trio.lowlevel.wait_readable
        cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint
        conn = session.conn
        receive_events = conn.receive_events
        data: bytes | bytearray
        while True:
            try:
                if fd >= 0:
                    # TCP: wait first, then read what came. A reader that tried
                    # first would, between messages, mostly fail (EAGAIN) and
                    # then wait: the same, at twice the cost.
                    await wait_readable(fd)
                    data = os.read(fd, 65536)
                else:
                    data = await stream.receive_some(65536)
            except BlockingIOError:
                continue  # woken, but nothing to read after all
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.close_reason = "connection_closed"
                logger.info("connection to %s lost: %r", self.name, exc)
                return
            if not data:
                self.close_reason = "connection_closed"
                logger.info("connection to %s closed by the peer", self.name)
                return
            self._direct = True
            try:
                events = receive_events(data, DISPATCH_BATCH)
            except wire.ProtocolError as exc:
                self.close_reason = ("protocol_error", str(exc))
                logger.warning("closing the connection to %s: %s", self.name, exc)
                return
            if not self._dispatch(events) or (conn.failure is not None and self._failed()):
                return
            if len(events) == DISPATCH_BATCH and not self._apply_pending():
                return
            if fd >= 0:
                self._unrecorded = True  # the ticker counts this read if it runs first
                # Let the processes this read woke run, and answer, before this
                # task asks to be woken again: a reply then leaves before the
                # reader's re-registration and bookkeeping, not after them. Two
                # passes, as Trio runs the tasks of a pass in either order.
                await cancel_shielded_checkpoint()
                await cancel_shielded_checkpoint()
            now = trio.current_time()
            if now >= ticks.last_received + grain:
                ticks.on_received(now)
            self._unrecorded = False

    def _failed(self) -> bool:
        """Whether a bad frame followed the events just dispatched: then close."""
        failure = self.session.conn.failure
        if failure is None:
            return False
        self.close_reason = ("protocol_error", str(failure))
        logger.warning("closing the connection to %s: %s", self.name, failure)
        return True

    async def _writer(self) -> None:
        stream = self.stream
        ticks = self.ticks
        while True:
            if not self._out:
                self._direct = True
                await self._lot.park()
                continue
            batch = self._out
            self._out = []
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            self._writing = True
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                logger.info("connection to %s lost while writing: %r", self.name, exc)
                self.close("connection_closed")
                return
            finally:
                self._writing = False
            self.out_bytes -= len(data)
            now = trio.current_time()
            if now >= ticks.last_sent + self._tick_grain:
                ticks.on_sent(now)
            self._drained.unpark_all()

    async def _ticker(self) -> None:
        ticks = self.ticks
        while True:
            await trio.sleep_until(ticks.next_deadline())
            now = trio.current_time()
            if self._unrecorded:  # the reader got data and yields before it records it
                ticks.on_received(now)
            action = ticks.handle_timer(now)
            if action == "timeout":
                logger.warning(
                    "node %s was silent for %s s: declaring it down", self.name, ticks.ticktime
                )
                self.close("net_tick_timeout")
                return
            if action == "tick" and not self._out:
                self.emit(wire.tick(), control=True)

    async def wait_drained(self) -> None:
        """Wait until everything queued so far has been written."""
        while self.out_bytes:
            await self._drained.park()


class _Connecting:
    """Signals for a node that is not connected yet, and who waits for it."""

    __slots__ = ("done", "queue")

    def __init__(self) -> None:
        self.queue: list[tuple[Any, bool]] = []
        self.done = trio.Event()


class _Handshake:
    """A handshake with a known node: at most one per node goes on (see ``_claim``)."""

    __slots__ = ("committed", "initiated", "name", "scope")

    def __init__(self, name: str, initiated: bool, scope: trio.CancelScope | None) -> None:
        self.name = name
        self.initiated = initiated
        self.scope = scope
        #: The peer may already count on this connection: it can no longer be cancelled.
        self.committed = scope is None


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
        hidden: bool = False,
        auto_connect: str = "always",
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
        self.hidden = hidden
        if auto_connect not in AUTO_CONNECT:
            raise ValueError(
                f"auto_connect is one of {', '.join(AUTO_CONNECT)}, not {auto_connect!r}"
            )
        self.auto_connect = auto_connect
        #: With ``auto_connect`` "once" or "never": the nodes that went down,
        #: which only an explicit ``connect`` (or their own) brings back.
        self._barred: set[str] = set()
        self.listen_address: str | None = None
        self.peers: dict[str, Peer] = {}
        self.addresses: dict[str, str] = {}  # node name -> listen address
        self._names: dict[str, str] = {}  # listen address -> node name
        self._dialing: set[str] = set()  # addresses being dialled without a known name
        self._handshakes: dict[str, _Handshake] = {}  # node -> the handshake that goes on
        self._hellos: dict[str, int] = {}  # node -> incoming handshakes not yet authenticated
        self._connecting: dict[str, _Connecting] = {}  # node -> signals queued meanwhile
        self._subscribers: dict[Pid, str] = {}  # monitor_nodes: pid -> node type
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
                self.connect_soon(address)
            await trio.sleep(self.seed_interval)

    def is_connected_to(self, address: str) -> bool:
        """Whether this node is, or is getting, connected to the node at ``address``."""
        if address == self.listen_address:
            return True
        name = self._names.get(address)
        return name is not None and (name in self.peers or name in self._handshakes)

    def connect_soon(self, address: str) -> None:
        """Connect to ``address`` in the background, unless connected or connecting to it.

        An address whose node is known (it connected before, or gossip told)
        is dialled as that node, so that two nodes dialling each other at once
        settle on one connection; an unknown address is dialled blind.
        """
        if self._nursery is None or self.closed or self.is_connected_to(address):
            return
        name = self._names.get(address)
        if name is not None:
            if name not in self._barred:  # went down under "once"/"never": not again
                self._start_connect(name, address, queue=False)
            return
        if address in self._dialing:
            return
        self._dialing.add(address)

        async def dial() -> None:
            try:
                await self._connect(None, address, None)
            finally:
                self._dialing.discard(address)

        self._nursery.start_soon(dial)

    def _remember(self, name: str, address: str) -> None:
        old = self.addresses.get(name)
        if old == address:
            return
        if old is not None and self._names.get(old) == name:
            del self._names[old]
        self.addresses[name] = address
        self._names[address] = name
        peer = self.peers.get(name)
        if peer is not None:
            peer.address = address

    def _forget(self, name: str, address: str) -> None:
        if self.addresses.get(name) == address:
            del self.addresses[name]
        if self._names.get(address) == name:
            del self._names[address]

    # -- connection setup ------------------------------------------------------------
    #
    # Two nodes may dial each other at once, and a node may dial an address
    # without knowing who listens there. As Erlang does, each side lets at most
    # one handshake per node go on: ``_claim`` is asked when the peer's name is
    # known (before a named dial, at the challenge of a blind dial, and once the
    # initiator is authenticated on the acceptor) and settles on the connection
    # initiated by the node whose name sorts first. So both sides keep the same
    # connection, and nothing is ever sent on one that the other side drops.

    def _claim(
        self, name: str, initiated: bool, scope: trio.CancelScope | None
    ) -> _Handshake | None:
        """Let a handshake with ``name`` go on (return its handle), or say to give it up."""
        if initiated and name in self.peers:
            return None  # already connected; a blind dial found a known node
        other = self._handshakes.get(name)
        if other is not None:
            preferred = initiated == (self.node.name < name)
            if other.committed or other.initiated == initiated or not preferred:
                return None
            assert other.scope is not None
            other.scope.cancel()  # ours is the one both sides keep
        handle = _Handshake(name, initiated, scope)
        self._handshakes[name] = handle
        return handle

    def _release(self, handle: _Handshake | None) -> None:
        if handle is not None and self._handshakes.get(handle.name) is handle:
            del self._handshakes[handle.name]

    def _maybe_fail(self, name: str | None) -> None:
        """Fail what waits for ``name`` if no connection to it is up or under way."""
        if (
            name is not None
            and name in self._connecting
            and name not in self.peers
            and name not in self._handshakes
            and not self._hellos.get(name)
        ):
            self._connect_failed(name)

    def _session(self, initiator: bool) -> wire.Session:
        return wire.Session(
            initiator=initiator,
            name=self.node.name,
            creation=self.node.creation,
            cookie=self.cookie,
            max_frame_size=self.max_frame_size,
            hidden=self.hidden,
        )

    def _may_auto_connect(self, name: str) -> bool:
        """Whether a use of ``name`` (a send, link, monitor, gossip) may connect to it."""
        policy = self.auto_connect
        return policy == "always" or (policy == "once" and name not in self._barred)

    async def _accept(self, stream: trio.abc.Stream) -> None:
        session = self._session(initiator=False)
        hello: str | None = None
        handle: _Handshake | None = None
        ok = False
        duplicate = False

        def observe(event: Any) -> str | None:
            nonlocal hello, handle
            if isinstance(event, wire.Hello):
                problem = certificate_problem(stream, event.node)
                if problem is not None:
                    return f"{event.node}: {problem}"
                hello = event.node
                self._hellos[hello] = self._hellos.get(hello, 0) + 1
                return None
            if isinstance(event, wire.Connected):
                handle = self._claim(event.peer_name, False, None)
                if handle is None:
                    nonlocal duplicate
                    duplicate = True
                    return wire.SIMULTANEOUS
            return None

        try:
            with trio.fail_after(self.handshake_timeout):
                peer_name, peer_creation = await session.handshake(stream, observe)
            ok = True
        except BaseException as exc:
            self._release(handle)
            if isinstance(exc, trio.TooSlowError):
                logger.warning(
                    "handshake timed out after %s s on an incoming connection from %s",
                    self.handshake_timeout,
                    hello or "an unknown peer",
                )
            elif duplicate:
                logger.info("refused a second connection from %s: %s", hello, exc)
            elif isinstance(exc, wire.ProtocolError):
                logger.warning("refused an incoming connection (%s): %s", hello or "no name", exc)
            elif isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
                logger.warning("incoming connection failed during the handshake: %r", exc)
            else:
                raise
            return
        finally:
            if hello is not None:
                left = self._hellos[hello] - 1
                if left:
                    self._hellos[hello] = left
                else:
                    del self._hellos[hello]
            if not ok:
                self._maybe_fail(hello)
        await self._run_peer(session, stream, peer_name, peer_creation, False, None, handle)

    def _start_connect(self, name: str, address: str | None, *, queue: bool = True) -> None:
        """Connect to ``name`` in the background; with ``queue``, signals wait for it."""
        if self._nursery is None or self.closed or name in self.peers:
            return
        if queue and name not in self._connecting:
            self._connecting[name] = _Connecting()
        if address is None or name in self._handshakes:
            return  # the handshake under way will do
        scope = trio.CancelScope()
        handle = self._claim(name, True, scope)
        if handle is not None:
            self._nursery.start_soon(self._connect, name, address, handle)

    async def _connect(
        self, name: str | None, address: str, handle: _Handshake | None
    ) -> str | None:
        """Dial ``address`` (where ``name`` listens, if known); return the peer's name once it is up.

        Returns None if the connection failed, or the name of the node found
        there if it was already connected (or getting connected).
        """
        session = self._session(initiator=True)
        scope = handle.scope if handle is not None else trio.CancelScope()
        assert scope is not None
        found: str | None = name
        mismatch = duplicate = False

        def observe(event: Any) -> str | None:
            nonlocal handle, found
            if isinstance(event, wire.Challenge):
                found = event.node
                if name is not None and event.node != name:
                    nonlocal mismatch
                    mismatch = True
                    return f"{address} is {event.node}, not {name}"
                problem = certificate_problem(stream, event.node) if stream is not None else None
                if problem is not None:
                    return f"{event.node} at {address}: {problem}"
                if handle is None:
                    handle = self._claim(event.node, True, scope)
                    if handle is None:
                        nonlocal duplicate
                        duplicate = True
                        return "already connected"
            elif isinstance(event, wire.Connected) and handle is not None:
                handle.committed = True
            return None

        stream: trio.abc.Stream | None = None
        failure: BaseException | None = None
        peer_name = ""
        peer_creation = 0
        try:
            with scope:
                try:
                    with trio.fail_after(self.handshake_timeout):
                        stream = await self.transport.connect(
                            address, name.partition("@")[2] if name else None
                        )
                        peer_name, peer_creation = await session.handshake(stream, observe)
                except (
                    OSError,
                    trio.TooSlowError,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    wire.ProtocolError,
                    ValueError,
                ) as exc:
                    failure = exc
        except BaseException:  # the caller was cancelled, or a bug: leave nothing behind
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)
            self._release(handle)
            self._maybe_fail(found)
            raise
        if failure is not None or scope.cancelled_caught:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            self._release(handle)
            if mismatch:
                assert name is not None
                logger.warning("could not connect to %s: %s", name, failure)
                self._forget(name, address)  # another node listens there now
                self._maybe_fail(name)
                return None
            if duplicate:
                await self._wait_other(found)
                return found if found in self.peers else None
            if isinstance(failure, wire.RefusedError) and failure.reason == wire.SIMULTANEOUS:
                # The peer keeps the connection it is making to this node.
                logger.info("%s answered %s: waiting for its own connection", found, failure.reason)
                await self._wait_other(found)
                return found if found in self.peers else None
            if isinstance(failure, wire.HandshakeAborted):
                logger.warning("could not connect to %s: %s", found or address, failure)
            elif failure is not None:
                logger.info("could not connect to %s (%s): %s", found or address, address, failure)
            self._maybe_fail(found)
            return None
        assert stream is not None
        assert self._nursery is not None
        up: str | None = await self._nursery.start(
            self._run_peer, session, stream, peer_name, peer_creation, True, address, handle
        )
        return up

    async def _wait_other(self, name: str | None) -> None:
        """Wait (a while) for another connection to ``name`` that is under way."""
        if name is None:
            return
        connecting = self._connecting.get(name)
        if connecting is None and name not in self.peers:
            connecting = self._connecting[name] = _Connecting()
        if connecting is not None:
            with trio.move_on_after(self.handshake_timeout):
                await connecting.done.wait()
        self._maybe_fail(name)

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
        handle: _Handshake | None,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._release(handle)
        if name == self.node.name or self.closed:
            await trio.aclose_forcefully(stream)
            task_status.started(None)
            return
        peer = Peer(self, session, stream, name, creation, initiated)
        if address is not None:
            self._remember(name, address)
        peer.address = self.addresses.get(name)
        existing = self.peers.pop(name, None)
        if existing is not None:
            # The peer started a new connection: it restarted (a new creation),
            # or it lost the old connection before this node noticed.
            self._node_down(existing, "connection_closed")
            existing.close("connection_closed")
        self.peers[name] = peer
        self._node_up(peer)
        connecting = self._connecting.pop(name, None)
        if connecting is not None:
            for event, control in connecting.queue:
                try:
                    peer.emit(event, control=control)
                except (TypeError, ValueError, DistributionBusyError) as exc:
                    logger.warning("dropped a signal queued for %s: %r", name, exc)
                    self._undeliverable(name, event)
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
        logger.info("node %s up%s", peer.name, " (hidden)" if peer.hidden else "")
        self._barred.discard(peer.name)
        if not peer.hidden:  # hidden connections carry no gossip, and are in none
            peers = self.peers
            known = [(self.node.name, self.listen_address)]
            known += [
                (n, a)
                for n, a in self.addresses.items()
                if n != peer.name and n in peers and not peers[n].hidden
            ]
            self._gossip(peer, known)
            if peer.address is not None:
                for other in peers.values():
                    if other is not peer and not other.hidden:
                        self._gossip(other, [(peer.name, peer.address)])
        for pid in self._subscribed(peer):
            self.node.remote_send(pid, NodeUp(peer.name))

    def _gossip(self, peer: Peer, entries: list[tuple[str, str | None]]) -> None:
        try:
            peer.emit(wire.gossip(entries), control=True)
        except (wire.ProtocolError, TypeError, ValueError) as exc:  # a peer without gossip
            logger.info("no gossip to %s: %s", peer.name, exc)

    def _subscribed(self, peer: Peer) -> list[Pid]:
        """The ``monitor_nodes`` subscribers to tell about ``peer``; the dead are forgotten."""
        node = self.node
        wanted = ("hidden", "all") if peer.hidden else ("visible", "all")
        alive = []
        for pid, node_type in list(self._subscribers.items()):
            if node.lookup(pid) is None:
                del self._subscribers[pid]
            elif node_type in wanted:
                alive.append(pid)
        return alive

    def _node_down(self, peer: Peer, reason: Any) -> None:
        logger.info("node %s down: %r", peer.name, reason)
        if self.auto_connect != "always":
            self._barred.add(peer.name)
        self.node.node_down(peer.name)
        for pid in self._subscribed(peer):
            self.node.remote_send(pid, NodeDown(peer.name, reason))
        self._notify_watchers(peer.name, reason)

    def _notify_watchers(self, name: str, reason: Any) -> None:
        for pid in self._node_watchers.pop(name, []):
            self.node.remote_send(pid, NodeDown(name, reason))

    def learn(self, entries: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> None:
        """Gossip: remember node addresses and connect to the nodes not yet connected."""
        for name, address in entries:
            if name == self.node.name or not isinstance(address, str):
                continue
            peer = self.peers.get(name)
            if peer is not None and peer.address is None and not peer.hidden:
                # A peer that dialled this node says where it listens: tell the others.
                for other in list(self.peers.values()):
                    if other is not peer and not other.hidden:
                        self._gossip(other, [(name, address)])
            self._remember(name, address)
            if self.connect_all and name not in self.peers and self._may_auto_connect(name):
                self._start_connect(name, address, queue=False)

    # -- the API behind beamlet.cluster ------------------------------------------------

    def nodes(self, node_type: str = "visible") -> list[str]:
        """The connected nodes of ``node_type``: "visible", "hidden" or "all"."""
        check_node_type(node_type)
        if node_type == "all":
            return sorted(self.peers)
        hidden = node_type == "hidden"
        return sorted(name for name, peer in self.peers.items() if peer.hidden == hidden)

    async def connect(self, target: str) -> bool:
        """Connect to a node name (whose address is known) or a ``host:port`` address.

        Cancellation:
            The caller stops waiting; the connection may still come up.
        """
        if "@" not in target:
            split_address(target)
            name = self._names.get(target)
            if name is None or target == self.listen_address:
                if target == self.listen_address:
                    return True
                return await self._connect(None, target, None) is not None
            target = name
        if target == self.node.name or target in self.peers:
            return True
        if self.closed:
            return False
        self._barred.discard(target)  # asked for: the policy allows it again
        connecting = self._connecting.get(target)
        if connecting is None:
            address = self.addresses.get(target)
            if address is None and target not in self._handshakes:
                return False
            self._start_connect(target, address)
            connecting = self._connecting.get(target)
            if connecting is None:
                return target in self.peers
        await connecting.done.wait()
        return target in self.peers

    def disconnect(self, name: str) -> bool:
        peer = self.peers.get(name)
        if peer is None:
            return False
        peer.close("disconnect")
        return True

    def monitor_nodes(self, pid: Pid, flag: bool, node_type: str = "visible") -> bool:
        check_node_type(node_type)
        previous = pid in self._subscribers
        if flag:
            self._subscribers[pid] = node_type
        else:
            self._subscribers.pop(pid, None)
        return previous

    def monitor_node(self, pid: Pid, name: str) -> None:
        watchers = self._node_watchers.get(name)
        if watchers:  # forget those that died
            watchers[:] = [w for w in watchers if self.node.lookup(w) is not None]
        if name in self.peers:
            self._node_watchers.setdefault(name, []).append(pid)
            return
        address = self.addresses.get(name)
        underway = name in self._handshakes or name in self._connecting
        if self.closed or not (underway or (address is not None and self._may_auto_connect(name))):
            self.node.remote_send(pid, NodeDown(name, "connection_setup_failed"))
            return
        self._node_watchers.setdefault(name, []).append(pid)
        self._start_connect(name, address)

    def shutdown(self) -> None:
        self.closed = True
        for peer in list(self.peers.values()):
            peer.close("shutdown")
        for handle in list(self._handshakes.values()):
            if handle.scope is not None:
                handle.scope.cancel()

    # -- Router: outgoing signals ------------------------------------------------------

    def _emit(self, node: str, event: Any, *, control: bool) -> bool:
        peer = self.peers.get(node)
        if peer is not None:
            peer.emit(event, control=control)
            return True
        connecting = self._connecting.get(node)
        if connecting is None:
            if self.closed:
                return False
            if not self._may_auto_connect(node) and node not in self._handshakes:
                return False  # the policy starts no connection, and none is under way
            address = self.addresses.get(node)
            if address is None and node not in self._handshakes:
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
        elif kind == "unlink":  # no acknowledgement will come: the link is gone anyway
            self.node.remote_unlink_ack(event.to_pid, event.from_pid, event.id)
        elif kind == "monitor":
            target = event.target
            if isinstance(target, str):
                target = (target, node)
            self.node.remote_down(event.from_pid, event.ref, target, "noconnection")

    def send(self, sender: Pid | None, dest: Pid, msg: Any) -> None:
        # A call's reply answers a request the peer made: it is never refused,
        # so that a busy connection cannot crash the server that replies.
        peer = self.peers.get(dest.node)
        if peer is not None:
            peer.emit_message(dest, msg, type(msg) is Reply)
        else:
            self._emit(dest.node, wire.send(dest, msg), control=type(msg) is Reply)

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        self._emit(node, wire.send_named(sender, name, msg), control=False)

    def link(self, local: Pid, remote: Pid) -> None:
        event = wire.link(local, remote)
        if not self._emit(remote.node, event, control=True):
            self.node.remote_exit(remote, local, "noconnection", link=True)

    def unlink(self, local: Pid, remote: Pid, id: int) -> None:
        if not self._emit(remote.node, wire.unlink(local, remote, id), control=True):
            self.node.remote_unlink_ack(remote, local, id)  # no connection: nothing to wait for

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
            self._emit(
                peer.name, wire.unlink_ack(event.to_pid, event.from_pid, event.id), control=True
            )
        elif kind == "unlink_ack":
            node.remote_unlink_ack(event.from_pid, event.to_pid, event.id)
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
            if not peer.hidden:  # a hidden node's gossip is ignored, as it gets none
                self.learn(event.nodes)
        elif kind == "tick":
            pass
        else:  # pragma: no cover - the wire layer only yields known kinds
            logger.warning("ignoring an unknown event from %s: %r", peer.name, event)
