"""Batches of broadcasts between shards: the wire format and its bounds.

Pure: no trio, no processes. The cluster adapter carries broadcasts to a
node in *batches*: one wire message (a ``bytes`` value) for several
broadcasts, decoded on arrival in one ``decode`` call rather than one frame
decode per broadcast.

A batch is the msgpack encoding (``beamlet.cluster``'s codec) of a flat list
``[head, message, head, message, ...]``, where ``head`` is the topic (a
``str``: the default dispatcher, no ``from_pid``) or ``[topic, dispatcher,
from_pid]``. Each broadcast is encoded once, by its publisher
(``encode_entry``), as the two items it adds to that list; ``pack_batch``
puts a list header in front of the entries' bytes: no value is encoded twice,
however many nodes get the batch. ``unpack_batch`` decodes a batch; if the
batch as a whole does not decode (an entry holding a class this node does
not know, say), it decodes each entry alone, so that one bad entry costs only
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]
from beamlet.actors import Pid
from beamlet.cluster import DecodeError, decode, encode

from ._dispatch import DEFAULT_DISPATCHER

__all__ = [
    "ACCEPT_BATCH_BYTES",
    "ACCEPT_BATCH_ENTRIES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_BATCH_HEADS",
    "MIN_BATCH_BEFORE_HEADS",
    "Batch",
    "check_batch",
    "encode_entry",
    "heads",
    "pack_batch",
    "unpack_batch",
]

#: A batch holds at most this many broadcasts ...
MAX_BATCH_ENTRIES = 256
#: ... at most this many bytes of entries (a broadcast larger than that
#: travels alone; below ``LARGE_FRAME``, 64 KiB, a batch is decoded in one
#: go, in a bounded time) ...
MAX_BATCH_BYTES = 32 * 1024
#: ... and, once it holds ``MIN_BATCH_BEFORE_HEADS`` entries, no more than
#: this many bytes that could start an array or a map. The codec checks the
#: nesting of a value exactly, by a walk over the decoded value that costs
#: about 0.4 us an entry, when its bytes hold more such heads than its
#: ``max_depth`` (100 by default); a batch of small tuples (one head each)
#: stops at 96 entries, under it. Non-ASCII text and binary data hold many
#: such bytes (UTF-8 continuation bytes 0x80-0x9F: Cyrillic about 9 an
#: entry), so a batch of them would stop at a few entries and pay a wire
#: message for each few: a batch that passes this bound before it holds
#: ``MIN_BATCH_BEFORE_HEADS`` entries pays the walk, and goes on to its other
#: bounds (see docs/benchmarks.md). Only a matter of cost.
MAX_BATCH_HEADS = 96
#: See ``MAX_BATCH_HEADS``.
MIN_BATCH_BEFORE_HEADS = 32

#: A batch that arrives is refused whole, before it is decoded, when it holds
#: more than this many entries ...
ACCEPT_BATCH_ENTRIES = 2 * MAX_BATCH_ENTRIES
#: ... or more than one entry and more than this many bytes: twice what an
#: honest node sends (a broadcast larger than a batch travels alone, as a batch
#: of one, and is accepted up to ``max_frame_size``), so that what one batch
#: costs the node that fans it out stays bounded, whatever a peer sends.
ACCEPT_BATCH_BYTES = 2 * MAX_BATCH_BYTES

#: 1 for the bytes that could start a msgpack array or map (as the codec counts them).
_HEADS = bytes(1 if 0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF else 0 for b in range(256))

#: ``encode([a, b])`` starts with this byte (a msgpack array of 2), then ``a``, then ``b``.
_PAIR = b"\x92"
_header = msgpack.Packer().pack_array_header


def encode_entry(topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> bytes:
    """A broadcast as the bytes of its two items in a batch (``head``, ``message``).

    The message is checked as it will travel: one level down in the batch's
    list, so that a batch of checked entries always decodes.

    Raises:
        TypeError: ``message`` holds a value the codec cannot encode.
        ValueError: ``message`` breaks a codec limit (size, depth, length).
    """
    if from_pid is None and dispatcher == DEFAULT_DISPATCHER:
        data = encode([topic, message])
    else:
        data = encode([[topic, dispatcher, from_pid], message])
    return data[1:]


def pack_batch(entries: Sequence[bytes]) -> bytes:
    """The batch of ``entries`` (each from ``encode_entry``), in order."""
    return _header(2 * len(entries)) + b"".join(entries)


def check_batch(blob: bytes) -> str | None:
    """Why a batch that arrived is refused before it is decoded, or None.

    Reads only the batch's list header: a batch of more than
    ``ACCEPT_BATCH_ENTRIES`` entries, or of more than one entry and more than
    ``ACCEPT_BATCH_BYTES`` bytes, is refused (no honest node sends one). A
    blob whose header is not a list's passes: ``unpack_batch`` refuses it.
    """
    n = len(blob)
    if n == 0:
        return None
    first = blob[0]
    if 0x90 <= first <= 0x9F:
        items = first & 0x0F
    elif first == 0xDC and n >= 3:
        items = int.from_bytes(blob[1:3], "big")
    elif first == 0xDD and n >= 5:
        items = int.from_bytes(blob[1:5], "big")
    else:
        return None
    entries = items // 2
    if entries > ACCEPT_BATCH_ENTRIES:
        return f"oversized ({entries} entries, over {ACCEPT_BATCH_ENTRIES})"
    if entries > 1 and n > ACCEPT_BATCH_BYTES:
        return f"oversized ({entries} entries in {n} bytes, over {ACCEPT_BATCH_BYTES})"
    return None


def heads(entry: bytes) -> int:
    """How many bytes of ``entry`` could start an array or a map (see ``MAX_BATCH_HEADS``)."""
    return len(entry) - entry.translate(_HEADS).count(0)


class Batch:
    """Entries waiting to travel together, with their bounds.

    Attributes:
        entries: the encoded entries, in the order broadcast.
        size: their total size in bytes.
        heads: their total ``heads``.
        max_entries, max_bytes, max_heads: the bounds (see the constants);
            ``max_heads`` stops only a batch still within it that holds at
            least ``MIN_BATCH_BEFORE_HEADS`` entries.
    """

    __slots__ = ("entries", "heads", "max_bytes", "max_entries", "max_heads", "size")

    def __init__(
        self,
        max_entries: int = MAX_BATCH_ENTRIES,
        max_bytes: int = MAX_BATCH_BYTES,
        max_heads: int = MAX_BATCH_HEADS,
    ) -> None:
        self.entries: list[bytes] = []
        self.size = 0
        self.heads = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_heads = max_heads

    def add(self, entry: bytes) -> bool:
        """Append ``entry`` if it fits with what the batch holds; whether it did.

        An entry that does not fit in an empty batch never will: send it alone.
        """
        size = self.size + len(entry)
        if size > self.max_bytes or len(self.entries) >= self.max_entries:
            return False
        n = self.heads + len(entry) - entry.translate(_HEADS).count(0)
        if (
            n > self.max_heads
            and self.heads <= self.max_heads
            and len(self.entries) >= MIN_BATCH_BEFORE_HEADS
        ):
            return False
        self.entries.append(entry)
        self.size = size
        self.heads = n
        return True

    def take(self) -> list[bytes]:
        """The entries, leaving the batch empty."""
        entries = self.entries
        self.entries = []
        self.size = 0
        self.heads = 0
        return entries

    def __len__(self) -> int:
        return len(self.entries)


def unpack_batch(blob: bytes) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Decode a batch into ``[head, message, ...]`` and what could not be decoded.

    Returns:
        The flat list of the entries that decoded (heads are not checked
        here), and a list of ``(what, why)`` for each part that did not
        (an entry's bytes, or the batch's, with the reason).
    """
    try:
        items = decode(blob)
    except DecodeError as exc:
        return _unpack_each(blob, str(exc))
    if type(items) is not list or len(items) % 2:
        return [], [(blob, "malformed batch (not a list of head, message pairs)")]
    return items, []


def _unpack_each(blob: bytes, why: str) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Decode each entry of a batch that does not decode as a whole."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(blob), 1))
    unpacker.feed(blob)
    try:
        n = unpacker.read_array_header()
    except Exception:
        return [], [(blob, f"malformed batch ({why})")]
    items: list[Any] = []
    bad: list[tuple[Any, str]] = []
    for _ in range(n // 2):
        start = unpacker.tell()
        try:
            unpacker.skip()
            unpacker.skip()
        except Exception:
            bad.append((blob[start:], "malformed batch entry (truncated)"))
            return items, bad
        part = blob[start : unpacker.tell()]
        try:
            entry = decode(_PAIR + part)
        except DecodeError as exc:
            bad.append((part, f"undecodable batch entry ({exc})"))
            continue
        if type(entry) is not list or len(entry) != 2:
            bad.append((part, "malformed batch entry"))
            continue
        items += entry
    if n % 2:
        bad.append((blob[unpacker.tell() :], "malformed batch (an odd number of items)"))
    elif unpacker.tell() != len(blob):
        bad.append((blob[unpacker.tell() :], "malformed batch (trailing bytes)"))
    return items, bad
