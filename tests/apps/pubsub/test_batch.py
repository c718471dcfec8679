"""The pure core of the cluster adapter's batches: the wire format and the bounds."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from beamlet.actors import Pid
from beamlet.apps.pubsub._batch import (
    ACCEPT_BATCH_BYTES,
    ACCEPT_BATCH_ENTRIES,
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    MAX_BATCH_HEADS,
    MIN_BATCH_BEFORE_HEADS,
    Batch,
    check_batch,
    encode_entry,
    heads,
    pack_batch,
    unpack_batch,
)
from beamlet.cluster import encode
from hypothesis import given, strategies as st

_pids = st.builds(
    Pid, st.sampled_from(["a@a", "b@b"]), st.integers(0, 2**40), st.integers(1, 2**32 - 1)
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    _pids,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=12,
)
_broadcasts = st.tuples(
    st.text(max_size=10),  # topic
    _values,  # message
    st.sampled_from(["beamlet.pubsub", "app.fastlane"]),  # dispatcher
    st.one_of(st.none(), _pids),  # from_pid
)


def _expected(topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> list[Any]:
    head: Any = (
        topic
        if dispatcher == "beamlet.pubsub" and from_pid is None
        else [
            topic,
            dispatcher,
            from_pid,
        ]
    )
    return [head, message]


@given(st.lists(_broadcasts, max_size=30))
def test_a_batch_decodes_to_its_entries_in_order(broadcasts: list[Any]) -> None:
    blob = pack_batch([encode_entry(*b) for b in broadcasts])
    items, bad = unpack_batch(blob)
    assert bad == []
    assert items == [x for b in broadcasts for x in _expected(*b)]


@given(st.lists(_broadcasts, min_size=1, max_size=10), st.data())
def test_an_undecodable_entry_costs_only_itself(broadcasts: list[Any], data: Any) -> None:
    entries = [encode_entry(*b) for b in broadcasts]
    # An entry holding an extension type no node knows (code 100), anywhere in the batch.
    at = data.draw(st.integers(0, len(entries)))
    entries.insert(at, b"\xa1t" + b"\xd4\x64\x00")
    items, bad = unpack_batch(pack_batch(entries))
    assert items == [x for b in broadcasts for x in _expected(*b)]
    assert len(bad) == 1 and "undecodable batch entry" in bad[0][1]
    assert bad[0][0] == b"\xa1t\xd4\x64\x00"


@given(st.binary(max_size=200))
def test_any_bytes_unpack_without_raising(blob: bytes) -> None:
    items, bad = unpack_batch(blob)
    assert len(items) % 2 == 0
    assert items or bad or msgpack.unpackb(blob) == []


@given(st.lists(_broadcasts, max_size=10), st.binary(min_size=1, max_size=20))
def test_a_damaged_batch_is_reported_never_raised(broadcasts: list[Any], junk: bytes) -> None:
    blob = pack_batch([encode_entry(*b) for b in broadcasts])
    items, bad = unpack_batch(blob + junk)  # trailing bytes, or a truncated last entry
    assert bad
    good = [x for b in broadcasts for x in _expected(*b)]
    assert items == good[: len(items)]


def test_a_malformed_batch_is_refused_whole() -> None:
    for blob in (encode(["t"]), encode({"t": 1}), encode("t"), encode(("t", 1))):
        items, bad = unpack_batch(blob)
        assert items == [] and len(bad) == 1 and bad[0][1].startswith("malformed batch")


def test_an_unencodable_message_raises_with_no_entry() -> None:
    with pytest.raises(TypeError, match="object"):
        encode_entry("t", object(), "beamlet.pubsub", None)
    encode(_deep(100))  # within max_depth alone, but not one level down in a batch:
    with pytest.raises(ValueError, match="max_depth"):
        encode_entry("t", _deep(100), "beamlet.pubsub", None)


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_a_message_as_deep_as_allowed_in_a_batch_still_decodes() -> None:
    entry = encode_entry("t", _deep(99), "beamlet.pubsub", None)
    items, bad = unpack_batch(pack_batch([entry, entry]))
    assert bad == [] and items == ["t", _deep(99), "t", _deep(99)]


@given(
    st.lists(st.binary(max_size=80), max_size=120),
    st.integers(1, 80),
    st.integers(1, 400),
    st.integers(0, 40),
)
def test_a_batch_keeps_its_bounds(
    entries: list[bytes], max_entries: int, max_bytes: int, max_heads: int
) -> None:
    batch = Batch(max_entries, max_bytes, max_heads)
    added = []
    for entry in entries:
        before = (len(batch), batch.size, batch.heads)
        heads_stop = (
            before[2] + heads(entry) > max_heads
            and before[2] <= max_heads
            and before[0] >= MIN_BATCH_BEFORE_HEADS
        )
        fits = before[0] < max_entries and before[1] + len(entry) <= max_bytes and not heads_stop
        assert batch.add(entry) is fits
        if fits:
            added.append(entry)
        assert len(batch) <= max_entries and batch.size <= max_bytes
        # Over the heads bound only if it was passed before MIN_BATCH_BEFORE_HEADS entries.
        if batch.heads > max_heads:
            k, total = 0, 0
            while total <= max_heads:
                total += heads(added[k])
                k += 1
            assert k - 1 < MIN_BATCH_BEFORE_HEADS
        if not fits:
            assert (len(batch), batch.size, batch.heads) == before
    assert batch.take() == added
    assert (len(batch), batch.size, batch.heads) == (0, 0, 0)


def test_heads_counts_what_could_start_an_array_or_a_map() -> None:
    assert heads(encode_entry("t", "plain", "beamlet.pubsub", None)) == 0
    assert heads(encode_entry("t", [1, {"a": 2}], "beamlet.pubsub", None)) == 2
    assert heads(bytes(range(256))) == 32 + 4


def test_the_default_bounds_keep_a_batch_within_one_decode() -> None:
    batch = Batch()
    entry = encode_entry("t", (1, "x"), "beamlet.pubsub", None)  # one head each
    while batch.add(entry):
        pass
    assert len(batch) == MAX_BATCH_HEADS  # the heads bound, before the 256 entries
    assert not Batch().add(b"\xc4" + bytes(MAX_BATCH_BYTES))  # too large: travels alone


def test_text_full_of_heads_fills_a_batch_past_the_heads_bound() -> None:
    for text in (
        "Привет, как дела? " * 3,
        "你好, 今天怎么样 " * 3,
        "hi 😀🎉👍 " * 3,
        bytes(range(128, 192)),
    ):
        entry = encode_entry("t", text, "beamlet.pubsub", None)
        assert heads(entry) * MIN_BATCH_BEFORE_HEADS > MAX_BATCH_HEADS
        batch = Batch()
        while batch.add(entry):
            pass
        assert len(batch) == min(MAX_BATCH_ENTRIES, MAX_BATCH_BYTES // len(entry))
        items, bad = unpack_batch(pack_batch(batch.take()))
        assert bad == [] and items[1::2] == [text] * (len(items) // 2)


def test_an_empty_batch_is_an_empty_list() -> None:
    assert msgpack.unpackb(pack_batch([])) == []
    assert unpack_batch(pack_batch([])) == ([], [])


@given(st.lists(st.binary(max_size=300), max_size=400))
def test_an_honest_batch_is_never_refused(entries: list[bytes]) -> None:
    batch = Batch()
    for entry in entries:
        if not batch.add(entry):
            assert check_batch(pack_batch(batch.take())) is None
            if not batch.add(entry):  # too large for any batch: alone
                assert check_batch(pack_batch([entry])) is None
    assert check_batch(pack_batch(batch.take())) is None


def test_a_single_large_entry_is_accepted() -> None:
    entry = encode_entry("t", "x" * (4 * ACCEPT_BATCH_BYTES), "beamlet.pubsub", None)
    assert check_batch(pack_batch([entry])) is None


@given(st.integers(ACCEPT_BATCH_ENTRIES + 1, 3 * ACCEPT_BATCH_ENTRIES))
def test_a_batch_of_too_many_entries_is_refused(n: int) -> None:
    why = check_batch(pack_batch([b"\xa1t\x01"] * n))
    assert why == f"oversized ({n} entries, over {ACCEPT_BATCH_ENTRIES})"


@given(st.integers(2, 8), st.integers(ACCEPT_BATCH_BYTES + 1, 3 * ACCEPT_BATCH_BYTES))
def test_a_batch_of_too_many_bytes_is_refused(n: int, size: int) -> None:
    each = encode_entry("t", "x" * (size // n), "beamlet.pubsub", None)
    blob = pack_batch([each] * n)
    assert len(blob) > ACCEPT_BATCH_BYTES
    assert check_batch(blob) == (
        f"oversized ({n} entries in {len(blob)} bytes, over {ACCEPT_BATCH_BYTES})"
    )


def test_check_batch_reads_every_list_header_and_passes_the_rest() -> None:
    assert check_batch(b"") is None
    assert check_batch(encode("t")) is None  # not a list: unpack_batch refuses it
    assert check_batch(b"\xdc\x04") is None  # truncated header: likewise
    for n in (2 * 15 // 2, 2 * 600, 2 * 70000):  # fixarray, array 16, array 32 headers
        blob = msgpack.Packer().pack_array_header(n) + b"\x01" * 4
        expected = None if n // 2 <= ACCEPT_BATCH_ENTRIES else "oversized"
        why = check_batch(blob)
        assert (why or "")[: len(expected or "")] == (expected or "")
        assert (why is None) is (expected is None)
