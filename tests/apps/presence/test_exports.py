"""The public surface of beamlet.apps.presence."""

from __future__ import annotations

import inspect

import beamlet.apps.presence as presence
from export_checks import check_documented, check_homes, check_public_names

DESIGN_NAMES = [
    "Presence",
    "PresenceDiff",
    "track",
    "untrack",
    "update",
    "list_presences",
    "get_by_key",
    "AlreadyTrackedError",
    "NoPresenceError",
    "UnknownPresenceError",
    "Fetch",
]


def test_the_designed_names_are_exported() -> None:
    check_public_names(presence, DESIGN_NAMES)


def test_every_public_name_says_where_it_lives_and_is_documented() -> None:
    # The functions are also Presence's methods (qualname Presence.name), so only their home is checked.
    check_homes(presence, DESIGN_NAMES, qualnames=False)
    check_documented(presence, DESIGN_NAMES)


def test_the_presence_class_carries_the_calls() -> None:
    for name in ["track", "untrack", "update", "list_presences", "get_by_key"]:
        assert getattr(presence.Presence, name) is getattr(presence, name)


def test_the_calls_that_wait_are_async_and_the_reads_are_not() -> None:
    for name in ["track", "untrack", "update"]:
        assert inspect.iscoroutinefunction(getattr(presence, name)), name
    for name in ["list_presences", "get_by_key"]:
        assert not inspect.iscoroutinefunction(getattr(presence, name)), name
    assert inspect.iscoroutinefunction(presence.Presence.start_link)


def test_errors_subclass_the_nearest_builtin() -> None:
    assert issubclass(presence.AlreadyTrackedError, ValueError)
    assert issubclass(presence.NoPresenceError, LookupError)
    assert issubclass(presence.UnknownPresenceError, LookupError)
