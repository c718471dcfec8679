"""The cluster cookie: the shared secret that nodes prove they know.

Where it comes from, in order: the ``cookie`` argument, the ``BEAMLET_COOKIE``
environment variable, then a per-user file (``$BEAMLET_COOKIE_FILE``, else
``~/.beamlet/cookie``) that is created with 32 random bytes (URL-safe text)
and mode 0600 when missing. A cookie file readable by group or others is
refused, as ssh refuses such a key. The cookie never crosses the wire (only
HMAC proofs do) and is never logged: ``Cookie`` hides it from ``repr``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ._auth import AuthKey

__all__ = ["MIN_COOKIE_BYTES", "Cookie", "CookieError", "default_cookie_path", "resolve_cookie"]

#: Shortest cookie accepted: 16 bytes, i.e. at least 128 bits if it is random.
MIN_COOKIE_BYTES = 16


class CookieError(ValueError):
    """The cookie is missing, too short, or its file is unsafe."""


class Cookie:
    """A cookie's bytes, kept out of ``repr``, ``str`` and logs."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | str) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes):
            raise TypeError(f"a cookie is str or bytes, not {type(secret).__name__}")
        if len(secret) < MIN_COOKIE_BYTES:
            raise CookieError(
                f"the cookie must be at least {MIN_COOKIE_BYTES} bytes long "
                f"(128 bits); this one has {len(secret)}"
            )
        try:  # the handshake's own rules, checked now rather than at the first connection
            AuthKey(secret)
        except ValueError as exc:
            raise CookieError(str(exc)) from None
        self._secret = secret

    @property
    def secret(self) -> bytes:
        """The cookie bytes. Only the handshake should read them."""
        return self._secret

    def __repr__(self) -> str:
        return "Cookie(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cookie) and secrets.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(Cookie)


def default_cookie_path() -> Path:
    """Where a node without a cookie reads it: ``$BEAMLET_COOKIE_FILE`` or ``~/.beamlet/cookie``.

    The file is created (32 random bytes, mode 0600) by the first node that
    needs it, unless ``BEAMLET_COOKIE`` is set.
    """
    override = os.environ.get("BEAMLET_COOKIE_FILE")
    if override:
        return Path(override)
    return Path.home() / ".beamlet" / "cookie"


def _read_or_create(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another node created it first
            return _read_or_create(path)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CookieError(
                f"the cookie file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):o}); make it 0600"
            )
        return f.read().strip()


def resolve_cookie(cookie: bytes | str | Cookie | None = None) -> Cookie:
    """Find the cookie: the argument, ``BEAMLET_COOKIE``, or the cookie file.

    Raises:
        CookieError: the cookie is too short or its file is unsafe.
    """
    if isinstance(cookie, Cookie):
        return cookie
    if cookie is not None:
        return Cookie(cookie)
    env = os.environ.get("BEAMLET_COOKIE")
    if env:
        return Cookie(env)
    return Cookie(_read_or_create(default_cookie_path()))
