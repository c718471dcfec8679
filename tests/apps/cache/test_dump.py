"""dump/load: the file format, TTLs across restarts (wall time), atomic writes, bad files."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import Node, Pid, open_node
from beamlet.apps.cache import Cache, CacheFileError, EntryTooLargeError, _file, lookup
from beamlet.apps.cache._file import DumpFormatError, decode_dump, encode_dump
from hypothesis import given, strategies as st


class WallClock:
    """Stands in for ``time.time`` in the dump module."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr(_file, "wall_time", clock)
    return clock


async def test_a_dump_loads_into_a_fresh_node_with_the_time_gone_by(
    tmp_path: Path, wall: WallClock, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "users.cache"
    values: dict[Any, Any] = {
        ("tuple", 1): (1, 2.5, None),
        b"bytes": {"nested": [1, {2, 3}], "big": 2**80},
        7: frozenset({"x"}),
        "pid": Pid("a@b", 1, 2),
        "str": "v",
    }

    async def before() -> None:
        await Cache.start_link("users", sweep_interval=None)
        c = lookup("users")
        c.put_many(values.items())
        c.put("short", 1, ttl=40.0)
        c.put("long", 2, ttl=100.0)
        await trio.sleep(10.0)  # Trio time, which means nothing to the next run
        c.get("str")  # now the most recently used
        assert await c.dump(path) == len(values) + 2

    async with open_node() as node:
        await node.run(before)
    wall.now += 25.0  # the restart took 25 s of wall time

    async def after() -> None:
        await Cache.start_link("users", sweep_interval=None)
        c = lookup("users")
        c.put("other", "kept")
        c.put("str", "replaced")
        assert await c.load(path) == len(values) + 2
        # A merge, in the order of use of the dump.
        assert c.keys() == ["other", ("tuple", 1), b"bytes", 7, "pid", "short", "long", "str"]
        for key, value in values.items():
            assert c.get(key) == value
        assert c.get("other") == "kept"
        assert c.ttl("short") == pytest.approx(40.0 - 10.0 - 25.0)
        assert c.ttl("long") == pytest.approx(100.0 - 10.0 - 25.0)
        assert c.ttl("str") == math.inf

    async with open_node() as node:
        await node.run(after)


async def test_entries_expired_since_the_dump_are_skipped(
    node: Node, tmp_path: Path, wall: WallClock, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "c.cache"

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        c.put("a", 1, ttl=5.0)
        c.put("b", 2, ttl=50.0)
        assert await c.dump(path) == 2
        c.clear()
        wall.now += 10.0
        assert await c.load(path) == 1
        assert c.keys() == ["b"] and c.ttl("b") == pytest.approx(40.0)
        wall.now -= 1000.0  # the wall clock went back: no time counts as gone by
        c.clear()
        assert await c.load(path) == 2

    await node.run(body)


async def test_an_unencodable_value_writes_no_file(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "c.cache"

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        c.put("ok", 1)
        assert await c.dump(path) == 1
        before = path.read_bytes()
        c.put("lock", trio.Lock())
        with pytest.raises(TypeError, match="the entry under key 'lock' cannot be encoded"):
            await c.dump(path)
        assert path.read_bytes() == before  # the old dump is intact
        assert os.listdir(tmp_path) == ["c.cache"]  # and no temporary file is left
        with pytest.raises(TypeError):
            await c.dump(tmp_path / "new.cache")
        assert not (tmp_path / "new.cache").exists()

    await node.run(body)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupted"),
        (lambda data: data[:-1], "truncated or corrupted"),
        (lambda data: data[:20] + bytes([data[20] ^ 1]) + data[21:], "truncated or corrupted"),
        (lambda data: b"hello, world" * 10, "not a beamlet cache dump"),
        (lambda data: b"", "not a beamlet cache dump"),
        (lambda data: data[:14] + b"\x09" + data[15:], "format version is 9"),
    ],
)
async def test_a_damaged_file_is_a_clear_error_and_changes_nothing(
    node: Node, tmp_path: Path, damage: Any, why: str
) -> None:
    path = tmp_path / "c.cache"

    async def body() -> None:
        await Cache.start_link("c")
        c = lookup("c")
        c.put_many({"a": 1, "b": 2})
        await c.dump(path)
        path.write_bytes(damage(path.read_bytes()))
        c.clear()
        c.put("kept", 0)
        with pytest.raises(CacheFileError, match=why) as info:
            await c.load(path)
        assert info.value.path == path
        assert "nothing was loaded" in str(info.value)
        assert c.keys() == ["kept"]
        with pytest.raises(FileNotFoundError):
            await c.load(tmp_path / "missing")

    await node.run(body)


async def test_a_load_over_max_bytes_loads_nothing(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "c.cache"

    async def body() -> None:
        await Cache.start_link("big")
        lookup("big").put_many({"a": b"x" * 100, "b": b"y"})
        await lookup("big").dump(path)
        await Cache.start_link("small", max_bytes=50, sizer=len)
        small = lookup("small")
        with pytest.raises(EntryTooLargeError):
            await small.load(path)
        assert len(small) == 0

    await node.run(body)


# -- the format, pure ------------------------------------------------------------------

KEYS = st.one_of(st.text(max_size=5), st.integers(), st.tuples(st.integers(), st.text(max_size=3)))
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.binary(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
TTLS = st.one_of(st.just(math.inf), st.floats(0.001, 1e6))


@given(
    entries=st.lists(st.tuples(KEYS, VALUES, TTLS), max_size=8),
    elapsed=st.floats(-100.0, 1e6),
)
def test_the_format_round_trips(entries: list[tuple[Any, Any, float]], elapsed: float) -> None:
    data = encode_dump("c", entries, 1000.0)
    name, loaded = decode_dump(data, 1000.0 + elapsed)
    assert name == "c"
    assert [(k, v) for k, v, _ in loaded] == [(k, v) for k, v, _ in entries]
    for (_, _, ttl), (_, _, left) in zip(entries, loaded, strict=True):
        assert left == (math.inf if ttl == math.inf else pytest.approx(ttl - max(0.0, elapsed)))


@given(
    entries=st.lists(st.tuples(KEYS, VALUES, TTLS), min_size=1, max_size=4),
    data=st.data(),
)
def test_any_cut_or_flipped_byte_is_refused(
    entries: list[tuple[Any, Any, float]], data: st.DataObject
) -> None:
    dump = encode_dump("c", entries, 0.0)
    cut = data.draw(st.integers(0, len(dump) - 1))
    with pytest.raises(DumpFormatError):
        decode_dump(dump[:cut], 0.0)
    at = data.draw(st.integers(0, len(dump) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = dump[:at] + bytes([dump[at] ^ (1 << bit)]) + dump[at + 1 :]
    with pytest.raises(DumpFormatError):
        decode_dump(flipped, 0.0)


@given(garbage=st.binary(max_size=200))
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(DumpFormatError):
        decode_dump(garbage, 0.0)
    with pytest.raises(DumpFormatError):
        decode_dump(_file.MAGIC + garbage, 0.0)
