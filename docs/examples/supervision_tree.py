"""A supervision tree that heals itself (see docs/supervision.md)."""

from beamlet.actors import Down, GenServer, call, cast, monitor, receive, run, trap_exits, whereis
from beamlet.supervisors import Supervisor


class Counter(GenServer):
    """Counts what it is sent. A bad amount crashes it."""

    async def init(self, start):
        self.n = start

    async def handle_call(self, request, caller):
        return self.n

    async def handle_cast(self, amount):
        self.n += int(amount)  # int("lots") raises ValueError: the counter crashes


class Part(GenServer):
    """One of two parts that only work together; says when it stops."""

    async def init(self, label):
        trap_exits(True)  # so that terminate() runs when the supervisor stops it
        self.label = label
        print(f"  {label} started")

    async def terminate(self, reason):
        print(f"  {self.label} stopped ({reason})")


async def crash(name, how):
    """Make the process registered as ``name`` crash, and wait until it is gone."""
    ref = monitor(name)
    how()
    down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    print(f"{name} crashed: {down.reason!r}")


async def main():
    print("starting the tree")
    engine = Supervisor.child_spec(
        [
            Part.child_spec("pump", id="pump", name="pump"),
            Part.child_spec("valve", id="valve", name="valve"),
        ],
        id="engine",
        name="engine",
        strategy="one_for_all",  # the parts restart together
    )
    await Supervisor.start_link([Counter.child_spec(10, name="counter"), engine], name="tree")

    cast("counter", 5)
    print("count:", await call("counter", "get"))

    before = whereis("counter")
    await crash("counter", lambda: cast("counter", "lots"))
    # Any request to the supervisor made after the crash is served after the restart.
    children = await Supervisor.which_children("tree")
    print("counter restarted:", children[0].pid != before, "- count:", await call("counter", "get"))

    print("crashing the valve: one_for_all restarts both parts")
    await crash("valve", lambda: cast("valve", "oops"))
    await Supervisor.which_children("engine")  # the engine has restarted its parts by now

    print("stopping the tree: children stop in reverse start order")
    await Supervisor.stop("tree")
    print("done")


if __name__ == "__main__":
    run(main)
