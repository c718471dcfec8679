"""beamlet.actors: the local runtime.

Processes with mailboxes and selective receive, registered names, links,
monitors, exit signals, timers, GenServer and tasks, on Trio.
"""

from ._api import (
    cancel_timer as cancel_timer,
)
from ._api import (
    demonitor as demonitor,
)
from ._api import (
    link as link,
)
from ._api import (
    monitor as monitor,
)
from ._api import (
    process_info as process_info,
)
from ._api import (
    processes as processes,
)
from ._api import (
    receive as receive,
)
from ._api import (
    register as register,
)
from ._api import (
    registered as registered,
)
from ._api import (
    self_pid as self_pid,
)
from ._api import (
    send as send,
)
from ._api import (
    send_after as send_after,
)
from ._api import (
    send_exit as send_exit,
)
from ._api import (
    spawn as spawn,
)
from ._api import (
    spawn_link as spawn_link,
)
from ._api import (
    spawn_monitor as spawn_monitor,
)
from ._api import (
    trap_exits as trap_exits,
)
from ._api import (
    unlink as unlink,
)
from ._api import (
    unregister as unregister,
)
from ._api import (
    whereis as whereis,
)
from ._errors import (
    BusyError as BusyError,
)
from ._errors import (
    CallExitError as CallExitError,
)
from ._errors import (
    CallTimeoutError as CallTimeoutError,
)
from ._errors import (
    Exit as Exit,
)
from ._errors import (
    NameTakenError as NameTakenError,
)
from ._errors import (
    NoProcError as NoProcError,
)
from ._errors import (
    NoSuchNameError as NoSuchNameError,
)
from ._errors import (
    NotInProcessError as NotInProcessError,
)
from ._errors import (
    ReceiveTimeoutError as ReceiveTimeoutError,
)
from ._errors import (
    StartError as StartError,
)
from ._gen_server import (
    From as From,
)
from ._gen_server import (
    GenServer as GenServer,
)
from ._gen_server import (
    Ignore as Ignore,
)
from ._gen_server import (
    NoReply as NoReply,
)
from ._gen_server import (
    Stop as Stop,
)
from ._gen_server import (
    call as call,
)
from ._gen_server import (
    cast as cast,
)
from ._gen_server import (
    reply as reply,
)
from ._gen_server import (
    stop as stop,
)
from ._ids import Pid as Pid
from ._ids import Ref as Ref
from ._messages import Down as Down
from ._messages import ExitSignal as ExitSignal
from ._messages import ProcessInfo as ProcessInfo
from ._node import (
    LOCAL_NODE_NAME as LOCAL_NODE_NAME,
)
from ._node import (
    Node as Node,
)
from ._node import (
    open_node as open_node,
)
from ._node import (
    run as run,
)
from ._router import LocalRouter as LocalRouter
from ._router import Router as Router
from ._tasks import (
    AsyncStream as AsyncStream,
)
from ._tasks import (
    Task as Task,
)
from ._tasks import (
    TaskExitError as TaskExitError,
)
from ._tasks import (
    TaskTimeoutError as TaskTimeoutError,
)
from ._tasks import (
    async_stream as async_stream,
)
from ._tasks import (
    async_task as async_task,
)
from ._util import fixup_module_metadata as _fixup_module_metadata

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
