"""The codec: Python values to msgpack bytes and back, exactly, and safely.

What round-trips exactly: ``None``, ``bool``, ``int`` of any size, ``float``,
``str``, ``bytes``, ``list``, ``tuple``, ``dict`` (keys may be any of these
that is hashable), ``set``, ``frozenset``, ``Pid``, ``Ref``, the system
messages (``Down``, ``ExitSignal``, ``RemoteError``, the ``call`` reply) and
classes registered with ``@message``. An exception instance becomes
``RemoteError(type_name, message)``. ``bytearray`` and ``memoryview`` are sent
as bytes and arrive as ``bytes``. Anything else, including subclasses of the
types above (an ``IntEnum``, a ``namedtuple``, an ``OrderedDict``), raises
``TypeError`` naming its type when it is encoded, that is in the sender.

Wire format. Native msgpack carries ``None``, ``bool``, ``int`` (64-bit),
``float``, ``str`` (str type), ``bytes`` (bin type), ``list`` (array) and
``dict`` (map). The other types are *tagged arrays*: an array whose first
element is a zero-length extension value (the tag), followed by the parts:
``[tuple-tag, *items]``, ``[set-tag, *items]``, ``[frozenset-tag, *items]`` and
``[record-tag("name"), *fields]`` (the record tag's payload is the registered
name). ``Pid`` and ``Ref`` are leaf extensions (creation and id as two 64-bit
unsigned big-endian integers, then the node name in UTF-8), and so are big
integers (two's-complement bytes).
Tagging keeps everything in one msgpack pass: no nested packing, no recursion
in Python, and the unpacker's own bounded stack.

Safety. Decoding never imports, evaluates or unpickles anything, and builds
only the types above. A tag anywhere but at the head of an array, an unknown
extension code, an unknown record name, msgpack timestamps, malformed parts,
and anything over the size, depth and length limits raise ``DecodeError``;
nothing else escapes. Encoding enforces the same limits (raising
``ValueError``), so what one node encodes another node with the same limits
decodes; except for the hash check below, which only the receiver makes.

Cost. Decoding takes time and memory linear in the input, whatever it holds:

- Keys that hash alike. Python does not randomise the hashes of numbers (nor
  of tuples of them, pids, refs): ``k * (2**61 - 1)`` hashes to 0 for every
  ``k``, and a set of n such keys takes n * n / 2 comparisons to build (253
  KiB took 3.5 s). So a dict, set or frozenset of more than
  ``HASH_CHECK_MIN`` (16) entries has its keys' hashes computed first: if
  more than the square root of its size repeat another key's hash, it is
  refused, and the comparisons it may cost stay under its size. Legitimate
  data never comes near (``str`` and ``bytes`` hashes are randomised per
  process; numbers collide only when chosen to). The check costs about one
  more hashing pass over large hashed containers, and their size is capped
  (``max_map_len``, ``max_set_len``: 64 Ki entries), since each is built in
  one go.
- Memory. A value takes more room in Python than on the wire: at most about
  80 bytes per input byte (a frame of one-entry maps, the worst case; an
  empty dict takes 64 bytes for one byte of input), typically 5 to 20.
  msgpack reserves room for up to 10,000 items as soon as it reads an array
  header; when the headers of an input could reserve more than a few slots
  per input byte (headers that announce more items than follow, nested), its
  structure is checked first, by msgpack's ``skip``, which builds nothing.
- Time. At most about 10 to 20 times what a benign input of the same size
  costs (the worst: floods of empty containers, one Python call each), and
  the limits are checked by a walk whose memory is bounded by the depth.
  ``decode_steps`` does the same work in steps of ``STEP_BYTES`` of input
  (or ``STEP_VALUES`` values checked), with Python's garbage collector paused
  within a step; a connection uses it for frames over 64 KiB, so that one
  large frame never holds the event loop for long.

The registry side (``@message``, ``register_system_type``, ``MessageRegistry``,
``RemoteError``) lives in ``_registry`` and is re-exported here.

Speed. The common path is one C-level ``pack``/``unpackb`` with a Python hook
per tuple, pid or record. The limit checks are skipped for inputs too small
to break them, and pids are cached both ways.
"""

from __future__ import annotations

import gc
import re
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain, islice
from math import isqrt
from typing import Any, NoReturn

import msgpack  # type: ignore[import-untyped]
from beamlet.actors import Pid, Ref

from ._errors import DecodeError, short_repr
from ._registry import (
    EXT_RECORD,
    MessageRegistry,
    RemoteError,
    Tag,
    default_registry,
    message,
    register_system_type,
)

__all__ = [
    "DEFAULT_MAX_ARRAY_LEN",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_MAP_LEN",
    "DEFAULT_MAX_SET_LEN",
    "DEFAULT_MAX_SIZE",
    "EXT_BIGINT",
    "EXT_FROZENSET",
    "EXT_PID",
    "EXT_REF",
    "EXT_SET",
    "EXT_TUPLE",
    "HASH_CHECK_MIN",
    "STEP_BYTES",
    "STEP_VALUES",
    "Codec",
    "DecodeError",
    "Decoding",
    "MessageRegistry",
    "RemoteError",
    "decode",
    "default_registry",
    "encode",
    "message",
    "register_system_type",
]

#: Extension codes. ``EXT_RECORD`` (6) is defined with the registry.
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_PID = 4
EXT_REF = 5
EXT_BIGINT = 7

#: Default limits: 8 MiB per message, 100 levels of containers, 4 Mi items
#: in one list or tuple, and 64 Ki entries in one dict, set or frozenset.
DEFAULT_MAX_SIZE = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_ARRAY_LEN = 4 * 1024 * 1024
DEFAULT_MAX_MAP_LEN = 64 * 1024
DEFAULT_MAX_SET_LEN = 64 * 1024

#: Dicts, sets and frozensets of more entries than this have their keys'
#: hashes checked when decoded: at most the square root of their size may
#: repeat another key's hash (see ``_hash_collisions``).
HASH_CHECK_MIN = 16

#: ``decode_steps`` reads this many bytes of its input per step.
STEP_BYTES = 64 * 1024
#: ... and checks the limits of this many decoded values per step.
STEP_VALUES = 16 * 1024

#: The deepest ``max_depth`` allowed: a record adds up to two msgpack levels,
#: and msgpack refuses to pack more than 511.
_MAX_DEPTH_LIMIT = 250

_ExtType = msgpack.ExtType
_unpackb = msgpack.unpackb
_Unpacker = msgpack.Unpacker
_OutOfData = msgpack.OutOfData
_Timestamp = msgpack.Timestamp
_new_ext = tuple.__new__  # ExtType.__new__ validates in Python; the codes here are known good

_TUPLE_TAG = _new_ext(_ExtType, (EXT_TUPLE, b""))
_SET_TAG = _new_ext(_ExtType, (EXT_SET, b""))
_FROZENSET_TAG = _new_ext(_ExtType, (EXT_FROZENSET, b""))
_IDS = struct.Struct(">QQ")  # creation, id; the node name follows

#: Types that never contain anything (for the limit walk).
_LEAVES = frozenset({str, bytes, int, float, bool, type(None), Pid, Ref, bytearray, memoryview})

#: Classifies each byte as what it would be at the head of a msgpack value:
#: 1 a small array or map (at most 15 items), 2 an array or map of 16-bit or
#: 32-bit length, 0 anything else. The number of non-zero bytes bounds the
#: number of containers, hence the depth.
_HEADS = bytes(1 if 0x80 <= b <= 0x9F else 2 if 0xDC <= b <= 0xDF else 0 for b in range(256))

#: msgpack reserves room for up to this many items as soon as it reads the
#: header of an array (or, with a pairs hook, a map), before any item arrives.
_PREALLOC = 10_000
#: Above this, a frame's headers could make msgpack reserve more than 32
#: bytes per byte of input (8 per slot); it is then checked whole first.
_PREALLOC_FACTOR = 4

#: msgpack timestamps (extension -1) bypass the extension hook; find them.
_TIMESTAMP_RE = re.compile(rb"[\xd6\xd7]\xff|\xc7\x0c\xff")

#: A packer whose buffer grew past this is dropped rather than pooled.
_POOL_BUFFER_LIMIT = 1 << 20
_PID_CACHE_SIZE = 4096


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _bigint_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)


def _decode_bigint(payload: bytes) -> int:
    if not payload:
        raise DecodeError("empty big integer")
    return int.from_bytes(payload, "big", signed=True)


def _id_payload(obj: Pid | Ref) -> bytes:
    node, id_, creation = obj.node, obj.id, obj.creation
    if type(node) is str and type(id_) is int and type(creation) is int:
        try:
            return _IDS.pack(creation, id_) + node.encode()
        except (struct.error, UnicodeError):
            pass
    raise TypeError(f"cannot encode a malformed {type(obj).__name__}: {short_repr(obj)}")


def _decode_ref(payload: bytes) -> Ref:
    if len(payload) <= 16:
        raise DecodeError("malformed Ref")
    creation, id_ = _IDS.unpack_from(payload)
    return Ref(payload[16:].decode(), id_, creation)


class _Hooks:
    """The unpacker's hooks for one decode at a time, with their tag count.

    ``pending`` counts tags seen minus tags consumed at the head of an array;
    anything left over is a tag in the wrong place. A codec keeps a pool of
    these, so that concurrent decodes (threads) never share a count.
    """

    __slots__ = ("ext_hook", "list_hook", "pairs_hook", "pending")

    def __init__(self, codec: Codec) -> None:
        self.pending = 0
        records = codec.registry.tags
        builtin = codec._builtin_tags
        decode_pid = codec._decode_pid

        def ext_hook(code: int, payload: bytes) -> Any:
            if code == EXT_PID:
                return decode_pid(payload)
            if code == EXT_RECORD:
                tag = records.get(payload)
                if tag is None:
                    raise DecodeError(f"unknown message type {short_repr(payload)}")
            elif code == EXT_REF:
                return _decode_ref(payload)
            elif code == EXT_BIGINT:
                return _decode_bigint(payload)
            else:
                tag = builtin.get(code)
                if tag is None:
                    raise DecodeError(f"unknown extension type {code}")
                if payload:
                    raise DecodeError(f"malformed {tag.name} tag")
            self.pending += 1
            return tag

        def list_hook(items: list[Any]) -> Any:
            if items:
                tag = items[0]
                if type(tag) is Tag:
                    self.pending -= 1
                    del items[0]
                    return tag.build(items)
            return items

        self.ext_hook = ext_hook
        self.list_hook = list_hook
        self.pairs_hook = _build_dict


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _hash_collisions(keys: Iterable[Any], n: int) -> int:
    """Return how many of the ``n`` keys repeat the hash value of another one."""
    return n - len(set(map(hash, keys)))


def _too_many_collisions(what: str, n: int, alike: int) -> DecodeError:
    return DecodeError(
        f"{what} of {n} entries has {alike} keys that repeat another key's hash, over the "
        f"limit of {isqrt(n)} (the square root of its size): keys that hash alike cost "
        "quadratic time to insert"
    )


def _build_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """The map hook, used when a frame may hold a map of more than 15 entries."""
    n = len(pairs)
    if n > HASH_CHECK_MIN:
        alike = _hash_collisions(map(_first, pairs), n)
        if alike > isqrt(n):
            raise _too_many_collisions("a dict", n, alike)
    return dict(pairs)


def _hashed_builder(kind: type, limit: int) -> Callable[[list[Any]], Any]:
    """Build a set or frozenset from decoded items, within ``limit`` and the
    hash-collision bound."""
    name = kind.__name__

    def build(items: list[Any]) -> Any:
        n = len(items)
        if n > HASH_CHECK_MIN:
            if n > limit:
                raise DecodeError(f"a {name} of {n} items is over max_set_len={limit}")
            alike = _hash_collisions(items, n)
            if alike > isqrt(n):
                raise _too_many_collisions(f"a {name}", n, alike)
        return kind(items)

    return build


#: Yielded by ``_paced`` between slices of a large container (see ``_walk_steps``).
_PAUSE = object()


def _paced(items: Iterable[Any], n: int, step: int) -> Iterator[Any]:
    """Iterate over ``items`` (``n`` of them), with ``_PAUSE`` after each ``step``."""
    it = iter(items)
    for _ in range(n // step):
        yield from islice(it, step)
        yield _PAUSE
    yield from it


def _unencodable(obj: object) -> NoReturn:
    raise TypeError(
        f"cannot encode an object of type {_type_name(type(obj))!r}: messages between nodes hold "
        "None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, Pid, Ref, "
        "exceptions and @message classes"
    )


def _check_limit(name: str, value: object, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"an int >= {low}" if high is None else f"an int in {low}..{high}"
        raise ValueError(f"Codec: {name!r} must be {bound}, not {value!r}")
    return value


def _scalar_heads() -> bytes:
    """For each first byte of a msgpack value, 1 if the value is a scalar."""
    heads = bytearray(256)
    for lo, hi in (
        (0x00, 0x7F),  # positive fixint
        (0xA0, 0xBF),  # fixstr
        (0xC0, 0xC0),  # nil
        (0xC2, 0xC6),  # false, true, bin 8/16/32
        (0xCA, 0xD3),  # float 32/64, uint and int 8..64
        (0xD9, 0xDB),  # str 8/16/32
        (0xE0, 0xFF),  # negative fixint
    ):
        heads[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    return bytes(heads)


#: Which first bytes start a scalar: maps, arrays and extension types are 0.
_SCALAR_HEAD = _scalar_heads()


class Codec:
    """Encodes and decodes messages with one registry and one set of limits.

    ``encode``/``decode`` of the module use a default instance; a connection
    makes its own, with ``max_size`` equal to its maximum frame size. A codec
    may be used from several threads.

    Decoding costs time and memory linear in the input, whatever the input
    (see the module's "Cost" section); ``decode_steps`` spreads the work of a
    large input over steps of bounded cost.

    Args:
        registry: the registered classes; ``default_registry`` by default.
        max_size: the largest encoded message, in bytes. It also bounds every
            string, bytes and extension value inside.
        max_depth: the deepest nesting of containers (tuple, list, dict, set,
            frozenset, registered class); ``(1, [2])`` has depth 2.
        max_array_len: the most items in one list or tuple.
        max_map_len: the most entries in one dict.
        max_set_len: the most items in one set or frozenset.

    Raises:
        ValueError: a limit is not a positive int (``max_depth`` at most 250).
    """

    def __init__(
        self,
        registry: MessageRegistry | None = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_array_len: int = DEFAULT_MAX_ARRAY_LEN,
        max_map_len: int = DEFAULT_MAX_MAP_LEN,
        max_set_len: int = DEFAULT_MAX_SET_LEN,
    ) -> None:
        self.registry = default_registry if registry is None else registry
        self.max_size = _check_limit("max_size", max_size, 1)
        self.max_depth = _check_limit("max_depth", max_depth, 1, _MAX_DEPTH_LIMIT)
        self.max_array_len = _check_limit("max_array_len", max_array_len, 0)
        self.max_map_len = _check_limit("max_map_len", max_map_len, 0)
        self.max_set_len = _check_limit("max_set_len", max_set_len, 0)
        # Decoding passes the length limits to msgpack for inputs longer than
        # _long (shorter ones cannot break them). Past _walk_decoded bytes
        # (_walk_encoded when encoding), a list, tuple or dict might be over
        # its limit by a margin msgpack does not check (the tag of a tuple;
        # dicts, when encoding); sets are checked as they are built. Inputs
        # up to _small bytes can break no limit, but may hold a timestamp.
        self._long = min(max_array_len, max_map_len)
        self._walk_decoded = max_array_len
        self._walk_encoded = min(max_array_len, 2 * max_map_len)
        self._small = min(self._long, max_depth)
        self._packers: list[msgpack.Packer] = []
        self._pid_cache: dict[bytes, Pid] = {}
        self._hooks: list[_Hooks] = []
        self._builtin_tags = {
            EXT_TUPLE: Tag("tuple", tuple),
            EXT_SET: Tag("set", _hashed_builder(set, max_set_len)),
            EXT_FROZENSET: Tag("frozenset", _hashed_builder(frozenset, max_set_len)),
        }
        self._default = self._make_default()

    def __repr__(self) -> str:
        return (
            f"<Codec max_size={self.max_size} max_depth={self.max_depth} "
            f"max_array_len={self.max_array_len} max_map_len={self.max_map_len} "
            f"max_set_len={self.max_set_len}>"
        )

    # -- encoding ---------------------------------------------------------------

    def _make_default(self) -> Callable[[Any], Any]:
        encoders = self.registry.encoders
        record = encoders.get  # registered classes, including RemoteError
        pid_exts: dict[int, tuple[Pid, Any]] = {}  # pids are sent again and again
        max_set_len = self.max_set_len

        def default(obj: Any) -> Any:
            t = type(obj)
            if t is tuple:
                return [_TUPLE_TAG, *obj]
            if t is Pid:
                # Keyed by identity: the entry keeps the pid alive, so the id
                # cannot be reused while it is cached.
                hit = pid_exts.get(id(obj))
                if hit is not None and hit[0] is obj:
                    return hit[1]
                ext = _new_ext(_ExtType, (EXT_PID, _id_payload(obj)))
                if len(pid_exts) >= _PID_CACHE_SIZE:
                    pid_exts.clear()
                pid_exts[id(obj)] = (obj, ext)
                return ext
            enc = record(t)
            if enc is not None:
                return enc(obj)
            if t is set or t is frozenset:
                if len(obj) > max_set_len:
                    raise ValueError(
                        f"a {t.__name__} of {len(obj)} items is over max_set_len={max_set_len}"
                    )
                return [_SET_TAG if t is set else _FROZENSET_TAG, *obj]
            if t is Ref:
                return _new_ext(_ExtType, (EXT_REF, _id_payload(obj)))
            if t is int:  # outside msgpack's 64-bit range
                return _new_ext(_ExtType, (EXT_BIGINT, _bigint_bytes(obj)))
            if isinstance(obj, BaseException):
                return encoders[RemoteError](RemoteError.from_exception(obj))
            _unencodable(obj)

        return default

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(
            default=self._default, strict_types=True, use_bin_type=True, buf_size=4096
        )

    def encode(self, value: Any) -> bytes:
        """Encode ``value`` to bytes.

        Args:
            value: the message.

        Returns:
            The msgpack bytes.

        Raises:
            TypeError: ``value`` holds something that cannot be encoded; the
                message names its type.
            ValueError: the result would break a limit (size, depth, length).
        """
        pool = self._packers
        try:
            packer = pool.pop()
        except IndexError:
            packer = self._new_packer()
        try:
            data: bytes = packer.pack(value)
        except ValueError as exc:
            pool.append(packer)
            if "recursion limit" in str(exc):
                raise ValueError(
                    f"cannot encode value: nested deeper than max_depth={self.max_depth}"
                ) from None
            raise ValueError(f"cannot encode value: {exc}") from None
        except BaseException:
            pool.append(packer)
            raise
        n = len(data)
        if n < _POOL_BUFFER_LIMIT:
            pool.append(packer)
        if n > self.max_size:
            raise ValueError(f"encoded message is {n} bytes, over max_size={self.max_size}")
        if (n > self._small or 255 in data) and self._needs_walk(
            data, n, n - data.translate(_HEADS).count(0), self._walk_encoded
        ):
            self._walk(value, ValueError, TypeError)
        return data

    # -- decoding ---------------------------------------------------------------

    def _decode_pid(self, payload: bytes) -> Pid:
        cache = self._pid_cache
        pid = cache.get(payload)
        if pid is None:
            if len(payload) <= 16:
                raise DecodeError("malformed Pid")
            creation, id_ = _IDS.unpack_from(payload)
            if len(cache) >= _PID_CACHE_SIZE:
                cache.clear()
            pid = cache[payload] = Pid(payload[16:].decode(), id_, creation)
        return pid

    def _check_input(self, data: bytes | bytearray | memoryview) -> bytes | bytearray:
        if type(data) is not bytes and type(data) is not bytearray:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"decode() takes bytes, not {type(data).__name__}")
            data = bytes(data)
        n = len(data)
        if n > self.max_size:
            raise DecodeError(f"message is {n} bytes, over max_size={self.max_size}")
        return data

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode one message from ``data``.

        Args:
            data: exactly one encoded message.

        Returns:
            The value.

        Raises:
            DecodeError: ``data`` is malformed, has trailing bytes, uses an
                unknown extension or record name, or breaks a limit. No other
                exception escapes for any input bytes.
            TypeError: ``data`` is not bytes-like.
        """
        if type(data) is not bytes and type(data) is not bytearray:
            data = self._check_input(data)
        n = len(data)
        if n > self.max_size:
            raise DecodeError(f"message is {n} bytes, over max_size={self.max_size}")
        if n and _SCALAR_HEAD[data[0]]:
            # A lone scalar (int, float, str, bytes, bool, None): no extension
            # type, no container, so no hook and no limit can apply.
            try:
                return _unpackb(data)
            except Exception as exc:
                raise _malformed(exc) from None
        pool = self._hooks
        try:
            hooks = pool.pop()
        except IndexError:
            hooks = _Hooks(self)
        hooks.pending = 0
        try:
            if n <= self._small:
                # So short that it can break no limit (unpackb bounds every
                # length by len(data)), nor hold a dict whose keys collide
                # at a cost (at most 15 * 15 / 2 comparisons).
                walk = 255 in data and _TIMESTAMP_RE.search(data) is not None
                value = _unpackb(
                    data, ext_hook=hooks.ext_hook, list_hook=hooks.list_hook, strict_map_key=False
                )
            else:
                heads = data.translate(_HEADS)
                containers = n - heads.count(0)
                if containers * min(n, _PREALLOC) > _PREALLOC_FACTOR * n:
                    self._check_headers(data, n, heads.count(2))
                walk = self._needs_walk(data, n, containers, self._walk_decoded)
                value = self._unpack(data, n, hooks)
        except DecodeError:
            raise
        except Exception as exc:
            raise _malformed(exc, self) from None
        finally:
            pool.append(hooks)
        if hooks.pending:
            raise DecodeError("malformed message: a type tag outside the head of an array")
        if walk:
            self._walk(value, DecodeError, DecodeError)
        return value

    def _unpack(self, data: bytes | bytearray, n: int, hooks: _Hooks) -> Any:
        """Unpack ``data`` within the limits; dicts of more than ``HASH_CHECK_MIN``
        entries are built by ``_build_dict``, which checks their keys.

        msgpack builds dicts itself, faster, but gives no chance to look at
        the keys first; so the first attempt refuses any map over
        ``HASH_CHECK_MIN`` entries, and only an input that holds one is
        unpacked again, with the pairs hook (the second attempt costs at most
        what the first did, plus the checks).
        """
        ext_hook = hooks.ext_hook
        list_hook = hooks.list_hook
        small_maps = min(HASH_CHECK_MIN, self.max_map_len)
        if n <= self._long:
            # unpackb bounds every length by len(data), within all limits here.
            try:
                return _unpackb(
                    data,
                    ext_hook=ext_hook,
                    list_hook=list_hook,
                    strict_map_key=False,
                    max_map_len=small_maps,
                )
            except ValueError as exc:
                if "max_map_len" not in str(exc) or small_maps == self.max_map_len:
                    raise
            hooks.pending = 0
            return _unpackb(
                data,
                ext_hook=ext_hook,
                list_hook=list_hook,
                object_pairs_hook=_build_dict,
                strict_map_key=False,
            )
        max_array_len = self.max_array_len + 1  # + the tag of a tuple; exact check later
        try:
            return _unpackb(
                data,
                ext_hook=ext_hook,
                list_hook=list_hook,
                strict_map_key=False,
                max_str_len=n,
                max_bin_len=n,
                max_ext_len=n,
                max_array_len=max_array_len,
                max_map_len=small_maps,
            )
        except ValueError as exc:
            if "max_map_len" not in str(exc) or small_maps == self.max_map_len:
                raise
        hooks.pending = 0
        return _unpackb(
            data,
            ext_hook=ext_hook,
            list_hook=list_hook,
            object_pairs_hook=_build_dict,
            strict_map_key=False,
            max_str_len=n,
            max_bin_len=n,
            max_ext_len=n,
            max_array_len=max_array_len,
            max_map_len=self.max_map_len,
        )

    def decode_steps(self, data: bytes | bytearray | memoryview) -> Decoding:
        """Start decoding ``data`` in steps; each ``step()`` does a bounded amount of work.

        ``decode`` does the same work in one go. This is for large inputs,
        whose decoding must not keep a caller (an event loop) busy for long:
        each step reads at most ``STEP_BYTES`` of input or checks at most
        about ``STEP_VALUES`` decoded values, and Python's garbage collector
        does not run within a step (it would walk every object of the process,
        many times over while a large value is built). The value and the
        errors are those of ``decode``.

        Args:
            data: exactly one encoded message; not modified until done.

        Returns:
            A ``Decoding``: call ``step()`` until it returns True, then read
            ``value``.

        Raises:
            DecodeError: ``data`` is over ``max_size`` (later errors are raised
                by ``step``).
            TypeError: ``data`` is not bytes-like.
        """
        return Decoding(self._steps(self._check_input(data)))

    def _steps(self, data: bytes | bytearray) -> Generator[None, None, Any]:
        """The work of ``decode_steps``: the generator yields between steps."""
        n = len(data)
        view = memoryview(data)
        try:
            # 1. The structure, without building anything (see _check_headers).
            skipper = _Unpacker(max_buffer_size=max(n, 1))
            yield from _fed(skipper, skipper.skip, view, n)
            if skipper.tell() != n:
                raise DecodeError("malformed message: trailing bytes after the value")
            del skipper
            # 2. The value; again with the pairs hook if it holds a large dict
            # (as ``_unpack`` does).
            small_maps = min(HASH_CHECK_MIN, self.max_map_len)
            hooks = _Hooks(self)
            try:
                value = yield from self._fed_value(view, n, hooks, small_maps)
            except ValueError as exc:
                if "max_map_len" not in str(exc) or small_maps == self.max_map_len:
                    raise
                hooks = _Hooks(self)
                value = yield from self._fed_value(view, n, hooks, self.max_map_len)
        except DecodeError:
            raise
        except Exception as exc:
            raise _malformed(exc, self) from None
        finally:
            view.release()
        if hooks.pending:
            raise DecodeError("malformed message: a type tag outside the head of an array")
        # 3. The limits.
        yield from self._walk_steps(value, DecodeError, DecodeError, STEP_VALUES)
        return value

    def _fed_value(
        self, view: memoryview, n: int, hooks: _Hooks, max_map_len: int
    ) -> Generator[None, None, Any]:
        unpacker = _Unpacker(
            ext_hook=hooks.ext_hook,
            list_hook=hooks.list_hook,
            object_pairs_hook=None if max_map_len <= HASH_CHECK_MIN else _build_dict,
            strict_map_key=False,
            max_buffer_size=max(n, 1),
            max_str_len=n,
            max_bin_len=n,
            max_ext_len=n,
            max_array_len=self.max_array_len + 1,  # + the tag of a tuple; exact check later
            max_map_len=max_map_len,
        )
        return (yield from _fed(unpacker, unpacker.unpack, view, n))

    # -- limits -------------------------------------------------------------------

    def _check_headers(self, data: bytes | bytearray, n: int, wide: int) -> None:
        """Check the structure of ``data`` before decoding it, if its headers could cost much.

        msgpack reserves up to ``_PREALLOC`` slots (8 bytes each) for an array
        as soon as it reads its header, and keeps them while the array is
        open; headers that announce more items than follow, nested, would
        cost megabytes for a few bytes of input. ``wide`` counts the bytes
        that could start such a header. When they could reserve more than
        ``_PREALLOC_FACTOR`` slots per byte of input, the structure is first
        checked by msgpack's ``skip``, which builds nothing; a well-formed
        input reserves at most a slot per item it holds.
        """
        if wide * min(n, _PREALLOC) <= _PREALLOC_FACTOR * n:
            return
        skipper = _Unpacker(max_buffer_size=n)
        skipper.feed(data)
        try:
            skipper.skip()
        except _OutOfData:
            raise DecodeError("malformed message: the input ends within a value") from None
        except Exception as exc:
            raise _malformed(exc) from None
        if skipper.tell() != n:
            raise DecodeError("malformed message: trailing bytes after the value")

    def _needs_walk(self, data: bytes | bytearray, n: int, containers: int, long: int) -> bool:
        """Whether ``data`` (with so many container headers, at most) might break
        the depth or length limits or hold a timestamp; over ``long`` bytes, it might."""
        if n > long or containers > self.max_depth:
            return True
        return 255 in data and _TIMESTAMP_RE.search(data) is not None

    def _walk(self, value: Any, limit_error: type[Exception], type_error: type[Exception]) -> None:
        """Check the depth and length limits exactly, and reject msgpack's own types."""
        for _ in self._walk_steps(value, limit_error, type_error, None):
            pass  # pragma: no cover - yields only when given a step

    def _walk_steps(
        self,
        value: Any,
        limit_error: type[Exception],
        type_error: type[Exception],
        step: int | None,
    ) -> Generator[None, None, None]:
        """``_walk`` as a generator that yields after about ``step`` values.

        Depth first, with one iterator per level open: the memory it takes
        is bounded by the depth, not by the size of ``value``. A container of
        more than ``step`` items is visited in slices (``_paced``).
        """
        max_depth = self.max_depth
        max_array = self.max_array_len
        max_map = self.max_map_len
        max_set = self.max_set_len
        children = self.registry.children
        leaves = _LEAVES
        stack: list[Iterator[Any]] = []
        it: Iterator[Any] = iter((value,))
        budget = step or 0
        while True:
            for obj in it:
                t = type(obj)
                if t in leaves:
                    continue
                items: Iterable[Any] | None
                if t is list or t is tuple:
                    size = len(obj)
                    if size > max_array:
                        raise limit_error(
                            f"a {t.__name__} of {size} items is over max_array_len={max_array}"
                        )
                    items = obj
                elif t is dict:
                    size = len(obj)
                    if size > max_map:
                        raise limit_error(f"a dict of {size} entries is over max_map_len={max_map}")
                    items = chain(obj, obj.values())
                    size *= 2
                elif t is set or t is frozenset:
                    size = len(obj)
                    if size > max_set:
                        raise limit_error(
                            f"a {t.__name__} of {size} items is over max_set_len={max_set}"
                        )
                    items = obj
                elif obj is _PAUSE:
                    yield
                    continue
                elif t is _Timestamp or t is _ExtType:
                    raise type_error(f"msgpack {t.__name__} values are not supported")
                else:
                    items = children(obj)
                    if items is None:
                        continue
                    items = list(items)
                    size = len(items)
                if len(stack) >= max_depth:
                    raise limit_error(f"value nests deeper than max_depth={max_depth}")
                if not size:
                    continue
                stack.append(it)
                if step:
                    if size > step:
                        it = _paced(items, size, step)
                    else:
                        it = iter(items)
                        budget -= size
                        if budget <= 0:
                            budget = step
                            yield
                else:
                    it = iter(items)
                break
            else:
                if not stack:
                    return
                it = stack.pop()


class Decoding:
    """A decode in progress, a step at a time; made by ``Codec.decode_steps``.

    Attributes:
        value: the decoded value, once ``step()`` has returned True.
    """

    __slots__ = ("_steps", "done", "value")

    def __init__(self, steps: Generator[None, None, Any]) -> None:
        self._steps = steps
        self.done = False
        self.value: Any = None

    def __repr__(self) -> str:
        return f"<Decoding {'done' if self.done else 'in progress'}>"

    def step(self) -> bool:
        """Do the next step; return True when the value is decoded.

        Python's garbage collector is paused during the step (and only then),
        if it was enabled.

        Raises:
            DecodeError: the input is malformed or breaks a limit; the
                decoding is over.
        """
        if self.done:
            return True
        enabled = gc.isenabled()
        if enabled:
            gc.disable()
        try:
            next(self._steps)
        except StopIteration as stop:
            self.value = stop.value
            self.done = True
        except BaseException:
            self.done = True
            raise
        finally:
            if enabled:
                gc.enable()
        return self.done

    def close(self) -> None:
        """Give up: release the input and whatever was decoded so far."""
        self.done = True
        self._steps.close()


def _fed(
    unpacker: Any, read: Callable[[], Any], view: memoryview, n: int
) -> Generator[None, None, Any]:
    """Feed ``view`` to ``unpacker`` ``STEP_BYTES`` at a time, calling ``read`` after
    each chunk until it returns; yield between chunks. msgpack's unpacker keeps
    its place (and what it built so far) when a chunk ends within a value."""
    pos = 0
    while True:
        end = pos + STEP_BYTES
        unpacker.feed(view[pos:end])
        pos = min(end, n)
        try:
            return read()
        except _OutOfData:
            if pos >= n:
                raise DecodeError("malformed message: the input ends within a value") from None
        yield


#: How msgpack says that a length is over the limit it was given.
_OVER_LIMIT_RE = re.compile(r"(\d+) exceeds max_(array|map|str|bin|ext)_len\((\d+)\)")


def _malformed(exc: Exception, codec: Codec | None = None) -> DecodeError:
    """The ``DecodeError`` for what msgpack raised (``codec``: whose limits it was given)."""
    text = str(exc)
    over = _OVER_LIMIT_RE.fullmatch(text)
    if over is not None:
        n, kind, limit = int(over[1]), over[2], int(over[3])
        if codec is not None and kind == "map" and limit == codec.max_map_len:
            return DecodeError(f"a dict of {n} entries is over max_map_len={limit}")
        if codec is not None and kind == "array" and limit == codec.max_array_len + 1:
            return DecodeError(
                f"a list or tuple of {n - 1} items or more is over "
                f"max_array_len={codec.max_array_len}"
            )
        name = {"array": "an array", "map": "a map", "ext": "an extension value"}.get(
            kind, "a " + kind
        )
        return DecodeError(f"malformed message: {name} of length {n}, more than the input holds")
    return DecodeError(f"malformed message: {type(exc).__name__}: {short_repr(text, 200)}")


_default_codec = Codec()


def encode(value: Any) -> bytes:
    """Encode ``value`` with the default registry and limits; see ``Codec.encode``.

    Raises:
        TypeError: ``value`` holds something that cannot be encoded.
        ValueError: the result would break a limit.
    """
    return _default_codec.encode(value)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode ``data`` with the default registry and limits; see ``Codec.decode``.

    Raises:
        DecodeError: the bytes are malformed or break a limit.
    """
    return _default_codec.decode(data)
