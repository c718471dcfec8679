"""Exponential backoff with jitter, for reconnecting and retrying. Pure.

No Trio, no clock, no global random state: the caller passes the attempt
number and a random number in ``[0, 1)``, and sleeps for what comes back, so
the same inputs give the same delays and tests need no clock at all.

The delay of attempt ``n`` (1 for the first retry) is drawn from
``[cap / 2, cap]`` where ``cap = min(maximum, initial * multiplier ** (n - 1))``
("equal jitter"): half of it grows exponentially, so that a crowd of clients
backs off as fast as one does, and half of it is random, so that they do not
come back in lockstep after an outage; and no delay is ever near zero, so a
client whose server is down never spins.
"""

from __future__ import annotations

import math

import attrs
from beamlet.actors.lowlevel import check_number

__all__ = ["Backoff"]


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_number(value, attribute.name, strict=True, finite=True, unit="seconds")


@attrs.frozen
class Backoff:
    """The delays between attempts: exponential, capped, with jitter.

    Example::

        backoff = Backoff(initial=0.1, maximum=5.0)
        attempt = 0
        while not await try_once():
            attempt += 1
            await trio.sleep(backoff.delay(attempt, rng.random()))

    Args:
        initial: the largest delay before the first retry, in seconds (> 0).
        maximum: no delay is longer, in seconds (>= ``initial``).
        multiplier: how much the cap grows per attempt (> 1).
    """

    initial: float = attrs.field(default=0.1, validator=_positive)
    maximum: float = attrs.field(default=5.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0)

    def __attrs_post_init__(self) -> None:
        check_number(self.multiplier, "multiplier", minimum=1, strict=True, finite=True)
        if self.maximum < self.initial:
            raise ValueError(
                f"maximum must be >= initial ({self.initial!r} seconds), not {self.maximum!r}"
            )

    def cap(self, attempt: int) -> float:
        """The largest delay of attempt ``attempt`` (1, 2, ...): never above ``maximum``."""
        check_number(attempt, "attempt", minimum=1, integer=True)
        # Past the point where the cap reaches the maximum, do not compute the power
        # (it would overflow a float for large attempt numbers).
        steps = math.log(self.maximum / self.initial, self.multiplier)
        if attempt - 1 >= steps:
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier ** (attempt - 1))

    def delay(self, attempt: int, random: float) -> float:
        """The delay before attempt ``attempt``, given ``random`` drawn uniformly from [0, 1).

        Returns:
            A number of seconds in ``[cap / 2, cap]`` where ``cap = self.cap(attempt)``.

        Raises:
            TypeError / ValueError: ``attempt`` is not an int >= 1, or
                ``random`` is not a number in [0, 1).
        """
        check_number(random, "random", maximum=1, below=True)
        cap = self.cap(attempt)
        return cap / 2 + cap / 2 * random
