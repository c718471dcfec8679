"""Small helpers shared by the beamlet packages."""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Mapping
from typing import Any

__all__ = [
    "check_number",
    "check_timeout",
    "fixup_module_metadata",
    "is_clean_exit",
    "raise_single",
    "sole_exception",
]


def check_number(
    value: object,
    what: str,
    *,
    minimum: float | None = 0,
    strict: bool = False,
    maximum: float | None = None,
    below: bool = False,
    integer: bool = False,
    finite: bool = False,
    optional: bool = False,
    unit: str = "",
    note: str = "",
) -> None:
    """Check a numeric option: a number (not a bool) at least ``minimum``.

    The one check behind every timeout, period, size and count option of
    beamlet and its apps, so that they all fail alike: ``TypeError`` for a
    value of the wrong type, ``ValueError`` for one out of range (NaN is
    always out of range), each naming the option, the range and the value.

    Example::

        check_number(timeout, "timeout", optional=True, unit="seconds")
        check_number(size, "max_children", integer=True)
        check_number(period, "interval", strict=True, finite=True, unit="seconds")
        check_number(jitter, "jitter", maximum=1, below=True)  # in [0, 1)
        check_number(amount, "amount", minimum=None)  # any number but NaN
        check_number(ttl, "ttl", unit="seconds", note="math.inf: never")

    Args:
        value: the value to check.
        what: the option's name, for the message.
        minimum: the lowest value allowed; None: no lower bound.
        strict: the value must be greater than ``minimum``, not equal to it.
        maximum: the highest value allowed; None (the default): no upper bound.
        below: the value must be less than ``maximum``, not equal to it.
        integer: the value must be an ``int``.
        finite: the value must not be infinite.
        optional: ``None`` is allowed.
        unit: what the number counts (``"seconds"``), for the message.
        note: a hint added to the message in parentheses (``"math.inf: never"``).

    Raises:
        TypeError: not an int (or float, unless ``integer``), or a bool.
        ValueError: below (or, with ``strict``, at) ``minimum``, above (or,
            with ``below``, at) ``maximum``, NaN, or infinite when ``finite``.
    """
    if value is None and optional:
        return
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise TypeError(
            _number_message(
                what, minimum, strict, maximum, below, integer, optional, unit, note, value
            )
        )
    number: float = value  # type: ignore[assignment]
    if (
        number != number  # NaN
        or (minimum is not None and not (number > minimum if strict else number >= minimum))
        or (maximum is not None and not (number < maximum if below else number <= maximum))
        or (finite and not math.isfinite(number))
    ):
        raise ValueError(
            _number_message(
                what, minimum, strict, maximum, below, integer, optional, unit, note, value
            )
        )


def _number_message(
    what: str,
    minimum: float | None,
    strict: bool,
    maximum: float | None,
    below: bool,
    integer: bool,
    optional: bool,
    unit: str,
    note: str,
    value: object,
) -> str:
    kind = "an int" if integer else "a number"
    if unit:
        kind += f" of {unit}"
    if minimum is not None and maximum is not None:
        kind += f" in {'(' if strict else '['}{minimum:g}, {maximum:g}{')' if below else ']'}"
    elif minimum is not None:
        kind += f" {'>' if strict else '>='} {minimum:g}"
    elif maximum is not None:
        kind += f" {'<' if below else '<='} {maximum:g}"
    if optional:
        kind += " or None"
    if note:
        kind += f" ({note})"
    return f"{what} must be {kind}, not {value!r}"


def check_timeout(value: object, what: str = "timeout") -> None:
    """Check a timeout: ``None`` (wait forever) or a number of seconds >= 0.

    ``check_number(value, what, optional=True, unit="seconds")``, with a
    fast path for the common float.

    Raises:
        TypeError / ValueError: as ``check_number``.
    """
    if type(value) is float and value >= 0:
        return
    check_number(value, what, optional=True, unit="seconds")


def is_clean_exit(reason: object) -> bool:
    """True for the exit reasons that are no failure: ``"normal"``, ``"shutdown"``
    and ``("shutdown", detail)``.

    Supervisors restart a transient child only for other reasons, and
    GenServer and crash reports log only those.
    """
    if type(reason) is str:
        return reason == "normal" or reason == "shutdown"
    return type(reason) is tuple and len(reason) == 2 and reason[0] == "shutdown"


def fixup_module_metadata(
    module_name: str, namespace: Mapping[str, Any], *, package: str | None = None
) -> None:
    """Make the public names of a package say they come from the package.

    Each package keeps its code in private modules (``beamlet.actors._node``)
    and re-exports the public names from its ``__init__``. Call this at the end
    of the ``__init__`` with ``(__name__, globals())`` so that reprs, tracebacks
    and documentation show ``beamlet.actors.Node`` rather than the private
    module. String annotations of those classes are resolved first, while
    their defining module is still known, so ``typing.get_type_hints`` keeps
    working on them. Only classes and functions defined inside the package are changed
    (and the methods and nested classes of those classes); values such as
    constants and sentinel instances are left alone.

    Args:
        module_name: the public package name, e.g. ``"beamlet.actors"``.
        namespace: the package's namespace, usually ``globals()``.
        package: for a public module inside a package (``beamlet.actors.lowlevel``):
            the package whose private modules hold the code (``"beamlet.actors"``).
            Names already claimed by the package itself keep its name.
    """
    prefix = (package if package is not None else module_name) + "."
    seen: set[int] = set()

    def fix_one(qualname: str, name: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            return
        module = getattr(obj, "__module__", None)
        if module is None or not module.startswith(prefix):
            return
        if inspect.isclass(obj):
            _resolve_annotations(obj)
        obj.__module__ = module_name
        if "." not in getattr(obj, "__qualname__", "."):
            obj.__name__ = name
            obj.__qualname__ = qualname
        if inspect.isclass(obj):
            for attr_name, attr_value in vars(obj).items():
                if isinstance(attr_value, classmethod | staticmethod):
                    attr_value = attr_value.__func__
                fix_one(f"{qualname}.{attr_name}", attr_name, attr_value)

    for name, obj in namespace.items():
        if not name.startswith("_"):
            fix_one(name, name, obj)


def _resolve_annotations(cls: type) -> None:
    """Replace a class's own string annotations by the objects they name."""
    own = vars(cls).get("__annotations__")
    if not own or not any(isinstance(value, str) for value in own.values()):
        return
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # a name only imported for type checking: leave it
        return
    cls.__annotations__ = {key: hints.get(key, value) for key, value in own.items()}


def sole_exception(exc: BaseException) -> BaseException | None:
    """The one exception inside ``exc``'s nested exception groups, or None if there are several.

    An exception that is not a group is its own sole exception. Trio wraps
    what leaves a nursery in an ``ExceptionGroup`` (one level per nursery);
    when that is a single failure, the public boundary raises it alone.
    """
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


def raise_single(group: BaseExceptionGroup[Any]) -> None:
    """Raise the sole exception of ``group`` as itself; return if it holds several.

    Call it in ``except BaseExceptionGroup as group:`` and ``raise`` after it,
    so that a single failure comes out as its own type (``except OSError``
    catches it) and several concurrent failures stay a group. The exception
    keeps its own ``__cause__`` and ``__context__``, not the group.
    """
    exc = sole_exception(group)
    if exc is None:
        return
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__ = cause, context
        exc.__suppress_context__ = suppress
        del exc
