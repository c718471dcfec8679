"""The table of a ``Registry``: keys to ``(pid, value)`` entries, and back (pure).

No Trio, no clock, no processes: only pids (values) and keys. ``_registry``
wraps one table per running registry, and decides who may write (the calling
process, for itself) and when a process's entries go (when it exits).

Two layouts, one per kind of registry:

- ``UniqueTable``: at most one entry per key, ``key -> (pid, value)``.
- ``DuplicateTable``: any number of entries per key, each one with an id of
  its own, ``key -> {entry id: (pid, value)}`` in registration order, so that
  one entry goes in O(1) and the entries of a key are copied in one C call.

Both keep ``pid -> keys`` too, so that ``keys(pid)`` and the cleanup of an
exiting process cost only that process's entries. Entries are ``(pid, value)``
tuples shared with the lists handed out (tuples are immutable, so no caller can
change the table through them); every list handed out is a new list.

Keys compare as dict keys do (``1``, ``1.0`` and ``True`` are the same key). A
key that cannot be hashed raises ``TypeError`` naming it, and changes nothing.
Predicates and update functions are called on a snapshot: whatever they do to
the table, the operation that called them sees the entries as they were, and
when one raises, the table is left as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from typing import Any, TypeAlias

from ._ids import Pid

__all__ = ["DuplicateTable", "Entry", "Table", "UniqueTable", "unhashable_key"]

#: One registration: the process and the value it registered.
Entry: TypeAlias = tuple[Pid, Any]


def unhashable_key(key: object) -> TypeError:
    """The error for a key that cannot be a registry key."""
    return TypeError(f"a registry key must be hashable, not {type(key).__name__}: {key!r}")


def _check_key(key: object) -> None:
    try:
        hash(key)
    except TypeError:
        raise unhashable_key(key) from None


class Table:
    """What both layouts answer; see ``UniqueTable`` and ``DuplicateTable``."""

    __slots__ = ("_count",)

    #: Whether a key holds at most one entry.
    unique: bool = False

    def __init__(self) -> None:
        self._count = 0

    def count(self) -> int:
        """The number of entries."""
        return self._count

    # Each layout defines the rest.

    def has_pid(self, pid: Pid) -> bool:
        """Whether ``pid`` has at least one entry."""
        raise NotImplementedError

    def pids(self) -> list[Pid]:
        """The pids with at least one entry."""
        raise NotImplementedError

    def register(self, pid: Pid, key: Hashable, value: Any) -> Pid | None:
        """Add the entry ``(pid, value)`` under ``key``.

        Returns:
            None when added; the holder's pid when ``key`` is unique and taken
            (then nothing changes).
        """
        raise NotImplementedError

    def unregister(self, pid: Pid, key: Hashable) -> int:
        """Remove every entry of ``pid`` under ``key``; return how many went."""
        raise NotImplementedError

    def unregister_match(
        self, pid: Pid, key: Hashable, predicate: Callable[[Any], Any]
    ) -> tuple[int, bool]:
        """Remove the entries of ``pid`` under ``key`` whose value satisfies ``predicate``.

        Returns:
            ``(removed, gone)``: how many entries went, and whether ``pid``
            now holds no entry under ``key`` (only true when some went).
        """
        raise NotImplementedError

    def remove_pid(self, pid: Pid) -> int:
        """Remove every entry of ``pid``; return how many went."""
        raise NotImplementedError

    def rename(self, fix: Callable[[Pid], Pid]) -> None:
        """Replace every pid by ``fix(pid)`` (the node got a new name), keeping the order."""
        raise NotImplementedError

    def lookup(self, key: Hashable) -> list[Entry]:
        """The entries under ``key``, as a new list (oldest first)."""
        raise NotImplementedError

    def keys(self, pid: Pid) -> list[Any]:
        """The keys ``pid`` holds, a key once per entry of ``pid`` under it."""
        raise NotImplementedError

    def values(self, key: Hashable, pid: Pid) -> list[Any]:
        """The values ``pid`` registered under ``key`` (oldest first)."""
        raise NotImplementedError

    def items(self) -> list[tuple[Any, Pid, Any]]:
        """Every entry as ``(key, pid, value)``, as a new list."""
        raise NotImplementedError

    def match(self, key: Hashable, predicate: Callable[[Any], Any]) -> list[Entry]:
        """The entries under ``key`` whose value satisfies ``predicate``."""
        return [entry for entry in self.lookup(key) if predicate(entry[1])]

    def count_match(self, key: Hashable, predicate: Callable[[Any], Any]) -> int:
        """How many entries under ``key`` have a value satisfying ``predicate``."""
        return sum(1 for entry in self.lookup(key) if predicate(entry[1]))

    def select(
        self, predicate: Callable[[Any, Pid, Any], Any] | None
    ) -> list[tuple[Any, Pid, Any]]:
        """Every ``(key, pid, value)`` (for which ``predicate(key, pid, value)`` is true)."""
        everything = self.items()
        if predicate is None:
            return everything
        return [item for item in everything if predicate(*item)]


class UniqueTable(Table):
    """A table where each key holds at most one entry."""

    __slots__ = ("_by_key", "_by_pid")

    unique = True

    def __init__(self) -> None:
        super().__init__()
        self._by_key: dict[Any, Entry] = {}
        # pid -> the keys it holds (a dict used as an ordered set)
        self._by_pid: dict[Pid, dict[Any, None]] = {}

    def has_pid(self, pid: Pid) -> bool:
        return pid in self._by_pid

    def pids(self) -> list[Pid]:
        return list(self._by_pid)

    def whereis(self, key: Hashable) -> Pid | None:
        """The pid holding ``key``, or None."""
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        return entry[0] if entry is not None else None

    def register(self, pid: Pid, key: Hashable, value: Any) -> Pid | None:
        _check_key(key)
        by_key = self._by_key
        entry = by_key.get(key)
        if entry is not None:
            return entry[0]
        by_key[key] = (pid, value)
        keys = self._by_pid.get(pid)
        if keys is None:
            self._by_pid[pid] = {key: None}
        else:
            keys[key] = None
        self._count += 1
        return None

    def unregister(self, pid: Pid, key: Hashable) -> int:
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        if entry is None or entry[0] != pid:
            return 0
        self._remove(pid, key)
        return 1

    def _remove(self, pid: Pid, key: Any) -> None:
        del self._by_key[key]
        keys = self._by_pid[pid]
        del keys[key]
        if not keys:
            del self._by_pid[pid]
        self._count -= 1

    def unregister_match(
        self, pid: Pid, key: Hashable, predicate: Callable[[Any], Any]
    ) -> tuple[int, bool]:
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        if entry is None or entry[0] != pid or not predicate(entry[1]):
            return 0, False
        if self._by_key.get(key) is entry:  # the predicate may have removed it
            self._remove(pid, key)
            return 1, True
        return 0, False

    def update_value(
        self, pid: Pid, key: Hashable, update: Callable[[Any], Any]
    ) -> tuple[Any, Any] | None:
        """Replace the value ``pid`` holds under ``key`` by ``update(old)``.

        Returns:
            ``(new, old)``; None (and ``update`` is not called) when ``pid``
            does not hold ``key``, or no longer holds it once ``update`` returns.
        """
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        if entry is None or entry[0] != pid:
            return None
        old = entry[1]
        new = update(old)
        if self._by_key.get(key) is not entry:  # ``update`` unregistered the key
            return None
        self._by_key[key] = (pid, new)
        return new, old

    def remove_pid(self, pid: Pid) -> int:
        keys = self._by_pid.pop(pid, None)
        if keys is None:
            return 0
        by_key = self._by_key
        for key in keys:
            del by_key[key]
        self._count -= len(keys)
        return len(keys)

    def rename(self, fix: Callable[[Pid], Pid]) -> None:
        self._by_key = {key: (fix(pid), value) for key, (pid, value) in self._by_key.items()}
        self._by_pid = {fix(pid): keys for pid, keys in self._by_pid.items()}

    def lookup(self, key: Hashable) -> list[Entry]:
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        return [entry] if entry is not None else []

    def keys(self, pid: Pid) -> list[Any]:
        keys = self._by_pid.get(pid)
        return list(keys) if keys is not None else []

    def values(self, key: Hashable, pid: Pid) -> list[Any]:
        try:
            entry = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        return [entry[1]] if entry is not None and entry[0] == pid else []

    def items(self) -> list[tuple[Any, Pid, Any]]:
        return [(key, pid, value) for key, (pid, value) in self._by_key.items()]


class DuplicateTable(Table):
    """A table where a key holds any number of entries, several per pid if need be."""

    __slots__ = ("_by_key", "_by_pid", "_next_id")

    unique = False

    def __init__(self) -> None:
        super().__init__()
        self._by_key: dict[Any, dict[int, Entry]] = {}
        # pid -> key -> the ids of its entries under that key (oldest first)
        self._by_pid: dict[Pid, dict[Any, list[int]]] = {}
        self._next_id = itertools.count().__next__

    def has_pid(self, pid: Pid) -> bool:
        return pid in self._by_pid

    def pids(self) -> list[Pid]:
        return list(self._by_pid)

    def register(self, pid: Pid, key: Hashable, value: Any) -> Pid | None:
        _check_key(key)
        entry_id = self._next_id()
        entries = self._by_key.get(key)
        if entries is None:
            self._by_key[key] = {entry_id: (pid, value)}
        else:
            entries[entry_id] = (pid, value)
        keys = self._by_pid.get(pid)
        if keys is None:
            self._by_pid[pid] = {key: [entry_id]}
        else:
            ids = keys.get(key)
            if ids is None:
                keys[key] = [entry_id]
            else:
                ids.append(entry_id)
        self._count += 1
        return None

    def _ids(self, pid: Pid, key: Hashable) -> list[int] | None:
        keys = self._by_pid.get(pid)
        if keys is None:
            _check_key(key)
            return None
        try:
            return keys.get(key)
        except TypeError:
            raise unhashable_key(key) from None

    def _drop(self, key: Any, ids: list[int]) -> None:
        entries = self._by_key[key]
        for entry_id in ids:
            del entries[entry_id]
        if not entries:
            del self._by_key[key]
        self._count -= len(ids)

    def unregister(self, pid: Pid, key: Hashable) -> int:
        ids = self._ids(pid, key)
        if ids is None:
            return 0
        keys = self._by_pid[pid]
        del keys[key]
        if not keys:
            del self._by_pid[pid]
        self._drop(key, ids)
        return len(ids)

    def unregister_match(
        self, pid: Pid, key: Hashable, predicate: Callable[[Any], Any]
    ) -> tuple[int, bool]:
        ids = self._ids(pid, key)
        if ids is None:
            return 0, False
        entries = self._by_key[key]
        snapshot = {entry_id: entries[entry_id] for entry_id in ids}
        chosen = {entry_id for entry_id, entry in snapshot.items() if predicate(entry[1])}
        if not chosen:
            return 0, False
        # The predicate may have changed the table: act on what is still there.
        ids = self._ids(pid, key)
        if ids is None:
            return 0, False
        entries = self._by_key[key]
        gone = [i for i in ids if i in chosen]  # ids are never reused
        if not gone:
            return 0, False
        kept = [i for i in ids if i not in gone]
        if kept:
            self._by_pid[pid][key] = kept
        else:
            keys = self._by_pid[pid]
            del keys[key]
            if not keys:
                del self._by_pid[pid]
        self._drop(key, gone)
        return len(gone), not kept

    def remove_pid(self, pid: Pid) -> int:
        keys = self._by_pid.pop(pid, None)
        if keys is None:
            return 0
        removed = 0
        for key, ids in keys.items():
            self._drop(key, ids)
            removed += len(ids)
        return removed

    def rename(self, fix: Callable[[Pid], Pid]) -> None:
        self._by_key = {
            key: {entry_id: (fix(pid), value) for entry_id, (pid, value) in entries.items()}
            for key, entries in self._by_key.items()
        }
        self._by_pid = {fix(pid): keys for pid, keys in self._by_pid.items()}

    def lookup(self, key: Hashable) -> list[Entry]:
        try:
            entries = self._by_key.get(key)
        except TypeError:
            raise unhashable_key(key) from None
        return list(entries.values()) if entries is not None else []

    def keys(self, pid: Pid) -> list[Any]:
        keys = self._by_pid.get(pid)
        if keys is None:
            return []
        return [key for key, ids in keys.items() for _ in ids]

    def values(self, key: Hashable, pid: Pid) -> list[Any]:
        ids = self._ids(pid, key)
        if ids is None:
            return []
        entries = self._by_key[key]
        return [entries[entry_id][1] for entry_id in ids]

    def items(self) -> list[tuple[Any, Pid, Any]]:
        return [
            (key, pid, value)
            for key, entries in self._by_key.items()
            for pid, value in entries.values()
        ]
