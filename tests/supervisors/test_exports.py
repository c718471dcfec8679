"""The public surface of beamlet.supervisors."""

from __future__ import annotations

import inspect

import beamlet.supervisors as supervisors
from export_checks import check_documented, check_homes, check_public_names

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
    check_public_names(supervisors, PUBLIC)


def test_public_classes_and_functions_say_where_they_are_exported() -> None:
    check_homes(supervisors, PUBLIC)


def test_every_public_name_and_method_is_documented() -> None:
    check_documented(supervisors, PUBLIC)


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
