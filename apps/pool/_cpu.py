"""run_cpu: CPU-bound work in worker processes, so that it cannot stall the node.

Python runs one Trio step at a time: a function that computes for a second
holds up every process of the node for that second (the watchdog names the
culprit). ``run_cpu`` runs such a function in another OS process, through
trio-parallel, while the node goes on serving.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from beamlet.actors.lowlevel import short_repr

from ._errors import UnpicklableError

__all__ = ["run_cpu"]

T = TypeVar("T")


class _Call:
    """``fn(*args)``, pickled so that *unpickling* it makes the call.

    ``__reduce__`` tells pickle to rebuild the object by calling ``fn(*args)``;
    so ``pickle.loads(payload)`` in the worker process runs the function and
    returns its result (or raises its exception). The node pickles the call
    once, which is also the check that it can be sent; the worker needs to
    import nothing of beamlet's, only ``fn``'s own module.
    """

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.fn, self.args)


def _pickled(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """The call, pickled; ``UnpicklableError`` naming what cannot be pickled."""
    try:
        return pickle.dumps(_Call(fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = exc
    # Say which part is at fault.
    for what, value in (
        ("the function", fn),
        *((f"argument {i + 1}", a) for i, a in enumerate(args)),
    ):
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise UnpicklableError(what, _describe(value), _why(exc)) from None
    raise UnpicklableError("the call", _describe(fn), _why(error)) from None


def _describe(value: object) -> str:
    """A function by its qualified name (``mod.f.<locals>.<lambda>``), else a short repr."""
    qualname = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(qualname, str):
        return short_repr(f"{getattr(value, '__module__', None) or '?'}.{qualname}", 120)
    return short_repr(value)


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def run_cpu(
    fn: Callable[..., T], *args: Any, kill_on_cancel: bool = True, limiter: Any = None
) -> T:
    """Run ``fn(*args)`` in a worker process and return its result.

    For CPU-bound work (a report, a password hash, an image resize): the
    calling process waits, and every other process of the node goes on
    running, since the work happens in another OS process (trio-parallel's
    cached workers, at most one per CPU by default).

    Example::

        import hashlib
        digest = await run_cpu(hashlib.pbkdf2_hmac, "sha256", b"secret", b"salt", 500_000)

    What can be sent: ``fn`` and ``args`` travel to the worker with
    ``pickle``, between this node and its own local worker processes (this is
    not beamlet's network wire, which never uses pickle). So ``fn`` must be
    a function defined at the top level of an importable module (not a
    lambda, a nested function, or a function of a script run as ``__main__``
    through ``runpy``), and its arguments and result must be picklable. The
    call is pickled before anything is sent: if that fails, ``run_cpu``
    raises ``UnpicklableError``, naming the function or the argument at fault.

    Args:
        fn: a synchronous function.
        *args: its arguments.
        kill_on_cancel: if True (the default), cancelling the caller (a
            timeout, its scope, an exit signal) kills the worker process at
            once and raises ``Cancelled``; the work is lost. If False, the
            call cannot be cancelled: the caller waits until ``fn`` has
            finished and gets its result, and the cancellation takes effect
            at its next checkpoint (trio-parallel's default, as
            ``trio.to_thread.run_sync``): for work that must not be cut off.
        limiter: a ``trio.CapacityLimiter`` bounding how many calls run at
            once (default: trio-parallel's, with one token per CPU).

    Returns:
        What ``fn`` returns.

    Raises:
        Whatever ``fn`` raises, re-raised in the caller.
        UnpicklableError: ``fn`` or an argument cannot be sent (nothing was sent).
        ImportError: trio-parallel is not installed (``pip install 'beamlet[cpu]'``).
        trio_parallel.BrokenWorkerError: the worker process died (killed
            from outside, out of memory).

    Cancellation:
        See ``kill_on_cancel``.
    """
    try:
        import trio_parallel  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            "run_cpu needs trio-parallel, which is not installed: pip install 'beamlet[cpu]'"
        ) from exc
    if not callable(fn):
        raise TypeError(f"run_cpu() needs a function, not {short_repr(fn)}")
    payload = _pickled(fn, args)
    result: T = await trio_parallel.run_sync(
        pickle.loads, payload, kill_on_cancel=kill_on_cancel, limiter=limiter
    )
    return result
