"""``NodeVar``: node-local state owned by a process, gone when it exits.

Several nodes may share one ``trio.run`` (the cluster simulation does), so a
library must not keep its tables in module globals. A ``NodeVar`` is a
module-level key for a value kept on each node separately, as
``trio.lowlevel.RunVar`` keeps one per run. Each value is owned by a
process: when the owner exits, for any reason, the entry is removed (by an
exit hook, before the owner's exit and down signals go out), as an ETS
table goes with its owner. Readers on the same node read it directly,
without messaging the owner.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._context import current_node, current_process
from ._errors import NoProcError
from ._hooks import ExitHook, add_exit_hook, remove_exit_hook
from ._ids import Pid
from ._process import Process

if TYPE_CHECKING:  # _node imports _registry, which keeps its tables in a NodeVar
    from ._node import Node

__all__ = ["NodeVar"]

T = TypeVar("T")
D = TypeVar("D")

_MISSING: Any = object()


class _Entry:
    __slots__ = ("hook", "proc", "value")

    hook: ExitHook

    def __init__(self, value: Any, proc: Process) -> None:
        self.value = value
        # The process, not its pid: a node renamed by ``start_distribution``
        # gives its processes new pids, and ``owner`` must name the live one.
        self.proc = proc


class NodeVar(Generic[T]):
    """A node-local value (or table of values by key), owned by a process.

    Example::

        STATE: NodeVar[GroupsState] = NodeVar("mylib.groups")

        class Scope(GenServer):
            async def init(self, scope):
                STATE.set(GroupsState(), key=scope)   # owned by this process

        def members(group, scope="default"):
            state = STATE.get(key=scope, default=None)
            if state is None:
                raise LookupError(f"scope {scope!r} is not running")
            return state.members(group)

    ``key`` (any hashable, ``None`` by default) keeps several entries under
    one var, e.g. one table per scope name. Each entry has its own owner.

    Args:
        name: a name for messages and ``repr``; by convention the dotted
            name of the library (``"beamlet.pg"``). Two vars with the same
            name are still distinct.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a NodeVar's name is a non-empty str, not {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"<NodeVar {self.name}>"

    def _table(self, node: Node | None) -> dict[Any, _Entry] | None:
        node = node if node is not None else current_node()
        return node._vars.get(self)  # type: ignore[no-any-return]

    @overload
    def get(self, *, key: Hashable = None, node: Node | None = None) -> T: ...

    @overload
    def get(self, *, key: Hashable = None, default: D, node: Node | None = None) -> T | D: ...

    def get(
        self, *, key: Hashable = None, default: Any = _MISSING, node: Node | None = None
    ) -> Any:
        """The value under ``key`` on ``node`` (default: the current node).

        Returns:
            The value, or ``default`` if there is none (never set, deleted,
            or its owner has exited).

        Raises:
            LookupError: there is no value and no ``default`` was given.
            NotInProcessError: no ``node`` given and there is no current node.
        """
        table = self._table(node)
        entry = table.get(key) if table is not None else None
        if entry is not None:
            return entry.value
        if default is not _MISSING:
            return default
        where = f" under key {key!r}" if key is not None else ""
        raise LookupError(f"{self.name} has no value{where} on this node")

    def set(
        self, value: T, *, key: Hashable = None, owner: Pid | None = None, node: Node | None = None
    ) -> None:
        """Set the value under ``key``, owned by ``owner`` (default: the calling process).

        The entry is removed when the owner exits. Setting a key that already
        has a value replaces it and its owner.

        Args:
            value: the value.
            key: which entry (``None``: the var's single entry).
            owner: a live local process.
            node: the node (default: the current one).

        Raises:
            NoProcError: ``owner`` is not alive.
            NotInProcessError: no ``owner`` given outside a process.
            TypeError: ``key`` is not hashable.
        """
        hash(key)
        if node is None:
            node = current_node()
        if owner is None:
            proc: Process | None = current_process()
            if proc is not None and proc.node is not node:
                raise ValueError(f"the calling process is not on {node.name}; pass owner=")
        elif not isinstance(owner, Pid):
            raise TypeError(f"a NodeVar's owner is a Pid, not {owner!r}")
        elif not node.is_local(owner):
            raise ValueError(f"a NodeVar's owner must be a process of {node.name}, not {owner!r}")
        else:
            proc = node.lookup(owner)
        if proc is None:
            raise NoProcError(f"cannot set {self.name}: process {owner!r} is not alive")
        table = node._vars.get(self)
        if table is None:
            table = node._vars[self] = {}
        entry = _Entry(value, proc)

        def release(pid: Pid, reason: Any) -> None:
            if table.get(key) is entry:
                del table[key]

        entry.hook = add_exit_hook(proc, release)
        old = table.get(key)
        table[key] = entry
        if old is not None:
            remove_exit_hook(old.hook)

    def delete(self, *, key: Hashable = None, node: Node | None = None) -> bool:
        """Remove the value under ``key`` (its owner keeps running).

        Returns:
            True if there was one.
        """
        table = self._table(node)
        entry = table.pop(key, None) if table is not None else None
        if entry is None:
            return False
        remove_exit_hook(entry.hook)
        return True

    def owner(self, *, key: Hashable = None, node: Node | None = None) -> Pid | None:
        """The process that owns the value under ``key``, or None if there is none.

        The pid is the owner's current one: after the node is renamed
        (``start_distribution``), it carries the new node name.
        """
        table = self._table(node)
        entry = table.get(key) if table is not None else None
        return entry.proc.pid if entry is not None else None

    def keys(self, *, node: Node | None = None) -> list[Hashable]:
        """The keys that have a value on ``node`` (default: the current node)."""
        table = self._table(node)
        return list(table) if table is not None else []
