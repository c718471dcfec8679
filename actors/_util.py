"""Small helpers shared by the beamlet packages."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["fixup_module_metadata"]


def fixup_module_metadata(module_name: str, namespace: Mapping[str, Any]) -> None:
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
    """
    prefix = module_name + "."
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
