"""The pure table of a Registry, against a model: a list of entries in registration order."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from beamlet.actors import Pid
from beamlet.actors._registry_table import DuplicateTable, Table, UniqueTable
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

# Few pids, keys and values, so that the same ones meet often.
PIDS = [Pid("n@h", i, 7) for i in range(1, 4)]
KEYS = ["a", ("t", 1), 3]

pids = st.sampled_from(PIDS)
keys = st.sampled_from(KEYS)
values = st.integers(0, 3)


class TableModel(RuleBasedStateMachine):
    """Every operation of a table against a list of ``(key, pid, value)``, oldest first."""

    table: Table

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[Any, Pid, Any]] = []

    @initialize(unique=st.booleans())
    def make(self, unique: bool) -> None:
        self.unique = unique
        self.table = UniqueTable() if unique else DuplicateTable()

    def held(self, pid: Pid, key: Any) -> list[tuple[Any, Pid, Any]]:
        return [e for e in self.entries if e[0] == key and e[1] == pid]

    @rule(pid=pids, key=keys, value=values)
    def register(self, pid: Pid, key: Any, value: int) -> None:
        holder = self.table.register(pid, key, value)
        taken = [e for e in self.entries if e[0] == key]
        if self.unique and taken:
            assert holder == taken[0][1]
        else:
            assert holder is None
            self.entries.append((key, pid, value))

    @rule(pid=pids, key=keys)
    def unregister(self, pid: Pid, key: Any) -> None:
        gone = self.held(pid, key)
        assert self.table.unregister(pid, key) == len(gone)
        self.entries = [e for e in self.entries if e not in gone]

    @rule(pid=pids, key=keys, threshold=values)
    def unregister_match(self, pid: Pid, key: Any, threshold: int) -> None:
        held = self.held(pid, key)
        gone = [e for e in held if e[2] >= threshold]
        removed, key_gone = self.table.unregister_match(pid, key, lambda v: v >= threshold)
        assert removed == len(gone)
        assert key_gone == (bool(gone) and len(gone) == len(held))
        remaining = list(self.entries)
        for entry in gone:
            remaining.remove(entry)
        self.entries = remaining

    @precondition(lambda self: self.unique)
    @rule(pid=pids, key=keys, delta=values)
    def update_value(self, pid: Pid, key: Any, delta: int) -> None:
        assert isinstance(self.table, UniqueTable)
        result = self.table.update_value(pid, key, lambda v: v + delta)
        held = self.held(pid, key)
        if not held:
            assert result is None
            return
        [(k, p, old)] = held
        assert result == (old + delta, old)
        self.entries[self.entries.index((k, p, old))] = (k, p, old + delta)

    @rule(pid=pids)
    def remove_pid(self, pid: Pid) -> None:
        assert self.table.remove_pid(pid) == sum(1 for e in self.entries if e[1] == pid)
        self.entries = [e for e in self.entries if e[1] != pid]

    @invariant()
    def agrees_with_the_model(self) -> None:
        table, entries = self.table, self.entries
        assert table.count() == len(entries)
        for key in KEYS:
            expected = [(p, v) for k, p, v in entries if k == key]
            assert table.lookup(key) == expected
            assert table.match(key, lambda v: v % 2 == 0) == [e for e in expected if e[1] % 2 == 0]
            assert table.count_match(key, lambda v: v > 2) == sum(1 for e in expected if e[1] > 2)
            for pid in PIDS:
                assert table.values(key, pid) == [v for k, p, v in entries if (k, p) == (key, pid)]
        for pid in PIDS:
            assert Counter(table.keys(pid)) == Counter(k for k, p, _ in entries if p == pid)
            assert table.has_pid(pid) == any(p == pid for _, p, _ in entries)
        assert set(table.pids()) == {p for _, p, _ in entries}
        assert Counter(table.select(None)) == Counter(entries)
        assert Counter(table.select(lambda k, p, v: v == 1)) == Counter(
            e for e in entries if e[2] == 1
        )
        if table.unique:
            assert isinstance(table, UniqueTable)
            for key in KEYS:
                holders = [p for k, p, _ in entries if k == key]
                assert table.whereis(key) == (holders[0] if holders else None)


TestTableModel = TableModel.TestCase
TestTableModel.settings = settings(max_examples=150, stateful_step_count=30)


# -- what the model does not reach ---------------------------------------------------------


@pytest.mark.parametrize("make", [UniqueTable, DuplicateTable])
def test_an_unhashable_key_is_a_clear_type_error_and_changes_nothing(make: type[Table]) -> None:
    table = make()
    pid = PIDS[0]
    table.register(pid, "k", 1)
    for call in [
        lambda: table.register(pid, ["x"], 1),
        lambda: table.lookup(["x"]),
        lambda: table.unregister(pid, ["x"]),
        lambda: table.unregister(PIDS[1], ["x"]),
        lambda: table.values(["x"], pid),
        lambda: table.unregister_match(pid, ["x"], bool),
    ]:
        with pytest.raises(TypeError, match=r"registry key must be hashable, not list: \['x'\]"):
            call()
    assert table.lookup("k") == [(pid, 1)]
    assert table.count() == 1


def test_keys_compare_as_dict_keys() -> None:
    table = UniqueTable()
    table.register(PIDS[0], 1, "one")
    assert table.register(PIDS[1], 1.0, "float") == PIDS[0]
    assert table.lookup(True) == [(PIDS[0], "one")]


def test_a_failing_predicate_or_update_leaves_the_table_as_it_was() -> None:
    def boom(value: object) -> bool:
        raise ZeroDivisionError

    unique = UniqueTable()
    unique.register(PIDS[0], "k", 1)
    with pytest.raises(ZeroDivisionError):
        unique.update_value(PIDS[0], "k", boom)
    with pytest.raises(ZeroDivisionError):
        unique.unregister_match(PIDS[0], "k", boom)
    assert unique.lookup("k") == [(PIDS[0], 1)]

    duplicate = DuplicateTable()
    for value in range(3):
        duplicate.register(PIDS[0], "k", value)

    def fails_on_two(value: int) -> bool:
        if value == 2:
            raise ZeroDivisionError
        return True

    with pytest.raises(ZeroDivisionError):
        duplicate.unregister_match(PIDS[0], "k", fails_on_two)
    assert duplicate.values("k", PIDS[0]) == [0, 1, 2]


def test_predicates_that_change_the_table_act_on_what_is_still_there() -> None:
    duplicate = DuplicateTable()
    pid = PIDS[0]
    for value in range(3):
        duplicate.register(pid, "k", value)

    def drop_all(value: int) -> bool:  # removes the entries under the caller's feet
        duplicate.unregister(pid, "k")
        return True

    assert duplicate.unregister_match(pid, "k", drop_all) == (0, False)
    assert duplicate.count() == 0

    def add_one(value: int) -> bool:
        if value == 0:
            duplicate.register(pid, "k", 9)
        return value == 0

    duplicate.register(pid, "k", 0)
    duplicate.register(pid, "k", 1)
    # The entry added while matching is not matched, and stays.
    assert duplicate.unregister_match(pid, "k", add_one) == (1, False)
    assert duplicate.values("k", pid) == [1, 9]

    unique = UniqueTable()
    unique.register(pid, "k", 1)

    def unregister_then_update(value: int) -> int:
        unique.unregister(pid, "k")
        return value + 1

    assert unique.update_value(pid, "k", unregister_then_update) is None
    assert unique.lookup("k") == []
    unique.register(pid, "k", 1)

    def unregister_then_match(value: int) -> bool:
        unique.unregister(pid, "k")
        unique.register(pid, "k", 5)
        return True

    assert unique.unregister_match(pid, "k", unregister_then_match) == (0, False)
    assert unique.lookup("k") == [(pid, 5)]


def test_lists_handed_out_are_new_lists() -> None:
    table = DuplicateTable()
    table.register(PIDS[0], "k", 1)
    first = table.lookup("k")
    first.append("junk")  # type: ignore[arg-type]
    assert table.lookup("k") == [(PIDS[0], 1)]
    keys = table.keys(PIDS[0])
    keys.clear()
    assert table.keys(PIDS[0]) == ["k"]


def test_a_duplicate_key_is_listed_once_per_entry_and_grouped() -> None:
    table = DuplicateTable()
    pid = PIDS[0]
    for key in ["a", "b", "a"]:
        table.register(pid, key, key)
    assert table.keys(pid) == ["a", "a", "b"]
    assert table.lookup("a") == [(pid, "a"), (pid, "a")]
    assert table.count() == 3
    assert table.remove_pid(pid) == 3
    assert table.pids() == []


@pytest.mark.parametrize("make", [UniqueTable, DuplicateTable])
def test_rename_gives_every_pid_its_new_name_in_order(make: type[Table]) -> None:
    table = make()
    for i, pid in enumerate(PIDS):
        table.register(pid, ("k", i), i)
        table.register(pid, "shared" if not table.unique else ("own", i), -i)

    def fix(pid: Pid) -> Pid:
        return Pid("new@h", pid.id, pid.creation)

    before = table.select(None)
    table.rename(fix)
    assert table.select(None) == [(k, fix(p), v) for k, p, v in before]
    for pid in PIDS:
        assert not table.has_pid(pid)
        assert len(table.keys(fix(pid))) == 2
    assert table.remove_pid(fix(PIDS[0])) == 2
    assert table.count() == 2 * len(PIDS) - 2
