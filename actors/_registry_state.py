"""The running side of a ``Registry``: its table on the node, its exit hooks, its process.

One ``RegistryState`` per running registry, kept in the ``REGISTRIES`` node
variable under the registry's name and owned by the registry's process (a
small GenServer, ``RegistryServer``), so that it goes when that process exits.
It wraps the pure table (``_registry_table``) with what the runtime adds: who
may write (a live process, for itself), the exit hook that removes a
process's entries as it ends, the listeners, and what happens to registered
processes when the registry's process exits. ``_registry`` holds the public
API on top of it; ``_node`` resolves via names through ``via_process``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._context import _process, current_node, current_process
from ._errors import AlreadyRegisteredError, NoProcError, UnknownRegistryError
from ._gen_server import From, GenServer
from ._ids import Pid
from ._nodevar import NodeVar
from ._registry_table import DuplicateTable, Table, UniqueTable

if TYPE_CHECKING:
    from ._node import Node
    from ._process import Process
    from ._registry import Via

__all__ = [
    "REGISTRIES",
    "Registered",
    "RegistryServer",
    "RegistryState",
    "Unregistered",
    "registry_state",
    "rename_registries",
    "state",
    "unique_table",
    "via_process",
    "via_registry",
]

logger = logging.getLogger("beamlet")

#: The running registries of each node, by name; each owned by its process.
REGISTRIES: NodeVar[RegistryState] = NodeVar("beamlet.actors.Registry")


# -- listener messages ----------------------------------------------------------


@attrs.frozen
class Registered:
    """Sent to a registry's listeners when a process registers a key.

    Attributes:
        registry: the registry's name.
        key: the key.
        pid: the process that registered it.
        value: the value it registered.
    """

    registry: str
    key: Any
    pid: Pid
    value: Any


@attrs.frozen
class Unregistered:
    """Sent to a registry's listeners when a process unregisters a key.

    Sent by ``unregister`` (when it removed something) and by
    ``unregister_match`` (when the process no longer holds the key); not when
    a process exits (monitor it to learn that), as in Elixir.

    Attributes:
        registry: the registry's name.
        key: the key.
        pid: the process that held it.
    """

    registry: str
    key: Any
    pid: Pid


# -- the runtime side of one registry ------------------------------------------------------


class RegistryState:
    """One running registry on one node: its table, listeners, meta and owner."""

    __slots__ = (
        "_hook",
        "closed",
        "listeners",
        "meta",
        "name",
        "node",
        "owner",
        "partitions",
        "table",
    )

    def __init__(
        self,
        owner: Process,
        name: str,
        unique: bool,
        partitions: int,
        listeners: tuple[str | Pid, ...],
        meta: dict[Any, Any],
    ) -> None:
        self.node: Node = owner.node
        self.owner = owner.pid
        self.name = name
        self.table: Table = UniqueTable() if unique else DuplicateTable()
        self.partitions = partitions
        self.listeners = listeners
        self.meta = meta
        self.closed = False
        # One bound method, made once, so that it can be found in a hook list.
        self._hook = self._process_exited

    def __repr__(self) -> str:
        return f"<Registry {self.name!r} of {self.owner!r}>"

    def open(self, owner: Process) -> None:
        """Hang the registry on its node; it goes when ``owner`` exits."""
        REGISTRIES.set(self, key=self.name, owner=owner.pid, node=self.node)
        add_hook(owner, self._owner_exited)

    # -- writes, by the calling process --------------------------------------------

    def register(self, proc: Process, key: Any, value: Any) -> None:
        pid = proc.pid
        if self.node._procs.get(pid.id) is not proc:
            raise NoProcError(
                f"process {pid!r} has exited: it cannot register {key!r} in registry {self.name!r}"
            )
        table = self.table
        first = not table.has_pid(pid)
        holder = table.register(pid, key, value)
        if holder is not None:
            raise AlreadyRegisteredError(self.name, key, holder)
        if first:
            add_hook(proc, self._hook)
        if self.listeners:
            self._tell(pid, Registered(self.name, key, pid, value))

    def unregister(self, proc: Process, key: Any) -> None:
        pid = proc.pid
        if self.table.unregister(pid, key):
            self._released(proc)
            if self.listeners:
                self._tell(pid, Unregistered(self.name, key, pid))

    def unregister_match(self, proc: Process, key: Any, predicate: Callable[[Any], Any]) -> None:
        pid = proc.pid
        removed, gone = self.table.unregister_match(pid, key, predicate)
        if removed:
            self._released(proc)
            if gone and self.listeners:
                self._tell(pid, Unregistered(self.name, key, pid))

    def _released(self, proc: Process) -> None:
        """Drop the exit hook of a process that holds no more entries."""
        hooks = proc.hooks
        if hooks and not self.table.has_pid(proc.pid):
            hooks.pop(self._hook, None)

    def _tell(self, sender: Pid, msg: Any) -> None:
        send = self.node.send_quietly
        for listener in self.listeners:
            send(sender, listener, msg)

    def rename(self, fix: Callable[[Pid], Pid]) -> None:
        """The node got a new name: its pids in the table (and the owner's) follow."""
        self.table.rename(fix)
        self.owner = fix(self.owner)
        self.listeners = tuple(fix(x) if isinstance(x, Pid) else x for x in self.listeners)

    # -- exits -----------------------------------------------------------------------

    def _process_exited(self, proc: Process, reason: Any, result: Any) -> None:
        """The exit hook of a process with entries: they go with it."""
        if not self.closed:
            self.table.remove_pid(proc.pid)

    def _owner_exited(self, proc: Process, reason: Any, result: Any) -> None:
        """The registry's process exited: the table goes, and (as a link would)
        an exit signal with its reason goes to every process still registered."""
        self.closed = True  # (the NodeVar has dropped it already)
        node = self.node
        hook = self._hook
        for pid in self.table.pids():
            other = node.lookup(pid)
            if other is None or other is proc:
                continue
            if other.hooks:
                other.hooks.pop(hook, None)
            node.exit_signal(self.owner, pid, reason, link=False)
        self.table = UniqueTable() if self.table.unique else DuplicateTable()


def add_hook(proc: Process, hook: Callable[[Process, Any, Any], None]) -> None:
    """Add an exit hook (the internal form of ``lowlevel.add_exit_hook``)."""
    hooks = proc.hooks
    if hooks is None:
        proc.hooks = {hook: None}
    else:
        hooks[hook] = None


def registry_state(node: Node, registry: str) -> RegistryState:
    """The running registry named ``registry`` on ``node``.

    Raises:
        UnknownRegistryError: no such registry runs there.
        TypeError: ``registry`` is not a str.
    """
    try:
        return node._vars[REGISTRIES][registry].value  # type: ignore[no-any-return]
    except KeyError:
        if not isinstance(registry, str):
            raise TypeError(f"a registry is named by a str, not {registry!r}") from None
        raise UnknownRegistryError(registry, node.name) from None
    except TypeError:
        raise TypeError(f"a registry is named by a str, not {registry!r}") from None


def state(registry: str) -> RegistryState:
    """The running registry named ``registry`` on the current node (the readers' fast path).

    Raises:
        UnknownRegistryError, TypeError: as ``registry_state``.
        NotInProcessError: there is no current node.
    """
    proc = _process.get()
    try:
        node = proc.node if proc is not None else current_node()
        return node._vars[REGISTRIES][registry].value  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        return registry_state(current_node(), registry)  # raises the error that fits


def unique_table(state: RegistryState, what: str) -> UniqueTable:
    table = state.table
    if type(table) is not UniqueTable:
        raise ValueError(
            f"{what} needs a registry with unique keys; {state.name!r} has duplicate keys"
        )
    return table


def rename_registries(node: Node, fix: Callable[[Pid], Pid]) -> None:
    """``Node.rename`` calls this: every registry of ``node`` renames its pids."""
    entries = node._vars.get(REGISTRIES)
    if entries:
        for entry in entries.values():
            entry.value.rename(fix)


def via_process(node: Node, via: Via) -> Process | None:
    """The live process registered under ``via`` on ``node``, or None.

    Raises:
        UnknownRegistryError: the registry is not running.
        ValueError: the registry has duplicate keys.
    """
    table = unique_table(registry_state(node, via.registry), "a via name")
    pid = table.whereis(via.key)
    return node._procs.get(pid.id) if pid is not None else None


def via_registry(node: Node, via: Via) -> RegistryState:
    """Check that a new process can take the name ``via``; return its registry.

    Raises:
        UnknownRegistryError: the registry is not running.
        ValueError: the registry has duplicate keys.
        AlreadyRegisteredError: the key is taken.
    """
    state = registry_state(node, via.registry)
    holder = unique_table(state, "a via name").whereis(via.key)
    if holder is not None:
        raise AlreadyRegisteredError(state.name, via.key, holder)
    return state


# -- the owner process --------------------------------------------------------------------


class RegistryServer(GenServer):
    """The process that owns a registry's table (which goes when it exits)."""

    state: RegistryState

    async def init(
        self,
        name: str,
        unique: bool,
        partitions: int,
        listeners: tuple[str | Pid, ...],
        meta: dict[Any, Any],
    ) -> None:
        proc = current_process()
        self.state = RegistryState(proc, name, unique, partitions, listeners, meta)
        self.state.open(proc)

    async def handle_call(self, request: Any, caller: From) -> Any:
        logger.warning(
            "registry %r received an unexpected call (answered with an error): %r",
            self.state.name,
            request,
        )
        return ("error", ("unknown_call", request))

    async def handle_cast(self, request: Any) -> None:
        logger.warning(
            "registry %r received an unexpected cast (dropped): %r", self.state.name, request
        )
