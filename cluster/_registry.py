"""Which classes may cross the wire: ``@message``, system types and ``RemoteError``.

Only registered classes are ever built from received bytes. A class is
registered under a stable string name, which is what goes on the wire;
nothing is ever looked up by module path or imported. There are two kinds:

- user messages, registered with ``@message``: attrs classes or dataclasses,
  whose ``__init__`` fields travel by name, so that adding a field with a
  default or reordering fields stays compatible;
- system types of the runtime (``Down``, ``ExitSignal``, ``RemoteError``,
  the ``call`` reply, and later the GenServer envelopes), registered with
  ``register_system_type(cls, name, to_fields, from_fields)``: their fields
  travel by position, and their names start with ``"beamlet."``.

A ``MessageRegistry`` holds one set of registrations; ``@message`` and
``register_system_type`` use ``default_registry`` unless told otherwise, and
so do the module-level ``encode``/``decode``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, overload

import attrs
import msgpack  # type: ignore[import-untyped]
from beamlet.actors import Down, ExitSignal, Pid, Ref
from beamlet.actors.lowlevel import Reply

from ._errors import DecodeError, short_repr

__all__ = [
    "EXT_RECORD",
    "MessageRegistry",
    "RemoteError",
    "Tag",
    "default_registry",
    "message",
    "register_system_type",
]

T = TypeVar("T", bound=type)

#: Extension code of a registered class; its payload is the registered name.
EXT_RECORD = 6

#: Prefix reserved for the runtime's own types.
SYSTEM_PREFIX = "beamlet."

_NAME_RE = re.compile(r"[!-~]{1,200}")


class RemoteError(Exception):
    """An exception that ended a process on another node, as its exit reason.

    Exceptions do not cross the wire (their classes and tracebacks belong to
    the other node); the codec turns an exception instance into
    ``RemoteError(type_name, message)``. A ``RemoteError`` crosses as itself.
    Two ``RemoteError`` are equal when their fields are.

    Attributes:
        type_name: the exception's class, ``"ValueError"`` for builtins and
            ``"module.QualName"`` otherwise.
        message: ``str()`` of the exception.
    """

    def __init__(self, type_name: str, message: str) -> None:
        if type(type_name) is not str:
            raise TypeError(f"RemoteError: 'type_name' must be a str, not {short_repr(type_name)}")
        if type(message) is not str:
            raise TypeError(f"RemoteError: 'message' must be a str, not {short_repr(message)}")
        super().__init__(type_name, message)

    @property
    def type_name(self) -> str:
        """The name of the original exception's class."""
        return str(self.args[0])

    @property
    def message(self) -> str:
        """The original exception's message."""
        return str(self.args[1])

    @classmethod
    def from_exception(cls, exc: BaseException) -> RemoteError:
        """Describe ``exc`` as a ``RemoteError`` (a ``RemoteError`` is returned as is).

        Args:
            exc: any exception instance.

        Returns:
            ``RemoteError(type_name, str(exc))``.
        """
        if type(exc) is RemoteError:
            return exc
        t = type(exc)
        name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        try:
            text = str(exc)
        except Exception:  # a broken __str__ must not break an exit
            text = f"<unprintable {t.__qualname__}>"
        return cls(name, text)

    def __eq__(self, other: object) -> bool:
        if type(other) is not RemoteError:
            return NotImplemented
        return self.args == other.args

    def __hash__(self) -> int:
        return hash((RemoteError, self.args))

    def __repr__(self) -> str:
        return f"RemoteError(type_name={self.type_name!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


class Tag:
    """The decoder's handle on one wire type: its name and how to rebuild it.

    The codec's extension hook returns a ``Tag`` for the marker that opens a
    tagged array; the array hook then calls ``build`` with the other elements.
    Internal to the codec and the registry.
    """

    __slots__ = ("build", "name")

    def __init__(self, name: str, build: Callable[[list[Any]], Any]) -> None:
        self.name = name
        self.build = build

    def __repr__(self) -> str:
        return f"<Tag {self.name}>"


@attrs.frozen
class _Entry:
    cls: type
    name: str
    encode: Callable[[Any], list[Any]]
    children: Callable[[Any], Iterable[Any]]
    tag: Tag


def _check_name(name: object, *, system: bool) -> str:
    if type(name) is not str or not _NAME_RE.fullmatch(name):
        raise ValueError(f"message name must be 1-200 printable ASCII characters, not {name!r}")
    if system and not name.startswith(SYSTEM_PREFIX):
        raise ValueError(f"system type names start with {SYSTEM_PREFIX!r}, not {name!r}")
    if not system and name.startswith(SYSTEM_PREFIX):
        raise ValueError(f"names starting with {SYSTEM_PREFIX!r} are reserved, not {name!r}")
    return name


def _init_fields(cls: type) -> list[tuple[str, str]]:
    """Return ``(attribute name, __init__ argument name)`` for each init field."""
    if attrs.has(cls):
        return [(f.name, f.alias or f.name) for f in attrs.fields(cls) if f.init]
    if dataclasses.is_dataclass(cls):
        return [(f.name, f.name) for f in dataclasses.fields(cls) if f.init]
    raise TypeError(
        f"@message needs an attrs class or a dataclass, not {cls.__module__}.{cls.__qualname__}"
    )


class MessageRegistry:
    """A set of classes that may be encoded and decoded, by stable name.

    A new registry holds the runtime's system messages (``Down``,
    ``ExitSignal``, ``RemoteError``, the ``call`` reply); system types that
    the runtime registers later go to ``default_registry`` only. Registrations
    are permanent. Registering the same class under the same
    name again does nothing; any other clash raises ``ValueError``. Reading is
    safe from several threads; register at import time.
    """

    def __init__(self) -> None:
        #: type -> function returning the tagged array for an instance.
        self.encoders: dict[type, Callable[[Any], list[Any]]] = {}
        #: wire name (bytes) -> Tag, for the decoder.
        self.tags: dict[bytes, Tag] = {}
        self._entries: dict[type, _Entry] = {}
        self._by_name: dict[str, _Entry] = {}
        _register_runtime_types(self)

    def __repr__(self) -> str:
        return f"<MessageRegistry of {len(self._entries)} types>"

    def __contains__(self, item: object) -> bool:
        return item in self._entries or item in self._by_name

    def name_of(self, cls: type) -> str | None:
        """Return the name ``cls`` is registered under, or ``None``."""
        entry = self._entries.get(cls)
        return entry.name if entry is not None else None

    def lookup(self, name: str) -> type | None:
        """Return the class registered under ``name``, or ``None``."""
        entry = self._by_name.get(name)
        return entry.cls if entry is not None else None

    def children(self, obj: Any) -> Iterable[Any] | None:
        """Return the field values of a registered instance, or ``None`` if unregistered."""
        entry = self._entries.get(type(obj))
        return entry.children(obj) if entry is not None else None

    def register(self, cls: T, name: str | None = None) -> T:
        """Register an attrs class or dataclass as a user message; see ``message``.

        Args:
            cls: the class.
            name: its wire name; ``"module.QualName"`` by default.

        Returns:
            ``cls`` itself.

        Raises:
            TypeError: ``cls`` is neither an attrs class nor a dataclass.
            ValueError: the name is malformed, reserved or taken, or ``cls`` is
                registered under another name.
        """
        if not isinstance(cls, type):
            raise TypeError(f"@message decorates a class, not {short_repr(cls)}")
        if name is None:
            name = f"{cls.__module__}.{cls.__qualname__}"
        _check_name(name, system=False)
        pairs = _init_fields(cls)
        names = tuple(n for n, _ in pairs)
        aliases = dict(pairs)

        def to_fields(obj: Any) -> tuple[dict[str, Any]]:
            return ({n: getattr(obj, n) for n in names},)

        def from_fields(items: Sequence[Any]) -> Any:
            if len(items) != 1 or type(items[0]) is not dict:
                raise DecodeError(f"message {name!r}: malformed fields")
            kwargs = {}
            for key, value in items[0].items():
                alias = aliases.get(key)
                if alias is None:
                    raise DecodeError(f"message {name!r}: unknown field {short_repr(key)}")
                kwargs[alias] = value
            return cls(**kwargs)

        def children(obj: Any) -> list[Any]:
            return [getattr(obj, n) for n in names]

        self._add(cls, name, to_fields, from_fields, children)
        return cls

    def register_system_type(
        self,
        cls: type,
        name: str,
        to_fields: Callable[[Any], Sequence[Any]],
        from_fields: Callable[[Sequence[Any]], Any],
    ) -> None:
        """Register one of the runtime's own classes; its fields travel by position.

        Args:
            cls: the class (instances must be of exactly this type).
            name: its wire name, starting with ``"beamlet."``.
            to_fields: returns the field values of an instance, each encodable.
            from_fields: rebuilds an instance from those values (a sequence
                decoded from the peer, so it must check them and raise on
                anything unexpected; any exception becomes a ``DecodeError``).

        Raises:
            ValueError: the name is malformed, not a system name, or taken.
        """
        _check_name(name, system=True)
        self._add(cls, name, to_fields, from_fields, to_fields)

    def _add(
        self,
        cls: type,
        name: str,
        to_fields: Callable[[Any], Sequence[Any]],
        from_fields: Callable[[Sequence[Any]], Any],
        children: Callable[[Any], Iterable[Any]],
    ) -> None:
        old = self._entries.get(cls)
        if old is not None:
            if old.name == name:
                return
            raise ValueError(f"{cls.__qualname__} is already registered as {old.name!r}")
        if name in self._by_name:
            other = self._by_name[name].cls
            raise ValueError(f"message name {name!r} is already taken by {other.__qualname__}")
        marker = tuple.__new__(msgpack.ExtType, (EXT_RECORD, name.encode()))

        def encode(obj: Any) -> list[Any]:
            return [marker, *to_fields(obj)]

        tag = Tag(name, from_fields)
        entry = _Entry(cls=cls, name=name, encode=encode, children=children, tag=tag)
        self._entries[cls] = entry
        self._by_name[name] = entry
        self.encoders[cls] = encode
        self.tags[name.encode()] = tag


@overload
def message(cls: T, /) -> T: ...
@overload
def message(
    *, name: str | None = None, registry: MessageRegistry | None = None
) -> Callable[[T], T]: ...
def message(
    cls: T | None = None,
    /,
    *,
    name: str | None = None,
    registry: MessageRegistry | None = None,
) -> T | Callable[[T], T]:
    """Class decorator: let instances of an attrs class or dataclass cross nodes.

    ::

        @message
        @attrs.frozen
        class Join:
            room: str
            user: str

        @message(name="chat.Leave")
        @dataclasses.dataclass(frozen=True)
        class Leave:
            room: str

    Fields given to ``__init__`` travel by name; the receiving node rebuilds the
    object by calling the class with them (so validators run there too). The
    class must be registered, under the same name, on every node.

    Args:
        cls: the class, when used without arguments.
        name: the stable wire name; ``"module.QualName"`` by default. Pick one
            explicitly if the class may move.
        registry: where to register; ``default_registry`` by default.

    Returns:
        The class itself, or a decorator.

    Raises:
        TypeError: not an attrs class or dataclass.
        ValueError: the name is malformed, reserved or already taken.
    """
    reg = default_registry if registry is None else registry
    if cls is not None:
        return reg.register(cls, name)

    def decorate(c: T) -> T:
        return reg.register(c, name)

    return decorate


def register_system_type(
    cls: type,
    name: str,
    to_fields: Callable[[Any], Sequence[Any]],
    from_fields: Callable[[Sequence[Any]], Any],
    *,
    registry: MessageRegistry | None = None,
) -> None:
    """Register a runtime class in ``default_registry`` (or ``registry``).

    See ``MessageRegistry.register_system_type``.
    """
    reg = default_registry if registry is None else registry
    reg.register_system_type(cls, name, to_fields, from_fields)


def _remote_error(items: Sequence[Any]) -> RemoteError:
    type_name, text = items
    return RemoteError(type_name, text)


def _down(items: Sequence[Any]) -> Down:
    ref, pid, reason = items
    if type(ref) is not Ref:
        raise DecodeError(f"Down: 'ref' must be a Ref, not {short_repr(ref)}")
    return Down(ref, pid, reason)


def _exit_signal(items: Sequence[Any]) -> ExitSignal:
    pid, reason = items
    if type(pid) is not Pid:
        raise DecodeError(f"ExitSignal: 'pid' must be a Pid, not {short_repr(pid)}")
    return ExitSignal(pid, reason)


def _reply(items: Sequence[Any]) -> Reply:
    ref, value = items
    if type(ref) is not Ref:
        raise DecodeError(f"Reply: 'ref' must be a Ref, not {short_repr(ref)}")
    return Reply(ref, value)


def _register_runtime_types(registry: MessageRegistry) -> None:
    registry.register_system_type(
        RemoteError, "beamlet.RemoteError", lambda e: (e.type_name, e.message), _remote_error
    )
    registry.register_system_type(Down, "beamlet.Down", lambda d: (d.ref, d.pid, d.reason), _down)
    registry.register_system_type(
        ExitSignal, "beamlet.ExitSignal", lambda e: (e.pid, e.reason), _exit_signal
    )
    registry.register_system_type(Reply, "beamlet.Reply", lambda r: (r.ref, r.value), _reply)


#: The registry that ``@message``, ``register_system_type``, ``encode`` and
#: ``decode`` use unless given another one.
default_registry = MessageRegistry()
