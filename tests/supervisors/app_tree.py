"""A supervision tree served by ``run_application``; the application runner tests run it.

Usage: ``python app_tree.py [--slow] [--target]``. It prints ``ready`` once the
tree is up, one ``terminate <label> <reason>`` line per GenServer as it stops,
and ``exit <status>`` last. With ``--slow``, the last child takes an hour to
terminate (so only a second signal ends the run). With ``--target``, the tree
is loaded from ``"app_tree:children"``, as ``beamlet run`` would.
"""

from __future__ import annotations

import sys
from typing import Any

import trio
from beamlet.actors import GenServer, trap_exits
from beamlet.supervisors import ChildSpec, Supervisor, run_application


class Noisy(GenServer):
    async def init(self, label: str, slow: bool = False) -> None:
        trap_exits(True)
        self.label, self.slow = label, slow

    async def terminate(self, reason: Any) -> None:
        print(f"terminate {self.label} {reason}", flush=True)
        if self.slow:
            await trio.sleep(3600)


def children(slow: bool = False) -> list[Any]:
    return [
        Noisy.child_spec("a", id="a"),
        Supervisor.child_spec(
            [Noisy.child_spec("b1", id="b1"), Noisy.child_spec("b2", id="b2")], id="b"
        ),
        ChildSpec.coerce(Noisy.child_spec("c", slow, id="c", shutdown="infinity")),
    ]


def main() -> int:
    def ready(pid: object) -> None:
        print("ready", flush=True)

    target: Any = "app_tree:children" if "--target" in sys.argv else children("--slow" in sys.argv)
    status = run_application(target, name="root", on_ready=ready, log_level=None)
    print(f"exit {status}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
