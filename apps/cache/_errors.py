"""The cache's errors: each says what, which and why."""

from __future__ import annotations

from typing import Any

from beamlet.actors.lowlevel import describe_reason, short_repr

__all__ = [
    "CacheClosedError",
    "CacheFileError",
    "FetchAbortedError",
    "UnknownCacheError",
]


class UnknownCacheError(LookupError):
    """No cache of that name runs on this node (``lookup``, ``cached`` by name).

    Attributes:
        name: the name asked for.
    """

    def __init__(self, name: Any) -> None:
        super().__init__(
            f"no cache named {short_repr(name)} is running on this node "
            "(start it with Cache.start_link or Cache.child_spec)"
        )
        self.name = name


class CacheClosedError(RuntimeError):
    """The ``Cache`` object was used after its owner process exited.

    Its entries went with the owner, as an ETS table goes with its process.
    If a supervisor restarted the cache, ``lookup(name)`` gives the new one.

    Attributes:
        name: the cache's name.
        reason: the exit reason of its owner process.
    """

    def __init__(self, name: str, reason: Any) -> None:
        super().__init__(
            f"cache {name!r} is closed: its owner process {describe_reason(reason)}; "
            f"lookup({name!r}) again if it was restarted"
        )
        self.name = name
        self.reason = reason


class FetchAbortedError(RuntimeError):
    """A ``fetch`` computation was stopped before it gave a result or an error.

    It happens when the cache's owner process exits while the computation
    runs (the computation's process is stopped with it), or when something
    kills the computation's process. Every caller waiting for that key gets
    this error; nothing is cached.

    Attributes:
        name: the cache's name.
        key: the key being computed.
    """

    def __init__(self, name: str, key: Any, why: str) -> None:
        super().__init__(f"cache {name!r} could not compute {short_repr(key)}: {why}")
        self.name = name
        self.key = key


class CacheFileError(ValueError):
    """``Cache.load`` found a file that is not a whole, intact cache dump.

    The cache is left as it was.

    Attributes:
        path: the file.
    """

    def __init__(self, path: Any, why: str) -> None:
        super().__init__(f"cannot load cache file {str(path)!r}: {why}; nothing was loaded")
        self.path = path
