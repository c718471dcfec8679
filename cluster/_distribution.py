"""Distribution: the I/O driver of a distributed node's connections.

One ``Distribution`` per distributed node. It is the node's router
(``NetworkRouter``), and it owns the listener, one ``Peer`` per connected
node (``_peer``), and the membership tasks (seeds, discovery). What to
connect to, which of two crossing connections to keep, and who to tell is
decided by the pure ``Membership`` core (``_membership``); this module runs
the handshakes and the connections, and carries out those decisions
(``_apply``).

Failure semantics (otp-semantics P29, D14, D15): when a connection is lost,
every link across it delivers ``"noconnection"``, every monitor
``Down(..., "noconnection")``, ``monitor_nodes`` subscribers get
``NodeDown`` after every signal that came over the connection, and the next
send to the node connects again. A node restarted under the same name has a
new creation; pids of the old incarnation never reach it.

Hardening: at most ``max_unauthenticated`` incoming connections may be
waiting to authenticate at once (past it, the oldest is dropped, and a
listener out of file descriptors drops one to make room); a failed incoming
handshake is logged once per peer address, then counted, and the count
logged every ``FAILURE_LOG_PERIOD`` seconds; gossip and the dials it asks for
are bounded by the ``Membership`` core.

Connection setup (D11, D12): two nodes that dial each other at once keep one
connection, the one dialled by the node whose name sorts first, and decide so
before either side uses it (see ``Membership``). A peer that connects while
an older connection to it is still registered here (it restarted, or it lost
the connection first) replaces it: ``NodeDown`` for the old one, then
``NodeUp``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio
from beamlet.actors import Pid
from beamlet.actors.lowlevel import Node

from . import _wire as wire
from ._cookie import Cookie
from ._errors import ConnectError
from ._frames import DEFAULT_MAX_FRAME_SIZE
from ._limits import MAX_UNAUTHENTICATED, FailureLog, OldestFirst
from ._membership import (
    AUTO_CONNECT,
    Cancel,
    Close,
    Dial,
    Down,
    Fail,
    Flush,
    Gossip,
    Handshake,
    Membership,
    Up,
)
from ._messages import NodeDown, NodeUp
from ._peer import DistributionBusyError, Peer
from ._router import NetworkRouter
from ._transport import (
    Transport,
    certificate_problem,
    describe_failure,
    peer_host,
    split_address,
)

__all__ = ["AUTO_CONNECT", "NODE_TYPES", "Distribution", "DistributionBusyError", "Peer"]

logger = logging.getLogger("beamlet.cluster")

#: How many recent connection failures are kept for ``connect(raise_on_error=True)``.
MAX_CONNECT_ERRORS = 256

#: What ``nodes`` and ``monitor_nodes`` can be asked for.
NODE_TYPES = ("visible", "hidden", "all")


def check_node_type(node_type: str) -> None:
    """Raise ``ValueError`` unless ``node_type`` is one of ``NODE_TYPES``."""
    if node_type not in NODE_TYPES:
        raise ValueError(f"node_type is one of {', '.join(NODE_TYPES)}, not {node_type!r}")


class Distribution(NetworkRouter):
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
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        busy_limit: int = 1024 * 1024,
        seed_interval: float = 2.0,
        connect_all: bool = True,
        discovery: tuple[Any, ...] = (),
        hidden: bool = False,
        auto_connect: str = "always",
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
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
        self.auto_connect = auto_connect
        self.membership = Membership(
            node.name,
            hidden=hidden,
            auto_connect=auto_connect,
            connect_all=connect_all,
            now=trio.current_time(),
        )
        self.membership.closed = True  # until ``run`` starts
        self.listen_address: str | None = None
        #: The connected nodes (the membership core's table).
        self.peers = self.membership.peers
        self._done: dict[str, trio.Event] = {}  # node -> set when what waits for it is settled
        self._subscribers: dict[Pid, str] = {}  # monitor_nodes: pid -> node type
        self._node_watchers: dict[str, list[Pid]] = {}  # monitor_node
        self._nursery: trio.Nursery | None = None
        self.closed = False
        self.max_unauthenticated = max_unauthenticated
        #: Incoming handshakes not authenticated yet (their cancel scopes), oldest first.
        self._unauthenticated = OldestFirst(max_unauthenticated)
        #: Failed incoming handshakes, per peer address: the first logged, then counted.
        self.failures = FailureLog()
        #: Failed outgoing connections, per address: the first logged, then counted.
        self.dial_failures = FailureLog()
        #: The last failure to connect, by address and by node name (the most recent kept).
        self._connect_errors: dict[str, ConnectError] = {}
        self._dialer_wake = trio.Event()
        # Traffic of the connections that have closed (see ``traffic``).
        self._closed_bytes_in = 0
        self._closed_bytes_out = 0

    # -- running -------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, connect to seeds, and serve connections until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.listen_address = await nursery.start(
                self.transport.serve, self.host, self.port, _Acceptor(self)
            )
            membership = self.membership
            membership.name = self.node.name
            membership.listen_address = self.listen_address
            membership.closed = self.closed
            nursery.start_soon(self._dial_loop)
            nursery.start_soon(self._report_failures)
            if self.seeds:
                nursery.start_soon(self._seed_loop)
            for strategy in self.discovery:
                nursery.start_soon(strategy.run, self)
            task_status.started(self.listen_address)

    async def _seed_loop(self) -> None:
        while True:
            for address in self.seeds:
                self.connect_soon(address)
            await trio.sleep(self.seed_interval)

    async def _dial_loop(self) -> None:
        """Start the dials that gossip, seeds and discovery asked for, within the limits."""
        membership = self.membership
        while True:
            self._dialer_wake = trio.Event()
            now = trio.current_time()
            membership.pump(now)
            self._apply()
            deadline = membership.next_pump(now)
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._dialer_wake.wait()

    async def _report_failures(self) -> None:
        """Log, every period, how many failed handshakes and connection attempts
        were not logged one by one."""
        failures = self.failures
        while True:
            await trio.sleep(failures.period)
            now = trio.current_time()
            for source, count, seconds in failures.flush(now):
                logger.warning(
                    "%d more failed incoming handshake%s from %s in the last %.0f s",
                    count,
                    "s" if count > 1 else "",
                    "other addresses" if source is None else source,
                    seconds,
                )
            for source, count, seconds in self.dial_failures.flush(now):
                logger.warning(
                    "%d more failed connection attempt%s to %s in the last %.0f s",
                    count,
                    "s" if count > 1 else "",
                    "other addresses" if source is None else source,
                    seconds,
                )

    def _dial_failed(self, name: str | None, address: str, reason: str) -> None:
        """Keep why connecting to ``address`` (``name``) failed, and log it: the first
        failure to an address at WARNING, the next ones counted (``_report_failures``)."""
        error = ConnectError(reason, node=name, address=address)
        errors = self._connect_errors
        for key in (address, name):
            if key is not None:
                errors.pop(key, None)
                errors[key] = error
        while len(errors) > MAX_CONNECT_ERRORS:
            del errors[next(iter(errors))]
        if self.dial_failures.note(address, trio.current_time()):
            logger.warning("%s", error)
        else:
            logger.debug("%s", error)

    def _failure_reason(self, failure: BaseException) -> str:
        """Why an outgoing connection failed, in words."""
        if isinstance(failure, trio.TooSlowError):
            return f"no handshake within handshake_timeout={self.handshake_timeout} s"
        if isinstance(failure, wire.RefusedError):
            hint = (
                " (the two nodes have different cookies)" if failure.reason == "bad cookie" else ""
            )
            return f"refused by the peer: {failure.reason}{hint}"
        if isinstance(failure, wire.ProtocolError):
            return str(failure)
        return describe_failure(failure)

    def _handshake_failed(self, source: str, message: str, *args: Any) -> None:
        """Log a failed incoming handshake: the first from ``source`` in full, the next counted."""
        if self.failures.note(source, trio.current_time()):
            logger.warning(message, *args)
        else:
            logger.debug(message, *args)

    def make_room(self) -> bool:
        """Drop the oldest incoming connection not authenticated yet; whether there was one."""
        oldest = self._unauthenticated.pop_oldest()
        if oldest is None:
            return False
        assert isinstance(oldest, trio.CancelScope)
        oldest.cancel()
        return True

    @property
    def addresses(self) -> dict[str, str]:
        """Where each known node listens: node name -> ``"host:port"``."""
        return self.membership.addresses

    def is_connected_to(self, address: str) -> bool:
        """Whether this node is, or is getting, connected to the node at ``address``."""
        return self.membership.is_connected_to(address)

    def connect_soon(self, address: str) -> None:
        """Connect to ``address`` in the background, unless connected or connecting to it.

        An address whose node is known (it connected before, or gossip told)
        is dialled as that node, so that two nodes dialling each other at once
        settle on one connection; an unknown address is dialled blind.
        """
        self.membership.dial_soon(address, trio.current_time())
        self._apply()

    # -- carrying out the core's decisions --------------------------------------------

    def _apply(self) -> None:
        """Carry out what the membership core decided, in order."""
        membership = self.membership
        if membership.wake:
            membership.wake = False
            self._dialer_wake.set()
        for effect in membership.take():
            if type(effect) is Dial:
                self._dial(effect)
            elif type(effect) is Gossip:
                self._gossip(effect.peer, effect.entries)
            elif type(effect) is Up:
                self._node_up(effect.peer)
            elif type(effect) is Flush:
                self._flush(effect)
            elif type(effect) is Down:
                self._node_down(effect.peer, effect.reason)
            elif type(effect) is Close:
                effect.peer.close(effect.reason)
            elif type(effect) is Fail:
                self._connect_failed(effect)
            elif type(effect) is Cancel:
                effect.handshake.token.cancel()

    def _dial(self, dial: Dial) -> None:
        assert self._nursery is not None
        if dial.handshake is None:  # blind, from ``connect_soon``
            address = dial.address

            async def blind() -> None:
                try:
                    await self._connect(None, address, None)
                finally:
                    self.membership.blind_dial_ended(address)

            self._nursery.start_soon(blind)
            return
        dial.handshake.token = trio.CancelScope()
        self._nursery.start_soon(self._connect, dial.name, dial.address, dial.handshake)

    def _settled(self, name: str) -> None:
        done = self._done.pop(name, None)
        if done is not None:
            done.set()

    def _flush(self, flush: Flush) -> None:
        peer = flush.peer
        for event, control in flush.queue:
            try:
                peer.emit(event, control=control)
            except (TypeError, ValueError, DistributionBusyError) as exc:
                logger.warning("dropped a signal queued for %s: %r", flush.name, exc)
                self._undeliverable(flush.name, event)
        self._settled(flush.name)

    def _connect_failed(self, fail: Fail) -> None:
        for event, _control in fail.queue:
            self._undeliverable(fail.name, event)
        self._settled(fail.name)
        self._notify_watchers(fail.name, "connection_setup_failed")

    async def _settle(self, name: str) -> None:
        """Wait until what waits for ``name`` (a connection under way) is settled."""
        done = self._done.get(name)
        if done is None:
            done = self._done[name] = trio.Event()
        await done.wait()

    # -- connection setup ------------------------------------------------------------

    def _session(self, initiator: bool) -> wire.Session:
        return wire.Session(
            initiator=initiator,
            name=self.node.name,
            creation=self.node.creation,
            cookie=self.cookie,
            max_frame_size=self.max_frame_size,
            hidden=self.hidden,
        )

    async def _accept(self, stream: trio.abc.Stream) -> None:
        session = self._session(initiator=False)
        membership = self.membership
        source = peer_host(stream)
        hello: str | None = None
        handle: Handshake | None = None
        ok = False
        duplicate = False
        scope = trio.CancelScope()
        oldest = self._unauthenticated.add(scope)
        if oldest is not None:  # too many wait to authenticate: the oldest gives way
            assert isinstance(oldest, trio.CancelScope)
            oldest.cancel()

        def observe(event: Any) -> str | None:
            nonlocal hello, handle
            if isinstance(event, wire.Hello):
                problem = certificate_problem(stream, event.node)
                if problem is not None:
                    return f"{event.node}: {problem}"
                hello = event.node
                membership.hello(hello)
                return None
            if isinstance(event, wire.Connected):
                self._unauthenticated.discard(scope)  # authenticated: never dropped as such
                handle = membership.accepted(event.peer_name, event.peer_creation)
                self._apply()
                if handle is None:
                    nonlocal duplicate
                    duplicate = True
                    return wire.SIMULTANEOUS
            return None

        try:
            with scope, trio.fail_after(self.handshake_timeout):
                peer_name, peer_creation = await session.handshake(stream, observe)
                ok = True
        except BaseException as exc:
            membership.accept_failed(handle)
            if isinstance(exc, trio.TooSlowError):
                self._handshake_failed(
                    source,
                    "handshake timed out after %s s on an incoming connection from %s (%s)",
                    self.handshake_timeout,
                    source,
                    hello or "an unknown peer",
                )
            elif duplicate:
                logger.info("refused a second connection from %s: %s", hello, exc)
            elif isinstance(exc, wire.ProtocolError):
                self._handshake_failed(
                    source,
                    "refused an incoming connection from %s (%s): %s",
                    source,
                    hello or "no name",
                    exc,
                )
            elif isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
                self._handshake_failed(
                    source,
                    "incoming connection from %s (%s) failed during the handshake: %s",
                    source,
                    hello or "no name yet",
                    describe_failure(exc),
                )
            else:
                raise
            return
        finally:
            self._unauthenticated.discard(scope)
            if hello is not None:
                membership.hello_ended(hello, ok)
                self._apply()
        if not ok:  # dropped to make room
            membership.accept_failed(handle)
            self._handshake_failed(
                source,
                "dropped an incoming connection from %s (%s) that had not authenticated: "
                "more than max_unauthenticated=%d were waiting",
                source,
                hello or "no name",
                self.max_unauthenticated,
            )
            return
        await self._run_peer(session, stream, peer_name, peer_creation, False, None, handle)

    async def _connect(
        self, name: str | None, address: str, handle: Handshake | None
    ) -> str | None:
        """Dial ``address`` (where ``name`` listens, if known); return the peer's name once it is up.

        Returns None if the connection failed, or the name of the node found
        there if it was already connected (or getting connected).
        """
        membership = self.membership
        session = self._session(initiator=True)
        scope = handle.token if handle is not None else trio.CancelScope()
        assert isinstance(scope, trio.CancelScope)
        found: str | None = name
        mismatch = duplicate = answered = False

        def observe(event: Any) -> str | None:
            nonlocal handle, found, answered
            if isinstance(event, wire.Challenge):
                found = event.node
                answered = True
                if name is not None and event.node != name:
                    nonlocal mismatch
                    mismatch = True
                    return f"{address} is {event.node}, not {name}"
                problem = certificate_problem(stream, event.node) if stream is not None else None
                if problem is not None:
                    return f"{event.node} at {address}: {problem}"
                if handle is None:
                    handle = membership.challenged(event.node, scope)
                    self._apply()
                    if handle is None:
                        nonlocal duplicate
                        duplicate = True
                        return "already connected"
            elif isinstance(event, wire.Connected) and handle is not None:
                membership.commit(handle)
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
            membership.dial_ended(name, address, handle, found, "failed")
            self._apply()
            raise
        if failure is not None or scope.cancelled_caught:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            simultaneous = (
                isinstance(failure, wire.RefusedError) and failure.reason == wire.SIMULTANEOUS
            )
            if mismatch:
                assert failure is not None
                self._dial_failed(name, address, str(failure))
                outcome = "mismatch"  # another node listens there now
            elif duplicate:
                outcome = "duplicate"
            elif simultaneous:
                # The peer keeps the connection it is making to this node.
                assert isinstance(failure, wire.RefusedError)
                logger.info("%s answered %s: waiting for its own connection", found, failure.reason)
                outcome = "simultaneous"
            else:
                if failure is not None:
                    self._dial_failed(found, address, self._failure_reason(failure))
                outcome = "failed"
            other = membership.dial_ended(name, address, handle, found, outcome, answered=answered)
            self._apply()
            if other is not None:
                await self._wait_other(other)
                return other if other in self.peers else None
            return None
        assert stream is not None
        assert self._nursery is not None
        up: str | None = await self._nursery.start(
            self._run_peer, session, stream, peer_name, peer_creation, True, address, handle
        )
        return up

    async def _wait_other(self, name: str) -> None:
        """Wait (a while) for another connection to ``name`` that is under way."""
        if self.membership.expect(name):
            with trio.move_on_after(self.handshake_timeout):
                await self._settle(name)
        self.membership.wait_ended(name)
        self._apply()

    async def _run_peer(
        self,
        session: wire.Session,
        stream: trio.abc.Stream,
        name: str,
        creation: int,
        initiated: bool,
        address: str | None,
        handle: Handshake | None,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        peer = Peer(self, session, stream, name, creation, initiated)
        if not self.membership.up(peer, name, address, handle):
            await trio.aclose_forcefully(stream)
            task_status.started(None)
            return
        self._apply()
        task_status.started(name)
        try:
            await peer.run()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            self.membership.down(name, peer, peer.close_reason)
            self._closed_bytes_in += peer.bytes_in
            self._closed_bytes_out += peer.bytes_out
            self._apply()

    # -- membership -------------------------------------------------------------------

    def _node_up(self, peer: Peer) -> None:
        logger.info("node %s up%s", peer.name, " (hidden)" if peer.hidden else "")
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
        self.node.node_down(peer.name)
        for pid in self._subscribed(peer):
            self.node.remote_send(pid, NodeDown(peer.name, reason))
        self._notify_watchers(peer.name, reason)

    def _notify_watchers(self, name: str, reason: Any) -> None:
        for pid in self._node_watchers.pop(name, []):
            self.node.remote_send(pid, NodeDown(name, reason))

    # -- the API behind beamlet.cluster ------------------------------------------------

    def traffic(self) -> tuple[int, int]:
        """Bytes read and written by this node's connections since it started: ``(in, out)``.

        What authenticated connections carried (frames, ticks), past and
        present; handshakes are not counted.
        """
        bytes_in, bytes_out = self._closed_bytes_in, self._closed_bytes_out
        for peer in self.peers.values():
            bytes_in += peer.bytes_in
            bytes_out += peer.bytes_out
        return bytes_in, bytes_out

    def nodes(self, node_type: str = "visible") -> list[str]:
        """The connected nodes of ``node_type``: "visible", "hidden" or "all"."""
        check_node_type(node_type)
        if node_type == "all":
            return sorted(self.peers)
        hidden = node_type == "hidden"
        return sorted(name for name, peer in self.peers.items() if peer.hidden == hidden)

    async def connect(self, target: str, *, raise_on_error: bool = False) -> bool:
        """Connect to a node name (whose address is known) or a ``host:port`` address.

        Returns:
            True if connected; False if not (unless ``raise_on_error``).

        Raises:
            ConnectError: not connected, and ``raise_on_error`` is true; it
                says why (``reason``) and names the node and address.

        Cancellation:
            The caller stops waiting; the connection may still come up.
        """
        self._forget_error(target)
        connected = await self._connect_target(target)
        if connected or not raise_on_error:
            return connected
        raise self._connect_error(target)

    def _forget_error(self, target: str) -> None:
        errors = self._connect_errors
        errors.pop(target, None)
        other = self.addresses.get(target) if "@" in target else self.membership.names.get(target)
        if other is not None:
            errors.pop(other, None)

    def _connect_error(self, target: str) -> ConnectError:
        """Why the last attempt to connect to ``target`` failed."""
        errors = self._connect_errors
        named = "@" in target
        other = self.addresses.get(target) if named else self.membership.names.get(target)
        error = errors.get(target) or (errors.get(other) if other is not None else None)
        if error is not None:
            return error
        node, address = (target, other) if named else (other, target)
        if self.closed:
            reason = "this node is shutting down"
        elif named and address is None:
            reason = (
                "no address is known for it: connect to its 'host:port' first, give it as "
                "a seed, or let a connected node tell (gossip)"
            )
        else:
            reason = "the connection was not set up (another attempt to it failed meanwhile)"
        return ConnectError(reason, node=node, address=address)

    async def _connect_target(self, target: str) -> bool:
        if "@" not in target:
            split_address(target)
            name = self.membership.names.get(target)
            if name is None or target == self.listen_address:
                if target == self.listen_address:
                    return True
                return await self._connect(None, target, None) is not None
            target = name
        if target == self.node.name or target in self.peers:
            return True
        if self.closed:
            return False
        waits = self.membership.ask(target)
        self._apply()
        if waits and target in self.membership.waiting:
            await self._settle(target)
        return target in self.peers

    def disconnect(self, name: str) -> bool:
        """Close the connection to node ``name`` (``beamlet.cluster.disconnect``).

        Links and monitors across it fire with reason ``noconnection``, as for
        any lost connection; node monitors get ``NodeDown(name, "disconnect")``.

        Returns:
            True if there was a connection to close; False if not connected.
        """
        peer = self.peers.get(name)
        if peer is None:
            return False
        peer.close("disconnect")
        return True

    def monitor_nodes(self, pid: Pid, flag: bool, node_type: str = "visible") -> bool:
        """Subscribe ``pid`` to ``NodeUp``/``NodeDown`` (``beamlet.cluster.monitor_nodes``).

        Args:
            pid: the local process to tell.
            flag: True to subscribe (again, possibly with another ``node_type``),
                False to stop.
            node_type: "visible", "hidden" or "all": which connections to tell of.

        Returns:
            Whether ``pid`` was subscribed before.

        Raises:
            ValueError: an unknown ``node_type``.
        """
        check_node_type(node_type)
        previous = pid in self._subscribers
        if flag:
            self._subscribers[pid] = node_type
        else:
            self._subscribers.pop(pid, None)
        return previous

    def monitor_node(self, pid: Pid, name: str) -> None:
        """Send ``pid`` one ``NodeDown(name, reason)`` when node ``name`` disconnects
        (``beamlet.cluster.monitor_node``).

        Not connected: a connection to ``name`` is requested when one may come
        (its address is known and auto-connect allows it, or one is under way);
        otherwise, or once this distribution is shut down, ``pid`` gets
        ``NodeDown(name, "connection_setup_failed")`` at once.
        """
        watchers = self._node_watchers.get(name)
        if watchers:  # forget those that died
            watchers[:] = [w for w in watchers if self.node.lookup(w) is not None]
        if name in self.peers:
            self._node_watchers.setdefault(name, []).append(pid)
            return
        if self.closed or not self.membership.watch(name):
            self.node.remote_send(pid, NodeDown(name, "connection_setup_failed"))
            return
        self._node_watchers.setdefault(name, []).append(pid)
        self._apply()

    def shutdown(self) -> None:
        """Stop distributing (the node is leaving): no new connections, the
        handshakes that can be cancelled, and every connection closed: its links
        and monitors fire ``noconnection``, node monitors get
        ``NodeDown(name, "shutdown")``."""
        self.closed = True
        self.membership.shutdown()
        for peer in list(self.peers.values()):
            peer.close("shutdown")
        self._apply()


class _Acceptor:
    """The listener's handler: ``Distribution._accept``, and its ``make_room``."""

    __slots__ = ("_dist",)

    def __init__(self, dist: Distribution) -> None:
        self._dist = dist

    async def __call__(self, stream: trio.abc.Stream) -> None:
        await self._dist._accept(stream)

    def make_room(self) -> bool:
        return self._dist.make_room()
