"""A service for `beamlet run getting_started_greeter:children`: one GenServer, named "greeter"."""

from beamlet.actors import GenServer
from beamlet.cluster import node_name


class Greeter(GenServer):
    async def init(self) -> None:
        self.greeted = 0

    async def handle_call(self, request, caller):
        self.greeted += 1
        return f"hello {request}, from {node_name()} (greeting #{self.greeted})"


children = [Greeter.child_spec(name="greeter")]
