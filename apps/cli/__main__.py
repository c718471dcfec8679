"""``python -m beamlet.apps.cli``: the ``beamlet`` command."""

import sys

from ._main import main

sys.exit(main())
