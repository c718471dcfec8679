"""beamlet.apps.pool: worker pools, CPU-bound work off the loop, and jobs with retries.

- ``Pool``: a poolboy-style pool of GenServer workers: ``checkout``,
  ``transaction``, ``status`` (the bookkeeping is the pure ``_state.PoolState``).
- ``run_cpu``: CPU-bound work in worker processes (trio-parallel), so that it
  cannot stall the node.
- ``Jobs`` and ``enqueue``: fire-and-forget jobs on a ``TaskSupervisor``, with
  retries (exponential backoff and jitter) and bounded concurrency per queue;
  in memory only.

See docs/pools.md.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup_module_metadata

from ._cpu import run_cpu as run_cpu
from ._errors import (
    JobQueueFullError as JobQueueFullError,
    PoolFullError as PoolFullError,
    PoolTimeoutError as PoolTimeoutError,
    UnknownJobsError as UnknownJobsError,
    UnknownPoolError as UnknownPoolError,
    UnknownQueueError as UnknownQueueError,
    UnpicklableError as UnpicklableError,
)
from ._jobs import JobFailure as JobFailure, Jobs as Jobs, JobsRef as JobsRef, enqueue as enqueue
from ._jobs_state import QueueStats as QueueStats
from ._pool import (
    Pool as Pool,
    PoolRef as PoolRef,
    checkout as checkout,
    status as status,
    transaction as transaction,
)
from ._state import PoolStatus as PoolStatus, Strategy as Strategy

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
