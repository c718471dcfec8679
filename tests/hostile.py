"""Terms thrown at a process by the bad-input tests, shared by them.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from hostile import ...``. What those tests check is the process the terms
are thrown at (it keeps serving); the thrower's own failures (the codec
refusing a term, a call with no answer) are expected and ignored.
"""

from __future__ import annotations

from typing import Any

from beamlet.actors import CallExitError, CallTimeoutError, call, cast, send

#: The ways to throw a term.
WAYS = ("call", "cast", "send")
#: What the thrower itself may get: no answer, the callee's exit, a term the codec refuses.
THROWER_ERRORS = (CallTimeoutError, CallExitError, TypeError, ValueError, OverflowError)


async def throw(dest: Any, how: str, term: Any, *, timeout: float = 2) -> None:
    """Send ``term`` to ``dest`` (a pid, a name, or ``(name, node)``) by ``how``, one
    of ``WAYS``; a call waits ``timeout`` seconds at most. Any of ``THROWER_ERRORS``
    is ignored; an unknown ``how`` raises ``ValueError`` before anything is sent."""
    if how not in WAYS:
        raise ValueError(f"throw: {how!r} is not one of {WAYS}")
    try:
        if how == "call":
            await call(dest, term, timeout=timeout)
        elif how == "cast":
            cast(dest, term)
        else:
            send(dest, term)
    except THROWER_ERRORS:
        pass
