"""beamlet.actors: the local runtime.

Processes with mailboxes and selective receive, registered names, links,
monitors, exit signals, timers, GenServer, tasks and Registry, on Trio.
"""

from ._api import (
    cancel_timer as cancel_timer,
    demonitor as demonitor,
    link as link,
    monitor as monitor,
    process_info as process_info,
    processes as processes,
    receive as receive,
    register as register,
    registered as registered,
    self_pid as self_pid,
    send as send,
    send_after as send_after,
    send_exit as send_exit,
    set_max_mailbox as set_max_mailbox,
    spawn as spawn,
    spawn_link as spawn_link,
    spawn_monitor as spawn_monitor,
    trap_exits as trap_exits,
    unlink as unlink,
    unregister as unregister,
    whereis as whereis,
)
from ._errors import (
    AlreadyRegisteredError as AlreadyRegisteredError,
    BusyError as BusyError,
    CallExitError as CallExitError,
    CallTimeoutError as CallTimeoutError,
    Exit as Exit,
    NameTakenError as NameTakenError,
    NoProcError as NoProcError,
    NoSuchNameError as NoSuchNameError,
    NotInProcessError as NotInProcessError,
    ReceiveTimeoutError as ReceiveTimeoutError,
    StartError as StartError,
    UnknownRegistryError as UnknownRegistryError,
)
from ._gen_server import (
    From as From,
    GenServer as GenServer,
    Ignore as Ignore,
    IgnoreType as IgnoreType,
    NoReply as NoReply,
    Stop as Stop,
    call as call,
    cast as cast,
    reply as reply,
    stop as stop,
)
from ._ids import Pid as Pid, Ref as Ref
from ._messages import Down as Down, ExitSignal as ExitSignal, ProcessInfo as ProcessInfo
from ._node import (
    LOCAL_NODE_NAME as LOCAL_NODE_NAME,
    Node as Node,
    open_node as open_node,
    run as run,
)
from ._registry import Registry as Registry, Via as Via
from ._registry_state import Registered as Registered, Unregistered as Unregistered
from ._router import LocalRouter as LocalRouter, Router as Router
from ._tasks import (
    AsyncStream as AsyncStream,
    Task as Task,
    TaskExitError as TaskExitError,
    TaskTimeoutError as TaskTimeoutError,
    async_stream as async_stream,
    async_task as async_task,
)
from ._util import fixup_module_metadata as _fixup_module_metadata

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata

from . import lowlevel as lowlevel  # noqa: E402  (after the fixup: it keeps the names above)
