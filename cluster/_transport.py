"""Transports: how bytes travel between nodes. TCP, TLS over TCP, and in-memory.

A transport knows how to listen (``serve``) and how to ``connect``; both give
Trio streams to the distribution layer, which runs the wire protocol over them.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
import trio.testing

__all__ = [
    "MemoryNetwork",
    "MemoryTransport",
    "TCPTransport",
    "TLSConfig",
    "Transport",
    "certificate_problem",
    "describe_failure",
    "peer_host",
    "split_address",
]

logger = logging.getLogger("beamlet.cluster")

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


def split_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``) into host and port.

    Raises:
        ValueError: the address is malformed.
    """
    if not isinstance(address, str):
        raise TypeError(f"an address is a 'host:port' string, not {address!r}")
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"an address is 'host:port', not {address!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


@attrs.frozen
class TLSConfig:
    """TLS for distribution: a server and a client ``ssl.SSLContext``.

    With ``verify_mode = CERT_REQUIRED`` on the server context, nodes must
    present certificates (mutual TLS). The client checks the server's
    certificate against the host of the node name it connects to. The cookie
    handshake still runs inside TLS.

    Attributes:
        server: the context for accepted connections.
        client: the context for outgoing connections.
    """

    server: ssl.SSLContext = attrs.field(validator=attrs.validators.instance_of(ssl.SSLContext))
    client: ssl.SSLContext = attrs.field(validator=attrs.validators.instance_of(ssl.SSLContext))

    @classmethod
    def from_files(
        cls, *, certfile: str, keyfile: str | None = None, cafile: str, mutual: bool = True
    ) -> TLSConfig:
        """Build both contexts from PEM files.

        Args:
            certfile: this node's certificate chain.
            keyfile: its private key (if not in ``certfile``).
            cafile: the CA that signs the cluster's certificates.
            mutual: require client certificates too.
        """
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cafile)
        server.load_cert_chain(certfile, keyfile)
        server.minimum_version = ssl.TLSVersion.TLSv1_2
        if mutual:
            server.verify_mode = ssl.CERT_REQUIRED
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        client.load_cert_chain(certfile, keyfile)
        client.minimum_version = ssl.TLSVersion.TLSv1_2
        return cls(server=server, client=client)


def _host_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    # A wildcard stands for the whole leftmost label only: *.example.org
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return False


def certificate_problem(stream: trio.abc.Stream, node: str) -> str | None:
    """Check that the peer on a TLS ``stream`` has a certificate for the host of ``node``.

    The node name is what the peer claims in the handshake; the certificate
    is what the cluster's CA vouches for. Pinning one to the other keeps a
    node with a valid certificate for one host from posing as a node of
    another host. Plain streams, and TLS peers that were not asked for a
    certificate (``mutual=False``), are not checked.

    Returns:
        None if the certificate names the host, else what is wrong.
    """
    if not isinstance(stream, trio.SSLStream):
        return None
    cert = stream.getpeercert()
    if not cert:
        return None
    host = node.partition("@")[2]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    names = cert.get("subjectAltName", ())
    for kind, value in names:
        if ip is not None and kind == "IP Address":
            try:
                if ipaddress.ip_address(value.strip()) == ip:
                    return None
            except ValueError:
                continue
        elif ip is None and kind == "DNS" and _host_matches(value, host):
            return None
    shown = ", ".join(f"{kind}:{value}" for kind, value in names) or "no subjectAltName"
    return f"its certificate is not for {host} ({shown})"


#: What some TLS alerts and errors mean for a cluster, by OpenSSL's reason code.
_TLS_HINTS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": (
        "the peer presented no client certificate, and this node requires one: mutual TLS"
    ),
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        "the peer requires a client certificate, and this node presented none"
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer refused this node's certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the peer refused this node's certificate",
    "TLSV1_ALERT_UNKNOWN_CA": (
        "the peer does not know the CA of this node's certificate (another cluster's CA?)"
    ),
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS (is TLS configured on both nodes?)",
    "HTTP_REQUEST": "the peer does not speak TLS",
}

_SSL_NOISE = re.compile(r"^\[SSL(: [A-Z0-9_]+)?\]\s*|\s*\(_ssl\.c:\d+\)$")


def describe_failure(exc: BaseException) -> str:
    """Why a connection failed, in words: the TLS or OS cause under Trio's wrappers.

    ``trio.SSLStream`` raises ``BrokenResourceError`` (whose message is empty)
    from the ``ssl.SSLError`` that says what went wrong: the certificate
    could not be verified (``unable to get local issuer certificate``, an IP
    address or host mismatch), the peer wanted a client certificate, ... This
    finds that cause, or an ``OSError``'s, and says it.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or _SSL_NOISE.sub("", str(cause))
            return f"TLS: certificate verify failed: {detail}"
        if isinstance(cause, ssl.SSLEOFError):
            return (
                "TLS: the peer closed the connection during the TLS handshake (it may have "
                "refused this node's certificate, or wanted one it was not given: its log "
                "says which)"
            )
        if isinstance(cause, ssl.SSLError):
            code = str(cause.reason or "")
            text = _SSL_NOISE.sub("", cause.strerror or str(cause))
            hint = _TLS_HINTS.get(code)
            return f"TLS: {text} ({hint})" if hint else f"TLS: {text}"
        if isinstance(cause, OSError) and (cause.strerror or str(cause)):
            return cause.strerror or str(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
        return "the connection was closed by the peer"
    return str(exc) or type(exc).__name__


def peer_host(stream: trio.abc.Stream) -> str:
    """The host (IP address) at the other end of ``stream``, as far as can be told."""
    inner = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(inner, trio.SocketStream):
        try:
            return str(inner.socket.getpeername()[0])
        except (OSError, IndexError, TypeError):
            return "an unknown address"
    if isinstance(inner, _NetworkStream):
        return inner._dst
    return "an unknown address"


#: The ``accept`` errors that mean "out of file descriptors or memory for now".
_CAPACITY_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, "EMFILE", None),
        getattr(errno, "ENFILE", None),
        getattr(errno, "ENOMEM", None),
        getattr(errno, "ENOBUFS", None),
    )
    if code is not None
)

#: Seconds between two log lines about failed accepts, while they go on.
ACCEPT_LOG_PERIOD = 60.0


async def _accept_loop(
    listener: trio.abc.Listener[trio.abc.Stream],
    handle: Handler,
    nursery: trio.Nursery,
    make_room: Callable[[], bool] | None,
) -> None:
    """Accept for ever; out of descriptors, make room or back off, logging now and then.

    ``make_room`` (the handler's, if it has one) gives up a connection that
    has not authenticated yet, so that a new one can be accepted; without
    one to give up, the loop waits, longer each time (up to a second). The
    first failure is logged, then a count at most every ``ACCEPT_LOG_PERIOD``.
    """
    delay = 0.0
    unlogged = 0
    logged_at = -ACCEPT_LOG_PERIOD
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _CAPACITY_ERRNOS:
                raise
            now = trio.current_time()
            if now - logged_at >= ACCEPT_LOG_PERIOD:
                more = f" ({unlogged} more since the last report)" if unlogged else ""
                logger.warning(
                    "cannot accept connections: %s; backing off%s",
                    os.strerror(exc.errno or 0),
                    more,
                )
                logged_at, unlogged = now, 0
            else:
                unlogged += 1
            if make_room is not None and make_room():
                delay = 0.0
                await trio.sleep(0.01)  # the connection given up closes meanwhile
            else:
                delay = min(max(2 * delay, 0.01), 1.0)
                await trio.sleep(delay)
            continue
        delay = 0.0
        nursery.start_soon(handle, stream)


class Transport:
    """Where distribution gets its streams. Subclasses implement both methods."""

    async def serve(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port``; report the address with ``task_status.started``.

        ``handler`` runs for each accepted stream; its errors are logged and
        never stop the listener. If it has a ``make_room()`` method, a
        listener out of file descriptors calls it (it gives up a connection
        not authenticated yet, and says whether it did) before trying again.
        """
        raise NotImplementedError

    async def connect(self, address: str, peer_host: str | None = None) -> trio.abc.Stream:
        """Open a stream to ``address`` (``peer_host`` names the expected peer, for TLS)."""
        raise NotImplementedError


async def _guarded(handler: Handler, stream: trio.abc.Stream) -> None:
    try:
        await handler(stream)
    except Exception as exc:
        logger.warning("connection handler failed: %r", exc)
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)


def _listen_error(exc: OSError, host: str, port: int) -> OSError:
    """``exc`` (same type and errno) with a message that names the address."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    why = exc.strerror or str(exc)
    hint = (
        " (something else listens there; choose another port, or 0 for any free one)"
        if (exc.errno == errno.EADDRINUSE)
        else ""
    )
    message = f"cannot listen on {where}: {why}{hint}"
    try:
        new = type(exc)(exc.errno, message) if exc.errno is not None else type(exc)(message)
    except Exception:  # an OSError subclass with another constructor
        new = OSError(exc.errno, message)
    return new


class TCPTransport(Transport):
    """TCP, optionally wrapped in TLS (``trio.SSLStream``)."""

    def __init__(self, tls: TLSConfig | None = None) -> None:
        self.tls = tls

    async def serve(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if host.startswith("[") and host.endswith("]"):  # an IPv6 node name: a@[::1]
            host = host[1:-1]
        try:
            listeners = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            raise _listen_error(exc, host, port) from None
        bound = listeners[0].socket.getsockname()
        address = f"[{host}]:{bound[1]}" if ":" in host else f"{host}:{bound[1]}"
        tls = self.tls
        if tls is not None:
            listeners = [trio.SSLListener(lst, tls.server) for lst in listeners]  # type: ignore[misc]

        async def handle(stream: trio.abc.Stream) -> None:
            await _guarded(handler, stream)

        make_room = getattr(handler, "make_room", None)
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(_accept_loop, listener, handle, nursery, make_room)
            task_status.started(address)

    async def connect(self, address: str, peer_host: str | None = None) -> trio.abc.Stream:
        host, port = split_address(address)
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
        if self.tls is not None:
            hostname = (peer_host or host).strip("[]")
            ssl_stream = trio.SSLStream(stream, self.tls.client, server_hostname=hostname)
            try:
                await ssl_stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(ssl_stream)
                raise
            return ssl_stream
        return stream


class MemoryNetwork:
    """An in-memory network for nodes in one ``trio.run`` (the simulation uses it).

    Addresses are ``"host:port"`` strings. ``block(a, b)`` partitions two hosts:
    new connections between them are refused and bytes on existing ones are
    silently lost, as on a real network split, so that the nodes notice only
    through their ticks. ``set_delay`` holds bytes for that many seconds
    (virtual seconds under ``MockClock``), between two hosts or everywhere.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, trio.MemorySendChannel[trio.abc.Stream]] = {}
        self._next_port = 40000
        self._blocked: set[frozenset[str]] = set()
        self._delays: dict[frozenset[str] | None, float] = {}

    def block(self, host_a: str, host_b: str) -> None:
        """Partition ``host_a`` from ``host_b`` (both ways): new connections between
        them are refused, bytes on open ones are lost. Until ``unblock_all``."""
        self._blocked.add(frozenset((host_a, host_b)))

    def unblock_all(self) -> None:
        """Heal every partition made by ``block`` (delays stay as they are)."""
        self._blocked.clear()

    def is_blocked(self, host_a: str, host_b: str) -> bool:
        """Whether ``host_a`` and ``host_b`` are partitioned (the order does not matter)."""
        return frozenset((host_a, host_b)) in self._blocked

    def set_delay(
        self, seconds: float, host_a: str | None = None, host_b: str | None = None
    ) -> None:
        """Delay bytes between two hosts (or between all hosts when none are given)."""
        key = None if host_a is None or host_b is None else frozenset((host_a, host_b))
        if seconds:
            self._delays[key] = seconds
        else:
            self._delays.pop(key, None)

    def delay(self, host_a: str, host_b: str) -> float:
        """The seconds bytes from one host to the other are held: the delay set for
        the pair, else the one set for all hosts, else 0."""
        return self._delays.get(frozenset((host_a, host_b)), self._delays.get(None, 0.0))

    def transport(self, host: str) -> MemoryTransport:
        """The transport a node on ``host`` uses."""
        return MemoryTransport(self, host)


class MemoryTransport(Transport):
    """A node's view of a ``MemoryNetwork``."""

    def __init__(self, network: MemoryNetwork, host: str) -> None:
        self.network = network
        self.host = host

    async def serve(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        net = self.network
        if port == 0:
            net._next_port += 1
            port = net._next_port
        address = f"{host}:{port}"
        if address in net._listeners:
            raise OSError(f"address {address} already in use")
        send, receive = trio.open_memory_channel[trio.abc.Stream](64)
        net._listeners[address] = send
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(address)
                async for stream in receive:
                    nursery.start_soon(_guarded, handler, stream)
        finally:
            net._listeners.pop(address, None)

    async def connect(self, address: str, peer_host: str | None = None) -> trio.abc.Stream:
        net = self.network
        host, _port = split_address(address)
        await trio.lowlevel.checkpoint()
        listener = net._listeners.get(address)
        if listener is None or net.is_blocked(self.host, host):
            raise OSError(f"connection to {address} refused")
        ours, theirs = trio.testing.memory_stream_pair()
        mine = _NetworkStream(ours, net, self.host, host)
        other = _NetworkStream(theirs, net, host, self.host)
        try:
            listener.send_nowait(other)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            raise OSError(f"connection to {address} refused") from None
        return mine


class _NetworkStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection from ``src`` to ``dst``, through the network."""

    def __init__(
        self, inner: trio.abc.HalfCloseableStream, network: MemoryNetwork, src: str, dst: str
    ) -> None:
        self._inner = inner
        self._network = network
        self._src = src
        self._dst = dst

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        delay = self._network.delay(self._src, self._dst)
        if delay:
            await trio.sleep(delay)
        if self._network.is_blocked(self._src, self._dst):
            await trio.lowlevel.checkpoint()
            return  # lost in the partition
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if self._network.is_blocked(self._src, self._dst):
            await trio.lowlevel.checkpoint()
            return
        await self._inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        if self._network.is_blocked(self._src, self._dst):
            # The end of the stream is lost in the partition too: the peer
            # notices only through its ticks, as on a real network split.
            await trio.lowlevel.checkpoint()
            return
        await self._inner.aclose()
