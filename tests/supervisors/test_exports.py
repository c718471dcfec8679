"""The public surface of beamlet.supervisors."""

from __future__ import annotations

import inspect

import beamlet.supervisors as supervisors

PUBLIC = {
    "ApplicationError",
    "ChildCounts",
    "ChildInfo",
    "ChildLike",
    "ChildSpec",
    "ChildType",
    "DynamicSupervisor",
    "ForcedShutdownError",
    "Restart",
    "Shutdown",
    "StartResult",
    "Strategy",
    "SupRef",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "TaskSupervisor",
    "load_children",
    "run_application",
    "serve",
    "worker",
}


def test_public_names() -> None:
    assert {name for name in vars(supervisors) if not name.startswith("_")} == PUBLIC


def test_public_classes_and_functions_say_where_they_are_exported() -> None:
    for name in PUBLIC:
        value = getattr(supervisors, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "beamlet.supervisors", name


def test_every_public_name_and_method_is_documented() -> None:
    for name in PUBLIC:
        value = getattr(supervisors, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        assert inspect.getdoc(value), name
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if attr.startswith("_"):
                    continue
                function = getattr(member, "__func__", member)
                if inspect.isfunction(function):
                    assert inspect.getdoc(function), f"{name}.{attr}"


def test_binding_signatures() -> None:
    assert list(inspect.signature(supervisors.ChildSpec).parameters) == [
        "id",
        "start",
        "args",
        "restart",
        "shutdown",
        "type",
    ]
    dynamic = inspect.signature(supervisors.DynamicSupervisor.start_link).parameters
    assert list(dynamic)[:4] == ["max_children", "max_restarts", "max_seconds", "name"]
