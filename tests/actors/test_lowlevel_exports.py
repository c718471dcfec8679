"""The public surface of beamlet.actors.lowlevel."""

from __future__ import annotations

import inspect

import beamlet.actors as actors
import beamlet.actors.lowlevel as lowlevel
from export_checks import check_public_names

PUBLIC = {
    "BadInputLog",
    "DEFAULT_MAILBOX_WARNING",
    "Call",
    "Cast",
    "ExitHook",
    "LocalRouter",
    "Node",
    "NodeVar",
    "Process",
    "Reply",
    "Router",
    "StopRequest",
    "WireType",
    "add_exit_hook",
    "adopt_task",
    "alias",
    "check_async",
    "check_number",
    "check_timeout",
    "current_node",
    "current_node_or_none",
    "current_process",
    "current_process_or_none",
    "describe_reason",
    "fixup_module_metadata",
    "install_router",
    "is_clean_exit",
    "on_wire_type",
    "raise_single",
    "register_wire_type",
    "remove_exit_hook",
    "send_reply",
    "short_repr",
    "unalias",
    "wire_types",
}

#: What the classes' docstrings say libraries may use; each must exist and be documented.
SUPPORTED = {
    "Node": [
        "make_ref",
        "rename",
        "system_nursery",
        "system_pid",
        "is_remote",
        "is_local",
        "lookup",
        "is_alive",
        "spawn",
        "spawn_process",
        "run",
        "processes",
        "process_info",
        "whereis",
        "send",
        "send_quietly",
        "link",
        "unlink",
        "monitor",
        "demonitor",
        "exit_signal",
        "remote_send",
        "remote_send_named",
        "remote_reply",
        "remote_link",
        "remote_unlink",
        "remote_unlink_ack",
        "remote_exit",
        "remote_monitor",
        "remote_demonitor",
        "remote_down",
        "node_down",
        "shutdown",
    ],
    "Process": ["deliver", "kill", "take", "set_max_mailbox", "status", "function_name"],
    "Router": ["send", "send_named", "link", "unlink", "exit", "monitor", "demonitor", "down"],
    "NodeVar": ["get", "set", "delete", "owner", "keys"],
}


def test_public_names() -> None:
    check_public_names(lowlevel, PUBLIC)
    assert actors.lowlevel is lowlevel


def test_names_say_where_they_are_exported() -> None:
    for name in PUBLIC:
        value = getattr(lowlevel, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            # Names that beamlet.actors exports too keep its name.
            expected = "beamlet.actors" if hasattr(actors, name) else "beamlet.actors.lowlevel"
            assert value.__module__ == expected, name
            assert value.__qualname__ == name
    assert repr(lowlevel.NodeVar) == "<class 'beamlet.actors.lowlevel.NodeVar'>"
    assert lowlevel.Router is actors.Router and lowlevel.LocalRouter is actors.LocalRouter
    assert lowlevel.Node is actors.Node


def test_every_name_and_supported_member_is_documented() -> None:
    for name in PUBLIC:
        assert inspect.getdoc(getattr(lowlevel, name)), name
    for cls_name, members in SUPPORTED.items():
        cls = getattr(lowlevel, cls_name)
        for member in members:
            value = inspect.getattr_static(cls, member)
            value = getattr(value, "fget", value)
            assert inspect.getdoc(value), f"{cls_name}.{member}"
            if cls_name in ("Router", "NodeVar"):
                continue  # their methods are the interface
            # The router callbacks are listed by Router's docstring.
            listed_by = lowlevel.Router if member.startswith("remote_") else cls
            assert member in (inspect.getdoc(listed_by) or ""), f"{cls_name}.{member} not listed"
