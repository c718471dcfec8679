"""beamlet.supervisors: supervision trees.

``Supervisor`` starts children in order and restarts them by strategy
(one_for_one, one_for_all, rest_for_one) within a restart intensity;
``DynamicSupervisor`` starts children on demand; ``TaskSupervisor`` runs tasks
under supervision; ``run_application``/``serve`` run a tree as a service that
shuts down cleanly on SIGTERM/SIGINT. See docs/supervision.md.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup_module_metadata

from ._application import (
    ApplicationError as ApplicationError,
    ForcedShutdownError as ForcedShutdownError,
    load_children as load_children,
    run_application as run_application,
    serve as serve,
)
from ._common import (
    ChildCounts as ChildCounts,
    ChildInfo as ChildInfo,
    StartResult as StartResult,
    SupervisorError as SupervisorError,
    SupRef as SupRef,
)
from ._dynamic import DynamicSupervisor as DynamicSupervisor
from ._plan import Strategy as Strategy
from ._spec import (
    ChildLike as ChildLike,
    ChildSpec as ChildSpec,
    ChildType as ChildType,
    Restart as Restart,
    Shutdown as Shutdown,
    worker as worker,
)
from ._supervisor import Supervisor as Supervisor, SupervisorSpec as SupervisorSpec
from ._task_supervisor import TaskSupervisor as TaskSupervisor

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
