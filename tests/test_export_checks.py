"""The shared export checks (``tests/export_checks.py``) catch what they are for."""

from __future__ import annotations

import types
from typing import Literal

import pytest
from export_checks import check_documented, check_homes, check_public_names, public_names


def _package() -> types.ModuleType:
    module = types.ModuleType("pkg")
    exec(
        "from __future__ import annotations\n"
        "class Good:\n"
        "    '''Documented.'''\n"
        "    def method(self):\n"
        "        '''Documented.'''\n"
        "def good():\n"
        "    '''Documented.'''\n",
        module.__dict__,
    )
    module.sub = types.ModuleType("pkg.sub")  # type: ignore[attr-defined]
    module.Alias = Literal["a", "b"]  # type: ignore[attr-defined]
    return module


def test_a_clean_package_passes() -> None:
    module = _package()
    assert public_names(module) == {"Good", "good", "Alias"}
    check_public_names(module, ["Alias", "Good", "good"])
    check_documented(module, ["Alias", "Good", "good"])
    check_homes(module, ["Good", "good"])


def test_a_missing_or_an_extra_name_fails() -> None:
    module = _package()
    with pytest.raises(AssertionError, match="'missing': \\['other'\\]"):
        check_public_names(module, ["Alias", "Good", "good", "other"])
    module.helper = types  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="'unexpected': \\['helper'\\]"):
        check_public_names(module, ["Alias", "Good", "good"])


def test_an_all_that_differs_from_the_names_fails() -> None:
    module = _package()
    module.__all__ = ["Good", "good", "good"]
    with pytest.raises(AssertionError):
        check_public_names(module, ["Good", "good", "Alias"])


def test_a_missing_docstring_fails_and_methods_are_checked() -> None:
    module = _package()
    module.Good.method.__doc__ = None
    with pytest.raises(AssertionError, match=r"Good\.method"):
        check_documented(module, ["Good"])
    check_documented(module, ["Good"], methods=False)
    module.good.__doc__ = None
    with pytest.raises(AssertionError, match="'good'"):
        check_documented(module, ["good"])


def test_a_wrong_home_or_name_fails() -> None:
    module = _package()
    module.good.__module__ = "pkg._private"
    with pytest.raises(AssertionError, match=r"pkg\._private"):
        check_homes(module, ["good"])
    module.Good.__qualname__ = "Other.Good"
    with pytest.raises(AssertionError, match=r"Other\.Good"):
        check_homes(module, ["Good"])
    check_homes(module, ["Good"], qualnames=False)
