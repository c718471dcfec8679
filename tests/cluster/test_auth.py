"""Handshake authentication: key derivation, transcript binding, no reflection."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest
from beamlet.cluster._auth import (
    DIGEST_SIZE,
    NONCE_SIZE,
    AuthKey,
    Role,
    Transcript,
    generate_cookie,
    hkdf_sha256,
    new_nonce,
)
from beamlet.cluster._connection import NEED_DATA, Connection, State
from beamlet.cluster._errors import RemoteProtocolError
from beamlet.cluster._events import Proof
from beamlet.cluster._frames import encode_handshake

COOKIE = b"correct horse battery staple 42"


def transcript() -> Transcript:
    return Transcript(
        initiator_name="a@127.0.0.1",
        acceptor_name="b@127.0.0.1",
        initiator_creation=11,
        acceptor_creation=22,
        initiator_flags=3,
        acceptor_flags=1,
        min_version=1,
        max_version=2,
        version=2,
        initiator_nonce=b"\x01" * NONCE_SIZE,
        acceptor_nonce=b"\x02" * NONCE_SIZE,
    )


def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf_sha256(
        bytes([0x0B] * 22), salt=bytes(range(13)), info=bytes(range(0xF0, 0xFA)), length=42
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_case_3_empty_salt_and_info() -> None:
    okm = hkdf_sha256(bytes([0x0B] * 22), salt=b"", info=b"", length=42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_hkdf_length_is_checked() -> None:
    with pytest.raises(ValueError, match="length"):
        hkdf_sha256(b"k", salt=b"", info=b"", length=0)


def test_nonces_and_cookies_are_random() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(n) == NONCE_SIZE for n in nonces)
    cookie = generate_cookie()
    assert len(cookie) >= 43
    assert cookie != generate_cookie()
    AuthKey(cookie)  # accepted


def test_proof_is_an_hmac_of_the_transcript() -> None:
    key = AuthKey(COOKIE)
    t = transcript()
    proof = key.proof(t, Role.INITIATOR)
    assert len(proof) == DIGEST_SIZE
    assert key.proof(t, Role.INITIATOR) == proof
    assert key.verify(t, Role.INITIATOR, proof)
    assert not key.verify(t, Role.INITIATOR, bytes(DIGEST_SIZE))


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(Transcript)])
def test_every_transcript_field_is_bound(field: str) -> None:
    key = AuthKey(COOKIE)
    t = transcript()
    value = getattr(t, field)
    changed: Any
    if isinstance(value, str):
        changed = value.replace("127.0.0.1", "127.0.0.2")
    elif isinstance(value, bytes):
        changed = bytes([value[0] ^ 1]) + value[1:]
    else:
        changed = value + 1
    other = attrs.evolve(t, **{field: changed})  # type: ignore[arg-type]
    for role in Role:
        assert key.proof(other, role) != key.proof(t, role)
        assert not key.verify(other, role, key.proof(t, role))


def test_fields_cannot_slide_into_each_other() -> None:
    key = AuthKey(COOKIE)
    t = transcript()
    shifted = attrs.evolve(t, initiator_name="a@127.0.0.1b", acceptor_name="@127.0.0.1")
    assert key.proof(shifted, Role.INITIATOR) != key.proof(t, Role.INITIATOR)


def test_role_is_bound_so_proofs_cannot_be_reflected() -> None:
    key = AuthKey(COOKIE)
    t = transcript()
    initiator_proof = key.proof(t, Role.INITIATOR)
    assert key.proof(t, Role.ACCEPTOR) != initiator_proof
    assert not key.verify(t, Role.ACCEPTOR, initiator_proof)


def test_different_cookies_give_different_proofs() -> None:
    t = transcript()
    assert AuthKey(COOKIE).proof(t, Role.INITIATOR) != AuthKey(COOKIE + b"!").proof(
        t, Role.INITIATOR
    )
    assert AuthKey(COOKIE.decode()).proof(t, Role.INITIATOR) == AuthKey(COOKIE).proof(
        t, Role.INITIATOR
    )


@pytest.mark.parametrize(
    ("cookie", "error", "match"),
    [
        (b"short", ValueError, "too short: 5 bytes"),
        ("fifteen chars!!", ValueError, "too short"),
        (b"", ValueError, "too short"),
        (b"abababababababababab", ValueError, "too regular"),
        (12345678901234567890, TypeError, "bytes or str"),
    ],
)
def test_weak_cookies_are_refused_without_quoting_them(
    cookie: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        AuthKey(cookie)  # type: ignore[arg-type]
    text = str(info.value)
    if isinstance(cookie, bytes | str) and cookie:
        assert str(cookie) not in text
        assert repr(cookie) not in text


def test_the_key_never_shows() -> None:
    key = AuthKey(COOKIE)
    assert repr(key) == "<AuthKey>"
    assert COOKIE.decode() not in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert "nonce" not in repr(transcript())


def test_transcript_fields_are_validated() -> None:
    with pytest.raises(ValueError, match="initiator_nonce"):
        attrs.evolve(transcript(), initiator_nonce=b"short")
    with pytest.raises(ValueError, match="version"):
        attrs.evolve(transcript(), version=-1)


def test_reflected_proof_is_refused_by_the_initiator() -> None:
    """An acceptor that does not know the cookie echoes the initiator's proof."""
    a = Connection(Role.INITIATOR, node_name="a@h", creation=1, cookie=COOKIE)
    b = Connection(Role.ACCEPTOR, node_name="b@h", creation=2, cookie=COOKIE)
    b.receive_data(a.initiate())
    b.next_event()
    a.receive_data(b.data_to_send())
    a.next_event()
    proof_frame = a.data_to_send()
    a.receive_data(proof_frame)  # the attacker sends it straight back
    with pytest.raises(RemoteProtocolError, match="proof does not match"):
        a.next_event()
    assert a.state is State.ERROR


def test_proof_for_another_connection_is_refused() -> None:
    """A proof replayed from an earlier handshake does not verify (fresh nonces)."""

    def handshake_until_initiator_proof() -> tuple[Connection, bytes]:
        a = Connection(Role.INITIATOR, node_name="a@h", creation=1, cookie=COOKIE)
        b = Connection(Role.ACCEPTOR, node_name="b@h", creation=2, cookie=COOKIE)
        b.receive_data(a.initiate())
        b.next_event()
        a.receive_data(b.data_to_send())
        a.next_event()
        return b, a.data_to_send()

    b1, proof1 = handshake_until_initiator_proof()
    b2, _ = handshake_until_initiator_proof()
    b2.receive_data(proof1)
    with pytest.raises(RemoteProtocolError, match="proof does not match"):
        b2.next_event()
    b1.receive_data(proof1)
    assert b1.next_event() is not NEED_DATA
    assert b1.state is State.CONNECTED


def test_forged_proof_frame_is_refused() -> None:
    a = Connection(Role.INITIATOR, node_name="a@h", creation=1, cookie=COOKIE)
    b = Connection(Role.ACCEPTOR, node_name="b@h", creation=2, cookie=COOKIE)
    b.receive_data(a.initiate())
    b.next_event()
    b.receive_data(encode_handshake(Proof(bytes(DIGEST_SIZE))))
    with pytest.raises(RemoteProtocolError):
        b.next_event()
    assert b"bad cookie" in b.data_to_send()
