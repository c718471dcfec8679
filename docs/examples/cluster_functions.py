"""Functions cross nodes by their export name, never as code."""

from beamlet.cluster import ExportedFunction, RpcError, decode, encode, export


@export(name="shop.greet")
def greet(who: str) -> str:
    return f"hello {who}"


# What goes on the wire is the export name, nothing of the function's code.
data = encode(("run", greet))
assert b"shop.greet" in data and greet.__code__.co_code not in data
# The receiving node looks the name up among its own exports.
assert decode(data) == ("run", greet)

# A name that is not exported there arrives as a stand-in that says so when called.
stand_in = decode(encode(ExportedFunction("shop.refund")))
assert stand_in == ExportedFunction("shop.refund")
try:
    stand_in(42)
except RpcError as exc:
    assert exc.reason == ("not_exported", "shop.refund")
else:
    raise AssertionError("a stand-in must not run anything")

# A function that is not exported does not cross at all.
try:
    encode(lambda: None)
except TypeError as exc:
    assert "exported" in str(exc)
else:
    raise AssertionError("an unexported function must not be encoded")
print("ok")
