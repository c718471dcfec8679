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
and anything over the size and depth limits raise ``DecodeError``; nothing
else escapes. Encoding enforces the same limits (raising ``ValueError``), so
what one node encodes another node with the same limits decodes.

The registry side (``@message``, ``register_system_type``, ``MessageRegistry``,
``RemoteError``) lives in ``_registry`` and is re-exported here.

Speed. The common path is one C-level ``pack``/``unpackb`` with a Python hook
per tuple, pid or record. The limit checks are skipped for inputs too small
to break them, and pids are cached both ways.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
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
    "DEFAULT_MAX_SIZE",
    "EXT_BIGINT",
    "EXT_FROZENSET",
    "EXT_PID",
    "EXT_REF",
    "EXT_SET",
    "EXT_TUPLE",
    "Codec",
    "DecodeError",
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

#: Default limits: 64 MiB per message, 100 levels of containers, 4 Mi items
#: in one array (list, tuple, set) and 1 Mi entries in one dict.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_ARRAY_LEN = 4 * 1024 * 1024
DEFAULT_MAX_MAP_LEN = 1024 * 1024

#: The deepest ``max_depth`` allowed: a record adds up to two msgpack levels,
#: and msgpack refuses to pack more than 511.
_MAX_DEPTH_LIMIT = 250

_ExtType = msgpack.ExtType
_unpackb = msgpack.unpackb
_Timestamp = msgpack.Timestamp
_new_ext = tuple.__new__  # ExtType.__new__ validates in Python; the codes here are known good

_TUPLE_TAG = _new_ext(_ExtType, (EXT_TUPLE, b""))
_SET_TAG = _new_ext(_ExtType, (EXT_SET, b""))
_FROZENSET_TAG = _new_ext(_ExtType, (EXT_FROZENSET, b""))
_IDS = struct.Struct(">QQ")  # creation, id; the node name follows

#: Types that never contain anything (for the limit walk).
_LEAVES = frozenset({str, bytes, int, float, bool, type(None), Pid, Ref, bytearray, memoryview})

#: Maps each byte to 1 if it may start a msgpack array or map, else to 0. The
#: number of such bytes bounds the number of containers, hence the depth.
_CONTAINER_BYTES = bytes(1 if 0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF else 0 for b in range(256))

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

    __slots__ = ("ext_hook", "list_hook", "pending")

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

    Args:
        registry: the registered classes; ``default_registry`` by default.
        max_size: the largest encoded message, in bytes. It also bounds every
            string, bytes and extension value inside.
        max_depth: the deepest nesting of containers (tuple, list, dict, set,
            frozenset, registered class); ``(1, [2])`` has depth 2.
        max_array_len: the most items in one list, tuple, set or frozenset.
        max_map_len: the most entries in one dict.

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
    ) -> None:
        self.registry = default_registry if registry is None else registry
        self.max_size = _check_limit("max_size", max_size, 1)
        self.max_depth = _check_limit("max_depth", max_depth, 1, _MAX_DEPTH_LIMIT)
        self.max_array_len = _check_limit("max_array_len", max_array_len, 0)
        self.max_map_len = _check_limit("max_map_len", max_map_len, 0)
        # Inputs longer than this might hold a container over the length limits;
        # inputs up to _small bytes can break no limit but hold a timestamp.
        self._long = min(max_array_len, max_map_len)
        self._small = min(self._long, max_depth)
        self._packers: list[msgpack.Packer] = []
        self._pid_cache: dict[bytes, Pid] = {}
        self._hooks: list[_Hooks] = []
        self._builtin_tags = {
            EXT_TUPLE: Tag("tuple", tuple),
            EXT_SET: Tag("set", set),
            EXT_FROZENSET: Tag("frozenset", frozenset),
        }
        self._default = self._make_default()

    def __repr__(self) -> str:
        return (
            f"<Codec max_size={self.max_size} max_depth={self.max_depth} "
            f"max_array_len={self.max_array_len} max_map_len={self.max_map_len}>"
        )

    # -- encoding ---------------------------------------------------------------

    def _make_default(self) -> Callable[[Any], Any]:
        encoders = self.registry.encoders
        record = encoders.get  # registered classes, including RemoteError
        pid_exts: dict[int, tuple[Pid, Any]] = {}  # pids are sent again and again

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
            if t is set:
                return [_SET_TAG, *obj]
            if t is frozenset:
                return [_FROZENSET_TAG, *obj]
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
        if (n > self._small or 255 in data) and self._needs_walk(data, n):
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
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"decode() takes bytes, not {type(data).__name__}")
            data = bytes(data)
        n = len(data)
        if n > self.max_size:
            raise DecodeError(f"message is {n} bytes, over max_size={self.max_size}")
        if n and _SCALAR_HEAD[data[0]]:
            # A lone scalar (int, float, str, bytes, bool, None): no extension
            # type, no container, so no hook and no limit can apply.
            try:
                return _unpackb(data)
            except Exception as exc:
                raise DecodeError(
                    f"malformed message: {type(exc).__name__}: {short_repr(str(exc), 200)}"
                ) from None
        pool = self._hooks
        try:
            hooks = pool.pop()
        except IndexError:
            hooks = _Hooks(self)
        hooks.pending = 0
        ext_hook = hooks.ext_hook
        list_hook = hooks.list_hook
        try:
            if n > self._long:
                value = _unpackb(
                    data,
                    ext_hook=ext_hook,
                    list_hook=list_hook,
                    strict_map_key=False,
                    max_str_len=n,
                    max_bin_len=n,
                    max_ext_len=n,
                    max_array_len=self.max_array_len + 1,  # + the tag; exact check below
                    max_map_len=self.max_map_len,
                )
            else:
                # unpackb bounds every length by len(data), within all limits here.
                value = _unpackb(data, ext_hook=ext_hook, list_hook=list_hook, strict_map_key=False)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(
                f"malformed message: {type(exc).__name__}: {short_repr(str(exc), 200)}"
            ) from None
        finally:
            pool.append(hooks)
        if hooks.pending:
            raise DecodeError("malformed message: a type tag outside the head of an array")
        if (n > self._small or 255 in data) and self._needs_walk(data, n):
            self._walk(value, DecodeError, DecodeError)
        return value

    # -- limits -------------------------------------------------------------------

    def _needs_walk(self, data: bytes | bytearray, n: int) -> bool:
        """Whether ``data`` might break the depth or length limits or hold a timestamp."""
        if n > self._long or (
            n > self.max_depth and n - data.translate(_CONTAINER_BYTES).count(0) > self.max_depth
        ):
            return True
        return 255 in data and _TIMESTAMP_RE.search(data) is not None

    def _walk(self, value: Any, limit_error: type[Exception], type_error: type[Exception]) -> None:
        """Check the depth and length limits exactly, and reject msgpack's own types."""
        max_depth = self.max_depth
        children = self.registry.children
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            obj, depth = stack.pop()
            t = type(obj)
            items: Iterable[Any] | None
            if t is list or t is tuple or t is set or t is frozenset:
                if len(obj) > self.max_array_len:
                    raise limit_error(
                        f"a {t.__name__} of {len(obj)} items is over "
                        f"max_array_len={self.max_array_len}"
                    )
                items = obj
            elif t is dict:
                if len(obj) > self.max_map_len:
                    raise limit_error(
                        f"a dict of {len(obj)} entries is over max_map_len={self.max_map_len}"
                    )
                items = [*obj, *obj.values()]
            elif t is _Timestamp or t is _ExtType:
                raise type_error(f"msgpack {t.__name__} values are not supported")
            else:
                items = children(obj)
                if items is None:
                    continue
            if depth > max_depth:
                raise limit_error(f"value nests deeper than max_depth={max_depth}")
            for child in items:
                if type(child) not in _LEAVES:
                    stack.append((child, depth + 1))


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
