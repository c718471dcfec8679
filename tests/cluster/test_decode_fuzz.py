"""Fuzzing the decoder with frames that Hypothesis composes from adversarial parts.

test_decode_cost.py measures fifteen hand-made attacks; here Hypothesis
builds frames out of their parts, nested and mixed at random (a set of keys
that hash alike inside a map inside an array of empty maps, lying headers
after a huge integer, a deep list holding unknown extension types, random
bytes...), and the cost of decoding each, whole and in steps, is held to the
same bounds: CPU time within a multiple of a benign frame of the same size
(measured in the same test), and peak memory within a fixed number of bytes
per input byte. Decoding gives a value or ``DecodeError``, nothing else.
"""

from __future__ import annotations

import gc
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from beamlet.cluster import Codec, DecodeError, encode
from cpu_cost import cpu_against
from hypothesis import HealthCheck, assume, given, settings, strategies as st

#: Python hashes an int ``n`` to ``n mod M``: multiples of M all hash to 0.
M = 2**61 - 1
EXT_SET, EXT_FROZENSET, EXT_BIGINT = 2, 3, 7

CPU_FACTOR = 25
MEMORY_PER_BYTE = 100
CPU_SLACK = 0.005
MEMORY_SLACK = 256 * 1024

#: The frames are grown to at least this many bytes, so that costs are measurable.
MIN_SIZE = 48 * 1024
#: ... and composed frames larger than this are left out, to keep the test short.
MAX_SIZE = 1024 * 1024


def _array(items: list[bytes]) -> bytes:
    return b"\xdd" + struct.pack(">I", len(items)) + b"".join(items)


def _map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"\xdf" + struct.pack(">I", len(pairs)) + b"".join(k + v for k, v in pairs)


def _tagged(code: int, items: list[bytes]) -> bytes:
    return (
        b"\xdd" + struct.pack(">I", len(items) + 1) + b"\xc7\x00" + bytes([code]) + b"".join(items)
    )


def _int(n: int) -> bytes:
    return encode(n)


# -- the parts -------------------------------------------------------------------------------

colliding_ints = st.integers(20, 3000).map(lambda n: [_int(k * M) for k in range(1, n)])
scalars = st.one_of(
    st.integers(-(2**63), 2**64 - 1).map(_int),
    st.text(max_size=8).map(encode),
    st.binary(max_size=8).map(encode),
    st.sampled_from([b"\xc0", b"\xc2", b"\xc3", b"\x00", b"\xa0", b"\x80", b"\x90"]),
)
leaves = st.one_of(
    scalars,
    colliding_ints.map(lambda items: _tagged(EXT_SET, items)),
    colliding_ints.map(lambda items: _tagged(EXT_FROZENSET, items)),
    colliding_ints.map(lambda items: _map([(k, b"\xc0") for k in items])),
    st.integers(1, 20_000)
    .map(lambda n: b"\x80" * n)
    .map(lambda b: b"\xdd" + struct.pack(">I", len(b)) + b),
    st.integers(1, 20_000).map(lambda n: _array([b"\x91\x90"] * n)),
    st.integers(1, 4000)
    .map(lambda n: b"\x7f" + b"\xff" * n)
    .map(lambda p: b"\xc7" + bytes([min(len(p), 255)]) + bytes([EXT_BIGINT]) + p[:255]),
    st.integers(1, 3000).map(lambda n: _array([b"\xd4\x63\x00"] * n)),  # unknown extension
    st.integers(1, 500).map(lambda n: b"\xdc\x27\x10" * n),  # headers that lie
    st.integers(1, 300).map(lambda n: b"\x91" * n + b"\x00"),  # deep
    st.binary(min_size=1, max_size=64),  # anything at all
)


frames = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=6).map(_array),
        st.lists(st.tuples(scalars, inner), min_size=1, max_size=6).map(_map),
        st.tuples(inner, st.integers(2, 20)).map(lambda t: _array([t[0]] * t[1])),
    ),
    max_leaves=12,
)


def _sized(frame: bytes) -> bytes:
    """The frame repeated in one array until it is at least ``MIN_SIZE`` bytes."""
    copies = max(1, -(-MIN_SIZE // len(frame)))
    return _array([frame] * copies)


def benign(size: int) -> bytes:
    item = encode({"user": "someone", "n": 123456, "tags": ("a", "b"), "score": 0.5})
    return _array([item] * max(1, size // len(item)))


def _decode_whole(codec: Codec, data: bytes) -> None:
    try:
        codec.decode(data)
    except DecodeError:
        pass


def _decode_in_steps(codec: Codec, data: bytes) -> None:
    try:
        decoding = codec.decode_steps(data)
        while not decoding.step():
            pass
    except DecodeError:
        pass


def _bound(base: float) -> float:
    return CPU_FACTOR * base + CPU_SLACK


def _peak_memory(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(600)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames)
def test_composed_adversarial_frames_cost_cpu_and_memory_linear_in_their_size(
    frame: bytes,
) -> None:
    assume(len(frame) <= MAX_SIZE)
    data = _sized(frame)
    codec = Codec(max_size=1 << 24)
    reference = benign(len(data))
    for decoder in (_decode_whole, _decode_in_steps):
        cost, base = cpu_against(
            lambda d=decoder: d(codec, data),  # type: ignore[misc]
            lambda: _decode_whole(codec, reference),
            _bound,
        )
        assert cost <= CPU_FACTOR * base + CPU_SLACK, (decoder.__name__, len(data), cost, base)
        peak = _peak_memory(lambda d=decoder: d(codec, data))  # type: ignore[misc]
        assert peak <= MEMORY_PER_BYTE * len(data) + MEMORY_SLACK, (
            decoder.__name__,
            len(data),
            peak,
        )
