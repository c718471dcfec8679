"""beamlet.supervisors: supervision trees.

``Supervisor`` starts children in order and restarts them by strategy
(one_for_one, one_for_all, rest_for_one) within a restart intensity;
``DynamicSupervisor`` starts children on demand; ``TaskSupervisor`` runs tasks
under supervision; ``run_application``/``serve`` run a tree as a service that
shuts down cleanly on SIGTERM/SIGINT. See docs/supervision.md.
"""

from beamlet.actors._util import fixup_module_metadata as _fixup_module_metadata

from ._application import ApplicationError as ApplicationError
from ._application import ForcedShutdownError as ForcedShutdownError
from ._application import load_children as load_children
from ._application import run_application as run_application
from ._application import serve as serve
from ._common import ChildCounts as ChildCounts
from ._common import ChildInfo as ChildInfo
from ._common import StartResult as StartResult
from ._common import SupervisorError as SupervisorError
from ._common import SupRef as SupRef
from ._dynamic import DynamicSupervisor as DynamicSupervisor
from ._plan import Strategy as Strategy
from ._spec import ChildLike as ChildLike
from ._spec import ChildSpec as ChildSpec
from ._spec import ChildType as ChildType
from ._spec import Restart as Restart
from ._spec import Shutdown as Shutdown
from ._spec import worker as worker
from ._supervisor import Supervisor as Supervisor
from ._supervisor import SupervisorSpec as SupervisorSpec
from ._task_supervisor import TaskSupervisor as TaskSupervisor

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
