"""A connection's I/O driver: one ``Peer`` per authenticated connection.

Per connection there are three Trio tasks: a reader that feeds the sans-IO
protocol and dispatches the control messages to the node, a writer that sends
everything queued since its last write in one ``send_all`` (frames are
batched per connection; nothing awaits per message), and a ticker that keeps
idle connections alive and declares a silent peer down after ``ticktime``.
On a TCP connection (POSIX), a message sent while the connection is idle is
written at once by the sender, and the reader waits for data before reading
it: a request and its answer then cost one task switch per hop, not three
(see ``Peer._queue``).

Backpressure: each connection's outgoing buffer is bounded by
``busy_limit`` bytes, counting what is queued and what is being written.
Past it, ``send`` to that node raises ``DistributionBusyError`` in the sender:
nothing is dropped silently and memory stays bounded. Exit, link and monitor
signals, and the replies to calls, are never refused.
"""

from __future__ import annotations

import logging
import os
import select
from typing import TYPE_CHECKING, Any

import trio
from beamlet.actors import Pid
from beamlet.actors.lowlevel import BadInputLog, Reply

from . import _wire as wire
from ._events import Capability, ConnectionClosed, Send
from ._messages import RUNTIME_SIGNALS
from ._ticks import TickState

if TYPE_CHECKING:
    from ._distribution import Distribution

__all__ = ["DISPATCH_BATCH", "DistributionBusyError", "Peer"]

logger = logging.getLogger("beamlet.cluster")


#: Events dispatched at a time by a connection's reader (see ``Peer._apply_pending``).
DISPATCH_BATCH = 128

#: Why a ``Reply`` (or a down signal) from a peer is refused: it answers a
#: call, or reports a monitor, of a process on another node.
NOT_FROM_PEER = "only the node of the process it answers for sends those"


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
        #: Bytes read from and written to the connection since it came up.
        self.bytes_in = 0
        self.bytes_out = 0
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
        self._remote_reply = dist.node.remote_reply
        self._apply_event = dist.dispatch
        self.bad_input = BadInputLog(f"connection to {name}", logger)
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
            self.bytes_out += sent
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
                    msg = event.msg
                    kind = type(msg)
                    if kind is Reply:
                        if not self._remote_reply(self.name, event.to_pid, msg):
                            self.forged_reply(msg)
                    elif kind in RUNTIME_SIGNALS:
                        self.forged(msg)
                    else:
                        remote_send(event.to_pid, msg)
                else:
                    dispatch(self, event)
            except Exception as exc:  # a bug, or a value the node cannot take
                logger.exception("closing the connection to %s: cannot apply %r", self.name, event)
                self.close_reason = ("protocol_error", repr(exc))
                return False
        return True

    def forged(self, msg: Any) -> None:
        """A plain message that only the runtime may deliver (``RUNTIME_SIGNALS``): dropped."""
        self.bad_input.report(
            f"message ({type(msg).__name__}: only the runtime delivers those)", msg, "forged"
        )

    def forged_reply(self, msg: Any) -> None:
        """A ``Reply`` or down signal for a call or monitor of a process not on this peer: dropped.

        Refs are sequential: a peer that has seen one can guess the next, and
        answer a call made to another node, as if it were that node.
        """
        self.bad_input.report(f"{type(msg).__name__.lower()} ({NOT_FROM_PEER})", msg, "forged")

    async def _apply_pending(self) -> bool:
        """Dispatch the events buffered, a batch at a time; False: close the connection.

        Small batches keep few events alive at once: the garbage collector,
        which runs after so many allocations of objects not yet freed, then
        rarely runs because of them (with whole 64 KiB reads, it did for
        about a sixth of the receiving node's time).

        A large frame is decoded a step at a time (``conn.decoding``), with a
        checkpoint between steps: the node's other tasks run meanwhile, and
        this connection's events keep their order. The ticker counts the
        time spent so as time receiving.
        """
        conn = self.session.conn
        next_events = conn.next_events
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
            if conn.decoding:
                self._unrecorded = True
                await trio.lowlevel.checkpoint()
            elif len(events) < DISPATCH_BATCH:
                return True  # that was all

    async def _reader(self) -> None:
        stream = self.stream
        session = self.session
        ticks = self.ticks
        if not await self._apply_pending():
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
            self.bytes_in += len(data)
            try:
                events = receive_events(data, DISPATCH_BATCH)
            except wire.ProtocolError as exc:
                self.close_reason = ("protocol_error", str(exc))
                logger.warning("closing the connection to %s: %s", self.name, exc)
                return
            if not self._dispatch(events) or (conn.failure is not None and self._failed()):
                return
            if (len(events) == DISPATCH_BATCH or conn.decoding) and not await self._apply_pending():
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
            self.bytes_out += len(data)
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
            if action == "check":
                # Silent for a whole ticktime by the clock. But this node may
                # have been paused (SIGSTOP, a long GC, a blocked loop) while
                # the peer kept talking: its timers then expire together with
                # the reader's wake-up. Read what is waiting before judging.
                await trio.lowlevel.cancel_shielded_checkpoint()  # the reader goes first
                now = trio.current_time()
                if self._unrecorded or self._bytes_waiting():
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

    def _bytes_waiting(self) -> bool:
        """Whether bytes from the peer wait, unread, on the socket (TCP and TLS only)."""
        stream = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        if not isinstance(stream, trio.SocketStream) or not hasattr(select, "poll"):
            return False
        poller = select.poll()
        poller.register(stream.socket.fileno(), select.POLLIN)
        return any(events & select.POLLIN for _fd, events in poller.poll(0))

    async def wait_drained(self) -> None:
        """Wait until everything queued so far has been written."""
        while self.out_bytes:
            await self._drained.park()
