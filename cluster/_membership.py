"""Membership and connection arbitration: which connections to make, keep and drop.

A pure core, as ``_connection`` is for the wire: no Trio, no I/O, no clock.
The driver (``Distribution``) tells it what happened (a node is wanted, a
handshake saw the peer's name, a connection came up or went down, gossip
came in) and carries out what it decides, which it returns as effects
(``take()``): dial an address, cancel a handshake, deliver or fail the
signals that waited for a node, gossip, announce a node up or down, close a
replaced connection.

Arbitration (otp-semantics D11, D12). Two nodes may dial each other at once,
and a node may dial an address without knowing who listens there. As Erlang
does, each side lets at most one handshake per node go on: ``_claim`` is asked
when the peer's name is known (before a named dial, at the challenge of a
blind dial, and once the initiator is authenticated on the acceptor) and
settles on the connection initiated by the node whose name sorts first. So
both sides keep the same connection, and nothing is ever sent on one that the
other side drops. A peer that connects while an older connection to it is
still registered here (it restarted, or it lost the connection first)
replaces it: the old one goes down, then the new one comes up.

One exception: the node whose name sorts first refuses a connection from a
peer of the same creation while the connection it dialled to that peer is up.
That connection is the one both sides keep: the peer gives its own dial up
when it accepts ours, but may have sent its proof already, so its dial can
still reach this node after ours is up; taking it as a replacement would drop
the connection the peer keeps while the peer drops the new one, and leave
neither. The cost: a peer that lost our connection before this node noticed
(a half-open connection) is refused until this node notices it too (at once
for a closed TCP connection, after ``ticktime`` for a silent one). A peer
that restarted has a new creation and replaces the old connection at once.

Per node name, the core knows:

- ``peers``: the live connection (an object of the driver's, with ``hidden``
  and ``address`` attributes);
- ``handshakes``: the one handshake that may go on (``Handshake``);
- ``hellos``: incoming handshakes that named it and are not authenticated yet;
- ``waiting``: the signals queued until a connection is up (or fails);
- ``barred``: with ``auto_connect`` "once" or "never", the nodes that went
  down and that only an explicit ``connect`` (or their own) brings back;
- ``addresses`` and ``names``: where each node listens, both ways.

Bounds (what a peer's gossip, or a flood, can make a node do): the address
book keeps at most ``max_known_nodes`` entries (giving up first the oldest
that never answered); an address learned from gossip that does not answer a
dial is forgotten; and the dials that gossip, seeds and discovery start are
spaced by a token bucket (``dial_rate`` a second) and at most ``max_dials``
go on at once; the others wait in ``pending``, which ``pump`` starts when
``next_pump`` says. Explicit connections (``connect``, a send) are not held
back. Gossip is taken only for names that are node names and addresses that
are ``host:port``.

Nothing is left waiting for ever: signals queued for a node are delivered when
a connection comes up, or failed as soon as no connection to it is up or under
way (``_maybe_fail``).
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import attrs

from ._events import is_valid_node_name, validate_address
from ._limits import DIAL_BURST, DIAL_RATE, MAX_BACKGROUND_DIALS, MAX_KNOWN_NODES, TokenBucket

__all__ = [
    "AUTO_CONNECT",
    "Cancel",
    "Close",
    "Dial",
    "Down",
    "Effect",
    "Fail",
    "Flush",
    "Gossip",
    "Handshake",
    "Membership",
    "Outcome",
    "PeerLike",
    "Up",
]

#: The connection policies (Erlang's ``dist_auto_connect``): "always" connects
#: on first use and after every disconnect; "once" does not reconnect by itself
#: to a node that went down; "never" connects only when asked (``connect``,
#: seeds, discovery).
AUTO_CONNECT = ("always", "once", "never")


class PeerLike(Protocol):
    """What the core needs of a connection: is it hidden, where does the peer listen,
    did this node dial it, and the peer's creation (its incarnation)."""

    hidden: bool
    address: str | None
    initiated: bool
    creation: int


P = TypeVar("P", bound=PeerLike)


@attrs.define(eq=False)
class Handshake:
    """A handshake with a known node: at most one per node goes on.

    Attributes:
        name: the peer's node name.
        initiated: this node dialled.
        committed: the peer may already count on this connection: it can no
            longer be cancelled (an acceptor's, or an initiator's once
            connected).
        token: the driver's handle on it (what ``Cancel`` cancels); opaque here.
        background: a dial that gossip, a seed or discovery started (counted
            against ``max_dials`` until it ends).
    """

    name: str
    initiated: bool
    committed: bool = False
    token: Any = None
    background: bool = False


# -- effects: what the driver must do ----------------------------------------------------


@attrs.frozen(eq=False)
class Dial:
    """Dial ``address``: as node ``name`` (with its ``handshake``), or blind (both None)."""

    name: str | None
    address: str
    handshake: Handshake | None


@attrs.frozen(eq=False)
class Cancel:
    """Give ``handshake`` up: the connection both sides keep is another one."""

    handshake: Handshake


@attrs.frozen(eq=False)
class Flush:
    """A connection to ``name`` is up: send it the signals that waited, in order."""

    name: str
    peer: Any
    queue: list[tuple[Any, bool]]


@attrs.frozen(eq=False)
class Fail:
    """No connection to ``name`` came up: fail the signals that waited, and the waiters."""

    name: str
    queue: list[tuple[Any, bool]]


@attrs.frozen(eq=False)
class Gossip:
    """Tell ``peer`` where these nodes listen."""

    peer: Any
    entries: list[tuple[str, str | None]]


@attrs.frozen(eq=False)
class Up:
    """``peer`` is connected: announce it (``NodeUp``)."""

    peer: Any


@attrs.frozen(eq=False)
class Down:
    """``peer`` is gone: fire its links and monitors, announce it (``NodeDown``)."""

    peer: Any
    reason: Any


@attrs.frozen(eq=False)
class Close:
    """Close the connection ``peer`` (replaced by a newer one)."""

    peer: Any
    reason: Any


Effect = Dial | Cancel | Flush | Fail | Gossip | Up | Down | Close

#: How a dial ended without a connection (see ``Membership.dial_ended``).
Outcome = str  # "failed" | "mismatch" | "duplicate" | "simultaneous"


class Membership(Generic[P]):
    """The membership and arbitration state of one distributed node.

    Args:
        name: this node's name.
        hidden: this node is hidden (its connections carry no gossip).
        auto_connect: "always", "once" or "never" (see ``AUTO_CONNECT``).
        connect_all: connect to every node gossip reveals.
        max_known_nodes: the most addresses kept.
        dial_rate: background dials a second (``dial_burst`` at once).
        dial_burst: see ``dial_rate``.
        max_dials: background dials under way at once.
        now: the time it starts (for the dial rate).

    Raises:
        ValueError: an unknown ``auto_connect``, or a bad bound.
    """

    def __init__(
        self,
        name: str,
        *,
        hidden: bool = False,
        auto_connect: str = "always",
        connect_all: bool = True,
        max_known_nodes: int = MAX_KNOWN_NODES,
        dial_rate: float = DIAL_RATE,
        dial_burst: int = DIAL_BURST,
        max_dials: int = MAX_BACKGROUND_DIALS,
        now: float = 0.0,
    ) -> None:
        if auto_connect not in AUTO_CONNECT:
            raise ValueError(
                f"auto_connect is one of {', '.join(AUTO_CONNECT)}, not {auto_connect!r}"
            )
        self.name = name
        self.hidden = hidden
        self.auto_connect = auto_connect
        self.connect_all = connect_all
        self.listen_address: str | None = None
        #: No new connection is made or kept (the node is shutting down).
        self.closed = False
        self.peers: dict[str, P] = {}
        self.addresses: dict[str, str] = {}  # node name -> listen address
        self.names: dict[str, str] = {}  # listen address -> node name
        self.dialing: set[str] = set()  # addresses dialled without a known name
        self.handshakes: dict[str, Handshake] = {}
        self.hellos: dict[str, int] = {}
        self.waiting: dict[str, list[tuple[Any, bool]]] = {}
        self.barred: set[str] = set()
        #: Nodes that answered at their address (connected at least once).
        self.answered: set[str] = set()
        if max_known_nodes < 1 or max_dials < 1:
            raise ValueError("max_known_nodes and max_dials must be >= 1")
        self.max_known_nodes = max_known_nodes
        self.max_dials = max_dials
        self._bucket = TokenBucket(dial_rate, dial_burst, now)
        #: Background dials under way (named and blind).
        self.background = 0
        #: Background dials held back by the limits: node -> address, and blind addresses.
        self.pending: dict[str, str] = {}
        self.pending_blind: dict[str, None] = {}
        #: A dial was held back, or a background dial ended: ``pump`` may have work.
        self.wake = False
        self._effects: list[Effect] = []

    def take(self) -> list[Effect]:
        """Return and forget the effects decided since the last call, in order."""
        effects = self._effects
        if effects:
            self._effects = []
        return effects

    # -- the address book --------------------------------------------------------------

    def remember(self, name: str, address: str) -> bool:
        """Record that ``name`` listens on ``address``; False if the book is full.

        A full book gives up its oldest entry that never answered, else its
        oldest entry of a node neither connected nor getting connected.
        """
        old = self.addresses.get(name)
        if old == address:
            return True
        if old is None and len(self.addresses) >= self.max_known_nodes and not self._evict():
            return False
        if old is not None and self.names.get(old) == name:
            del self.names[old]
        self.addresses[name] = address
        self.names[address] = name
        peer = self.peers.get(name)
        if peer is not None:
            peer.address = address
        return True

    def _evict(self) -> bool:
        busy = (self.peers, self.handshakes, self.waiting)
        victim = None
        for name in self.addresses:
            if any(name in table for table in busy):
                continue
            if name not in self.answered:
                victim = name
                break
            if victim is None:
                victim = name
        if victim is None:
            return False
        self.forget(victim, self.addresses[victim])
        return True

    def forget(self, name: str, address: str) -> None:
        """Forget that ``name`` listens on ``address`` (another node answered there)."""
        if self.addresses.get(name) == address:
            del self.addresses[name]
            self.answered.discard(name)
            self.pending.pop(name, None)
        if self.names.get(address) == name:
            del self.names[address]

    def is_connected_to(self, address: str) -> bool:
        """Whether this node is, or is getting, connected to the node at ``address``."""
        if address == self.listen_address:
            return True
        name = self.names.get(address)
        return name is not None and (name in self.peers or name in self.handshakes)

    # -- policy ------------------------------------------------------------------------

    def may_auto_connect(self, name: str) -> bool:
        """Whether a use of ``name`` (a send, link, monitor, gossip) may connect to it."""
        policy = self.auto_connect
        return policy == "always" or (policy == "once" and name not in self.barred)

    # -- arbitration -------------------------------------------------------------------

    def _claim(
        self, name: str, initiated: bool, token: Any = None, creation: int | None = None
    ) -> Handshake | None:
        """Let a handshake with ``name`` go on (return its handle), or say to give it up.

        ``creation``: the peer's, for an incoming handshake.
        """
        if initiated and name in self.peers:
            return None  # already connected; a blind dial found a known node
        existing = self.peers.get(name)
        if (
            not initiated
            and existing is not None
            and existing.initiated
            and self.name < name
            and existing.creation == creation
        ):
            # The connection both sides keep is up: this is a dial the peer gave up
            # when it accepted ours, after it had sent its proof (see the module doc).
            return None
        other = self.handshakes.get(name)
        if other is not None:
            preferred = initiated == (self.name < name)
            if other.committed or other.initiated == initiated or not preferred:
                return None
            self._effects.append(Cancel(other))  # ours is the one both sides keep
        handle = Handshake(name, initiated, committed=not initiated, token=token)
        self.handshakes[name] = handle
        return handle

    def _release(self, handle: Handshake | None) -> None:
        if handle is None:
            return
        if handle.background:
            handle.background = False
            self.background -= 1
            self.wake = True
        if self.handshakes.get(handle.name) is handle:
            del self.handshakes[handle.name]

    def _maybe_fail(self, name: str | None) -> None:
        """Fail what waits for ``name`` if no connection to it is up or under way."""
        if (
            name is not None
            and name in self.waiting
            and name not in self.peers
            and name not in self.handshakes
            and not self.hellos.get(name)
        ):
            self._effects.append(Fail(name, self.waiting.pop(name)))

    # -- what the driver asks ------------------------------------------------------------

    def request(
        self, name: str, address: str | None, *, queue: bool = True, background: bool = False
    ) -> None:
        """Connect to ``name`` (at ``address``, if known) unless connected or connecting.

        With ``queue``, signals may wait for the connection (``route``).
        Decides a ``Dial`` if no handshake with ``name`` goes on.
        """
        if self.closed or name in self.peers:
            return
        if queue and name not in self.waiting:
            self.waiting[name] = []
        if address is None or name in self.handshakes:
            return  # the handshake under way will do
        handle = self._claim(name, True)
        if handle is not None:
            if background:
                handle.background = True
                self.background += 1
            self._effects.append(Dial(name, address, handle))

    # -- background dials: gossip, seeds, discovery ---------------------------------------

    def _may_dial(self, now: float) -> bool:
        return self.background < self.max_dials and self._bucket.take(now)

    def _dial_named(self, name: str, address: str, now: float) -> None:
        if self.closed or name in self.peers or name in self.handshakes:
            return
        if self._may_dial(now):
            self.pending.pop(name, None)
            self.request(name, address, queue=False, background=True)
        else:
            self.pending[name] = address
            self.wake = True

    def _dial_blind(self, address: str, now: float) -> None:
        if address in self.dialing:
            return
        if self._may_dial(now):
            self.pending_blind.pop(address, None)
            self.dialing.add(address)
            self.background += 1
            self._effects.append(Dial(None, address, None))
        elif len(self.pending_blind) < self.max_known_nodes:
            self.pending_blind[address] = None
            self.wake = True

    def pump(self, now: float) -> None:
        """Start the background dials held back, as far as the limits allow."""
        while (self.pending or self.pending_blind) and self.background < self.max_dials:
            if not self._bucket.take(now):
                return
            if self.pending:
                name, address = next(iter(self.pending.items()))
                del self.pending[name]
                if (
                    self.closed
                    or name in self.peers
                    or name in self.handshakes
                    or name in self.barred
                    or self.addresses.get(name) != address
                ):
                    continue  # no longer wanted, or no longer allowed
                self.request(name, address, queue=False, background=True)
            else:
                address = next(iter(self.pending_blind))
                del self.pending_blind[address]
                if self.closed or address in self.dialing or self.is_connected_to(address):
                    continue
                self.dialing.add(address)
                self.background += 1
                self._effects.append(Dial(None, address, None))

    def next_pump(self, now: float) -> float | None:
        """When ``pump`` can start a dial held back; None: nothing can start now."""
        if not (self.pending or self.pending_blind) or self.background >= self.max_dials:
            return None
        return self._bucket.next_time(now)

    def route(self, name: str) -> list[tuple[Any, bool]] | None:
        """Where a signal for ``name`` (not connected) waits; None: nowhere (drop it).

        A signal may start a connection, as the ``auto_connect`` policy allows.
        """
        queue = self.waiting.get(name)
        if queue is not None:
            return queue
        if self.closed:
            return None
        underway = name in self.handshakes
        if not self.may_auto_connect(name) and not underway:
            return None  # the policy starts no connection, and none is under way
        address = self.addresses.get(name)
        if address is None and not underway:
            return None
        self.request(name, address)
        return self.waiting.get(name)

    def ask(self, target: str) -> bool:
        """``connect(target)`` for a node name not connected: whether to wait for it.

        An explicit request lifts the bar of ``auto_connect`` "once"/"never".
        """
        self.barred.discard(target)
        if target in self.waiting:
            return True
        address = self.addresses.get(target)
        if address is None and target not in self.handshakes:
            return False
        self.request(target, address)
        return target in self.waiting

    def watch(self, name: str) -> bool:
        """``monitor_node(name)``, not connected: whether a connection may come (then
        dial it); False: the watcher gets ``NodeDown`` at once."""
        address = self.addresses.get(name)
        underway = name in self.handshakes or name in self.waiting
        if self.closed or not (underway or (address is not None and self.may_auto_connect(name))):
            return False
        self.request(name, address)
        return True

    def dial_soon(self, address: str, now: float) -> None:
        """Dial ``address`` (a seed, a discovered address) unless connected or connecting.

        An address whose node is known is dialled as that node, so that two
        nodes dialling each other at once settle on one connection; an
        unknown address is dialled blind.
        """
        if self.closed or self.is_connected_to(address):
            return
        name = self.names.get(address)
        if name is not None:
            if name not in self.barred:  # went down under "once"/"never": not again
                self._dial_named(name, address, now)
            return
        self._dial_blind(address, now)

    def blind_dial_ended(self, address: str) -> None:
        """A blind dial from ``dial_soon`` ended (however it went)."""
        if address in self.dialing:
            self.dialing.discard(address)
            self.background -= 1
            self.wake = True

    def expect(self, name: str) -> bool:
        """Wait for another connection to ``name``, under way: whether there is
        something to wait for (the driver then calls ``wait_ended``)."""
        if name not in self.waiting and name not in self.peers:
            self.waiting[name] = []
        return name in self.waiting

    def wait_ended(self, name: str) -> None:
        """A wait for another connection to ``name`` ended (it came, or timed out)."""
        self._maybe_fail(name)

    # -- handshakes ------------------------------------------------------------------------

    def hello(self, name: str) -> None:
        """An incoming handshake named its node (not authenticated yet)."""
        self.hellos[name] = self.hellos.get(name, 0) + 1

    def hello_ended(self, name: str, ok: bool) -> None:
        """That incoming handshake ended: authenticated (``ok``) or not."""
        left = self.hellos[name] - 1
        if left:
            self.hellos[name] = left
        else:
            del self.hellos[name]
        if not ok:
            self._maybe_fail(name)

    def accepted(self, name: str, creation: int) -> Handshake | None:
        """An incoming handshake authenticated ``name`` (of ``creation``): keep it
        (its handle), or refuse it (None: another connection to it is kept)."""
        return self._claim(name, False, creation=creation)

    def accept_failed(self, handle: Handshake | None) -> None:
        """An incoming handshake that was kept failed before its connection started."""
        self._release(handle)

    def challenged(self, found: str, token: Any) -> Handshake | None:
        """A blind dial reached ``found``: go on (its handle) or give up (None)."""
        return self._claim(found, True, token)

    def commit(self, handle: Handshake) -> None:
        """The acceptor proved itself: it may already count on this connection."""
        handle.committed = True

    def dial_ended(
        self,
        name: str | None,
        address: str,
        handle: Handshake | None,
        found: str | None,
        outcome: Outcome,
        *,
        answered: bool = True,
    ) -> str | None:
        """A dial to ``address`` (as ``name``, None if blind) gave no connection.

        Args:
            name: the node dialled, if known.
            address: where.
            handle: its handshake, if one was claimed.
            found: the node that answered there, if one did.
            outcome: "mismatch" (another node answers there), "duplicate"
                (another connection to ``found`` is up or under way),
                "simultaneous" (the peer keeps the one it is making), or
                "failed".
            answered: a node answered at ``address`` (False: the dial got no
                answer; an address that never answered is then forgotten).

        Returns:
            The node whose other connection to wait for (then ``expect`` and
            ``wait_ended``), or None.
        """
        self._release(handle)
        if outcome == "mismatch":
            assert name is not None
            self.forget(name, address)
            self._maybe_fail(name)
            return None
        if outcome in ("duplicate", "simultaneous"):
            return found
        if not answered and name is not None and name not in self.answered:
            self.forget(name, address)  # learned, never heard from: no node there
        self._maybe_fail(found)
        return None

    # -- connections -------------------------------------------------------------------

    def up(self, peer: P, name: str, address: str | None, handle: Handshake | None) -> bool:
        """A connection to ``name`` is authenticated: register it (False: refuse it).

        ``address`` is where it was dialled (None for an accepted one). An
        older connection to ``name`` is replaced (``Down``, ``Close``); then
        come the gossip, ``Up`` and the signals that waited (``Flush``).
        """
        self._release(handle)
        if name == self.name or self.closed:
            return False
        if address is not None:
            self.remember(name, address)
        self.answered.add(name)
        peer.address = self.addresses.get(name)
        existing = self.peers.pop(name, None)
        if existing is not None:
            # The peer started a new connection: it restarted (a new creation),
            # or it lost the old connection before this node noticed.
            self._down(name, existing, "connection_closed")
            self._effects.append(Close(existing, "connection_closed"))
        self.peers[name] = peer
        self.barred.discard(name)
        if not peer.hidden:  # hidden connections carry no gossip, and are in none
            peers = self.peers
            known: list[tuple[str, str | None]] = [(self.name, self.listen_address)]
            known += [
                (n, a)
                for n, a in self.addresses.items()
                if n != name and n in peers and not peers[n].hidden
            ]
            self._effects.append(Gossip(peer, known))
            if peer.address is not None:
                for other_name, other in peers.items():
                    if other_name != name and not other.hidden:
                        self._effects.append(Gossip(other, [(name, peer.address)]))
        self._effects.append(Up(peer))
        queue = self.waiting.pop(name, None)
        if queue is not None:
            self._effects.append(Flush(name, peer, queue))
        return True

    def down(self, name: str, peer: P, reason: Any) -> None:
        """The connection ``peer`` to ``name`` ended, with ``reason``."""
        if self.peers.get(name) is peer:
            del self.peers[name]
            self._down(name, peer, reason)

    def _down(self, name: str, peer: P, reason: Any) -> None:
        if self.auto_connect != "always":
            self.barred.add(name)
        self._effects.append(Down(peer, reason))

    def learn(self, entries: Any, now: float) -> None:
        """Gossip: remember node addresses and connect to the nodes not yet connected.

        Entries that are not ``(node name, "host:port")`` are ignored; so are
        new ones once the book is full of nodes connected or getting connected.
        """
        for entry in entries:
            try:
                name, address = entry
                validate_address(address)
            except (TypeError, ValueError):
                continue
            if name == self.name or not is_valid_node_name(name):
                continue
            peer = self.peers.get(name)
            if peer is not None and peer.address is None and not peer.hidden:
                # A peer that dialled this node says where it listens: tell the others.
                for other_name, other in self.peers.items():
                    if other_name != name and not other.hidden:
                        self._effects.append(Gossip(other, [(name, address)]))
            if not self.remember(name, address):
                continue
            if self.connect_all and name not in self.peers and self.may_auto_connect(name):
                self._dial_named(name, address, now)

    def shutdown(self) -> None:
        """Stop: cancel every handshake that can be (the driver closes the connections)."""
        self.closed = True
        self.pending.clear()
        self.pending_blind.clear()
        for handle in list(self.handshakes.values()):
            if handle.initiated:  # an acceptor's is committed: its connection closes
                self._effects.append(Cancel(handle))
