"""beamlet.apps.pool: worker pools, CPU-bound work off the loop, and jobs with retries.

- ``Pool``: a poolboy-style pool of GenServer workers; ``checkout``,
  ``transaction`` and ``status`` (the pure bookkeeping is ``_state.PoolState``).
- ``run_cpu``: CPU-bound work in worker processes (trio-parallel), so that it
  cannot stall the node.

See docs/pools.md.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup_module_metadata

from ._cpu import run_cpu as run_cpu
from ._errors import (
    PoolFullError as PoolFullError,
    PoolTimeoutError as PoolTimeoutError,
    UnknownPoolError as UnknownPoolError,
    UnpicklableError as UnpicklableError,
)
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
