"""The README example."""

from beamlet.actors import GenServer, call, cast, run


class Counter(GenServer):
    async def init(self, start):
        self.n = start

    async def handle_call(self, request, caller):
        return self.n

    async def handle_cast(self, request):
        self.n += request


async def main():
    await Counter.start_link(0, name="counter")
    cast("counter", 2)
    return await call("counter", "get")


assert run(main) == 2
print("counter:", run(main))
