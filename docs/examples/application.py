"""A supervision tree run as a service: stop it with Ctrl-C or SIGTERM (docs/supervision.md)."""

import sys

from beamlet.actors import GenServer, trap_exits
from beamlet.supervisors import run_application


class Store(GenServer):
    async def init(self, label):
        trap_exits(True)  # terminate() runs on shutdown
        self.label = label

    async def terminate(self, reason):
        print(f"{self.label}: saved, bye ({reason})", flush=True)


children = [
    Store.child_spec("users", id="users", name="users"),
    Store.child_spec("orders", id="orders", name="orders"),
]


if __name__ == "__main__":
    status = run_application(children, on_ready=lambda pid: print("ready", flush=True))
    sys.exit(status)
