"""Liveness of a connection: when to send a tick, when to give the peer up.

Pure arithmetic on times the caller passes in (``trio.current_time()`` in the
driver, exact numbers in tests); nothing here reads a clock. As Erlang's
``net_ticktime``: a ``Tick`` goes out whenever nothing was sent for
``ticktime / intensity`` seconds, and the peer is declared down when nothing at
all was received for ``ticktime`` seconds.

A driver loop::

    ticks = TickState.start(ticktime=15.0, now=trio.current_time())
    # after writing bytes: ticks.on_sent(now); after reading bytes: ticks.on_received(now)
    with trio.move_on_at(ticks.next_deadline()):
        ...
    action = ticks.handle_timer(trio.current_time())
    if action == "tick":
        await stream.send_all(connection.send(Tick()))
    elif action == "check":
        ...  # read what is waiting (on_received if any), then handle_timer again
    elif action == "timeout":
        ...  # the peer is down: "net_tick_timeout"

Silence is judged in two steps, ``"check"`` then ``"timeout"``: a node that was
paused (SIGSTOP, a long garbage collection, a loop blocked by a long call)
wakes up with its timers expired and the peer's ticks still waiting, unread,
on the socket. Declaring the peer down then would be wrong; so the first
verdict asks the driver to read what is waiting, and only a second verdict
with nothing received in between gives the peer up.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
from beamlet.actors.lowlevel import check_number

__all__ = ["DEFAULT_TICKTIME", "TickState"]

#: The default ``ticktime`` in seconds (Erlang's ``net_ticktime`` is 60).
DEFAULT_TICKTIME = 15.0


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_number(value, f"TickState.{attribute.name}", strict=True, unit="seconds")


def _intensity(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"TickState: {attribute.name!r} must be an int >= 1, not {value!r}")


def _time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_number(value, f"TickState.{attribute.name}", minimum=-math.inf, unit="seconds")


@attrs.define
class TickState:
    """When one connection last sent and received, and what is due next.

    Attributes:
        ticktime: seconds of silence after which the peer is down.
        last_sent: when bytes were last sent.
        last_received: when bytes were last received.
        intensity: ticks per ``ticktime`` on an idle connection (Erlang's 4).
    """

    ticktime: float = attrs.field(validator=_positive)
    last_sent: float = attrs.field(validator=_time)
    last_received: float = attrs.field(validator=_time)
    intensity: int = attrs.field(default=4, validator=_intensity)
    #: ``"check"`` was returned and nothing was received since.
    checked: bool = attrs.field(default=False, kw_only=True)

    @classmethod
    def start(cls, ticktime: float, now: float, *, intensity: int = 4) -> TickState:
        """Return the state of a connection that came up at ``now``.

        Raises:
            ValueError: ``ticktime`` is not positive, or ``intensity`` < 1.
        """
        return cls(ticktime, now, now, intensity)

    @property
    def interval(self) -> float:
        """Seconds of sending nothing after which a tick is due."""
        return self.ticktime / self.intensity

    def on_sent(self, now: float) -> None:
        """Record that bytes were sent at ``now``."""
        if now > self.last_sent:
            self.last_sent = now

    def on_received(self, now: float) -> None:
        """Record that bytes were received at ``now``."""
        if now > self.last_received:
            self.last_received = now
            self.checked = False

    def next_deadline(self) -> float:
        """Return when ``handle_timer`` should next be called."""
        return min(self.last_sent + self.interval, self.last_received + self.ticktime)

    def handle_timer(self, now: float) -> Literal["tick", "check", "timeout"] | None:
        """Say what is due at ``now``.

        Returns:
            If nothing was received for ``ticktime`` seconds: ``"check"`` the
            first time (the caller reads what is waiting, records it with
            ``on_received``, and calls again), then ``"timeout"`` (and from
            then on) unless something was received in between. Else
            ``"tick"`` if nothing was sent for ``interval`` seconds, in which
            case the caller must send a ``Tick`` now (it is recorded as
            sent); else ``None``.
        """
        if now >= self.last_received + self.ticktime:
            if self.checked:
                return "timeout"
            self.checked = True
            return "check"
        if now >= self.last_sent + self.interval:
            self.last_sent = now
            return "tick"
        return None
