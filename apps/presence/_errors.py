"""Errors of the presence tracker.

Whose fault: ``AlreadyTrackedError`` and ``NoPresenceError`` answer a local
caller's request; ``MalformedMessageError`` means a peer replica sent
something the protocol does not allow (the shard logs it, drops the message
and keeps going; nothing of it is applied); ``NotContiguousError`` is an
internal answer of ``merge_deltas``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyTrackedError",
    "MalformedMessageError",
    "NoPresenceError",
    "NotContiguousError",
]


class AlreadyTrackedError(ValueError):
    """This process already has a presence under this topic and key.

    A process may track many ``(topic, key)`` pairs, but each one once; use
    ``update`` to change the meta of an existing presence.

    Attributes:
        pid: the tracked process.
        topic: the topic.
        key: the key.
        reason: the Erlang-style reason, ``("already_tracked", pid, topic, key)``.
    """

    def __init__(self, pid: Any, topic: str, key: Any) -> None:
        super().__init__(
            f"{pid!r} is already tracked under topic {topic!r} with key {key!r}; "
            "use update() to change its meta"
        )
        self.pid = pid
        self.topic = topic
        self.key = key
        self.reason = ("already_tracked", pid, topic, key)


class NoPresenceError(LookupError):
    """``update`` of a presence that is not tracked (on this node).

    Attributes:
        pid: the process.
        topic: the topic.
        key: the key.
        reason: the Erlang-style reason, ``"nopresence"``.
    """

    def __init__(self, pid: Any, topic: str, key: Any) -> None:
        super().__init__(
            f"{pid!r} has no presence under topic {topic!r} with key {key!r} to update; "
            "track it first"
        )
        self.pid = pid
        self.topic = topic
        self.key = key
        self.reason = "nopresence"


class MalformedMessageError(ValueError):
    """A presence message received from another replica breaks the protocol.

    Raised before anything of the message is applied: the state is unchanged.
    """


class NotContiguousError(ValueError):
    """Two deltas do not cover contiguous ranges of some replica's dots.

    Their union would have a gap, so it would not be a delta of anything.
    """
