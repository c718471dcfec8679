"""beamlet.actors.lowlevel: the one door for libraries built on beamlet.

As ``trio.lowlevel`` is for libraries built on Trio, this module holds what a
library on top of ``beamlet.actors`` needs beyond the public API, and nothing
else: ``beamlet.supervisors``, ``beamlet.cluster`` and ``beamlet.apps`` use it
and no private module of ``beamlet.actors``. Applications should not need it.
See docs/lowlevel.md ("Building a library on beamlet").

- The current process and node: ``current_process``, ``current_process_or_none``,
  ``current_node``, ``current_node_or_none``, and the ``Process`` and ``Node``
  records (their docstrings list what is supported).
- Exit hooks: ``add_exit_hook``, ``remove_exit_hook``, ``ExitHook``.
- Node-local state owned by a process: ``NodeVar``.
- Reply aliases: ``alias``, ``unalias``, ``send_reply``, ``Reply``; tasks for
  processes started another way: ``adopt_task``.
- The GenServer protocol's envelopes, for codecs: ``Call``, ``Cast``, ``StopRequest``.
- The router interface: ``Router``, ``LocalRouter``, ``install_router``.
- Bad input to long-lived processes: ``BadInputLog`` (rate-limited reports)
  and ``short_repr`` (a ``repr`` that is short and never raises).
- Shared checks: ``check_async``, ``check_number``, ``check_timeout``,
  ``is_clean_exit``; ``describe_reason``, to say in an error message how a
  process ended; ``raise_single``, to raise a lone failure out of a
  nursery's exception group as itself at a public boundary; and ``fixup_module_metadata`` for packages' ``__init__``.
- Wire types, for packages below the codec (``beamlet.cluster``): ``register_wire_type``
  declares how a class crosses between nodes, ``on_wire_type`` is how the codec
  learns of them, ``wire_types`` lists them, ``WireType`` is one.
- Defaults of node options that other packages pass on: ``DEFAULT_MAILBOX_WARNING``.
"""

from ._bad_input import BadInputLog as BadInputLog, short_repr as short_repr
from ._context import (
    current_node as current_node,
    current_node_or_none as current_node_or_none,
    current_process as current_process,
    current_process_or_none as current_process_or_none,
)
from ._errors import describe_reason as describe_reason
from ._gen_server import Call as Call, Cast as Cast, StopRequest as StopRequest
from ._hooks import (
    ExitHook as ExitHook,
    add_exit_hook as add_exit_hook,
    alias as alias,
    remove_exit_hook as remove_exit_hook,
    send_reply as send_reply,
    unalias as unalias,
)
from ._mailbox_watch import DEFAULT_MAILBOX_WARNING as DEFAULT_MAILBOX_WARNING
from ._node import Node as Node, check_async as check_async
from ._nodevar import NodeVar as NodeVar
from ._process import Process as Process, Reply as Reply
from ._router import LocalRouter as LocalRouter, Router as Router, install_router as install_router
from ._tasks import adopt_task as adopt_task
from ._util import (
    check_number as check_number,
    check_timeout as check_timeout,
    fixup_module_metadata as fixup_module_metadata,
    is_clean_exit as is_clean_exit,
    raise_single as raise_single,
)
from ._wire_types import (
    WireType as WireType,
    on_wire_type as on_wire_type,
    register_wire_type as register_wire_type,
    wire_types as wire_types,
)

fixup_module_metadata(__name__, globals(), package="beamlet.actors")
