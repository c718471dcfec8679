"""The cache's pure store: each operation, its errors, and a state machine against a model."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from beamlet.apps.cache._store import CacheStats, CacheStore, EntryTooLargeError, estimate_size
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

INF = math.inf


# -- reads and writes ---------------------------------------------------------


def test_get_put_and_default() -> None:
    store = CacheStore()
    assert store.get("a", 0.0) is None
    assert store.get("a", 0.0, "none") == "none"
    store.put("a", 1, 0.0)
    store.put(("t", 1), None, 0.0)
    assert store.get("a", 5.0) == 1
    assert store.get(("t", 1), 5.0, "x") is None  # a stored None is a hit, not the default
    assert store.stats() == CacheStats(hits=2, misses=2, writes=2)
    assert store.stats().hit_rate == 0.5


def test_put_replaces_and_restarts_the_ttl() -> None:
    store = CacheStore(default_ttl=10.0)
    store.put("a", 1, 0.0)
    store.put("a", 2, 5.0)
    assert store.ttl("a", 5.0) == 10.0
    assert store.get("a", 14.0) == 2
    assert store.get("a", 15.0) is None


def test_an_expired_entry_is_never_returned() -> None:
    store = CacheStore()
    store.put("a", 1, 0.0, ttl=2.0)
    assert store.get("a", 1.999) == 1
    assert len(store) == 1
    assert not store.exists("a", 2.0)  # expires exactly at now + ttl
    assert store.get("a", 2.0) is None
    assert len(store) == 0  # dropped on the read
    assert store.stats() == CacheStats(hits=1, misses=1, writes=1, expirations=1)


def test_ttl_zero_expires_at_once_and_inf_never() -> None:
    store = CacheStore(default_ttl=1.0)
    store.put("gone", 1, 0.0, ttl=0)
    store.put("kept", 2, 0.0, ttl=INF)
    assert store.get("gone", 0.0) is None
    assert store.get("kept", 1e12) == 2
    assert store.ttl("kept", 3.0) == INF


def test_exists_and_ttl_are_not_reads() -> None:
    store = CacheStore()
    store.put("a", 1, 0.0, ttl=4.0)
    assert store.exists("a", 1.0)
    assert not store.exists("b", 1.0)
    assert store.ttl("a", 1.0) == 3.0
    assert store.ttl("b", 1.0) is None
    assert store.stats() == CacheStats(writes=1)


def test_delete_take_and_clear() -> None:
    store = CacheStore()
    store.put_many({"a": 1, "b": 2, "c": 3, "d": 4}, 0.0)
    store.put("e", 5, 0.0, ttl=1.0)
    assert store.delete("a", 0.0) is True
    assert store.delete("a", 0.0) is False
    assert store.take("b", 0.0) == 2
    assert store.take("b", 0.0, "none") == "none"
    assert store.clear(2.0) == 2  # c and d; e had expired
    assert len(store) == 0 and store.nbytes == 0
    assert store.keys(2.0) == []
    assert store.stats() == CacheStats(hits=1, misses=1, writes=5, expirations=1, deletes=2)


def test_delete_of_an_expired_entry_is_an_expiration() -> None:
    store = CacheStore()
    store.put("a", 1, 0.0, ttl=1.0)
    assert store.delete("a", 1.0) is False
    assert store.stats().expirations == 1 and store.stats().deletes == 0


def test_put_many_takes_pairs_or_a_mapping() -> None:
    store = CacheStore()
    store.put_many([("a", 1), ("b", 2), ("a", 3)], 0.0, ttl=5.0)
    assert store.keys(0.0) == ["b", "a"]
    assert store.get("a", 0.0) == 3
    assert store.ttl("b", 1.0) == 4.0
    with pytest.raises(TypeError, match=r"item 1 is \('c',\)"):
        store.put_many([("z", 0), ("c",)], 0.0)  # type: ignore[list-item]
    assert not store.exists("z", 0.0)  # all or nothing


def test_incr_and_decr() -> None:
    store = CacheStore(default_ttl=10.0)
    assert store.incr("n", 0.0) == 1
    assert store.incr("n", 1.0, 5) == 6
    assert store.decr("n", 2.0, 2) == 4
    assert store.ttl("n", 2.0) == 8.0  # the expiry is kept
    assert store.incr("m", 0.0, 0.5, default=10) == 10.5
    assert store.incr("n", 3.0, ttl=INF) == 5
    assert store.ttl("n", 3.0) == INF
    assert store.stats().writes == 5


def test_incr_refuses_what_is_not_a_number_and_changes_nothing() -> None:
    store = CacheStore()
    store.put("s", "text", 0.0)
    store.put("b", True, 0.0)
    with pytest.raises(TypeError, match=r"cannot incr 's': its value must be a number, not 'text'"):
        store.incr("s", 0.0)
    with pytest.raises(TypeError, match="cannot incr 'b'"):
        store.incr("b", 0.0)
    with pytest.raises(TypeError, match="amount must be a number, not '1'"):
        store.incr("n", 0.0, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="default must be"):
        store.decr("n", 0.0, default=None)  # type: ignore[arg-type]
    assert store.get("s", 0.0) == "text"
    assert store.get("b", 0.0) is True
    assert not store.exists("n", 0.0)
    assert store.stats().writes == 2


def test_get_and_update() -> None:
    store = CacheStore()
    store.put("a", [1], 0.0, ttl=10.0)
    assert store.get_and_update("a", 1.0, lambda v: (v, [*v, 2])) == [1]
    assert store.get("a", 1.0) == [1, 2]
    assert store.ttl("a", 1.0) == 9.0
    assert store.get_and_update("new", 1.0, lambda v: ("was", v + 1), default=0, ttl=2.0) == "was"
    assert store.get("new", 2.9) == 1
    assert store.get("new", 3.0) is None


def test_get_and_update_changes_nothing_when_fn_fails() -> None:
    store = CacheStore()
    store.put("a", 1, 0.0)

    def boom(value: Any) -> tuple[Any, Any]:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        store.get_and_update("a", 0.0, boom)
    with pytest.raises(TypeError, match=r"must return a pair \(reply, new_value\), not 5"):
        store.get_and_update("a", 0.0, lambda v: 5)  # type: ignore[arg-type,return-value]
    assert store.get("a", 0.0) == 1
    assert store.stats().writes == 1


# -- TTL commands -------------------------------------------------------------


def test_expire_persist_touch() -> None:
    store = CacheStore(max_size=2)
    store.put("a", 1, 0.0)
    store.put("b", 2, 0.0, ttl=1.0)
    assert store.expire("a", 1.0, 3.0) is True
    assert store.ttl("a", 2.0) == 2.0
    assert store.expire("b", 1.0, 3.0) is False  # b expired at 1.0
    assert store.expire("zz", 1.0, 3.0) is False
    assert store.persist("a", 2.0) is True
    assert store.ttl("a", 100.0) == INF
    assert store.next_expiry() is None
    store.put("c", 3, 100.0)
    assert store.keys(100.0) == ["a", "c"]
    assert store.touch("a", 100.0) is True  # most recently used, expiry kept
    assert store.touch("zz", 100.0) is False
    store.put("d", 4, 100.0)  # evicts c, not a
    assert store.keys(100.0) == ["a", "d"]
    assert store.expire("a", 100.0, 0) is True  # expires at once
    assert store.get("a", 100.0) is None


# -- expiry: sweep and timer --------------------------------------------------


def test_purge_expired_and_next_expiry() -> None:
    store = CacheStore()
    assert store.next_expiry() is None
    store.put("a", 1, 0.0, ttl=3.0)
    store.put("b", 2, 0.0, ttl=1.0)
    store.put("c", 3, 0.0)
    assert store.next_expiry() == 1.0
    store.put("b", 2, 0.5, ttl=5.0)  # rewritten: its old expiry no longer counts
    assert store.next_expiry() == 3.0
    assert store.purge_expired(2.9) == 0
    assert store.purge_expired(3.0) == 1
    assert store.next_expiry() == 5.5
    assert store.delete("b", 4.0)
    assert store.next_expiry() is None
    assert store.keys(10.0) == ["c"]
    assert store.stats().expirations == 1


def test_the_timer_heap_stays_proportional_to_the_entries() -> None:
    store = CacheStore()
    for i in range(10_000):
        store.put("k", i, float(i), ttl=1e6)
    assert len(store._heap) <= 2 * len(store) + 65
    assert store.next_expiry() == 9999.0 + 1e6


# -- bounds -------------------------------------------------------------------


def test_max_size_evicts_the_least_recently_used() -> None:
    store = CacheStore(max_size=3)
    store.put_many([("a", 1), ("b", 2), ("c", 3)], 0.0)
    assert store.get("a", 0.0) == 1  # a read is a use
    store.put("d", 4, 0.0)
    assert store.keys(0.0) == ["c", "a", "d"]
    assert store.stats().evictions == 1


def test_expired_entries_go_before_live_ones() -> None:
    store = CacheStore(max_size=2)
    store.put("old", 1, 0.0)
    store.put("short", 2, 0.0, ttl=1.0)
    store.put("new", 3, 5.0)
    assert store.keys(5.0) == ["old", "new"]
    assert store.stats() == CacheStats(writes=3, expirations=1)


def test_max_size_zero_keeps_nothing() -> None:
    store = CacheStore(max_size=0)
    store.put("a", 1, 0.0)
    assert len(store) == 0 and store.stats().evictions == 1


def test_max_bytes_with_a_sizer() -> None:
    store = CacheStore(max_bytes=10, sizer=len)
    store.put("a", b"1234", 0.0)
    store.put("b", b"12345", 0.0)
    assert store.nbytes == 9
    store.put("c", b"12", 0.0)  # 11 bytes: evicts a
    assert store.keys(0.0) == ["b", "c"] and store.nbytes == 7
    store.put("b", b"1", 0.0)  # a smaller value frees bytes
    assert store.nbytes == 3
    with pytest.raises(EntryTooLargeError) as caught:
        store.put("c", b"x" * 11, 0.0)
    assert caught.value.key == "c" and caught.value.size == 11 and caught.value.max_bytes == 10
    assert "11 bytes, is above max_bytes=10" in str(caught.value)
    assert store.get("c", 0.0) == b"12"  # the entry it would have replaced is kept


def test_max_bytes_uses_the_default_estimate() -> None:
    store = CacheStore(max_bytes=10_000)
    value = ["x" * 100, "y" * 100]
    store.put("a", value, 0.0)
    assert store.nbytes == estimate_size(value)
    assert estimate_size(value) == sys.getsizeof(value) + 2 * sys.getsizeof("x" * 100)
    assert estimate_size({"k": b"v"}) == sys.getsizeof({"k": b"v"}) + sys.getsizeof(
        "k"
    ) + sys.getsizeof(b"v")
    assert estimate_size(b"x" * 1000) == sys.getsizeof(b"x" * 1000)


def test_a_bad_sizer_is_named() -> None:
    store = CacheStore(max_bytes=100, sizer=lambda v: -1)
    with pytest.raises(
        ValueError, match=r"the size that sizer .* gave for 'a' must be an int >= 0, not -1"
    ):
        store.put("a", 1, 0.0)
    store = CacheStore(max_bytes=100, sizer=lambda v: 1.5)
    with pytest.raises(TypeError, match=r"sizer .* for 'a' must be an int >= 0, not 1.5"):
        store.put("a", 1, 0.0)
    assert len(store) == 0
    with pytest.raises(TypeError, match="sizer must be a callable"):
        CacheStore(sizer=3)  # type: ignore[arg-type]


def test_sizes_are_not_measured_without_max_bytes() -> None:
    calls = []
    store = CacheStore(max_size=5)
    store.put("a", 1, 0.0)
    assert store.nbytes == 0
    store = CacheStore(sizer=lambda v: calls.append(v) or 3)
    store.put("a", 1, 0.0)
    assert calls == [1] and store.nbytes == 3


# -- export and restore -------------------------------------------------------


def test_export_and_restore_keep_order_and_remaining_ttls() -> None:
    store = CacheStore(default_ttl=100.0)
    store.put("a", 1, 0.0, ttl=10.0)
    store.put("b", 2, 0.0, ttl=INF)
    store.put("c", 3, 0.0, ttl=1.0)
    store.put("d", 4, 0.0)
    dumped = store.export(5.0)
    assert dumped == [("a", 1, 5.0), ("b", 2, INF), ("d", 4, 95.0)]

    other = CacheStore(default_ttl=7.0)
    other.put("a", "older", 0.0)
    assert other.restore([*dumped, ("e", 5, 0.0), ("f", 6, -3.0), ["g", 7, None]], 50.0) == 4
    assert other.keys(50.0) == ["a", "b", "d", "g"]  # e and f had expired
    assert other.get("a", 50.0) == 1
    assert other.ttl("a", 50.0) == 5.0
    assert other.ttl("b", 50.0) == INF
    assert other.ttl("g", 50.0) == 7.0  # None: the default TTL


def test_restore_refuses_a_bad_entry_and_writes_nothing() -> None:
    store = CacheStore(max_bytes=10, sizer=len)
    with pytest.raises(
        ValueError, match=r"entry 1 is not a \(key, value, ttl\) triple: \('b', 2\)"
    ):
        store.restore([("a", b"1", 1.0), ("b", 2)], 0.0)  # type: ignore[list-item]
    with pytest.raises(
        TypeError, match=r"entry 1 \('b'\): its TTL must be a number of seconds, not 'soon'"
    ):
        store.restore([("a", b"1", 1.0), ("b", b"2", "soon")], 0.0)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"entry 0 .* must be a number of seconds, not nan"):
        store.restore([("a", b"1", math.nan)], 0.0)
    with pytest.raises(EntryTooLargeError):
        store.restore([("a", b"1", 1.0), ("b", b"x" * 20, 1.0)], 0.0)
    assert len(store) == 0 and store.stats().writes == 0


# -- bad arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_size": -1}, ValueError, "max_size must be an int >= 0 or None, not -1"),
        ({"max_size": 2.5}, TypeError, "max_size must be an int >= 0 or None, not 2.5"),
        ({"max_size": True}, TypeError, "max_size must be an int >= 0 or None, not True"),
        ({"max_bytes": -10}, ValueError, "max_bytes must be an int >= 0 or None, not -10"),
        ({"default_ttl": -1.0}, ValueError, "default_ttl must be a number of seconds > 0 or None"),
        (
            {"default_ttl": 0},
            ValueError,
            r"default_ttl must be a number of seconds > 0 or None \(math.inf: never\), not 0",
        ),
        ({"default_ttl": math.nan}, ValueError, "default_ttl must be .* not nan"),
        (
            {"default_ttl": "60"},
            TypeError,
            "default_ttl must be a number of seconds > 0 or None .*, not '60'",
        ),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        CacheStore(**options)


@pytest.mark.parametrize(
    ("ttl", "error", "message"),
    [
        (-1, ValueError, r"ttl must be a number of seconds >= 0 \(math.inf: never\), not -1"),
        (-0.5, ValueError, "not -0.5"),
        (math.nan, ValueError, "not nan"),
        (-INF, ValueError, "not -inf"),
        ("5", TypeError, r"ttl must be a number of seconds >= 0 \(math.inf: never\), not '5'"),
        (False, TypeError, "not False"),
    ],
)
def test_a_bad_ttl_is_named_and_changes_nothing(ttl: Any, error: type, message: str) -> None:
    store = CacheStore()
    store.put("a", 1, 0.0, ttl=5.0)
    with pytest.raises(error, match=message):
        store.put("a", 2, 0.0, ttl=ttl)
    with pytest.raises(error, match=message):
        store.put_many({"a": 2, "b": 3}, 0.0, ttl=ttl)
    with pytest.raises(error, match=message):
        store.expire("a", 0.0, ttl)
    with pytest.raises(error, match=message):
        store.incr("n", 0.0, ttl=ttl)
    with pytest.raises(error, match=message):
        store.get_and_update("a", 0.0, lambda v: (v, v), ttl=ttl)
    assert store.export(0.0) == [("a", 1, 5.0)]


def test_properties_and_repr() -> None:
    store = CacheStore(max_size=3, max_bytes=100, default_ttl=2)
    assert (store.max_size, store.max_bytes, store.default_ttl) == (3, 100, 2.0)
    assert repr(store) == "<CacheStore 0 entries, max_size=3, max_bytes=100, default_ttl=2.0>"
    with pytest.raises(AttributeError):
        store.max_size = 5  # type: ignore[misc]
    assert CacheStats().hit_rate == 0.0


# -- the state machine --------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
VALUES = st.one_of(st.integers(-5, 50), st.sampled_from(["x", "yy", "zzzz", ""]))
TTLS = st.sampled_from([None, None, 0, 0.5, 1.0, 2.5, INF])
STEPS = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 7.0])


def sizer(value: Any) -> int:
    return len(repr(value))


class Model:
    """The store's meaning, kept simply: only live entries, expired ones dropped at once.

    An entry is ``[value, expires, nbytes, last_use]``; the least recently used
    is the one with the smallest ``last_use``.
    """

    def __init__(self, max_size: int | None, max_bytes: int | None, default_ttl: float | None):
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.default_ttl = default_ttl
        self.entries: dict[str, list[Any]] = {}
        self.uses = 0
        self.counts = dict.fromkeys(
            ["hits", "misses", "writes", "evictions", "expirations", "deletes"], 0
        )

    def expiry(self, ttl: float | None, now: float) -> float:
        if ttl is None:
            ttl = self.default_ttl
        return INF if ttl is None else now + ttl

    def sweep(self, now: float) -> None:
        for key, entry in list(self.entries.items()):
            if entry[1] <= now:
                del self.entries[key]
                self.counts["expirations"] += 1

    def use(self, key: str) -> None:
        self.uses += 1
        self.entries[key][3] = self.uses

    def too_large(self, value: Any) -> bool:
        return self.max_bytes is not None and sizer(value) > self.max_bytes

    def write(self, key: str, value: Any, expires: float, now: float) -> None:
        self.entries[key] = [value, expires, sizer(value), 0]
        self.use(key)
        self.counts["writes"] += 1
        self.sweep(now)

    def shrink(self) -> None:
        while (self.max_size is not None and len(self.entries) > self.max_size) or (
            self.max_bytes is not None and self.nbytes() > self.max_bytes
        ):
            lru = min(self.entries, key=lambda k: self.entries[k][3])
            del self.entries[lru]
            self.counts["evictions"] += 1

    def nbytes(self) -> int:
        return sum(entry[2] for entry in self.entries.values())

    def lru_order(self) -> list[str]:
        return sorted(self.entries, key=lambda k: self.entries[k][3])


class StoreMachine(RuleBasedStateMachine):
    """Any sequence of operations and clock moves: the store does what the model does."""

    store: CacheStore
    model: Model

    @initialize(
        max_size=st.one_of(st.none(), st.integers(0, 4)),
        max_bytes=st.one_of(st.none(), st.integers(0, 12)),
        default_ttl=st.sampled_from([None, 0.5, 1.0, 3.0]),
    )
    def start(self, max_size: int | None, max_bytes: int | None, default_ttl: float | None) -> None:
        self.now = 0.0
        measured = {} if max_bytes is None else {"max_bytes": max_bytes, "sizer": sizer}
        self.store = CacheStore(max_size=max_size, default_ttl=default_ttl, **measured)
        self.model = Model(max_size, max_bytes, default_ttl)
        self.measured = max_bytes is not None

    @rule(step=STEPS)
    def advance(self, step: float) -> None:
        self.now += step
        self.model.sweep(self.now)

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def put(self, key: str, value: Any, ttl: float | None) -> None:
        if self.model.too_large(value):
            with pytest.raises(EntryTooLargeError):
                self.store.put(key, value, self.now, ttl)
            return
        self.store.put(key, value, self.now, ttl)
        self.model.write(key, value, self.model.expiry(ttl, self.now), self.now)
        self.model.shrink()

    @rule(items=st.lists(st.tuples(KEYS, VALUES), max_size=4), ttl=TTLS)
    def put_many(self, items: list[tuple[str, Any]], ttl: float | None) -> None:
        if any(self.model.too_large(value) for _, value in items):
            with pytest.raises(EntryTooLargeError):
                self.store.put_many(items, self.now, ttl)
            return
        self.store.put_many(items, self.now, ttl)
        for key, value in items:
            self.model.write(key, value, self.model.expiry(ttl, self.now), self.now)
        self.model.shrink()

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        got = self.store.get(key, self.now, "<miss>")
        if key in self.model.entries:
            assert got == self.model.entries[key][0]
            self.model.use(key)
            self.model.counts["hits"] += 1
        else:
            assert got == "<miss>"
            self.model.counts["misses"] += 1

    @rule(key=KEYS)
    def exists_and_ttl(self, key: str) -> None:
        assert self.store.exists(key, self.now) == (key in self.model.entries)
        left = self.store.ttl(key, self.now)
        if key in self.model.entries:
            expires = self.model.entries[key][1]
            assert left == (INF if expires == INF else expires - self.now)
        else:
            assert left is None

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.store.delete(key, self.now) == (key in self.model.entries)
        if self.model.entries.pop(key, None) is not None:
            self.model.counts["deletes"] += 1

    @rule(key=KEYS)
    def discard(self, key: str) -> None:
        # An invalidation: the entry goes, counted as no delete (an expired one as expired).
        assert self.store.discard(key, self.now) == (key in self.model.entries)
        self.model.entries.pop(key, None)

    @rule(key=KEYS)
    def take(self, key: str) -> None:
        got = self.store.take(key, self.now, "<miss>")
        entry = self.model.entries.pop(key, None)
        if entry is None:
            assert got == "<miss>"
            self.model.counts["misses"] += 1
        else:
            assert got == entry[0]
            self.model.counts["hits"] += 1
            self.model.counts["deletes"] += 1

    @rule(key=KEYS, amount=st.integers(-3, 3), ttl=TTLS)
    def incr(self, key: str, amount: int, ttl: float | None) -> None:
        entry = self.model.entries.get(key)
        current = 0 if entry is None else entry[0]
        if not isinstance(current, int):
            with pytest.raises(TypeError):
                self.store.incr(key, self.now, amount, ttl=ttl)
            return
        new = current + amount
        if self.model.too_large(new):
            with pytest.raises(EntryTooLargeError):
                self.store.incr(key, self.now, amount, ttl=ttl)
            return
        assert self.store.incr(key, self.now, amount, ttl=ttl) == new
        if ttl is not None:
            expires = self.now + ttl
        else:
            expires = self.model.expiry(None, self.now) if entry is None else entry[1]
        self.model.write(key, new, expires, self.now)
        self.model.shrink()

    @rule(key=KEYS, suffix=st.sampled_from(["", "!"]))
    def get_and_update(self, key: str, suffix: str) -> None:
        entry = self.model.entries.get(key)
        current = "" if entry is None else entry[0]
        new = f"{current}{suffix}"
        if self.model.too_large(new):
            with pytest.raises(EntryTooLargeError):
                self.store.get_and_update(key, self.now, lambda v: (v, f"{v}{suffix}"), default="")
            return
        reply = self.store.get_and_update(key, self.now, lambda v: (v, f"{v}{suffix}"), default="")
        assert reply == current
        expires = self.model.expiry(None, self.now) if entry is None else entry[1]
        self.model.write(key, new, expires, self.now)
        self.model.shrink()

    @rule(key=KEYS, ttl=st.sampled_from([0, 0.5, 2.0, INF]))
    def expire(self, key: str, ttl: float) -> None:
        assert self.store.expire(key, self.now, ttl) == (key in self.model.entries)
        if key in self.model.entries:
            self.model.entries[key][1] = self.now + ttl
            self.model.sweep(self.now)

    @rule(key=KEYS)
    def persist(self, key: str) -> None:
        assert self.store.persist(key, self.now) == (key in self.model.entries)
        if key in self.model.entries:
            self.model.entries[key][1] = INF

    @rule(key=KEYS)
    def touch(self, key: str) -> None:
        assert self.store.touch(key, self.now) == (key in self.model.entries)
        if key in self.model.entries:
            self.model.use(key)

    @rule()
    def purge_expired(self) -> None:
        lingering = len(self.store) - len(self.model.entries)
        assert self.store.purge_expired(self.now) == lingering
        assert len(self.store) == len(self.model.entries)
        assert self.store.nbytes == (self.model.nbytes() if self.measured else 0)
        finite = [e[1] for e in self.model.entries.values() if e[1] != INF]
        assert self.store.next_expiry() == (min(finite) if finite else None)

    @rule()
    def keys_and_size(self) -> None:
        assert self.store.keys(self.now) == self.model.lru_order()
        assert self.store.size(self.now) == len(self.model.entries)

    @rule()
    def clear(self) -> None:
        assert self.store.clear(self.now) == len(self.model.entries)
        self.model.entries.clear()

    @rule()
    def export_and_restore(self) -> None:
        dumped = self.store.export(self.now)
        assert [(k, v) for k, v, _ in dumped] == [
            (k, self.model.entries[k][0]) for k in self.model.lru_order()
        ]
        # Restored over itself: the same entries, order and expiries (up to rounding).
        assert self.store.restore(dumped, self.now) == len(dumped)
        for key, value, left in dumped:
            self.model.write(key, value, INF if left == INF else self.now + left, self.now)
        self.model.shrink()

    @invariant()
    def bounds_hold(self) -> None:
        if self.model.max_size is not None:
            assert len(self.store) <= self.model.max_size
        if self.model.max_bytes is not None:
            assert self.store.nbytes <= self.model.max_bytes

    @invariant()
    def counters_agree(self) -> None:
        stats = self.store.stats()
        counts = self.model.counts
        lingering = len(self.store) - len(self.model.entries)  # expired, not yet dropped
        assert lingering >= 0
        assert stats.expirations + lingering == counts["expirations"]
        for name in ["hits", "misses", "writes", "evictions", "deletes"]:
            assert getattr(stats, name) == counts[name], name


StoreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_store_against_the_model = StoreMachine.TestCase
