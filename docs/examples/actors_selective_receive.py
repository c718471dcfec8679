"""Selective receive: take the messages you want first; the others wait, in order."""

from beamlet.actors import ReceiveTimeoutError, receive, run, self_pid, send


async def main():
    me = self_pid()
    for msg in [("low", 1), ("high", 2), ("low", 3), ("high", 4)]:
        send(me, msg)

    # The urgent ones first: the oldest message that matches is taken.
    urgent = [await receive(lambda m: m[0] == "high") for _ in range(2)]
    # The others are still there, in the order they arrived.
    rest = [await receive() for _ in range(2)]

    # timeout=0 only looks at the mailbox; a timeout raises ReceiveTimeoutError.
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        empty = True
    return urgent, rest, empty


assert run(main) == ([("high", 2), ("high", 4)], [("low", 1), ("low", 3)], True)
