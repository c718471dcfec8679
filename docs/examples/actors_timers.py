"""Timers: send a message later, cancel it, or give up waiting."""

from beamlet.actors import (
    ReceiveTimeoutError,
    cancel_timer,
    receive,
    run,
    self_pid,
    send_after,
)


async def main():
    me = self_pid()
    send_after(0.01, me, "tick")
    assert await receive() == "tick"

    ref = send_after(60, me, "never")
    left = cancel_timer(ref)  # the seconds that were left
    assert 59 < left <= 60
    assert cancel_timer(ref) is None  # already cancelled (or fired)

    try:
        await receive(lambda m: m == "never", timeout=0.01)
    except ReceiveTimeoutError:
        return "gave up"


assert run(main) == "gave up"
