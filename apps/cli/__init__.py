"""beamlet.apps.cli: the ``beamlet`` command.

- ``beamlet demo``: a local cluster of three nodes (separate OS processes)
  running a chat workload on PubSub, Presence, a cache and a worker pool, one
  node killed midway and restarted; a live view, then a summary.
- ``beamlet run MODULE:CHILDREN --name NAME@HOST``: a supervision tree as a
  service on a distributed node (the application runner).
- ``beamlet ping NODE`` and ``beamlet top NODE``: a live node seen from a
  hidden node, through its read-only introspection service
  (``beamlet.cluster.introspect``).

``main(argv)`` is the entry point of the ``beamlet`` script
(``[project.scripts]``); ``python -m beamlet.apps.cli`` runs it too.
"""

from beamlet.actors.lowlevel import fixup_module_metadata as _fixup

from ._errors import CliError as CliError
from ._main import main as main

_fixup(__name__, globals())
