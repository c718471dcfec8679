from beamlet.actors import receive, run, self_pid, send, spawn


async def echo():
    sender, text = await receive()
    send(sender, text.upper())


async def main():
    pid = spawn(echo)
    send(pid, (self_pid(), "hello"))
    return await receive()


print(run(main))  # HELLO
