"""GenServer: a stack, the classic first server."""

from beamlet.actors import GenServer, call, cast, run, stop


class Stack(GenServer):
    async def init(self, elements):
        self.elements = list(elements)

    async def handle_call(self, request, caller):
        match request:
            case "pop":
                return self.elements.pop(0)
            case "size":
                return len(self.elements)

    async def handle_cast(self, request):
        match request:
            case ("push", element):
                self.elements.insert(0, element)


async def main():
    await Stack.start_link(["hello"], name="stack")
    assert await call("stack", "pop") == "hello"
    cast("stack", ("push", "world"))
    assert await call("stack", "size") == 1
    assert await call("stack", "pop") == "world"
    await stop("stack")


run(main)
