"""The public surface of beamlet.actors."""

from __future__ import annotations

import inspect
import typing

import beamlet.actors as actors
import trio
from export_checks import check_documented, check_homes, public_names

# Every name the design binds for beamlet.actors.
DESIGN_NAMES = [
    "run",
    "open_node",
    "Node",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "Exit",
    "self_pid",
    "NotInProcessError",
    "send",
    "NoSuchNameError",
    "receive",
    "ReceiveTimeoutError",
    "register",
    "unregister",
    "whereis",
    "registered",
    "NameTakenError",
    "link",
    "unlink",
    "monitor",
    "demonitor",
    "Down",
    "send_exit",
    "trap_exits",
    "ExitSignal",
    "send_after",
    "cancel_timer",
    "processes",
    "process_info",
    "ProcessInfo",
    "GenServer",
    "NoReply",
    "reply",
    "StartError",
    "call",
    "cast",
    "stop",
    "CallTimeoutError",
    "CallExitError",
    "async_task",
    "async_stream",
    "Task",
    "Pid",
    "Ref",
    "Registry",
    "Via",
    "Registered",
    "Unregistered",
    "AlreadyRegisteredError",
    "UnknownRegistryError",
]

# Methods the design names on public classes.
DESIGN_METHODS = {
    "Node": ["spawn", "run"],
    "GenServer": [
        "init",
        "handle_call",
        "handle_cast",
        "handle_info",
        "handle_continue",
        "terminate",
        "start",
        "start_link",
        "child_spec",
    ],
    "Task": ["join", "poll", "shutdown"],
    "Registry": [
        "start_link",
        "child_spec",
        "via",
        "register",
        "unregister",
        "unregister_match",
        "update_value",
        "lookup",
        "dispatch",
        "keys",
        "values",
        "match",
        "count",
        "count_match",
        "select",
        "count_select",
        "meta",
        "put_meta",
        "delete_meta",
    ],
}


def test_every_design_name_is_exported() -> None:
    missing = [name for name in DESIGN_NAMES if not hasattr(actors, name)]
    assert missing == []


def test_every_design_method_exists_with_a_docstring() -> None:
    for cls_name, methods in DESIGN_METHODS.items():
        cls = getattr(actors, cls_name)
        for method in methods:
            fn = getattr(cls, method)
            assert inspect.getdoc(fn), f"{cls_name}.{method} has no docstring"


def test_every_public_name_has_a_docstring() -> None:
    check_documented(actors, public_names(actors))


def test_public_classes_and_functions_say_they_come_from_the_package() -> None:
    check_homes(actors, public_names(actors))
    assert repr(actors.Down) == "<class 'beamlet.actors.Down'>"
    assert actors.GenServer.start.__module__ == "beamlet.actors"
    assert actors.Registry.lookup.__module__ == "beamlet.actors"
    assert actors.Registry.lookup.__qualname__ == "Registry.lookup"


def test_type_hints_still_resolve() -> None:
    for name in public_names(actors):
        value = getattr(actors, name)
        if inspect.isclass(value):
            typing.get_type_hints(value)
    assert typing.get_type_hints(actors.Down)["ref"] is actors.Ref


def test_exception_hierarchy() -> None:
    for timeout_error in [
        actors.ReceiveTimeoutError,
        actors.CallTimeoutError,
        actors.TaskTimeoutError,
    ]:
        assert issubclass(timeout_error, trio.TooSlowError)
    assert issubclass(actors.NoSuchNameError, LookupError)
    assert issubclass(actors.NoProcError, LookupError)
    assert issubclass(actors.NameTakenError, ValueError)
    assert issubclass(actors.NotInProcessError, RuntimeError)
    assert issubclass(actors.AlreadyRegisteredError, actors.NameTakenError)
    assert issubclass(actors.UnknownRegistryError, actors.NoSuchNameError)
    # Exit must get past `except Exception` in user code.
    assert issubclass(actors.Exit, BaseException)
    assert not issubclass(actors.Exit, Exception)
    for error in [actors.CallExitError, actors.StartError, actors.TaskExitError]:
        assert issubclass(error, Exception)
        assert error("why").reason == "why"


def test_messages_and_ids_are_frozen_values() -> None:
    pid = actors.Pid("n@h", 1, 2)
    ref = actors.Ref("n@h", 3, 2)
    assert hash(pid) == hash(actors.Pid("n@h", 1, 2))
    assert actors.Down(ref, pid, "normal") == actors.Down(ref, pid, "normal")
    assert actors.ExitSignal(pid, "x") == actors.ExitSignal(pid, "x")
    assert actors.Registered("r", "k", pid, 1) == actors.Registered("r", "k", pid, 1)
    assert actors.Unregistered("r", "k", pid) == actors.Unregistered("r", "k", pid)
    for value in [
        pid,
        ref,
        actors.Down(ref, pid, "r"),
        actors.ExitSignal(pid, "r"),
        actors.Registered("r", "k", pid, 1),
        actors.Unregistered("r", "k", pid),
        actors.Via("r", "k"),
    ]:
        attribute = next(iter(vars(type(value)).get("__annotations__", {})))
        try:
            setattr(value, attribute, None)
        except AttributeError:
            continue
        raise AssertionError(f"{value!r} is mutable")


def test_the_helper_is_reusable_by_other_packages() -> None:
    from beamlet.actors._util import fixup_module_metadata

    namespace: dict[str, object] = {}

    def helper() -> None:
        """A function that pretends to live in a private module."""

    helper.__module__ = "beamlet.example._private"
    helper.__qualname__ = "helper"
    namespace["renamed"] = helper
    fixup_module_metadata("beamlet.example", namespace)
    assert helper.__module__ == "beamlet.example"
    assert helper.__name__ == helper.__qualname__ == "renamed"
    outsider = len  # not from the package: left alone
    fixup_module_metadata("beamlet.example", {"outsider": outsider})
    assert len.__module__ == "builtins"
