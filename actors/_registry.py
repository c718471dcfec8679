"""Registry: a node-local key -> process table, as Elixir's ``Registry``.

The table (``_registry_table``) is a plain in-memory structure hung on the node
(``_registry_state``); reads and ``dispatch`` run in the caller and read it
directly, never waiting in a server's mailbox (the whole node runs on one Trio
thread). Writes are made by the calling process for itself. A process's
entries go in its exit hook, which runs as the process ends, before anyone can
hear of the exit: no entry outlives its process. The registry's own process (a
small GenServer) only owns the table's lifetime: when it exits, the table goes
with it.

``Via`` names a process through a unique registry, so that ``spawn``,
``GenServer.start`` and the functions that take a destination accept it
where they accept a registered name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Literal

import attrs

from ._context import _process, current_node, current_process
from ._ids import Pid
from ._registry_state import (
    REGISTRIES,
    RegistryServer,
    registry_state,
    state as _state,
    unique_table as _unique_table,
)
from ._registry_table import Table, unhashable_key
from ._util import check_number

__all__ = ["Registry", "Via"]

_MISSING: Any = object()


# -- via names ----------------------------------------------------------------------------


def _check_registry_name(instance: object, attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"a registry is named by a non-empty str, not {value!r}")


def _check_hashable(instance: object, attribute: object, value: Any) -> None:
    try:
        hash(value)
    except TypeError:
        raise unhashable_key(value) from None


@attrs.frozen(repr=False)
class Via:
    """A process name held in a unique ``Registry``: Elixir's ``{:via, Registry, {registry, key}}``.

    Make one with ``Registry.via(registry, key)``. Give it as ``name=`` to
    ``spawn``, ``spawn_link``, ``spawn_monitor``, ``GenServer.start`` and
    ``start_link`` (and ``GenServer.child_spec``): the new process is
    registered under ``key`` before it runs, with ``value``, and the key is
    freed when it exits. ``send``, ``call``, ``cast``, ``stop``, ``monitor``,
    ``send_after`` and ``whereis`` take it where they take a registered name,
    and look it up at the moment they send: a key nobody holds behaves as a
    name nobody registered (``send`` raises ``NoSuchNameError``, ``call`` and
    ``stop`` raise ``CallExitError("noproc")``, ``cast`` drops the message,
    ``monitor`` delivers ``Down(ref, via, "noproc")``, ``whereis`` returns
    None). A registry that is not running raises ``UnknownRegistryError``
    (``cast`` drops the message); a registry with duplicate keys raises
    ``ValueError``.

    Two ``Via`` values are equal when their registry and key are: the value
    is what the process registers, not part of the name.

    Attributes:
        registry: the registry's name.
        key: the key (hashable).
        value: the value registered with the key (default None).
    """

    registry: str = attrs.field(validator=_check_registry_name)
    key: Hashable = attrs.field(validator=_check_hashable)
    value: Any = attrs.field(default=None, eq=False)

    def __repr__(self) -> str:
        return f"Registry.via({self.registry!r}, {self.key!r})"


# -- checks ---------------------------------------------------------------------------------


def _check_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} must be a callable, not {fn!r}")


def _check_pid(pid: object, what: str) -> None:
    if not isinstance(pid, Pid):
        raise TypeError(f"{what} needs a Pid, not {pid!r}")


def _check_options(
    name: object, keys: object, partitions: object, listeners: object, meta: object
) -> tuple[bool, tuple[str | Pid, ...], dict[Any, Any]]:
    """Validate the options of ``start_link``; return ``(unique, listeners, meta)``."""
    _check_registry_name(None, None, name)
    if keys not in ("unique", "duplicate") or not isinstance(keys, str):
        raise ValueError(f"Registry keys must be 'unique' or 'duplicate', not {keys!r}")
    check_number(partitions, "Registry partitions", minimum=1, integer=True)
    if isinstance(listeners, str | bytes) or not isinstance(listeners, Iterable):
        raise TypeError(
            f"Registry listeners must be a list of process names or pids, not {listeners!r}"
        )
    listeners = tuple(listeners)
    for listener in listeners:
        if not (isinstance(listener, Pid) or (isinstance(listener, str) and listener)):
            raise TypeError(
                f"a Registry listener is a process name (a non-empty str) or a Pid, not {listener!r}"
            )
    if meta is None:
        meta = {}
    elif not isinstance(meta, Mapping):
        raise TypeError(f"Registry meta must be a mapping, not {meta!r}")
    return keys == "unique", listeners, dict(meta)


# -- the public API -------------------------------------------------------------------------


class Registry:
    """A node-local key -> process table: Elixir's ``Registry``.

    A registry maps keys to the processes that registered them, each entry
    with a value. With ``keys="unique"`` a key points to at most one process;
    with ``keys="duplicate"`` to any number (one process may even register a
    key several times). Different keys may point to the same process. A
    process registers keys for itself, and its entries vanish when it exits,
    whatever the reason (returned, crashed, killed). It serves as a name
    table (``Registry.via``), a property store, or the subscription table of
    a PubSub, with ``dispatch`` running in the publisher.

    Example::

        from beamlet.actors import Registry, receive, run, self_pid, send

        async def main():
            await Registry.start_link("topics", keys="duplicate")
            Registry.register("topics", "news", str.upper)
            assert Registry.lookup("topics", "news") == [(self_pid(), str.upper)]

            def publish(entries):
                for pid, style in entries:
                    send(pid, style("hello"))

            Registry.dispatch("topics", "news", publish)
            return await receive()

        assert run(main) == "HELLO"

    Reads (``lookup``, ``keys``, ``values``, ``match``, ``count``,
    ``count_match``, ``select``, ``meta``) and ``dispatch`` run in the
    caller, from any code with a current node, and never message anyone:
    the table is read directly. ``register``, ``unregister``,
    ``unregister_match`` and ``update_value`` act for the calling process,
    which must be a process of the registry's node. Every function is
    synchronous and constant-time in the size of the table, except those
    that return or visit many entries (in their number).

    Options of ``start_link`` and ``child_spec``:

    - ``name``: the registry's name (a str). Its process is registered under
      it, so it shares the node's names: ``whereis(name)`` is its pid.
    - ``keys``: ``"unique"`` (default) or ``"duplicate"``.
    - ``partitions``: a positive int (default 1), accepted and checked for
      the sake of code written for Elixir. In Elixir, partitions spread the
      table over several ETS tables and processes, so that schedulers on
      many cores do not contend on one. A beamlet node runs on one Trio
      thread, where there is no contention to spread: beamlet keeps one
      table whatever the number, so that a lookup never scans several
      partitions, and ``dispatch`` calls its function once. It buys nothing
      here and costs nothing.
    - ``listeners``: process names (or pids) told of registrations and
      unregistrations, with ``Registered(registry, key, pid, value)`` and
      ``Unregistered(registry, key, pid)`` messages (a listener not running
      is skipped). As in Elixir, a process exiting sends no
      ``Unregistered``: a listener that cares monitors the processes.
    - ``meta``: a mapping of initial metadata (see ``meta``).

    Start and shutdown: ``start_link`` starts the registry's process linked
    to the caller; ``child_spec`` describes it for a supervisor, which
    should start it before the processes that register in it. When the
    registry's process exits, for any reason, the table goes with it: later
    calls raise ``UnknownRegistryError``, which names the registry. As in
    Elixir, where registering links a process to the registry, each process
    that still has entries then gets an exit signal with the registry's
    exit reason (it exits too, unless it traps exits), so that a supervisor
    restarts it and it registers again in the new registry.

    Errors: a unique key already held raises ``AlreadyRegisteredError``
    (a ``NameTakenError``, hence a ``ValueError``), naming the holder; an
    unhashable key raises ``TypeError``; a registry not running raises
    ``UnknownRegistryError`` (a ``NoSuchNameError``, hence a ``LookupError``);
    writes outside a process raise ``NotInProcessError``. A function given
    to ``dispatch``, ``match`` or ``update_value`` that raises propagates
    to the caller and leaves the table as it was.

    When not to use it: for names of a few long-lived servers, plain
    registered names are simpler; for data that is not about processes,
    use a dict (or the cache).
    """

    def __init__(self) -> None:
        raise TypeError("Registry is used through its functions, e.g. Registry.start_link(...)")

    # -- starting ----------------------------------------------------------------------

    @staticmethod
    async def start_link(
        name: str,
        keys: Literal["unique", "duplicate"] = "unique",
        partitions: int = 1,
        listeners: Iterable[str | Pid] = (),
        meta: Mapping[Any, Any] | None = None,
    ) -> Pid:
        """Start a registry, linked to the calling process, and return its process's pid.

        Args:
            name: the registry's name; its process is registered under it.
            keys: ``"unique"`` or ``"duplicate"``.
            partitions: a positive int; see the class documentation (one
                table whatever the number, on a one-thread node).
            listeners: names (or pids) of processes told of each
                registration and unregistration.
            meta: initial metadata.

        Returns:
            The pid of the registry's process.

        Raises:
            TypeError / ValueError: a bad option; the message names it.
            StartError: the name is taken (``reason == ("already_started", pid)``).
            NotInProcessError: there is no calling process to link to.

        Cancellation:
            Returns once the table exists; cancelled before that, the
            registry's process is killed.
        """
        unique, listener_names, initial = _check_options(name, keys, partitions, listeners, meta)
        pid = await RegistryServer.start_link(
            name, unique, partitions, listener_names, initial, name=name
        )
        assert pid is not None  # init never returns Ignore
        return pid

    @staticmethod
    def child_spec(
        name: str,
        keys: Literal["unique", "duplicate"] = "unique",
        partitions: int = 1,
        listeners: Iterable[str | Pid] = (),
        meta: Mapping[Any, Any] | None = None,
        *,
        id: Any = None,
        restart: str = "permanent",
        shutdown: float | str = 5.0,
    ) -> dict[str, Any]:
        """Describe how a supervisor starts a registry (a mapping ``ChildSpec`` accepts).

        The options are checked here, where the spec is written.

        Args:
            name, keys, partitions, listeners, meta: as for ``start_link``.
            id: the child id (default: the registry's name).
            restart: ``"permanent"`` (default), ``"transient"`` or ``"temporary"``.
            shutdown: seconds, ``"brutal_kill"`` or ``"infinity"``.

        Raises:
            TypeError / ValueError: a bad option.
        """
        _check_options(name, keys, partitions, listeners, meta)
        listeners = tuple(listeners)

        async def start_link() -> Pid:
            return await Registry.start_link(name, keys, partitions, listeners, meta)

        start_link.__qualname__ = "Registry.start_link"
        return {
            "id": name if id is None else id,
            "start": start_link,
            "args": (),
            "restart": restart,
            "shutdown": shutdown,
            "type": "worker",
        }

    @staticmethod
    def via(registry: str, key: Hashable, value: Any = None) -> Via:
        """A name for a process, held in the unique registry ``registry`` under ``key``.

        See ``Via``. ``value`` is what the process registers with the key.

        Raises:
            TypeError: ``registry`` is not a non-empty str, or ``key`` is unhashable.
        """
        return Via(registry, key, value)

    # -- writes (for the calling process) -------------------------------------------

    @staticmethod
    def register(registry: str, key: Hashable, value: Any) -> Pid:
        """Register the calling process under ``key``, with ``value``.

        In a duplicate registry a process may register a key several times;
        each registration is an entry. Listeners get ``Registered``. The
        entry goes when the process exits.

        Returns:
            The pid of the registry's process (Elixir's ``{:ok, owner}``).

        Raises:
            AlreadyRegisteredError: the registry is unique and ``key`` is held
                (by this process or another: ``.pid`` says which).
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
            NotInProcessError: called outside a process.
            NoProcError: the calling process has already exited (from its
                exit hooks); nothing is registered.
        """
        proc = current_process()
        state = registry_state(proc.node, registry)
        state.register(proc, key, value)
        return state.owner

    @staticmethod
    def unregister(registry: str, key: Hashable) -> None:
        """Remove every entry of the calling process under ``key`` (none: no-op).

        Listeners get ``Unregistered`` when something was removed.

        Raises:
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
            NotInProcessError: called outside a process.
        """
        proc = current_process()
        registry_state(proc.node, registry).unregister(proc, key)

    @staticmethod
    def unregister_match(registry: str, key: Hashable, predicate: Callable[[Any], Any]) -> None:
        """Remove the calling process's entries under ``key`` whose value satisfies ``predicate``.

        ``predicate(value)`` replaces Elixir's match pattern and guards.
        Listeners get ``Unregistered`` when the process no longer holds the key.

        Raises:
            TypeError: ``key`` is unhashable, or ``predicate`` is not callable.
            UnknownRegistryError: the registry is not running.
            NotInProcessError: called outside a process.
        """
        _check_callable(predicate, "unregister_match()'s predicate")
        proc = current_process()
        registry_state(proc.node, registry).unregister_match(proc, key, predicate)

    @staticmethod
    def update_value(
        registry: str, key: Hashable, update: Callable[[Any], Any]
    ) -> tuple[Any, Any] | None:
        """Replace the value the calling process holds under ``key`` by ``update(old)``.

        Only for unique registries. Listeners are not told.

        Returns:
            ``(new_value, old_value)``; None (Elixir's ``:error``) when the
            calling process does not hold ``key``.

        Raises:
            ValueError: the registry has duplicate keys.
            TypeError: ``key`` is unhashable, or ``update`` is not callable.
            UnknownRegistryError: the registry is not running.
            NotInProcessError: called outside a process.
        """
        _check_callable(update, "update_value()'s function")
        proc = current_process()
        table = _unique_table(registry_state(proc.node, registry), "update_value()")
        return table.update_value(proc.pid, key, update)

    # -- reads (in the caller) ----------------------------------------------------------

    @staticmethod
    def lookup(registry: str, key: Hashable) -> list[tuple[Pid, Any]]:
        """The ``(pid, value)`` entries under ``key``, oldest first; ``[]`` if none.

        A unique registry gives at most one. Every pid is alive at the moment
        of the call.

        Raises:
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
        """
        proc = _process.get()  # ``_state``, inline: the hot path
        try:
            node = proc.node if proc is not None else current_node()
            table: Table = node._vars[REGISTRIES][registry].value.table
        except (KeyError, TypeError):
            table = _state(registry).table  # raises the error that fits
        return table.lookup(key)

    @staticmethod
    def dispatch(registry: str, key: Hashable, fn: Callable[[list[tuple[Pid, Any]]], Any]) -> None:
        """Call ``fn(entries)`` with the ``(pid, value)`` entries under ``key``, in the caller.

        ``fn`` is a plain (not async) function; it is not called when there
        are no entries. It gets a new list, so it may register or unregister
        as it likes. The registered processes take no part unless ``fn``
        sends them something. An exception from ``fn`` propagates.

        Raises:
            TypeError: ``key`` is unhashable, ``fn`` is not callable, or
                ``fn`` is an async function.
            UnknownRegistryError: the registry is not running.
        """
        proc = _process.get()  # ``_state``, inline: the hot path
        try:
            node = proc.node if proc is not None else current_node()
            table: Table = node._vars[REGISTRIES][registry].value.table
        except (KeyError, TypeError):
            table = _state(registry).table  # raises the error that fits
        entries = table.lookup(key)
        if not callable(fn):
            raise TypeError(f"dispatch() needs a function of the entries, not {fn!r}")
        if entries:
            result = fn(entries)
            if result is not None and inspect.iscoroutine(result):
                result.close()
                raise TypeError(f"dispatch() calls a plain function; {fn!r} is async")

    @staticmethod
    def keys(registry: str, pid: Pid) -> list[Any]:
        """The keys ``pid`` holds, a key once per entry (grouped by key); ``[]`` if none.

        Raises:
            TypeError: ``pid`` is not a Pid.
            UnknownRegistryError: the registry is not running.
        """
        _check_pid(pid, "Registry.keys()")
        return _state(registry).table.keys(pid)

    @staticmethod
    def values(registry: str, key: Hashable, pid: Pid) -> list[Any]:
        """The values ``pid`` registered under ``key``, oldest first; ``[]`` if none.

        Raises:
            TypeError: ``key`` is unhashable, or ``pid`` is not a Pid.
            UnknownRegistryError: the registry is not running.
        """
        _check_pid(pid, "Registry.values()")
        return _state(registry).table.values(key, pid)

    @staticmethod
    def match(
        registry: str, key: Hashable, predicate: Callable[[Any], Any]
    ) -> list[tuple[Pid, Any]]:
        """The ``(pid, value)`` entries under ``key`` whose value satisfies ``predicate``.

        ``predicate(value)`` replaces Elixir's match pattern and guards.

        Raises:
            TypeError: ``key`` is unhashable, or ``predicate`` is not callable.
            UnknownRegistryError: the registry is not running.
        """
        _check_callable(predicate, "match()'s predicate")
        return _state(registry).table.match(key, predicate)

    @staticmethod
    def count(registry: str) -> int:
        """The number of entries in the registry (constant time).

        Raises:
            UnknownRegistryError: the registry is not running.
        """
        return _state(registry).table.count()

    @staticmethod
    def count_match(registry: str, key: Hashable, predicate: Callable[[Any], Any]) -> int:
        """How many entries under ``key`` have a value satisfying ``predicate``.

        Raises:
            TypeError: ``key`` is unhashable, or ``predicate`` is not callable.
            UnknownRegistryError: the registry is not running.
        """
        _check_callable(predicate, "count_match()'s predicate")
        return _state(registry).table.count_match(key, predicate)

    @staticmethod
    def select(
        registry: str, predicate: Callable[[Any, Pid, Any], Any] | None = None
    ) -> list[tuple[Any, Pid, Any]]:
        """Every entry as ``(key, pid, value)``, or those for which ``predicate(key, pid, value)``.

        Elixir's ``select`` with a Python predicate for the match spec (shape
        the result with a comprehension). It visits the whole table.

        Raises:
            TypeError: ``predicate`` is neither None nor callable.
            UnknownRegistryError: the registry is not running.
        """
        if predicate is not None:
            _check_callable(predicate, "select()'s predicate")
        return _state(registry).table.select(predicate)

    @staticmethod
    def count_select(registry: str, predicate: Callable[[Any, Pid, Any], Any]) -> int:
        """How many entries satisfy ``predicate(key, pid, value)``.

        Raises:
            TypeError: ``predicate`` is not callable.
            UnknownRegistryError: the registry is not running.
        """
        _check_callable(predicate, "count_select()'s predicate")
        return len(_state(registry).table.select(predicate))

    # -- metadata -----------------------------------------------------------------------

    @staticmethod
    def meta(registry: str, key: Hashable, default: Any = _MISSING) -> Any:
        """The registry metadata under ``key`` (given to ``start_link`` or ``put_meta``).

        Returns:
            The value; ``default`` if given and there is none.

        Raises:
            KeyError: there is none and no ``default`` was given.
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
        """
        state = _state(registry)
        try:
            return state.meta[key]
        except KeyError:
            if default is not _MISSING:
                return default
            raise KeyError(f"registry {registry!r} has no metadata {key!r}") from None
        except TypeError:
            raise unhashable_key(key) from None

    @staticmethod
    def put_meta(registry: str, key: Hashable, value: Any) -> None:
        """Store ``value`` as the registry metadata under ``key`` (from any code).

        Raises:
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
        """
        state = _state(registry)
        try:
            state.meta[key] = value
        except TypeError:
            raise unhashable_key(key) from None

    @staticmethod
    def delete_meta(registry: str, key: Hashable) -> None:
        """Remove the registry metadata under ``key``, if any.

        Raises:
            TypeError: ``key`` is unhashable.
            UnknownRegistryError: the registry is not running.
        """
        state = _state(registry)
        try:
            state.meta.pop(key, None)
        except TypeError:
            raise unhashable_key(key) from None
