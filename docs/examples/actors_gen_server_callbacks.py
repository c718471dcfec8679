"""GenServer callbacks and every shape their return values take."""

from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    Down,
    GenServer,
    NoReply,
    Stop,
    call,
    cast,
    monitor,
    receive,
    reply,
    run,
    send,
    spawn,
)


class Session(GenServer):
    async def init(self, user, idle_timeout):
        self.user = user
        self.idle_timeout = idle_timeout
        self.events = []
        # Start now; load the rest before the first message is handled.
        return NoReply(continue_="load")

    async def handle_continue(self, arg):
        self.events.append(f"continue {arg}")
        return NoReply(timeout=self.idle_timeout)  # and stop when idle

    async def handle_call(self, request, caller):
        match request:
            case "events":
                return list(self.events)  # a plain value is the reply
            case "slow":

                async def worker():
                    reply(caller, "slow answer")  # anyone may reply, later

                spawn(worker)
                return NoReply  # no reply now
            case "close":
                return Stop("normal", reply="bye")  # reply, then stop
            case "crash":
                raise ValueError("bad request")  # crashes the server
            case _:
                return NoReply  # and never reply: the caller times out

    async def handle_cast(self, request):
        self.events.append(f"cast {request}")
        return NoReply(timeout=self.idle_timeout)

    async def handle_info(self, msg):
        if msg == "timeout":  # no message for idle_timeout seconds
            return Stop(("shutdown", "idle"))
        self.events.append(f"info {msg}")
        return None  # carry on (no idle timeout any more)

    async def terminate(self, reason):
        print(f"session of {self.user} ends: {reason!r}")


async def main():
    pid = await Session.start("ada", 0.05)
    cast(pid, "hello")
    send(pid, "plain message")
    assert await call(pid, "events") == ["continue load", "cast hello", "info plain message"]
    assert await call(pid, "slow") == "slow answer"
    assert await call(pid, "close") == "bye"

    # An idle session stops itself.
    pid = await Session.start("bob", 0.01)
    ref = monitor(pid)
    assert await receive() == Down(ref, pid, ("shutdown", "idle"))

    # A callback that raises crashes the server; the caller gets the reason.
    pid = await Session.start("eve", None)
    try:
        await call(pid, "crash")
    except CallExitError as exc:
        assert isinstance(exc.reason, ValueError)

    # A call that gets no reply in time raises CallTimeoutError; a call to a
    # server that does not exist raises CallExitError("noproc").
    pid = await Session.start("joe", None)
    try:
        await call(pid, "forget it", timeout=0.01)
    except CallTimeoutError:
        pass
    try:
        await call("no-such-server", "events")
    except CallExitError as exc:
        assert exc.reason == "noproc"


run(main)
