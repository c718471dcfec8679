"""Options and errors of the apps' Redis connection layer (see ``_redis.py``).

Nothing here needs coredis: options can be checked, and errors raised, on a
node where the ``redis`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.parse
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import attrs
from beamlet.actors.lowlevel import check_number, short_repr

__all__ = [
    "INSTALL_HINT",
    "RedisCommandError",
    "RedisNotInstalledError",
    "RedisOptions",
    "RedisUnavailableError",
    "address_of",
    "check_coredis",
    "import_coredis",
    "redact",
    "require_coredis",
]

INSTALL_HINT = "pip install beamlet[redis]"


# -- errors -------------------------------------------------------------------------------------


class RedisNotInstalledError(ImportError):
    """The ``redis`` extra (coredis) is not installed."""


class RedisUnavailableError(ConnectionError):
    """Redis cannot be reached now; the command did not run, or its outcome is unknown.

    Attributes:
        address: which Redis (``host:port`` or the socket path; never a password).
        command: what was asked (``"GET"``, ``"PUBLISH"``...), or None.
        reason: why, in words (the last connection error).
    """

    def __init__(self, address: str, reason: str, command: str | None = None) -> None:
        self.address = address
        self.reason = reason
        self.command = command
        what = f" for {command}" if command else ""
        super().__init__(f"Redis at {address} is unavailable{what}: {reason}")


class RedisCommandError(RuntimeError):
    """Redis answered a command with an error (a wrong type, an ACL refusal...).

    Attributes:
        address: which Redis.
        command: the command.
        reason: Redis's error message.
    """

    def __init__(self, address: str, command: str, reason: str) -> None:
        self.address = address
        self.command = command
        self.reason = reason
        super().__init__(f"Redis at {address} refused {command}: {reason}")


def require_coredis(what: str = "the Redis support of beamlet.apps") -> ModuleType:
    """Import and return coredis, or say how to install it.

    Raises:
        RedisNotInstalledError: coredis cannot be imported.
    """
    try:
        import coredis
    except ImportError as error:
        raise RedisNotInstalledError(
            f"{what} needs the optional 'redis' extra (the coredis library), "
            f"which is not installed: {INSTALL_HINT}"
        ) from error
    return coredis


def check_coredis(what: str = "the Redis support of beamlet.apps") -> None:
    """Say how to install coredis if it is missing, without importing it (cheap).

    Importing coredis takes a few hundred milliseconds: ``open_redis`` does
    it in a worker thread (``import_coredis``), so that the event loop of a
    node is not blocked; options are checked with this at once.

    Raises:
        RedisNotInstalledError: coredis cannot be found.
    """
    module = sys.modules.get("coredis", _MISSING)
    if module is None:  # an import of it failed, or was barred
        found = False
    elif module is not _MISSING:
        found = True
    else:
        try:
            found = importlib.util.find_spec("coredis") is not None
        except (ImportError, ValueError):
            found = False
    if not found:
        raise RedisNotInstalledError(
            f"{what} needs the optional 'redis' extra (the coredis library), "
            f"which is not installed: {INSTALL_HINT}"
        )


_MISSING = object()


async def import_coredis(what: str = "the Redis support of beamlet.apps") -> ModuleType:
    """``require_coredis`` in a worker thread the first time (the import is slow).

    Raises:
        RedisNotInstalledError: coredis cannot be imported.

    Cancellation: the import goes on in its thread if cancelled.
    """
    module = sys.modules.get("coredis")
    if module is not None:
        return module
    check_coredis(what)
    import trio

    return await trio.to_thread.run_sync(require_coredis, what)


# -- options ------------------------------------------------------------------------------------

_SCHEMES = ("redis", "rediss", "unix")


def _check_url(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"url must be a str such as 'redis://127.0.0.1:6379/0', not {value!r}")
    scheme = value.partition("://")[0]
    if "://" not in value or scheme not in _SCHEMES:
        raise ValueError(
            f"url must start with redis://, rediss:// or unix://, not {short_repr(redact(value))}"
        )
    try:
        urllib.parse.urlsplit(value).port  # noqa: B018 (a bad port raises here)
    except ValueError as error:
        raise ValueError(f"url {short_repr(redact(value))} is not valid: {error}") from None


def _seconds(_instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    check_number(value, attribute.name, strict=True, finite=True, unit="seconds")


def _check_client_name(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value or " " in value):
        raise ValueError(f"client_name must be None or a str without spaces, not {value!r}")


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def address_of(url: str) -> str:
    """``host:port`` (or the socket path) of a Redis URL, for messages; no credentials."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or '127.0.0.1'}:{port}"


@attrs.frozen(kw_only=True)
class RedisOptions:
    """How to reach Redis, and how hard to try.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``
            (TLS) or ``unix://[[user]:password@]/path/to/socket?db=N``.
        connect_timeout: seconds to open a connection.
        command_timeout: seconds to wait for a reply.
        reconnect_initial: the largest delay before the first reconnection
            attempt (the backoff starts there and doubles).
        reconnect_max: the longest delay between two attempts.
        max_connections: the size of the connection pool (each subscription
            holds one of its own).
        keepalive: seconds of silence on a subscription before it sends a
            PING to check that Redis is still there.
        log_period: while Redis stays down, at most one log line per this
            many seconds.
        client_name: the name the connections give themselves in Redis
            (``CLIENT SETNAME``), or None.
    """

    url: str = attrs.field(default="redis://127.0.0.1:6379/0", validator=_check_url)
    connect_timeout: float = attrs.field(default=1.0, validator=_seconds)
    command_timeout: float = attrs.field(default=2.0, validator=_seconds)
    reconnect_initial: float = attrs.field(default=0.1, validator=_seconds)
    reconnect_max: float = attrs.field(default=5.0, validator=_seconds)
    max_connections: int = attrs.field(default=16)
    keepalive: float = attrs.field(default=5.0, validator=_seconds)
    log_period: float = attrs.field(default=30.0, validator=_seconds)
    client_name: str | None = attrs.field(default=None, validator=_check_client_name)

    def __attrs_post_init__(self) -> None:
        check_number(self.max_connections, "max_connections", minimum=1, integer=True)
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(
                f"reconnect_max must be >= reconnect_initial ({self.reconnect_initial!r} "
                f"seconds), not {self.reconnect_max!r}"
            )

    @classmethod
    def coerce(cls, value: RedisOptions | str | Mapping[str, Any] | None) -> RedisOptions:
        """Options from a ``RedisOptions``, a URL, a mapping of fields, or None (the defaults).

        Raises:
            TypeError: another type, or a field of the wrong type.
            ValueError: an unknown field, or a value out of range.
        """
        if value is None:
            return cls()
        if isinstance(value, RedisOptions):
            return value
        if isinstance(value, str):
            return cls(url=value)
        if isinstance(value, Mapping):
            fields = {field.name for field in attrs.fields(cls)}
            unknown = sorted(str(key) for key in value if key not in fields)
            if unknown:
                raise ValueError(
                    f"unknown Redis option(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(fields))}"
                )
            return cls(**value)
        raise TypeError(
            "Redis options must be a URL str, a mapping of RedisOptions fields or "
            f"RedisOptions, not {short_repr(value)}"
        )

    @property
    def address(self) -> str:
        """``host:port`` or the socket path (no credentials)."""
        return address_of(self.url)

    @property
    def deadline(self) -> float:
        """The longest any one command may take: ``connect_timeout + command_timeout``."""
        return self.connect_timeout + self.command_timeout
