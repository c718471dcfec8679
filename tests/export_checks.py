"""Checks of a package's public surface, shared by every ``test_exports.py``.

``tests/conftest.py`` puts this folder on ``sys.path``, so tests import it as
``from export_checks import ...``. Each check fails with the names at fault.
"""

from __future__ import annotations
import __future__

import inspect
import typing
from collections.abc import Collection
from types import ModuleType


def public_names(module: ModuleType) -> set[str]:
    """The names ``module`` shows: not private, not one of its own submodules, not
    the ``annotations`` feature that ``from __future__ import annotations`` leaves
    behind, and not the ``@py_...`` names of pytest's assertion rewriting (which
    rewrites beamlet, as it provides a pytest plugin). Any other module imported
    under a public name counts."""
    own = module.__name__ + "."
    return {
        name
        for name, value in vars(module).items()
        if name.isidentifier()
        and not name.startswith("_")
        and not (inspect.ismodule(value) and value.__name__.startswith(own))
        and not isinstance(value, __future__._Feature)
    }


def check_public_names(module: ModuleType, expected: Collection[str]) -> None:
    """``module`` shows exactly ``expected``; its ``__all__``, if it has one, lists
    each of them once and nothing else."""
    names = public_names(module)
    assert names == set(expected), {
        "missing": sorted(set(expected) - names),
        "unexpected": sorted(names - set(expected)),
    }
    if hasattr(module, "__all__"):
        assert sorted(module.__all__) == sorted(expected), sorted(module.__all__)


def _documentable(value: object) -> bool:
    # Classes, functions and other callables; not type aliases such as Literal[...].
    return inspect.isclass(value) or (callable(value) and typing.get_origin(value) is None)


def check_documented(module: ModuleType, names: Collection[str], *, methods: bool = True) -> None:
    """Each class, function or other callable among ``names`` has a docstring; with
    ``methods``, so does each public method, class method, static method and
    property that a class among them defines."""
    undocumented = []
    for name in sorted(names):
        value = getattr(module, name)
        if not _documentable(value):
            continue
        if not inspect.getdoc(value):
            undocumented.append(name)
        if methods and inspect.isclass(value):
            for attr, member in vars(value).items():
                if attr.startswith("_"):
                    continue
                function = getattr(member, "__func__", member)
                function = getattr(function, "fget", function)
                if inspect.isfunction(function) and not inspect.getdoc(function):
                    undocumented.append(f"{name}.{attr}")
    assert undocumented == [], undocumented


def check_homes(module: ModuleType, names: Collection[str], *, qualnames: bool = True) -> None:
    """Each class and function among ``names`` says it comes from ``module`` (not
    from the private module that defines it) and, with ``qualnames``, bears the
    name it is exported under."""
    wrong = {}
    for name in sorted(names):
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if value.__module__ != module.__name__:
            wrong[name] = value.__module__
        elif qualnames and value.__qualname__ != name:
            wrong[name] = value.__qualname__
    assert wrong == {}, wrong
