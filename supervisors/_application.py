"""The application runner: a supervision tree as a long-running service.

``run_application(children)`` boots a root supervisor over ``children`` in a
new node and keeps it running until the process receives SIGTERM or SIGINT.
Then it shuts the tree down in order — each supervisor stops its children in
reverse start order, within their ``shutdown`` times, so the ``terminate``
callbacks of GenServers that trap exits run — and returns exit status 0.

Example (``myapp/tree.py``)::

    from beamlet.supervisors import run_application

    children = [Cache.child_spec(name="cache"), Web.child_spec(port=8000)]

    if __name__ == "__main__":
        raise SystemExit(run_application(children))

or, from a shell, ``run_application("myapp.tree:children")`` (what
``beamlet run myapp.tree:children`` does): the target names a list of child
specs, or a function returning one.

Exit status (the value ``run_application`` returns):

- 0: stopped by a signal, the tree shut down cleanly;
- 1: the tree failed to start, or its root supervisor exited on its own (its
  restart intensity was exceeded, for instance);
- 128 + signal number (130 for SIGINT, 143 for SIGTERM): a second signal
  arrived during the shutdown; the runner stops waiting, kills the tree and
  exits at once, as shells report a process killed by that signal.

``run_application(children, node=partial(beamlet.cluster.open_node, "api@host",
seeds=[...]))`` runs the tree in a distributed node, with the same signal
handling and exit status (``beamlet run --name --seeds`` does this).

Inside an existing node, ``await serve(children)`` does the same without
starting a node or choosing an exit status: it returns after a graceful
shutdown, raises ``ApplicationError`` if the tree fails, and
``ForcedShutdownError`` on a second signal (let it propagate out of the
node's ``async with`` block, which kills the remaining processes).

When not to use it: inside a library (let the application own the signals);
for a one-off script (``beamlet.actors.run`` is enough).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import outcome
import trio
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    GenServer,
    Node,
    Pid,
    ReceiveTimeoutError,
    StartError,
    monitor,
    open_node,
    receive,
    self_pid,
    send,
    send_exit,
    trap_exits,
    unlink,
)
from beamlet.actors.lowlevel import check_number, current_node, describe_reason

from ._plan import Strategy
from ._spec import ChildLike, ChildSpec, specs_of
from ._supervisor import Supervisor, SupervisorSpec

__all__ = [
    "ApplicationError",
    "ForcedShutdownError",
    "load_children",
    "run_application",
    "serve",
]

logger = logging.getLogger("beamlet.application")

#: The signals that stop an application by default.
DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ApplicationError(RuntimeError):
    """The supervision tree failed to start, or its root supervisor exited on its own.

    The message says which and why, e.g. ``the application failed to start:
    cannot start the supervision tree: its child 'db' failed to start: init
    raised ConnectionRefusedError: ...``.

    Attributes:
        reason: the start failure (a ``StartError`` reason) or the root's exit reason.
        started: False if the tree failed to start, True if it ran and then
            its root exited.
    """

    def __init__(self, reason: Any, started: bool = True) -> None:
        if started:
            message = f"the application's root supervisor {describe_reason(reason)}"
            if reason == "shutdown":
                message += " (its children failed more often than max_restarts in max_seconds)"
            message += f" (reason: {reason!r})"
        else:
            message = "the application failed to start: " + str(
                StartError(reason, "the supervision tree")
            )
        super().__init__(message)
        self.reason = reason
        self.started = started


class ForcedShutdownError(Exception):
    """A second stop signal arrived while the tree was shutting down.

    Attributes:
        signum: the number of that signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"forced shutdown by {_signal_name(signum)}")
        self.signum = signum


class _Signal:
    __slots__ = ("signum",)

    def __init__(self, signum: int) -> None:
        self.signum = signum


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def load_children(target: str) -> list[ChildSpec]:
    """Resolve ``"package.module:attribute"`` to a list of child specs.

    The attribute (dotted paths such as ``"mod:App.children"`` work) is either a
    list of children or a function called without arguments that returns one.

    Raises:
        ValueError: ``target`` is not ``"module:attribute"``.
        ImportError / AttributeError: the module or attribute does not exist.
        TypeError: it is neither a list of children nor a function returning one.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected 'module:attribute', not {target!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    if isinstance(value, type):
        # A class is a behaviour (a GenServer, a Supervisor...), not a function
        # returning children: calling it would build an instance.
        raise TypeError(_class_instead_of_children(target, value))
    if callable(value) and not isinstance(value, Sequence):
        value = value()
    if not isinstance(value, list | tuple):
        raise TypeError(f"{target} must be a list of child specs (or return one), not {value!r}")
    return specs_of(value)


def _class_instead_of_children(target: str, cls: type) -> str:
    name = cls.__name__
    if issubclass(cls, GenServer):
        kind = "a GenServer class"
    elif issubclass(cls, Supervisor):
        kind = "a Supervisor class"
    else:
        kind = "a class"
    hint = (
        f"; name a list of child specs instead, e.g. `children = [{name}.child_spec()]` "
        f"(with its arguments), or a function returning one"
        if callable(getattr(cls, "child_spec", None))
        else "; name a list of child specs, or a function returning one"
    )
    return f"{target} is {kind}, not a list of child specs{hint}"


def _spec_of(
    children: Iterable[ChildLike] | str, strategy: Strategy, max_restarts: int, max_seconds: float
) -> SupervisorSpec:
    if isinstance(children, str):
        children = load_children(children)
    return SupervisorSpec(children, strategy, max_restarts, max_seconds)


async def serve(
    children: Iterable[ChildLike] | str,
    *,
    name: str | None = None,
    strategy: Strategy = "one_for_one",
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    shutdown_timeout: float | None = None,
    signals: Iterable[int] = DEFAULT_SIGNALS,
    on_ready: Callable[[Pid], object] | None = None,
) -> None:
    """Run a supervision tree in the current node until a stop signal arrives.

    Call it inside a node (``async with open_node()``) or a process. The
    signal handlers are installed before the tree starts.

    Args:
        children: the root supervisor's children, or ``"module:attribute"``
            (see ``load_children``).
        name: register the root supervisor under this name.
        strategy, max_restarts, max_seconds: the root supervisor's flags.
        shutdown_timeout: seconds to wait for the tree to shut down before
            killing it (``None``: as long as the children's own shutdown
            times take).
        signals: the signals that stop the tree (SIGTERM and SIGINT).
            Handlers can only be installed from the main thread; pass ``()``
            to install none (the tree then runs until it fails or ``serve``
            is cancelled).
        on_ready: called with the root supervisor's pid once the tree is up
            and the signal handlers are in place.

    Raises:
        ApplicationError: the tree failed to start, or its root exited on its own.
        ForcedShutdownError: a second signal came during the shutdown; the
            root supervisor has been killed.
        TypeError / ValueError: invalid children or options.

    Cancellation:
        The tree is told to shut down (its root gets an exit signal) and
        ``serve`` returns at once, without waiting for it.
    """
    spec = _spec_of(children, strategy, max_restarts, max_seconds)
    check_number(shutdown_timeout, "shutdown_timeout", optional=True, unit="seconds")
    signals = tuple(signals)
    node = current_node()
    receiver: contextlib.AbstractContextManager[AsyncIterator[int] | None] = (
        trio.open_signal_receiver(*signals) if signals else contextlib.nullcontext()
    )
    with receiver as incoming:
        try:
            kind, value = await node.run(
                _application, spec, name, shutdown_timeout, incoming, on_ready
            )
        except Exit as exc:
            raise ApplicationError(exc.reason) from None
    if kind == "forced":
        raise ForcedShutdownError(value)
    if kind != "stopped":
        raise ApplicationError(value, started=kind != "failed")


async def _forward(incoming: AsyncIterator[int], app: Pid) -> None:
    async for signum in incoming:
        send(app, _Signal(signum))


async def _application(
    spec: SupervisorSpec,
    name: str | None,
    shutdown_timeout: float | None,
    incoming: AsyncIterator[int] | None,
    on_ready: Callable[[Pid], object] | None,
) -> tuple[str, Any]:
    """The application process: boots the tree and waits for a signal or its end."""
    trap_exits(True)
    async with trio.open_nursery() as nursery:
        if incoming is not None:
            nursery.start_soon(_forward, incoming, self_pid())
        try:
            return await _run_tree(spec, name, shutdown_timeout, on_ready)
        finally:
            nursery.cancel_scope.cancel()


async def _run_tree(
    spec: SupervisorSpec,
    name: str | None,
    shutdown_timeout: float | None,
    on_ready: Callable[[Pid], object] | None,
) -> tuple[str, Any]:
    try:
        root = await Supervisor.start_link(
            spec.children, spec.strategy, spec.max_restarts, spec.max_seconds, name=name
        )
    except StartError as exc:
        logger.error("application failed to start: %r", exc.reason)
        return ("failed", exc.reason)
    logger.info("application started (root supervisor %r)", root)
    if on_ready is not None:
        on_ready(root)

    def signal_or_root_exit(msg: object) -> bool:
        return type(msg) is _Signal or (type(msg) is ExitSignal and msg.pid == root)

    with _watch_escalation(root) as escalation:
        msg = await receive(signal_or_root_exit)
    if type(msg) is ExitSignal:
        _log_root_exit(root, msg.reason, escalation.record)
        return ("exited", msg.reason)
    first = msg.signum
    logger.info("received %s: shutting down", _signal_name(first))
    ref = monitor(root)
    unlink(root)
    send_exit(root, "shutdown")
    timeout = shutdown_timeout

    def down_or_signal(msg: object) -> bool:
        return type(msg) is _Signal or (type(msg) is Down and msg.ref == ref)

    while True:
        try:
            msg = await receive(down_or_signal, timeout=timeout)
        except ReceiveTimeoutError:
            logger.error("the tree did not shut down within %s s: killing it", shutdown_timeout)
            send_exit(root, "kill")
            timeout = None
            continue
        if type(msg) is _Signal:
            logger.error("received %s again: forcing exit", _signal_name(msg.signum))
            send_exit(root, "kill")
            return ("forced", msg.signum)
        logger.info("application stopped")
        return ("stopped", first)


class _Escalation(logging.Handler):
    """Keeps the ``reached_max_restart_intensity`` report of one supervisor."""

    def __init__(self, supervisor: Pid) -> None:
        super().__init__(logging.ERROR)
        self.supervisor = supervisor
        self.record: logging.LogRecord | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if (
            getattr(record, "beamlet_report", None) == "reached_max_restart_intensity"
            and getattr(record, "beamlet_supervisor", None) == self.supervisor
        ):
            self.record = record


@contextlib.contextmanager
def _watch_escalation(root: Pid) -> Iterator[_Escalation]:
    """Keep the root supervisor's escalation report while the block runs.

    Why the root gave up is in that report; its exit reason is only ``shutdown``.
    """
    handler = _Escalation(root)
    reports = logging.getLogger("beamlet.supervisor")
    reports.addHandler(handler)
    try:
        yield handler
    finally:
        reports.removeHandler(handler)


def _log_root_exit(root: Pid, reason: Any, escalation: logging.LogRecord | None) -> None:
    """The last line of a tree whose root supervisor exited on its own: why it did."""
    if escalation is None:
        logger.error("root supervisor %r exited with reason %r", root, reason)
        return
    e: Any = escalation
    logger.error(
        "root supervisor %r gave up: more than %d restarts in %g s "
        "(reached_max_restart_intensity); the last failure: child %r (%r) exited with "
        "reason %r; the root exited with reason %r",
        root,
        e.beamlet_max_restarts,
        e.beamlet_max_seconds,
        e.beamlet_child_id,
        e.beamlet_pid,
        e.beamlet_reason,
        reason,
        extra={
            "beamlet_report": "application_gave_up",
            "beamlet_supervisor": root,
            "beamlet_child_id": e.beamlet_child_id,
            "beamlet_pid": e.beamlet_pid,
            "beamlet_reason": e.beamlet_reason,
            "beamlet_max_restarts": e.beamlet_max_restarts,
            "beamlet_max_seconds": e.beamlet_max_seconds,
            "beamlet_exit_reason": reason,
        },
    )


def run_application(
    children: Iterable[ChildLike] | str,
    *,
    node: Callable[..., contextlib.AbstractAsyncContextManager[Node]] | None = None,
    name: str | None = None,
    strategy: Strategy = "one_for_one",
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    shutdown_timeout: float | None = None,
    on_ready: Callable[[Pid], object] | None = None,
    log_level: int | str | None = logging.INFO,
    **node_options: Any,
) -> int:
    """Boot a supervision tree in a new node and serve until SIGTERM or SIGINT.

    Calls ``trio.run``; use ``serve`` inside a running node instead.

    The node is opened with ``node(**node_options)``: by default a local node
    (``beamlet.actors.open_node``); for a distributed service, a distributed
    one, with the same signal handling and exit status::

        from functools import partial
        from beamlet.cluster import open_node

        run_application(children, node=partial(open_node, "api@10.0.0.5", seeds=[...]))

    Args:
        children: the root supervisor's children, or ``"module:attribute"``.
        node: opens the node to run in: a callable returning an async context
            manager that yields a ``Node`` (``beamlet.actors.open_node``,
            ``beamlet.cluster.open_node`` or a ``functools.partial`` of one).
        name, strategy, max_restarts, max_seconds, shutdown_timeout, on_ready:
            as for ``serve``.
        log_level: configure ``logging`` at this level if it has no handler
            yet (``None``: leave logging alone).
        **node_options: keyword arguments for ``node``.

    Returns:
        The exit status: 0 after a graceful shutdown, 1 if the tree failed to
        start or its root exited on its own, 128 + the signal number after a
        second signal (130 for SIGINT, 143 for SIGTERM).

    Raises:
        TypeError / ValueError / ImportError: invalid children or options
            (before anything starts).
    """
    spec = _spec_of(children, strategy, max_restarts, max_seconds)
    opener = open_node if node is None else node
    if not callable(opener):
        raise TypeError(f"node must open a node (e.g. beamlet.cluster.open_node), not {opener!r}")
    if log_level is not None and not logging.getLogger().handlers:
        logging.basicConfig(
            level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    async def main() -> outcome.Outcome[None]:
        async with opener(**node_options):
            return await outcome.acapture(
                serve,
                spec.children,
                name=name,
                strategy=spec.strategy,
                max_restarts=spec.max_restarts,
                max_seconds=spec.max_seconds,
                shutdown_timeout=shutdown_timeout,
                on_ready=on_ready,
            )

    try:
        trio.run(main).unwrap()
    except ForcedShutdownError as exc:
        return 128 + exc.signum
    except ApplicationError:
        return 1
    return 0
