"""What the system processes (rpc, pg scopes, discovery) share: the error reply to bad input.

A system process checks everything it receives: a malformed call gets
``bad_request(request)`` as its reply, a malformed cast or message is dropped,
and either is logged through a ``BadInputLog`` (``beamlet.actors.lowlevel``),
rate-limited, on the ``beamlet.cluster`` logger.
"""

from __future__ import annotations

from typing import Any

from beamlet.actors.lowlevel import short_repr

__all__ = ["bad_request"]


def bad_request(value: Any) -> tuple[str, tuple[str, str]]:
    """The error reply to a malformed call: ``("error", ("bad_request", short repr))``."""
    return ("error", ("bad_request", short_repr(value)))
