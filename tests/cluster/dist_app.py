"""A supervision tree served by ``run_application`` in a distributed node.

Usage: ``python dist_app.py NAME COOKIE``. It prints ``ready ADDRESS`` once the
tree is up (ADDRESS: where the node listens), ``terminate <label> <reason>``
as each GenServer stops, and ``exit <status>`` last.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

from beamlet.actors import GenServer, trap_exits
from beamlet.cluster import listen_address, open_node
from beamlet.supervisors import run_application


class Greeter(GenServer):
    async def init(self, label: str) -> None:
        trap_exits(True)
        self.label = label

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return f"hello {request} from {self.label}"

    async def terminate(self, reason: Any) -> None:
        print(f"terminate {self.label} {reason}", flush=True)


def main() -> int:
    name, cookie = sys.argv[1:3]

    def ready(pid: object) -> None:
        print(f"ready {listen_address()}", flush=True)

    status = run_application(
        [
            Greeter.child_spec("first", id="first", name="greeter"),
            Greeter.child_spec("second", id="second"),
        ],
        node=partial(open_node, name, cookie=cookie, watchdog_threshold=None),
        on_ready=ready,
        log_level=None,
    )
    print(f"exit {status}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
