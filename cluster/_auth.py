"""Handshake authentication: the cookie, nonces, the transcript and the proofs.

Both nodes share a secret cookie. It never crosses the wire and is kept only
as a key derived from it with HKDF-SHA256. Each side sends a fresh 32-byte
nonce from the OS CSPRNG; each then proves knowledge of the key with
``HMAC-SHA256(key, transcript)``, where the transcript holds, in a fixed and
unambiguous order, the protocol tag, the prover's role, both node names, both
creations, both capability sets, the initiator's version range and the chosen
version, and both nonces. Binding the role defeats reflection (the acceptor
cannot send the initiator's proof back), binding everything else defeats
downgrade and splicing. The initiator proves first; the acceptor proves only
after it has verified the initiator. Proofs are compared in constant time.

A captured handshake still allows an offline guess of the cookie, which is
why cookies shorter than 16 bytes (128 bits) are refused outright; use
``generate_cookie()``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import struct
from typing import Any, NoReturn

import attrs

__all__ = [
    "DIGEST_SIZE",
    "MIN_COOKIE_BYTES",
    "NONCE_SIZE",
    "PROTOCOL_TAG",
    "AuthKey",
    "Role",
    "Transcript",
    "generate_cookie",
    "hkdf_sha256",
    "new_nonce",
]

#: Names the protocol in every transcript (and so in every proof).
PROTOCOL_TAG = b"beamlet-dist-v1"
NONCE_SIZE = 32
DIGEST_SIZE = 32
#: The shortest cookie accepted: 16 bytes, 128 bits.
MIN_COOKIE_BYTES = 16
#: A cookie must use at least this many different byte values.
_MIN_DISTINCT_BYTES = 8

_KEY_SALT = b"beamlet-dist-v1 cookie salt"
_KEY_INFO = b"beamlet-dist-v1 handshake key"
_INTS = struct.Struct(">IIQQHHH")


class Role(enum.Enum):
    """Which side of the handshake: the one that connects, or the one that listens."""

    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """Derive ``length`` bytes from ``ikm`` with HKDF-SHA256 (RFC 5869).

    Args:
        ikm: the input keying material.
        salt: the salt; empty means 32 zero bytes, as the RFC says.
        info: context that makes derived keys differ by purpose.
        length: how many bytes to return, at most 8160.

    Returns:
        The output keying material.

    Raises:
        ValueError: ``length`` is out of range.
    """
    if not 0 < length <= 255 * 32:
        raise ValueError(f"hkdf_sha256: 'length' must be in 1..8160, not {length!r}")
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def new_nonce() -> bytes:
    """Return a fresh 32-byte nonce from the OS CSPRNG."""
    return secrets.token_bytes(NONCE_SIZE)


def generate_cookie() -> str:
    """Return a new random cookie: 43 URL-safe characters, 256 bits."""
    return secrets.token_urlsafe(32)


def _cookie_bytes(cookie: object) -> bytes:
    # Messages here state sizes only: never the cookie, nor a piece of it.
    if isinstance(cookie, str):
        data = cookie.encode()
    elif isinstance(cookie, bytes | bytearray):
        data = bytes(cookie)
    else:
        raise TypeError(f"the cookie must be bytes or str, not {type(cookie).__name__}")
    if len(data) < MIN_COOKIE_BYTES:
        raise ValueError(
            f"the cookie is too short: {len(data)} bytes, need at least {MIN_COOKIE_BYTES} "
            "(128 bits); use generate_cookie()"
        )
    if len(set(data)) < _MIN_DISTINCT_BYTES:
        raise ValueError(
            f"the cookie is too regular: fewer than {_MIN_DISTINCT_BYTES} different bytes; "
            "use generate_cookie()"
        )
    return data


def _u32(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 <= value < 1 << 32:
        _bad(attribute, value, "an int in 0..2**32-1")


def _u64(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 <= value < 1 << 64:
        _bad(attribute, value, "an int in 0..2**64-1")


def _u16(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 0 <= value < 1 << 16:
        _bad(attribute, value, "an int in 0..65535")


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str:
        _bad(attribute, value, "a str")


def _nonce(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not bytes or len(value) != NONCE_SIZE:
        _bad(attribute, value, f"{NONCE_SIZE} bytes")


def _bad(attribute: attrs.Attribute[Any], value: object, expected: str) -> NoReturn:
    shown = f"{len(value)} bytes" if isinstance(value, bytes) else repr(value)[:80]
    raise ValueError(f"Transcript: {attribute.name!r} must be {expected}, not {shown}")


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@attrs.frozen
class Transcript:
    """Everything both sides said in the handshake, which the proofs cover.

    Attributes:
        initiator_name: the connecting node.
        acceptor_name: the listening node.
        initiator_creation: the connecting node's incarnation.
        acceptor_creation: the listening node's incarnation.
        initiator_flags: the capabilities the initiator offered.
        acceptor_flags: the capabilities the acceptor offered.
        min_version: the lowest version the initiator offered.
        max_version: the highest version the initiator offered.
        version: the version the acceptor chose.
        initiator_nonce: the initiator's 32 random bytes.
        acceptor_nonce: the acceptor's 32 random bytes.
    """

    initiator_name: str = attrs.field(validator=_name)
    acceptor_name: str = attrs.field(validator=_name)
    initiator_creation: int = attrs.field(validator=_u32)
    acceptor_creation: int = attrs.field(validator=_u32)
    initiator_flags: int = attrs.field(validator=_u64)
    acceptor_flags: int = attrs.field(validator=_u64)
    min_version: int = attrs.field(validator=_u16)
    max_version: int = attrs.field(validator=_u16)
    version: int = attrs.field(validator=_u16)
    initiator_nonce: bytes = attrs.field(validator=_nonce, repr=False)
    acceptor_nonce: bytes = attrs.field(validator=_nonce, repr=False)

    def to_bytes(self, role: Role) -> bytes:
        """Serialize the transcript as proved by ``role``, unambiguously.

        Args:
            role: the side making the proof.

        Returns:
            Length-prefixed tag, role, names and nonces, and fixed-width integers.
        """
        ints = _INTS.pack(
            self.initiator_creation,
            self.acceptor_creation,
            self.initiator_flags,
            self.acceptor_flags,
            self.min_version,
            self.max_version,
            self.version,
        )
        return b"".join(
            (
                _field(PROTOCOL_TAG),
                _field(role.value.encode()),
                _field(self.initiator_name.encode()),
                _field(self.acceptor_name.encode()),
                ints,
                _field(self.initiator_nonce),
                _field(self.acceptor_nonce),
            )
        )


class AuthKey:
    """The handshake key, derived from the cookie; the cookie itself is not kept.

    Its repr shows nothing, and it refuses to be pickled.

    Args:
        cookie: the shared cookie, bytes or str (UTF-8), at least 16 bytes.

    Raises:
        TypeError: the cookie is neither bytes nor str.
        ValueError: it is shorter than 16 bytes, or too regular.
    """

    __slots__ = ("_key",)

    def __init__(self, cookie: bytes | str) -> None:
        self._key = hkdf_sha256(_cookie_bytes(cookie), salt=_KEY_SALT, info=_KEY_INFO)

    def __repr__(self) -> str:
        return "<AuthKey>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AuthKey cannot be pickled")

    def proof(self, transcript: Transcript, role: Role) -> bytes:
        """Return ``role``'s proof for ``transcript``: a 32-byte HMAC-SHA256."""
        return hmac.new(self._key, transcript.to_bytes(role), hashlib.sha256).digest()

    def verify(self, transcript: Transcript, role: Role, digest: bytes) -> bool:
        """Tell, in constant time, whether ``digest`` is ``role``'s proof of ``transcript``."""
        return hmac.compare_digest(self.proof(transcript, role), digest)
