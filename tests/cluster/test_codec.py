"""The codec: exact round-trips, refusals at encode time, and safe decoding."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import math
import pickle
import struct
import threading
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from beamlet.actors import Down, ExitSignal, Pid, Ref
from beamlet.actors.lowlevel import Reply
from beamlet.cluster._codec import (
    EXT_BIGINT,
    EXT_FROZENSET,
    EXT_PID,
    EXT_REF,
    EXT_SET,
    EXT_TUPLE,
    Codec,
    decode,
    encode,
)
from beamlet.cluster._errors import DecodeError
from beamlet.cluster._registry import (
    EXT_RECORD,
    MessageRegistry,
    RemoteError,
    default_registry,
    message,
    register_system_type,
)
from hypothesis import HealthCheck, given, settings, strategies as st

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@message
@attrs.frozen
class Join:
    room: str
    user: Any = None


@message(name="tests.codec.Leave")
@dataclasses.dataclass(frozen=True)
class Leave:
    room: str
    why: Any = "bye"


@message(name="tests.codec.Private")
@attrs.define
class Private:
    _secret: int
    derived: int = attrs.field(init=False, default=0)


# -- a type-exact comparison ---------------------------------------------------------


def canon(value: Any) -> Any:
    """A form of ``value`` in which equal means "same types and same contents"."""
    t = type(value)
    if t is float:
        return ("float", struct.pack(">d", value))
    if t in (list, tuple):
        return (t.__name__, tuple(canon(v) for v in value))
    if t in (set, frozenset):
        return (t.__name__, tuple(sorted((canon(v) for v in value), key=repr)))
    if t is dict:
        items = ((canon(k), canon(v)) for k, v in value.items())
        return ("dict", tuple(sorted(items, key=repr)))
    if t is Reply:
        return ("Reply", canon(value.ref), canon(value.value))
    if t in (Down, ExitSignal, Join, Leave):
        fields = attrs.astuple(value, recurse=False) if attrs.has(t) else None
        if fields is None:
            fields = dataclasses.astuple(value)
        return (t.__name__, tuple(canon(f) for f in fields))
    return (t.__name__, value)


def assert_same(a: Any, b: Any) -> None:
    assert canon(a) == canon(b), (a, b)


def roundtrip(value: Any, codec: Codec | None = None) -> Any:
    c = codec or Codec()
    return c.decode(c.encode(value))


# -- strategies ---------------------------------------------------------------------

node_names = st.sampled_from(["a@127.0.0.1", "b@h", "long-node.name_1@example.com", "é@x"])
ids = st.integers(0, 2**64 - 1)
pids = st.builds(Pid, node_names, ids, st.integers(0, 2**32 - 1))
refs = st.builds(Ref, node_names, ids, st.integers(0, 2**32 - 1))
ints = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**100]),
)
floats = st.floats(allow_nan=False)
scalars = st.one_of(
    st.none(), st.booleans(), ints, floats, st.text(max_size=20), st.binary(max_size=20), pids, refs
)
hashables = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.tuples(inner, inner), st.frozensets(inner, max_size=3), st.lists(inner).map(tuple)
    ),
    max_leaves=8,
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Join, st.text(max_size=5), inner),
        st.builds(Leave, st.text(max_size=5), inner),
        st.builds(Down, refs, st.one_of(pids, st.tuples(st.text(), node_names)), inner),
        st.builds(ExitSignal, pids, inner),
        st.builds(RemoteError, st.text(max_size=10), st.text(max_size=10)),
    )


values = st.recursive(st.one_of(scalars, hashables), _containers, max_leaves=25)

# Hypothesis sometimes renders the repr of ``values`` (some 40 kB) and warns.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


# -- round trips -------------------------------------------------------------------


@FAST
@given(values)
def test_roundtrip_is_exact(value: Any) -> None:
    assert_same(roundtrip(value), value)


@settings(max_examples=40, deadline=None)
@given(values)
def test_module_functions_roundtrip(value: Any) -> None:
    assert_same(decode(encode(value)), value)


@pytest.mark.parametrize(
    ("value", "other"),
    [
        ((1, 2), [1, 2]),
        ({1, 2}, frozenset({1, 2})),
        (b"ab", "ab"),
        (True, 1),
        (1, 1.0),
        ((), []),
        ({"a": (1,)}, {"a": [1]}),
    ],
)
def test_lookalikes_stay_distinct(value: Any, other: Any) -> None:
    assert_same(roundtrip(value), value)
    assert_same(roundtrip(other), other)
    assert encode(value) != encode(other)


@pytest.mark.parametrize(
    "n", [0, 1, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 3**500, -(7**300)]
)
def test_integers_of_any_size(n: int) -> None:
    assert_same(roundtrip(n), n)


def test_special_floats() -> None:
    assert math.isnan(roundtrip(float("nan")))
    assert_same(roundtrip(-0.0), -0.0)
    assert roundtrip(float("inf")) == float("inf")


def test_dict_keys_of_many_types() -> None:
    p, r = Pid("a@h", 1, 2), Ref("a@h", 3, 2)
    value = {(1, "a"): 1, p: 2, r: 3, frozenset({1}): 4, None: 5, True: 6, 1.5: 7, b"k": 8, (): 9}
    assert_same(roundtrip(value), value)


def test_system_messages() -> None:
    p, r = Pid("a@h", 1, 2), Ref("a@h", 3, 2)
    for value in [
        Down(r, p, "normal"),
        Down(r, ("name", "b@h"), "noproc"),
        ExitSignal(p, ("shutdown", {"detail": [1]})),
        RemoteError("ValueError", "bad"),
    ]:
        assert_same(roundtrip(value), value)
    reply = roundtrip(Reply(r, ("ok", [p])))
    assert type(reply) is Reply
    assert reply.ref == r
    assert_same(reply.value, ("ok", [p]))


def test_exceptions_become_remote_errors() -> None:
    class Boom(Exception):
        pass

    p = Pid("a@h", 1, 2)
    assert roundtrip(ValueError("bad value")) == RemoteError("ValueError", "bad value")
    got = roundtrip(ExitSignal(p, Boom("x")))
    assert got.reason == RemoteError(f"{__name__}.{Boom.__qualname__}", "x")
    assert roundtrip(KeyboardInterrupt()) == RemoteError("KeyboardInterrupt", "")


def test_remote_error_is_a_value() -> None:
    e = RemoteError("KeyError", "'k'")
    assert e == RemoteError("KeyError", "'k'")
    assert hash(e) == hash(RemoteError("KeyError", "'k'"))
    assert e != RemoteError("KeyError", "other")
    assert isinstance(e, Exception)
    assert (e.type_name, e.message) == ("KeyError", "'k'")
    assert str(e) == "KeyError: 'k'"
    assert repr(e) == "RemoteError(type_name='KeyError', message=\"'k'\")"
    assert pickle.loads(pickle.dumps(e)) == e
    assert RemoteError.from_exception(e) is e
    with pytest.raises(TypeError, match="type_name"):
        RemoteError(1, "x")  # type: ignore[arg-type]


def test_messages_by_name() -> None:
    assert default_registry.name_of(Join) == f"{__name__}.Join"
    assert default_registry.lookup("tests.codec.Leave") is Leave
    value = (Join("r", Leave("x")), [Private(5)])
    got = roundtrip(value)
    assert got[0] == value[0]
    assert got[1][0] == Private(5)
    assert got[1][0]._secret == 5


def test_message_fields_travel_by_name() -> None:
    wire = msgpack.packb(
        [msgpack.ExtType(EXT_RECORD, b"tests.codec.Leave"), {"why": "w", "room": "r"}]
    )
    assert decode(wire) == Leave("r", "w")
    defaulted = msgpack.packb([msgpack.ExtType(EXT_RECORD, b"tests.codec.Leave"), {"room": "r"}])
    assert decode(defaulted) == Leave("r")


@pytest.mark.parametrize(
    "fields",
    [{"room": "r", "evil": 1}, {}, {1: "r"}, ["r"]],
    ids=["unknown field", "missing field", "non-str key", "not a dict"],
)
def test_bad_message_fields_are_refused(fields: Any) -> None:
    wire = msgpack.packb([msgpack.ExtType(EXT_RECORD, b"tests.codec.Leave"), fields])
    with pytest.raises(DecodeError):
        decode(wire)


def test_registration_rules() -> None:
    reg = MessageRegistry()

    @attrs.frozen
    class A:
        x: int

    @attrs.frozen
    class B:
        x: int

    reg.register(A, "t.A")
    reg.register(A, "t.A")  # idempotent
    with pytest.raises(ValueError, match="already registered"):
        reg.register(A, "t.other")
    with pytest.raises(ValueError, match="already taken"):
        reg.register(B, "t.A")
    with pytest.raises(ValueError, match="reserved"):
        reg.register(B, "beamlet.B")
    with pytest.raises(ValueError, match="message name"):
        reg.register(B, "has space")
    with pytest.raises(TypeError, match="attrs class or a dataclass"):
        message(registry=reg)(type("Plain", (), {}))
    with pytest.raises(ValueError, match="system type names"):
        reg.register_system_type(B, "t.B", lambda b: (b.x,), lambda f: B(*f))


def test_registries_are_separate() -> None:
    reg = MessageRegistry()

    @message(name="t.Only", registry=reg)
    @attrs.frozen
    class Only:
        x: int

    mine, default = Codec(reg), Codec()
    assert mine.decode(mine.encode(Only(1))) == Only(1)
    assert mine.decode(mine.encode(Down(Ref("a@h", 1, 1), 1, 2))) == Down(Ref("a@h", 1, 1), 1, 2)
    with pytest.raises(TypeError, match="Only"):
        default.encode(Only(1))
    with pytest.raises(DecodeError, match="unknown message type"):
        default.decode(mine.encode(Only(1)))


def test_register_system_type_is_a_one_liner() -> None:
    reg = MessageRegistry()

    class Envelope:
        __slots__ = ("ref", "request")

        def __init__(self, ref: Ref, request: Any) -> None:
            self.ref, self.request = ref, request

    register_system_type(
        Envelope, "beamlet.Envelope", lambda e: (e.ref, e.request), lambda f: Envelope(*f),
        registry=reg,
    )  # fmt: skip
    c = Codec(reg)
    got = c.decode(c.encode([Envelope(Ref("a@h", 1, 1), ("get", 1))]))[0]
    assert type(got) is Envelope
    assert got.ref == Ref("a@h", 1, 1)
    assert got.request == ("get", 1)
    with pytest.raises(DecodeError):
        c.decode(msgpack.packb([msgpack.ExtType(EXT_RECORD, b"beamlet.Envelope"), 1]))


def test_pid_caches() -> None:
    c = Codec()
    pids = [Pid("a@h", i, 7) for i in range(5000)]  # more than the caches hold
    for _ in range(2):
        assert c.decode(c.encode(pids)) == pids
    twin = Pid("a@h", 1, 7)
    assert c.decode(c.encode([pids[1], twin, Pid("a@h", 2, 7)])) == [twin, twin, pids[2]]


def test_bytes_like_arrive_as_bytes() -> None:
    assert_same(roundtrip(bytearray(b"ab")), b"ab")
    assert_same(roundtrip(memoryview(b"ab")), b"ab")
    assert decode(bytearray(encode("x"))) == "x"
    assert decode(memoryview(encode("x"))) == "x"


def test_safe_from_threads() -> None:
    value = ("msg", Pid("a@h", 1, 2), [1, (2, {3})])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(300):
                assert_same(decode(encode(value)), value)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- refusals at encode time ----------------------------------------------------------


class Colour(enum.IntEnum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


@attrs.frozen
class Unregistered:
    x: int


def _gen() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (lambda: 1, "function"),
        (object(), "object"),
        (_gen(), "generator"),
        (int, "type"),
        (Unregistered(1), "Unregistered"),
        (Colour.RED, "Colour"),
        (Point(1, 2), "Point"),
        (collections.OrderedDict(a=1), "OrderedDict"),
        (datetime.date(2024, 1, 1), "date"),
        (1j, "complex"),
        (..., "ellipsis"),
        ([1, {"deep": (2, {object()})}], "object"),
        ({Unregistered(1): 1}, "Unregistered"),
    ],
)
def test_unsupported_types_raise_type_error(value: Any, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        encode(value)


def test_msgpack_own_types_are_refused() -> None:
    with pytest.raises(TypeError, match="Timestamp"):
        encode([1, msgpack.Timestamp(1, 0)])


def test_a_failed_encode_leaves_the_codec_usable() -> None:
    c = Codec()
    with pytest.raises(TypeError):
        c.encode([1, 2, object()])
    assert c.decode(c.encode([1, 2])) == [1, 2]


# -- safe decoding ------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_give_values_or_decode_error(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass


@FAST
@given(values, st.data())
def test_mutated_messages_give_values_or_decode_error(value: Any, data: st.DataObject) -> None:
    wire = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    for candidate in (bytes(wire), bytes(wire[:cut])):
        try:
            decode(candidate)
        except DecodeError:
            pass


def _ext(code: int, payload: bytes = b"") -> bytes:
    """An ext8 value with any code, negative ones included."""
    return b"\xc7" + bytes([len(payload)]) + struct.pack("b", code) + payload


@pytest.mark.parametrize(
    "code", [c for c in range(-128, 128) if c not in (1, 2, 3, 4, 5, 6, 7, -1)]
)
def test_unknown_extension_codes(code: int) -> None:
    with pytest.raises(DecodeError, match=f"unknown extension type {code}"):
        decode(_ext(code, b"x"))


@pytest.mark.parametrize(
    "wire",
    [
        msgpack.packb(msgpack.Timestamp(1, 2)),
        msgpack.packb([1, {"k": msgpack.Timestamp(10**10, 5)}]),
        msgpack.packb({msgpack.Timestamp(1, 0): 1}),
    ],
    ids=["top", "nested", "key"],
)
def test_timestamps_are_refused(wire: bytes) -> None:
    with pytest.raises(DecodeError, match="Timestamp"):
        decode(wire)


@pytest.mark.parametrize(
    "wire",
    [
        _ext(EXT_TUPLE),
        msgpack.packb([1, msgpack.ExtType(EXT_TUPLE, b"")]),
        msgpack.packb({"k": msgpack.ExtType(EXT_SET, b"")}),
        msgpack.packb({msgpack.ExtType(EXT_FROZENSET, b""): 1}),
        msgpack.packb([msgpack.ExtType(EXT_TUPLE, b"x"), 1]),
        msgpack.packb([msgpack.ExtType(EXT_SET, b""), [1]]),
        msgpack.packb([msgpack.ExtType(EXT_RECORD, b"no.such.Type"), {}]),
        msgpack.packb([msgpack.ExtType(EXT_RECORD, b"beamlet.Down"), 1, 2]),
        msgpack.packb([msgpack.ExtType(EXT_RECORD, b"beamlet.Down"), 1, 2, 3]),
        msgpack.packb([msgpack.ExtType(EXT_RECORD, b"beamlet.ExitSignal"), "pid", 2]),
        msgpack.packb([msgpack.ExtType(EXT_RECORD, b"beamlet.RemoteError"), 1, 2]),
        _ext(EXT_PID, b"short"),
        _ext(EXT_PID, bytes(16) + b"\xff\xfe"),
        _ext(EXT_REF, b""),
        _ext(EXT_BIGINT, b""),
        msgpack.packb({(1, 2): 1}),
        msgpack.packb({1: 1}) + b"\x00",
        b"\x92\x01",
        b"\xc1",
    ],
    ids=[
        "bare tag",
        "tag not first",
        "tag as value",
        "tag as key",
        "tag with payload",
        "unhashable set item",
        "unknown record",
        "short record",
        "Down with bad ref",
        "ExitSignal with bad pid",
        "RemoteError with ints",
        "short pid",
        "pid with bad utf-8",
        "empty ref",
        "empty bigint",
        "list as key",
        "trailing bytes",
        "truncated",
        "reserved byte",
    ],
)
def test_malformed_input_raises_decode_error(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(wire)


def test_size_limits() -> None:
    small = Codec(max_size=100)
    with pytest.raises(DecodeError, match="max_size"):
        small.decode(msgpack.packb("x" * 200))
    with pytest.raises(ValueError, match="max_size"):
        small.encode(b"x" * 200)
    assert small.decode(small.encode("x" * 50)) == "x" * 50


def test_length_limits() -> None:
    c = Codec(max_array_len=10, max_map_len=5, max_set_len=7)
    for ok in ([0] * 10, (0,) * 10, set(range(7)), frozenset(range(7)), dict.fromkeys(range(5))):
        assert_same(c.decode(c.encode(ok)), ok)
    for too_long in (
        [0] * 11,
        (0,) * 11,
        set(range(8)),
        [frozenset(range(8))],
        [[0] * 11],
        dict.fromkeys(range(6)),
    ):
        with pytest.raises(ValueError, match=r"max_array_len|max_map_len|max_set_len"):
            c.encode(too_long)
        with pytest.raises(DecodeError):
            c.decode(Codec().encode(too_long))


def _nested(depth: int) -> Any:
    value: Any = 0
    for i in range(depth):
        value = (value,) if i % 3 == 0 else [value] if i % 3 == 1 else {"k": value}
    return value


def test_depth_limit() -> None:
    c = Codec(max_depth=10)
    assert_same(c.decode(c.encode(_nested(10))), _nested(10))
    with pytest.raises(ValueError, match="max_depth"):
        c.encode(_nested(11))
    with pytest.raises(DecodeError, match="max_depth"):
        c.decode(Codec().encode(_nested(11)))
    deep_message = Join("r", Join("r", Join("r", _nested(8))))
    with pytest.raises(ValueError, match="max_depth"):
        c.encode(deep_message)


@pytest.mark.parametrize("depth", [101, 400, 600, 5000])
def test_default_depth_limit(depth: int) -> None:
    with pytest.raises(ValueError, match="max_depth"):
        encode(_nested(depth))
    with pytest.raises(DecodeError):
        decode(b"\x91" * depth + b"\x00")


def test_codec_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Codec(max_depth=1000)
    with pytest.raises(ValueError, match="max_size"):
        Codec(max_size=0)
    with pytest.raises(TypeError, match="bytes"):
        decode("text")  # type: ignore[arg-type]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=40),
)


@given(scalars, st.binary(max_size=3))
def test_a_lone_scalar_decodes_as_the_general_path_does(value: Any, tail: bytes) -> None:
    """Scalars skip the hooks; the values and the errors stay those of msgpack's
    own decoding, trailing bytes included."""
    data = encode(value) + tail
    try:
        expected = ("value", msgpack.unpackb(data, strict_map_key=False))
    except Exception:
        expected = ("error", None)
    try:
        got = ("value", decode(data))
    except DecodeError:
        got = ("error", None)
    assert got == expected
    if not tail:
        assert_same(decode(data), value)
