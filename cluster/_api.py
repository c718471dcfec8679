"""Starting distributed nodes, and the node-level distribution API."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeAlias, TypeVar

import outcome
import trio
from beamlet.actors import LOCAL_NODE_NAME, Node, open_node as open_local_node, self_pid
from beamlet.actors.lowlevel import (
    DEFAULT_MAILBOX_WARNING,
    check_async,
    check_number,
    current_node,
    install_router,
    raise_single,
)

from ._cookie import Cookie, resolve_cookie
from ._distribution import Distribution, check_node_type
from ._errors import InsecureListenError
from ._events import validate_node_name
from ._frames import DEFAULT_MAX_FRAME_SIZE
from ._limits import MAX_UNAUTHENTICATED
from ._transport import TCPTransport, TLSConfig, Transport, split_address

__all__ = [
    "NotDistributedError",
    "connect",
    "default_node_name",
    "disconnect",
    "distribution",
    "listen_address",
    "monitor_node",
    "monitor_nodes",
    "node_name",
    "nodes",
    "open_node",
    "run",
    "start_distribution",
]

T = TypeVar("T")

#: When a use of a node connects to it (see ``start_distribution``).
AutoConnect: TypeAlias = Literal["always", "once", "never"]

logger = logging.getLogger("beamlet.cluster")


class NotDistributedError(RuntimeError):
    """The current node is not distributed (call ``start_distribution`` first)."""


def distribution(node: Node | None = None) -> Distribution:
    """The ``Distribution`` router of ``node`` (default: the current node)."""
    node = node if node is not None else current_node()
    router = node.router
    if not isinstance(router, Distribution):
        raise NotDistributedError(
            f"node {node.name} is not distributed: start it with beamlet.cluster.run or "
            "open_node, or call start_distribution(name) first"
        )
    return router


async def start_distribution(
    name: str,
    *,
    node: Node | None = None,
    cookie: bytes | str | Cookie | None = None,
    port: int = 0,
    seeds: tuple[str, ...] | list[str] = (),
    tls: TLSConfig | None = None,
    transport: Transport | None = None,
    ticktime: float = 15.0,
    handshake_timeout: float = 7.0,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    busy_limit: int = 1024 * 1024,
    seed_interval: float = 2.0,
    discovery: tuple[Any, ...] | list[Any] = (),
    connect_all: bool = True,
    hidden: bool = False,
    auto_connect: AutoConnect = "always",
    insecure: bool = False,
    max_unauthenticated: int = MAX_UNAUTHENTICATED,
) -> Distribution:
    """Turn a running local node into a distributed node named ``name``.

    The node listens on the host of its name (``a@127.0.0.1`` is reachable
    from this machine only) and ``port`` (0 picks a free port; see
    ``listen_address()``). Listening on a non-loopback host without TLS needs
    ``insecure=True``. The node's system services (the rpc server, the
    ``"default"`` pg scope and discovery) start under the kernel supervisor,
    registered as ``"beamlet_kernel_sup"``, which restarts any of them that
    exits (see docs/distribution.md, "The kernel").

    Args:
        name: ``"name@host"``.
        node: the node (default: the current one).
        cookie: the shared secret (default: ``BEAMLET_COOKIE`` or the cookie file).
        port: the port to listen on.
        seeds: ``"host:port"`` addresses to connect to, retried every ``seed_interval``.
        tls: TLS contexts (``TLSConfig``); the cookie handshake runs inside TLS.
        transport: a custom transport (the simulation passes an in-memory one).
        ticktime: seconds of silence after which a peer is declared down.
        handshake_timeout: seconds a connection may take to authenticate.
        max_frame_size: the largest frame sent or accepted, in bytes (8 MiB).
        busy_limit: unsent bytes per connection past which ``send`` raises.
        seed_interval: seconds between attempts to reach the seeds.
        discovery: discovery strategies, e.g. ``[DNSPoll("app.internal", 4370)]``.
        connect_all: connect to every node that gossip reveals (a full mesh);
            False keeps only the connections this node makes or accepts (Erlang's
            ``-connect_all false``).
        hidden: make this a hidden node (Erlang's ``-hidden``), for tools and
            consoles: its connections are hidden on both sides, so they are
            not in ``nodes()`` (``nodes("hidden")`` lists them), carry no
            gossip (the full mesh never grows through it) and reach only the
            ``monitor_nodes`` subscribers that ask for hidden nodes. It
            connects only where it is told to (``connect``, seeds, discovery,
            or a send to a node whose address it knows).
        auto_connect: when a use of a node connects to it (Erlang's
            ``dist_auto_connect``): "always" (a send, link, monitor or gossip
            connects, and reconnects after a disconnect); "once" (the same,
            but a node that went down is not reconnected to, by any of those
            or by seeds and discovery, until ``connect`` is called for it or
            it connects itself); "never" (only ``connect``, seeds and
            discovery connect; signals for a node not connected are dropped,
            and links and monitors to it fire ``noconnection`` at once).
        insecure: allow a non-loopback listener without TLS.
        max_unauthenticated: incoming connections that may be waiting to
            authenticate at once (64 by default); past it the oldest is
            dropped, so that a flood of sockets that never authenticate
            cannot keep a node's listener (or its file descriptors) busy.

    Returns:
        The node's ``Distribution`` router.
    """
    validate_node_name(name)
    node = node if node is not None else current_node()
    if isinstance(node.router, Distribution):
        raise RuntimeError(f"node {node.name} is already distributed")
    check_number(ticktime, "ticktime", strict=True, unit="seconds")
    check_number(handshake_timeout, "handshake_timeout", strict=True, unit="seconds")
    check_number(seed_interval, "seed_interval", strict=True, unit="seconds")
    _check_max_unauthenticated(max_unauthenticated)
    if not isinstance(hidden, bool):
        raise TypeError(f"hidden must be True or False, not {hidden!r}")
    _check_seeds(seeds)
    host = name.partition("@")[2]
    if transport is None:
        if tls is None and not insecure and not _is_loopback(host):
            raise InsecureListenError(host)
        transport = TCPTransport(tls)
    dist = Distribution(
        node,
        cookie=resolve_cookie(cookie),
        transport=transport,
        host=host,
        port=port,
        seeds=tuple(seeds),
        ticktime=ticktime,
        handshake_timeout=handshake_timeout,
        max_frame_size=max_frame_size,
        busy_limit=busy_limit,
        seed_interval=seed_interval,
        connect_all=connect_all,
        hidden=hidden,
        auto_connect=auto_connect,
        max_unauthenticated=max_unauthenticated,
    )
    old_name, old_router = node.name, node.router
    node.rename(name)
    install_router(dist)
    try:
        await node.system_nursery.start(dist.run)
    except BaseException as exc:
        # Not distributed after all (e.g. the port is taken): the node stays
        # as it was, and the error comes out as itself, not in a group.
        if not node.closed:
            install_router(old_router)
            node.rename(old_name)
        if isinstance(exc, BaseExceptionGroup):
            raise_single(exc)
        raise
    from ._kernel import start_kernel

    await start_kernel(node, tuple(discovery))
    return dist


def _check_max_unauthenticated(value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"max_unauthenticated must be an int >= 1, not {value!r}")


def _check_seeds(seeds: Any) -> None:
    if isinstance(seeds, str):
        raise TypeError(f"seeds is a list of 'host:port' addresses, not the str {seeds!r}")
    for seed in seeds:
        split_address(seed)  # a malformed seed fails here, not in the background


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def default_node_name() -> str:
    """A fresh, unique node name for a node started without one.

    It is ``"beamlet-<os pid>-<6 random hex digits>@127.0.0.1"``: unique
    between the processes of a machine, and between the nodes of one
    process, and reachable from this machine only. Give a node started to be
    reached by others a name of your own (``name="api@10.0.0.5"``).
    """
    return f"beamlet-{os.getpid()}-{secrets.token_hex(3)}@127.0.0.1"


@asynccontextmanager
async def open_node(
    name: str | None = None,
    *,
    cookie: bytes | str | Cookie | None = None,
    port: int = 0,
    seeds: tuple[str, ...] | list[str] = (),
    tls: TLSConfig | None = None,
    transport: Transport | None = None,
    ticktime: float = 15.0,
    handshake_timeout: float = 7.0,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    busy_limit: int = 1024 * 1024,
    seed_interval: float = 2.0,
    discovery: tuple[Any, ...] | list[Any] = (),
    connect_all: bool = True,
    hidden: bool = False,
    auto_connect: AutoConnect = "always",
    insecure: bool = False,
    max_unauthenticated: int = MAX_UNAUTHENTICATED,
    watchdog_threshold: float | None = 0.1,
    mailbox_warning: int | None = DEFAULT_MAILBOX_WARNING,
) -> AsyncIterator[Node]:
    """Open a distributed node inside a running Trio program.

    Example::

        async with open_node("api@127.0.0.1", cookie=secret, port=4370) as node:
            await node.run(main)

    When the block ends, the node's processes are killed and its
    connections closed.

    Args:
        name: ``"name@host"``; default: a unique name from
            ``default_node_name()`` (``"beamlet-<os pid>-<random>@127.0.0.1"``).
        cookie, port, seeds, tls, transport, ticktime, handshake_timeout,
        max_frame_size, busy_limit, seed_interval, discovery, connect_all,
        hidden, auto_connect, insecure, max_unauthenticated: as for
            ``start_distribution``.
        watchdog_threshold, mailbox_warning: as for ``beamlet.actors.open_node``.

    Yields:
        The ``Node``, distributed and listening.

    Raises:
        ValueError: a bad node name or seed address; ``InsecureListenError``
            (a ValueError) for a non-loopback host without TLS (and without
            ``insecure=True``).
        CookieError: the cookie is too short or too regular, or its file is unsafe.
        OSError: the node cannot listen (the message names the address; for a
            port in use, ``errno`` is ``EADDRINUSE``).
        An exception raised in the ``async with`` block comes out as itself,
        not inside an ``ExceptionGroup``.
    """
    # Checked before the node opens, so that they raise as themselves.
    if name is None:
        name = default_node_name()
        logger.info("starting node %s (no name was given)", name)
    validate_node_name(name)
    cookie = resolve_cookie(cookie)
    _check_seeds(seeds)
    _check_max_unauthenticated(max_unauthenticated)
    async with open_local_node(
        watchdog_threshold=watchdog_threshold, mailbox_warning=mailbox_warning
    ) as node:
        dist = await start_distribution(
            name,
            node=node,
            cookie=cookie,
            port=port,
            seeds=seeds,
            tls=tls,
            transport=transport,
            ticktime=ticktime,
            handshake_timeout=handshake_timeout,
            max_frame_size=max_frame_size,
            busy_limit=busy_limit,
            seed_interval=seed_interval,
            discovery=discovery,
            connect_all=connect_all,
            hidden=hidden,
            auto_connect=auto_connect,
            insecure=insecure,
            max_unauthenticated=max_unauthenticated,
        )
        try:
            yield node
        finally:
            dist.shutdown()


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    name: str | None = None,
    cookie: bytes | str | Cookie | None = None,
    port: int = 0,
    seeds: tuple[str, ...] | list[str] = (),
    tls: TLSConfig | None = None,
    transport: Transport | None = None,
    ticktime: float = 15.0,
    handshake_timeout: float = 7.0,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    busy_limit: int = 1024 * 1024,
    seed_interval: float = 2.0,
    discovery: tuple[Any, ...] | list[Any] = (),
    connect_all: bool = True,
    hidden: bool = False,
    auto_connect: AutoConnect = "always",
    insecure: bool = False,
    max_unauthenticated: int = MAX_UNAUTHENTICATED,
    watchdog_threshold: float | None = 0.1,
    mailbox_warning: int | None = DEFAULT_MAILBOX_WARNING,
) -> T:
    """Run ``main(*args)`` as the first process of a new distributed node; return its result.

    This is the synchronous entry point: it calls ``trio.run``.

    Args:
        main: an async function.
        *args: its arguments.
        name: ``"name@host"``; default: a unique name from
            ``default_node_name()`` (``"beamlet-<os pid>-<random>@127.0.0.1"``).
        cookie, port, seeds, tls, transport, ticktime, handshake_timeout,
        max_frame_size, busy_limit, seed_interval, discovery, connect_all,
        hidden, auto_connect, insecure, max_unauthenticated: as for
            ``start_distribution``.
        watchdog_threshold, mailbox_warning: as for ``beamlet.actors.open_node``.

    Returns:
        What ``main`` returned.

    Raises:
        The exception ``main`` raised, as itself; the errors of ``open_node``
        (``OSError`` naming the address when the port is taken, ``ValueError``,
        ``CookieError``), never inside an ``ExceptionGroup``.
        TypeError: ``main`` is not an async function, or an unknown option.
    """
    check_async(main)

    async def entry() -> T:
        async with open_node(
            name,
            cookie=cookie,
            port=port,
            seeds=seeds,
            tls=tls,
            transport=transport,
            ticktime=ticktime,
            handshake_timeout=handshake_timeout,
            max_frame_size=max_frame_size,
            busy_limit=busy_limit,
            seed_interval=seed_interval,
            discovery=discovery,
            connect_all=connect_all,
            hidden=hidden,
            auto_connect=auto_connect,
            insecure=insecure,
            max_unauthenticated=max_unauthenticated,
            watchdog_threshold=watchdog_threshold,
            mailbox_warning=mailbox_warning,
        ) as node:
            result = await outcome.acapture(node.run, main, *args)
        return result.unwrap()  # type: ignore[no-any-return]

    return trio.run(entry)


def node_name() -> str:
    """The current node's name (``"nonode@nohost"`` if it is not distributed)."""
    return current_node().name


def nodes(node_type: str = "visible") -> list[str]:
    """The names of the nodes this node is connected to, sorted.

    Args:
        node_type: "visible" (the default, Erlang's ``nodes()``): the nodes
            of the cluster; "hidden": the hidden connections (with hidden
            nodes, or all of them on a hidden node); "all": both.

    Raises:
        ValueError: an unknown ``node_type``.
    """
    check_node_type(node_type)
    node = current_node()
    if not isinstance(node.router, Distribution):
        return []
    return node.router.nodes(node_type)


async def connect(node_or_address: str, *, raise_on_error: bool = False) -> bool:
    """Connect to a node (by name, if its address is known) or to a ``"host:port"``.

    Example::

        if not await connect("b@10.0.0.6"):         # as Erlang's net_kernel:connect_node
            ...
        await connect("10.0.0.6:4370", raise_on_error=True)   # or say why not

    Why a connection failed (a different cookie, a TLS certificate that does
    not verify, nothing listening, no answer in time) is logged at WARNING
    (the first failure to an address in full, the next ones counted once a
    minute), and with ``raise_on_error=True`` the caller gets it as a
    ``ConnectError``.

    Args:
        node_or_address: ``"name@host"`` or ``"host:port"``.
        raise_on_error: raise ``ConnectError`` instead of returning False.

    Returns:
        True if connected (or already connected), False otherwise (``pang``).

    Raises:
        ConnectError: not connected, with ``raise_on_error=True``: ``reason``
            says why, ``node`` and ``address`` what was tried.
        NotDistributedError: this node is not distributed.

    Cancellation:
        A checkpoint; the attempt is abandoned.
    """
    return await distribution().connect(node_or_address, raise_on_error=raise_on_error)


def disconnect(node: str) -> bool:
    """Close the connection to ``node``; its links and monitors fire ``noconnection``."""
    return distribution().disconnect(node)


def listen_address() -> str | None:
    """The ``"host:port"`` this node listens on, or None if it is not distributed."""
    node = current_node()
    if not isinstance(node.router, Distribution):
        return None
    return node.router.listen_address


def monitor_nodes(flag: bool = True, *, node_type: str = "visible") -> bool:
    """Subscribe the calling process to ``NodeUp``/``NodeDown`` messages; return the previous flag.

    Args:
        flag: True to subscribe (again, possibly with another ``node_type``),
            False to stop.
        node_type: which connections to hear about: "visible" (the default),
            "hidden" or "all" (see ``nodes``).

    Raises:
        ValueError: an unknown ``node_type``.
    """
    return distribution().monitor_nodes(self_pid(), flag, node_type)


def monitor_node(node: str) -> None:
    """Get one ``NodeDown(node, reason)`` message when ``node`` disconnects (or at once
    if it cannot be reached)."""
    distribution().monitor_node(self_pid(), node)


__all__ += ["LOCAL_NODE_NAME"]
