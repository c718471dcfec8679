"""First steps: spawn a process, send it a message, receive the answer."""

from beamlet.actors import receive, run, self_pid, send, spawn


async def greeter():
    while True:
        match await receive():
            case ("greet", sender, name):
                send(sender, f"hello, {name}")
            case "stop":
                return


async def main():
    pid = spawn(greeter)
    send(pid, ("greet", self_pid(), "Joe"))
    answer = await receive()
    send(pid, "stop")
    return answer


assert run(main) == "hello, Joe"
