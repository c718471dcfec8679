"""The cache's dump file: a format of its own over the codec, and atomic writes.

A dump is::

    MAGIC (b"BEAMLET-CACHE", a NUL, a version byte)
    frames, each a 4-byte big-endian length and one value encoded by the
        codec (``beamlet.cluster.encode``; msgpack, never pickle):
        the header {"cache": name, "wall_time": seconds since the epoch,
                    "count": number of entries}
        then one (key, value, ttl_left) per entry, least recently used
        first; ttl_left in seconds at wall_time, None for "never"
    the SHA-256 of all the bytes before it (32 bytes)

TTLs are kept as time left at a wall-clock instant (``time.time()``), not as
Trio times: Trio's clock starts anew with each run (and is virtual under
``MockClock``), so its times mean nothing to the next process. On load, the
wall time gone by since the dump (never less than 0, in case the clock went
back) is taken from each TTL, and entries with nothing left are skipped.

The digest makes a truncated or corrupted file a clear error before anything
is decoded; decoding checks every frame, so a file that is not a dump at all
is refused too. Writes go to a temporary file in the same directory, which
is flushed, fsynced and renamed over the target, and the directory fsynced:
the target is the old file or the new one, never a part.

``encode_dump`` and ``decode_dump`` are pure (bytes in, bytes or entries
out); ``write_atomically`` and ``read_file`` do the I/O, in a thread.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from beamlet.actors.lowlevel import short_repr
from beamlet.cluster import DecodeError, decode, encode

__all__ = ["MAGIC", "decode_dump", "encode_dump", "read_file", "wall_time", "write_atomically"]

MAGIC = b"BEAMLET-CACHE\x00\x01"
_LENGTH = struct.Struct(">I")
_DIGEST = 32


class DumpFormatError(ValueError):
    """The bytes are not a whole, intact dump (``Cache.load`` turns it into ``CacheFileError``)."""


def encode_dump(name: str, entries: Iterable[tuple[Any, Any, float]], wall_time: float) -> bytes:
    """The bytes of a dump of ``entries`` (``CacheStore.export``'s triples).

    Raises:
        TypeError / ValueError: a key or value the codec cannot encode; the
            message names the key.
    """
    frames = []
    count = 0
    for key, value, ttl_left in entries:
        try:
            frame = encode((key, value, None if ttl_left == math.inf else ttl_left))
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"cannot dump cache {name!r}: the entry under key {short_repr(key)} "
                f"cannot be encoded: {exc}"
            ) from None
        frames.append(_LENGTH.pack(len(frame)))
        frames.append(frame)
        count += 1
    header = encode({"cache": name, "wall_time": float(wall_time), "count": count})
    body = b"".join([MAGIC, _LENGTH.pack(len(header)), header, *frames])
    return body + hashlib.sha256(body).digest()


def decode_dump(data: bytes, wall_now: float) -> tuple[str, list[tuple[Any, Any, float]]]:
    """The cache name and the entries of a dump, each ``(key, value, ttl_left_now)``.

    ``ttl_left_now`` is the time left at ``wall_now`` (``math.inf``:
    never); it may be <= 0 for an entry that has expired since the dump.

    Raises:
        DumpFormatError: the bytes are not a whole, intact dump.
    """
    if len(data) < len(MAGIC) + _DIGEST or not data.startswith(MAGIC[:-1]):
        raise DumpFormatError("it is not a beamlet cache dump (no header)")
    if data[len(MAGIC) - 1] != MAGIC[-1]:
        raise DumpFormatError(f"its format version is {data[len(MAGIC) - 1]}, not {MAGIC[-1]}")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise DumpFormatError("it is truncated or corrupted (its checksum does not match)")
    frames = _frames(body, len(MAGIC))
    try:
        header = decode(next(frames))
    except StopIteration:
        raise DumpFormatError("it has no header frame") from None
    except DecodeError as exc:
        raise DumpFormatError(f"its header cannot be decoded: {exc}") from None
    if not (
        isinstance(header, dict)
        and isinstance(header.get("cache"), str)
        and isinstance(header.get("wall_time"), float)
        and math.isfinite(header["wall_time"])
        and isinstance(header.get("count"), int)
    ):
        raise DumpFormatError(f"its header is malformed: {short_repr(header)}")
    elapsed = max(0.0, wall_now - header["wall_time"])
    entries = []
    for index, frame in enumerate(frames):
        try:
            row = decode(frame)
        except DecodeError as exc:
            raise DumpFormatError(f"entry {index} cannot be decoded: {exc}") from None
        if not (isinstance(row, tuple) and len(row) == 3):
            raise DumpFormatError(f"entry {index} is not a (key, value, ttl) triple")
        key, value, ttl = row
        try:
            hash(key)
        except TypeError:
            raise DumpFormatError(f"entry {index} has an unhashable key") from None
        if ttl is None:
            left = math.inf
        elif type(ttl) in (int, float) and ttl == ttl:
            left = ttl - elapsed
        else:
            raise DumpFormatError(f"entry {index} has a TTL that is not a number: {ttl!r}")
        entries.append((key, value, left))
    if len(entries) != header["count"]:
        raise DumpFormatError(f"it holds {len(entries)} entries, not {header['count']}")
    return header["cache"], entries


def _frames(body: bytes, offset: int) -> Any:
    end = len(body)
    while offset < end:
        if offset + _LENGTH.size > end:
            raise DumpFormatError("a frame's length is cut short")
        (length,) = _LENGTH.unpack_from(body, offset)
        offset += _LENGTH.size
        if offset + length > end:
            raise DumpFormatError("a frame is cut short")
        yield body[offset : offset + length]
        offset += length


def wall_time() -> float:
    """Seconds since the epoch: the clock dumps are dated by (tests replace it)."""
    return time.time()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename (blocking)."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some systems cannot open a directory: the rename is done anyway
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def read_file(path: Path) -> bytes:
    """The bytes of ``path`` (blocking)."""
    return path.read_bytes()
