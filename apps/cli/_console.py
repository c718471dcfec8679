"""A hidden node that connects to one node: what ``ping`` and ``top`` run in."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import outcome
import trio
from beamlet.cluster import (
    Cookie,
    CookieError,
    TLSConfig,
    connect,
    default_cookie_path,
    default_node_name,
    nodes,
    open_node,
)

from ._errors import EXIT_FAILURE, EXIT_USAGE, CliError
from ._options import NodeAddress

__all__ = ["Captured", "captured_logs", "run_console"]

T = TypeVar("T")


class Captured(logging.Handler):
    """Keeps beamlet's log records of a console session off the terminal.

    The last record that says why a connection failed ("could not connect to
    ...: the peer refused the connection: bad cookie") becomes the reason a
    failed ``connect`` reports.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < 1000:
            self.records.append(record)

    def connect_failure(self) -> str | None:
        for record in reversed(self.records):
            message = record.getMessage()
            if message.startswith("could not connect to "):
                return message.partition(": ")[2] or message
        return None


@contextmanager
def captured_logs() -> Iterator[Captured]:
    """Keep the ``beamlet`` loggers' records off the terminal while the block runs."""
    handler = Captured()
    beamlet = logging.getLogger("beamlet")
    previous = beamlet.propagate, beamlet.level
    beamlet.addHandler(handler)
    beamlet.propagate = False
    beamlet.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        beamlet.removeHandler(handler)
        beamlet.propagate, level = previous[0], previous[1]
        beamlet.setLevel(level)


def _cookie_to_create(cookie: Cookie | None) -> Path | None:
    """The cookie file this run will create (none given, none in the environment or file)."""
    if cookie is not None or os.environ.get("BEAMLET_COOKIE"):
        return None
    path = default_cookie_path()
    return None if path.exists() else path


def _why(failure: str | None, tls: bool, created_cookie: Path | None = None) -> str:
    if failure is None:
        return "no answer"
    text = failure.lower()
    if "cookie" in text and created_cookie is not None:
        return (
            f"{failure}: no cookie was given, so this command created a new random one "
            f"in {created_cookie}; the node uses another, and both nodes must share one "
            "(pass the node's cookie with --cookie-file PATH, or set $BEAMLET_COOKIE)"
        )
    if "cookie" in text:
        return f"{failure} (is the cookie the node's? see --cookie-file)"
    if "attempts to connect" in text or "connection refused" in text:
        return "nothing listens there (connection refused)"
    if not tls and "closed" in text and "handshake" in text and "tls" not in text:
        # A TLS node hangs up on a handshake in the clear, without a word.
        return f"{failure} (does the node use TLS? give --tls-cert and --tls-ca)"
    if tls and "reset by peer" in text:
        # TLS 1.3: a node that refuses the client's certificate can reset the
        # connection before its alert is read.
        return f"{failure} (over TLS: the node may have refused this node's certificate; its log says why)"
    return failure


#: Whether ``connect`` can say why it failed (``raise_on_error``); else the log says it.
_CONNECT_RAISES = "raise_on_error" in inspect.signature(connect).parameters


async def _connect(
    target: NodeAddress, log: Captured, timeout: float, tls: bool, created_cookie: Path | None
) -> str:
    """Connect to ``target``; return its node name, or raise ``CliError``."""
    before = set(nodes("all"))
    with trio.move_on_after(timeout):
        try:
            if _CONNECT_RAISES:
                ok = await cast(Any, connect)(target.address, raise_on_error=True)
            else:
                ok = await connect(target.address)
        except ConnectionError as exc:
            why = getattr(exc, "reason", None) or str(exc)
            why = _why(why, tls, created_cookie)
            raise CliError(f"cannot connect to {target}: {why}") from None
        if ok:
            found = sorted(set(nodes("all")) - before)
            if target.name is not None:
                if target.name in nodes("all"):
                    return target.name
                raise CliError(
                    f"the node at {target.address} is {', '.join(found) or 'another node'}, "
                    f"not {target.name}"
                )
            if found:
                return found[0]
            raise CliError(f"no node answered at {target.address}")
        why = _why(log.connect_failure(), tls, created_cookie)
        raise CliError(f"cannot connect to {target}: {why}")
    raise CliError(f"cannot connect to {target}: no answer within {timeout:g} s")


async def _session(
    target: NodeAddress,
    log: Captured,
    timeout: float,
    tls: bool,
    created_cookie: Path | None,
    fn: Callable[[str], Awaitable[T]],
) -> T:
    peer = await _connect(target, log, timeout, tls, created_cookie)
    return await fn(peer)


async def run_console(
    target: NodeAddress,
    cookie: Cookie | None,
    tls: TLSConfig | None,
    fn: Callable[[str], Awaitable[T]],
    timeout: float,
) -> T:
    """Open a hidden node, connect to ``target`` and run ``fn(node_name)`` as a process.

    Raises:
        CliError: the connection failed (the message says why).
    """
    created_cookie = _cookie_to_create(cookie)
    with captured_logs() as log:
        name = "console-" + default_node_name()
        try:
            async with open_node(
                name, cookie=cookie, tls=tls, hidden=True, watchdog_threshold=None
            ) as node:

                async def main() -> Any:
                    # Captured: a CliError is an answer, not a crash to report.
                    return await outcome.acapture(
                        _session, target, log, timeout, tls is not None, created_cookie, fn
                    )

                result: outcome.Outcome[T] = await node.run(main)
        except CookieError as exc:
            raise CliError(f"bad cookie: {exc}", EXIT_USAGE) from None
        except OSError as exc:
            # Only opening (or closing) the node: what ``fn`` raised is in ``result``,
            # unwrapped below, so a BrokenPipeError from printing reaches the handler
            # that exits quietly with 141.
            raise CliError(f"cannot start a console node: {exc}", EXIT_FAILURE) from None
    return result.unwrap()
