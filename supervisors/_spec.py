"""Child specifications: how a supervisor starts, restarts and stops one child.

``ChildSpec`` is a frozen value, validated when it is built, so that a bad
restart type or shutdown value fails where it is written rather than when the
supervisor first needs it. ``worker`` builds one for a plain async function.
Supervisors also accept the mappings that ``GenServer.child_spec`` returns,
a class with a ``child_spec`` method, or ``(cls, arg)`` (Elixir's
``{Module, arg}``); ``ChildSpec.coerce`` turns any of those into a ``ChildSpec``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, get_args

import attrs
from beamlet.actors import NameTakenError, Pid, StartError, spawn_link, whereis
from beamlet.actors.lowlevel import check_number, register_wire_type

__all__ = [
    "ChildLike",
    "ChildSpec",
    "ChildType",
    "Restart",
    "Shutdown",
    "SpawnLink",
    "StartFunction",
    "check_shutdown",
    "specs_of",
    "worker",
]

#: ``"permanent"`` (always restarted), ``"transient"`` (restarted after an
#: abnormal exit) or ``"temporary"`` (never restarted).
Restart: TypeAlias = Literal["permanent", "transient", "temporary"]
#: ``"worker"`` or ``"supervisor"``.
ChildType: TypeAlias = Literal["worker", "supervisor"]
#: Seconds to wait after the ``"shutdown"`` exit signal, ``"brutal_kill"`` or ``"infinity"``.
Shutdown: TypeAlias = float | Literal["brutal_kill", "infinity"]
#: An async callable that starts a process linked to the caller and returns
#: its pid, ``(pid, info)``, or ``None`` to ignore the child.
StartFunction: TypeAlias = Callable[..., Awaitable[Any]]
#: What supervisors accept as a child: a ``ChildSpec``, a mapping with its
#: fields, a class with a ``child_spec()`` method, or ``(cls, arg)``.
ChildLike: TypeAlias = "ChildSpec | Mapping[str, Any] | type | tuple[Any, Any]"

_RESTARTS: tuple[str, ...] = get_args(Restart)
_TYPES: tuple[str, ...] = get_args(ChildType)


def _check_id(spec: object, attribute: attrs.Attribute[Any], value: object) -> None:
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"ChildSpec id must be hashable, not {value!r}") from None


def _check_start(spec: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise TypeError(f"ChildSpec start must be an async callable, not {value!r}")


def _check_restart(spec: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or value not in _RESTARTS:
        raise ValueError(
            f"ChildSpec restart must be 'permanent', 'transient' or 'temporary', not {value!r}"
        )


def _check_type(spec: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or value not in _TYPES:
        raise ValueError(f"ChildSpec type must be 'worker' or 'supervisor', not {value!r}")


def check_shutdown(value: object, what: str = "ChildSpec shutdown") -> None:
    """Raise unless ``value`` is seconds >= 0, ``"brutal_kill"`` or ``"infinity"``."""
    if isinstance(value, str):
        if value in ("brutal_kill", "infinity"):
            return
        raise ValueError(f"{what} must be seconds >= 0, 'brutal_kill' or 'infinity', not {value!r}")
    try:
        check_number(value, what, unit="seconds")
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"{what} must be seconds >= 0, 'brutal_kill' or 'infinity', not {value!r}"
        ) from None


def _validate_shutdown(spec: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_shutdown(value)


@attrs.frozen(init=False)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Example::

        spec = ChildSpec("cache", Cache.start_link, args=(100,), restart="permanent")
        spec = ChildSpec.coerce(Cache.child_spec(100))   # the same, from GenServer

    Args:
        id: identifies the child within its supervisor; any hashable value,
            unique within a static supervisor (a ``DynamicSupervisor`` ignores it).
        start: an async callable, awaited as ``start(*args)`` in the supervisor
            process. It starts a process *linked to the caller* and returns its
            ``Pid``; or ``(pid, info)``, which ``start_child`` hands back
            unchanged; or ``None`` to ignore the child. It fails by raising
            (``StartError(reason)`` gives ``reason``, any other exception is the
            reason itself). ``GenServer.start_link`` is such a function.
        args: the arguments for ``start``, a tuple or list.
        restart: ``"permanent"`` children are always restarted, ``"transient"``
            ones only after an exit other than ``"normal"``, ``"shutdown"`` or
            ``("shutdown", detail)``, ``"temporary"`` ones never (and their
            spec is forgotten when they exit).
        shutdown: seconds the supervisor waits after the ``"shutdown"`` exit
            signal before it kills the child; ``"brutal_kill"`` kills at once;
            ``"infinity"`` waits forever. Default: 5.0 for a worker,
            ``"infinity"`` for a supervisor.
        type: ``"worker"`` or ``"supervisor"`` (a child that supervises others).

    Raises:
        TypeError / ValueError: a field has a bad value; the message names the
            field and the value.
    """

    id: Hashable = attrs.field(validator=_check_id)
    start: StartFunction = attrs.field(validator=_check_start)
    args: tuple[Any, ...] = attrs.field()
    restart: Restart = attrs.field(validator=_check_restart)
    shutdown: Shutdown = attrs.field(validator=_validate_shutdown)
    type: ChildType = attrs.field(validator=_check_type)

    def __init__(
        self,
        id: Hashable,
        start: StartFunction,
        args: tuple[Any, ...] | list[Any] = (),
        restart: Restart = "permanent",
        shutdown: Shutdown | None = None,
        type: ChildType = "worker",
    ) -> None:
        if not isinstance(args, tuple | list):
            raise TypeError(f"ChildSpec args must be a tuple or a list, not {args!r}")
        if shutdown is None:
            shutdown = "infinity" if type == "supervisor" else 5.0
        self.__attrs_init__(id, start, tuple(args), restart, shutdown, type)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ChildSpec:
        """Build a spec from a mapping such as ``GenServer.child_spec`` returns.

        The keys are the field names; ``id`` and ``start`` are required, the
        others default as in the constructor. Other keys (``modules``, for
        instance) are ignored, as OTP ignores them. ``significant`` is refused:
        beamlet supervisors have no ``auto_shutdown``.

        Raises:
            ValueError: ``id`` or ``start`` is missing, ``significant`` is set,
                or a field is invalid.
            TypeError: a field has the wrong type.
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"a child spec mapping is needed, not {mapping!r}")
        for key in ("id", "start"):
            if key not in mapping:
                raise ValueError(f"child spec {dict(mapping)!r} has no {key!r}")
        if mapping.get("significant"):
            raise ValueError(
                "child spec key 'significant' is not supported (there is no auto_shutdown)"
            )
        return cls(
            mapping["id"],
            mapping["start"],
            args=mapping.get("args", ()),
            restart=mapping.get("restart", "permanent"),
            shutdown=mapping.get("shutdown"),
            type=mapping.get("type", "worker"),
        )

    @classmethod
    def coerce(cls, child: object) -> ChildSpec:
        """Turn anything a supervisor accepts as a child into a ``ChildSpec``.

        Accepted: a ``ChildSpec`` (returned as is); a mapping (see
        ``from_mapping``); a class with a ``child_spec()`` method, such as a
        ``GenServer`` subclass (``child_spec()`` is called without arguments);
        ``(cls, arg)``, which calls ``cls.child_spec(arg)``.

        Raises:
            TypeError: ``child`` is none of these.
            ValueError: the resulting spec is invalid.
        """
        if isinstance(child, ChildSpec):
            return child
        if isinstance(child, Mapping):
            return cls.from_mapping(child)
        if isinstance(child, type):
            factory = getattr(child, "child_spec", None)
            if callable(factory):
                return cls.coerce(factory())
        if isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], type):
            factory = getattr(child[0], "child_spec", None)
            if callable(factory):
                return cls.coerce(factory(child[1]))
        raise TypeError(
            "a child is a ChildSpec, a mapping, a class with child_spec() or "
            f"(class, arg), not {child!r}"
        )


@attrs.frozen
class SpawnLink:
    """The start function of ``worker`` specs: ``spawn_link(fn, *args, name=name)``.

    A value (not a closure) so that two specs for the same function compare equal.

    Attributes:
        fn: the async function the process runs.
        name: a name to register the process under, atomically with the spawn.
    """

    fn: Callable[..., Awaitable[Any]]
    name: str | None = None

    async def __call__(self, *args: Any) -> Pid:
        try:
            return spawn_link(self.fn, *args, name=self.name)
        except NameTakenError:
            raise StartError(
                ("already_started", whereis(self.name or "")),
                getattr(self.fn, "__qualname__", repr(self.fn)),
                self.name,
            ) from None


def worker(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    id: Hashable = None,
    name: str | None = None,
    restart: Restart = "permanent",
    shutdown: Shutdown | None = None,
    type: ChildType = "worker",
) -> ChildSpec:
    """A ``ChildSpec`` for a process that runs the async function ``fn(*args)``.

    Example::

        async def ticker(period):
            while True:
                await receive(timeout=period) ...

        children = [worker(ticker, 1.0, id="ticker", name="ticker")]

    Args:
        fn: an async function; the process ends when it returns (``"normal"``).
        *args: its arguments.
        id: the child id (default: ``fn`` itself).
        name: register the process under this name, atomically with the spawn,
            so a restarted child is reachable by name as soon as it exists.
        restart, shutdown, type: as for ``ChildSpec``.

    Raises:
        TypeError: ``fn`` is not callable; ValueError: a field is invalid.
    """
    if not callable(fn):
        raise TypeError(f"worker() needs an async function, not {fn!r}")
    return ChildSpec(
        fn if id is None else id,
        SpawnLink(fn, name),
        args=args,
        restart=restart,
        shutdown=shutdown,
        type=type,
    )


def specs_of(children: Iterable[object]) -> list[ChildSpec]:
    """Coerce a list of children, refusing a bare string or mapping by mistake."""
    if isinstance(children, str | bytes | Mapping) or not isinstance(children, Iterable):
        raise TypeError(f"children must be a list of child specs, not {children!r}")
    return [ChildSpec.coerce(child) for child in children]


# A spec crosses between nodes (``start_child`` on a remote supervisor) when
# its start function does: that is, when it is exported by name
# (``beamlet.cluster.export``); the codec refuses any other function.


def _spec_from_fields(fields: Sequence[Any]) -> ChildSpec:
    id, start, args, restart, shutdown, kind = fields
    if not isinstance(args, tuple):
        raise ValueError(f"ChildSpec: 'args' is a tuple, not {args!r}")
    return ChildSpec(id, start, args, restart, shutdown, kind)


def _spawn_link_from_fields(fields: Sequence[Any]) -> SpawnLink:
    fn, name = fields
    if not callable(fn) or not (name is None or isinstance(name, str)):
        raise ValueError("SpawnLink: (exported function, name or None)")
    return SpawnLink(fn, name)


register_wire_type(
    ChildSpec,
    "beamlet.supervisors.ChildSpec",
    lambda s: (s.id, s.start, s.args, s.restart, s.shutdown, s.type),
    _spec_from_fields,
)
register_wire_type(
    SpawnLink, "beamlet.supervisors.SpawnLink", lambda s: (s.fn, s.name), _spawn_link_from_fields
)
